//! Property-based fuzzing of the network entry points through the real server: REST bodies,
//! query strings, path ids and the `Authorization` header (`rest`), and JSON-RPC on `/mcp`
//! (`mcp`). Each property starts one server and sends it every case of its run.
//!
//! The number of cases is proptest's: `PROPTEST_CASES` when set, else each property's short
//! default (the normal test run and CI). The seed is fixed unless `PROPTEST_RNG_SEED` is set, so
//! a run is repeatable and a failure is reported with its shrunk input. A long run:
//! `PROPTEST_CASES=20000 cargo test --release --test api fuzz::` (README, Fuzzing).

mod found;
mod mcp;
mod rest;
mod values;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::future::Future;

use memberpass::domain::ability::Ability;
use memberpass::domain::token::{TokenEnv, TokenSecret, contains_token};
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestCaseResult, TestRunner};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, OWNER_B, TestApp, World, captured_logs, spawn_with};

/// The seed of every run that does not set `PROPTEST_RNG_SEED`.
const SEED: u64 = 0x6d70_745f_6675_7a7a;

/// proptest's configuration for one property: `default_cases` unless `PROPTEST_CASES` says
/// otherwise, a fixed seed unless `PROPTEST_RNG_SEED` does, and no regression files (a failure
/// found here becomes a named regression test instead).
fn config(default_cases: u32) -> Config {
    let mut c = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default_cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(SEED);
    }
    if std::env::var_os("PROPTEST_MAX_SHRINK_ITERS").is_none() {
        // Each shrink step is a request: enough to reach a small input, bounded in time.
        c.max_shrink_iters = 2_000;
    }
    c.failure_persistence = None;
    c
}

/// One server for a whole property, its demo data, and what the checks compare against.
pub struct Harness {
    rt: tokio::runtime::Runtime,
    app: Option<TestApp>,
    pub world: World,
    /// A queued job of team A (the worker is off, so no job changes state between cases).
    pub job: String,
    /// Team A's owner, every ability.
    pub token: String,
    /// Token plaintexts an input may carry (minted in this team and the other, never minted,
    /// another environment): none may ever come back in a response or reach the log.
    pub pool: Vec<String>,
    /// The statuses `/openapi.json` documents for each operation.
    documented: HashMap<String, BTreeSet<u16>>,
    /// The error catalog: code → HTTP status.
    codes: HashMap<String, u16>,
    abilities: BTreeSet<String>,
}

impl Harness {
    pub fn start() -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (app, world, job, token, pool) = rt.block_on(async {
            let app = spawn_with(|c| c.run_jobs = false).await;
            let mut world = app.world().await;
            let token = app.mint(OWNER_A, &world.team_a, Ability::ALL, &[]).await;
            // The token revoke_team_token may revoke: never the harness's own.
            let spare = app.mint(OWNER_A, &world.team_a, &[Ability::ProjectView], &[]).await;
            world.spare_token = crate::helpers::token_id(&spare);
            let job = app
                .post(
                    &format!("/v1/plans/{}/access-codes", world.plan),
                    &token,
                    json!({"quantity": 2}),
                )
                .await;
            assert_eq!(job.status, 202, "{:#}", job.body);
            let job = job.body["data"]["id"].as_str().unwrap().to_owned();
            let pool = vec![
                app.mint(OWNER_A, &world.team_a, &[Ability::ProjectViewAny], &[]).await,
                app.mint(OWNER_B, &world.team_b, Ability::ALL, &[]).await,
                TokenSecret::generate(TokenEnv::Test).expose_secret().to_owned(),
                TokenSecret::generate(TokenEnv::Live).expose_secret().to_owned(),
                token.clone(),
            ];
            (app, world, job, token, pool)
        });
        let openapi = memberpass::web::openapi::openapi_json("http://fuzz.invalid");
        let mut documented = HashMap::new();
        for item in openapi["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let statuses = op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|s| s.parse::<u16>().unwrap())
                    .collect();
                documented.insert(op["operationId"].as_str().unwrap().to_owned(), statuses);
            }
        }
        let catalog = memberpass::domain::error::catalog_json();
        let codes = catalog["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["code"].as_str().unwrap().to_owned(),
                    c["http_status"].as_u64().unwrap() as u16,
                )
            })
            .collect();
        let abilities = Ability::ALL.iter().map(|a| a.as_str().to_owned()).collect();
        Harness {
            rt,
            app: Some(app),
            world,
            job,
            token,
            pool,
            documented,
            codes,
            abilities,
        }
    }

    pub fn app(&self) -> &TestApp {
        self.app.as_ref().expect("the app runs until the harness is dropped")
    }

    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Runs `test` on `default_cases` inputs of `strategy` (see [`config`]), then checks that
    /// no token of the pool reached the log. Panics with the shrunk failing input.
    pub fn run<S>(&self, default_cases: u32, strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
    where
        S: Strategy,
        S::Value: Debug,
    {
        let mut runner = TestRunner::new(config(default_cases));
        if let Err(e) = runner.run(&strategy, test) {
            panic!("{e}");
        }
        let logs = captured_logs();
        let leaked: Vec<&str> = logs.lines().filter(|l| contains_token(l)).take(3).collect();
        assert!(leaked.is_empty(), "a token reached the log: {leaked:#?}");
    }

    /// One request as sent, without any of the client's help beyond HTTP framing.
    pub async fn send(&self, method: Method, target: &str, headers: HeaderMap, body: Option<Vec<u8>>) -> Answer {
        // What the client itself put in the request, but for its credential.
        let mut sent = target.as_bytes().to_vec();
        for (k, v) in &headers {
            if k != "authorization" {
                sent.extend_from_slice(v.as_bytes());
            }
        }
        sent.extend(body.iter().flatten());
        let mut req = self
            .app()
            .client
            .request(method, format!("{}{target}", self.app().base))
            .headers(headers);
        if let Some(b) = body {
            req = req.body(b);
        }
        let res = req.send().await.expect("the server answers");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("the whole body").to_vec();
        Answer {
            status,
            headers,
            bytes,
            sent,
        }
    }

    /// Every status an operation answers with must be in its `/openapi.json` responses.
    pub fn check_documented(&self, operation: &str, a: &Answer) -> TestCaseResult {
        let statuses = &self.documented[operation];
        check(
            statuses.contains(&a.status),
            format!(
                "{operation} answered {}, documented {statuses:?}: {}",
                a.status,
                a.text()
            ),
        )
    }

    /// SPEC §4: one envelope with exactly its keys, a code of the catalog whose status is the
    /// response's, the request id of the `x-request-id` header, and the headers the code needs.
    pub fn check_envelope(&self, a: &Answer) -> TestCaseResult {
        let body: Value = serde_json::from_slice(&a.bytes)
            .map_err(|_| TestCaseError::fail(format!("{}: not JSON: {}", a.status, a.text())))?;
        check(
            a.header("content-type").starts_with("application/json"),
            format!("content type {:?}", a.header("content-type")),
        )?;
        self.check_error_object(&body, Some(a.status), Some(a.header("x-request-id")))?;
        let code = body["error"]["code"].as_str().unwrap_or_default();
        if code == "AUTHENTICATION_REQUIRED" {
            check(
                a.header("www-authenticate") == "Bearer",
                "401 without WWW-Authenticate".into(),
            )?;
        }
        if code == "RATE_LIMITED" {
            check(!a.header("retry-after").is_empty(), "429 without Retry-After".into())?;
        }
        Ok(())
    }

    /// The `{"error": {...}}` object of SPEC §4, wherever it is carried (a REST body, an MCP
    /// tool result, a JSON-RPC error's `data` once wrapped).
    pub fn check_error_object(&self, body: &Value, status: Option<u16>, request_id: Option<&str>) -> TestCaseResult {
        let top = body.as_object().filter(|o| o.len() == 1 && o.contains_key("error"));
        let e = top
            .and_then(|o| o["error"].as_object())
            .ok_or_else(|| TestCaseError::fail(format!("not the envelope: {body}")))?;
        let code = e.get("code").and_then(Value::as_str).unwrap_or_default();
        let expected = self
            .codes
            .get(code)
            .ok_or_else(|| TestCaseError::fail(format!("code {code:?} is not in the catalog: {body}")))?;
        if let Some(status) = status {
            check(*expected == status, format!("{code} is {expected}, answered {status}"))?;
        }
        let allowed: BTreeSet<&str> = [
            "code",
            "message",
            "required_ability",
            "docs_url",
            "remediation",
            "request_id",
            "fields",
            "approval_id",
            "approval_url",
            "reason",
        ]
        .into();
        for (k, v) in e {
            check(allowed.contains(k.as_str()), format!("unexpected key {k}: {body}"))?;
            let ok = match k.as_str() {
                "fields" => v.as_object().is_some_and(|f| f.values().all(Value::is_string)),
                "required_ability" => v.as_str().is_some_and(|a| self.abilities.contains(a)),
                _ => v.is_string(),
            };
            check(ok, format!("{k} malformed: {body}"))?;
        }
        for k in ["message", "docs_url", "remediation", "request_id"] {
            check(e.contains_key(k), format!("no {k}: {body}"))?;
        }
        if let Some(id) = request_id {
            check(e["request_id"] == id, format!("request_id is not x-request-id: {body}"))?;
        }
        Ok(())
    }

    /// No token comes back, in the body or in a header: no well-formed one at all, and not the
    /// secret of any token of the pool the request did not itself carry. (What a client sent
    /// that is no longer a token, a cut or edited one, may come back as the text it is.)
    pub fn check_no_secret(&self, a: &Answer) -> TestCaseResult {
        let headers: String = a
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let body = String::from_utf8_lossy(&a.bytes);
        check(
            !contains_token(&body) && !contains_token(&headers),
            format!("a token came back: {body}"),
        )?;
        let sent = String::from_utf8_lossy(&a.sent);
        for t in &self.pool {
            let s = secret_of(t);
            check(
                sent.contains(s) || (!body.contains(s) && !headers.contains(s)),
                format!("a token secret came back: {body}"),
            )?;
        }
        Ok(())
    }

    /// Every table an operation could change, as one comparable value.
    pub async fn state(&self) -> String {
        self.app().state().await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Stopped and removed inside its runtime, as a test's own `TestApp` is.
        if let Some(app) = self.app.take() {
            self.rt.block_on(async move { drop(app) });
        }
    }
}

/// The part of a token that authenticates (`<secret>`), never to be seen again after mint.
pub fn secret_of(token: &str) -> &str {
    &token[22..54]
}

/// A response as received.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
    /// The request's target, headers (not its credential) and body.
    pub sent: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).chars().take(600).collect()
    }
}

pub fn check(ok: bool, why: String) -> TestCaseResult {
    if ok { Ok(()) } else { Err(TestCaseError::fail(why)) }
}

/// Headers from pairs, skipping a value HTTP cannot carry (the strategies may make one).
pub fn headers(pairs: &[(&str, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_bytes(v)) {
            map.append(k, v);
        }
    }
    map
}

/// The demo ids by path parameter, for the strategies to pick real rows.
pub fn ids_by_param(h: &Harness) -> BTreeMap<&'static str, Vec<String>> {
    let w = &h.world;
    BTreeMap::from([
        ("team_id", vec![w.team_a.clone(), w.team_b.clone()]),
        ("project_id", vec![w.p1.clone(), w.p2.clone()]),
        ("resource_id", vec![w.resource.clone()]),
        ("plan_id", vec![w.plan.clone()]),
        ("member_id", vec![w.member.clone()]),
        ("subscription_id", vec![w.subscription.clone()]),
        ("job_id", vec![h.job.clone()]),
        ("token_id", vec![w.spare_token.clone()]),
    ])
}
