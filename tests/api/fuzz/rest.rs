//! `/v1` fuzzed: the JSON bodies of the writes, the query strings of the reads, the ids in
//! every path, and the `Authorization` header. Whatever comes in, the server answers without a
//! 5xx, with a status `/openapi.json` documents for the operation, with the §4 envelope when it
//! refuses, with nothing changed when it refuses (or when it only reads), and never with a
//! token's secret.

use memberpass::service::core::op::{DynOp, Spec, Verb};
use memberpass::service::ops::catalog;
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use proptest::test_runner::TestCaseResult;
use reqwest::Method;
use serde_json::Value;

use super::values::{self, Ctx};
use super::{Answer, Harness, check, headers, ids_by_param};
use crate::matrix::case;

/// Cases per property in the normal test run (`PROPTEST_CASES` overrides).
const CASES: u32 = 96;

/// Every operation but the one that revokes the calling token (which would end the run).
fn ops() -> impl Iterator<Item = &'static dyn DynOp> {
    catalog::all().filter(|op| op.spec().name != "revoke_current_token")
}

fn ctx(h: &Harness) -> Ctx {
    Ctx {
        tokens: h.pool.clone(),
        ids: ids_by_param(h).into_values().flatten().collect(),
    }
}

fn method_of(spec: &Spec) -> Method {
    Method::from_bytes(spec.method.as_str().as_bytes()).unwrap()
}

/// A request body as sent.
#[derive(Clone, Debug)]
enum Payload {
    Json(Value),
    Bytes(Vec<u8>),
    Nothing,
}

impl Payload {
    fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Payload::Json(v) => Some(serde_json::to_vec(v).unwrap()),
            Payload::Bytes(b) => Some(b.clone()),
            Payload::Nothing => None,
        }
    }
}

#[derive(Clone, Debug)]
struct Write {
    op: &'static str,
    path: String,
    payload: Payload,
    content_type: Option<&'static str>,
    idempotency_key: Option<Vec<u8>>,
}

/// What every answer of an operation must be, and, for a refusal or a read, that nothing
/// changed.
fn check_answer(h: &Harness, op: &str, is_write: bool, a: &Answer, before: &str, after: &str) -> TestCaseResult {
    check(a.status < 500, format!("{op}: {} {}", a.status, a.text()))?;
    h.check_documented(op, a)?;
    h.check_no_secret(a)?;
    if a.status >= 400 {
        h.check_envelope(a)?;
    } else {
        let body: Value = serde_json::from_slice(&a.bytes).unwrap_or_default();
        check(
            body.get("data").is_some(),
            format!("{op}: success without data: {}", a.text()),
        )?;
    }
    if a.status >= 400 || !is_write {
        check(before == after, format!("{op} answered {} but changed state", a.status))?;
    }
    Ok(())
}

#[test]
fn write_bodies_never_break_the_server_or_write_half() {
    let h = Harness::start();
    let ctx = ctx(&h);
    let writes: Vec<BoxedStrategy<Write>> = ops()
        .filter(|op| op.spec().method.takes_body())
        .map(|op| {
            let spec = op.spec();
            let schema = op.args_schema();
            let path = case(op, &h.world, &h.job).path;
            let from_path = spec.path_params();
            let args = values::object_for(&schema, &from_path, &ctx);
            let payload = prop_oneof![
                10 => args.clone().prop_map(Payload::Json),
                1 => values::object_for(&schema, &[], &ctx).prop_map(Payload::Json),
                1 => values::json(&ctx).prop_map(Payload::Json),
                3 => values::mangled(args).prop_map(Payload::Bytes),
                1 => Just(Payload::Nothing),
            ];
            let content_type = prop_oneof![
                12 => Just(Some("application/json")),
                1 => prop::sample::select(vec![
                    Some("Application/JSON; charset=utf-8"),
                    Some("text/plain"),
                    Some("application/x-www-form-urlencoded"),
                    Some("application/jsonl"),
                    None,
                ]),
            ];
            let key = prop::option::weighted(
                0.1,
                prop_oneof![
                    prop::sample::select(vec![b"same-key".to_vec(), b"other-key".to_vec()]),
                    prop::collection::vec(any::<u8>(), 0..300),
                ],
            );
            (payload, content_type, key)
                .prop_map(move |(payload, content_type, idempotency_key)| Write {
                    op: spec.name,
                    path: path.clone(),
                    payload,
                    content_type,
                    idempotency_key,
                })
                .boxed()
        })
        .collect();
    h.run(CASES, Union::new(writes), |w| {
        h.block_on(async {
            let mut pairs = vec![("authorization", format!("Bearer {}", h.token).into_bytes())];
            if let Some(ct) = w.content_type {
                pairs.push(("content-type", ct.as_bytes().to_vec()));
            }
            if let Some(k) = &w.idempotency_key {
                pairs.push(("idempotency-key", k.clone()));
            }
            let method = method_of(&catalog::find(w.op).unwrap().spec());
            let before = h.state().await;
            let a = h.send(method, &w.path, headers(&pairs), w.payload.bytes()).await;
            let after = h.state().await;
            check_answer(&h, w.op, true, &a, &before, &after)
        })
    });
}

#[derive(Clone, Debug)]
struct Read {
    op: &'static str,
    path: String,
    query: String,
}

/// A query string: pairs of known and unknown names with schema-shaped or hostile values,
/// encoded properly or left raw (a bare `%`, `+`, an `&` inside a value, a byte that is not
/// UTF-8).
fn query(schema: &Value, from_path: &[&str], ctx: &Ctx) -> BoxedStrategy<String> {
    let mut names: Vec<String> = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .filter(|k| !from_path.contains(&k.as_str()))
        .collect();
    names.extend(from_path.iter().map(|p| p.to_string()));
    names.push("colour".into());
    let props = schema["properties"].clone();
    let text = values::text(ctx);
    let ctx = ctx.clone();
    let pair =
        (prop::sample::select(names), prop::bool::weighted(0.75), text).prop_flat_map(move |(name, shaped, text)| {
            let value = if shaped {
                values::for_schema(&props[&name], &ctx)
                    .prop_map(|v| match v {
                        Value::String(s) => in_url(&s),
                        other => in_url(&other.to_string()),
                    })
                    .boxed()
            } else {
                Just(in_url(&text)).boxed()
            };
            (Just(name), value)
        });
    let raw_tail = prop_oneof![
        8 => Just(""),
        1 => prop::sample::select(vec!["&", "&&", "=", "%", "%zz", "%ff", "%00", "+", "a=%C3%28", "&page"]),
    ];
    (prop::collection::vec(pair, 0..4), prop::bool::weighted(0.75), raw_tail)
        .prop_map(|(pairs, encoded, tail)| {
            let body = if encoded {
                let mut s = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in &pairs {
                    s.append_pair(k, v);
                }
                s.finish()
            } else {
                // Only what a URL cannot carry is escaped; `&`, `=`, `+` and `%` stay as typed.
                // `_` as `%5F` means the same, and hides a token's shape until it is decoded.
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={}", raw(v).replace('_', "%5F")))
                    .collect::<Vec<_>>()
                    .join("&")
            };
            format!("{body}{tail}")
        })
        .boxed()
}

fn raw(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'!'..=b'~' if b != b'#' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn query_strings_never_break_the_server_or_write() {
    let h = Harness::start();
    let ctx = ctx(&h);
    let reads: Vec<BoxedStrategy<Read>> = ops()
        .filter(|op| op.spec().method == Verb::Get)
        .map(|op| {
            let spec = op.spec();
            let path = case(op, &h.world, &h.job).path;
            query(&op.args_schema(), &spec.path_params(), &ctx)
                .prop_map(move |query| Read {
                    op: spec.name,
                    path: path.clone(),
                    query,
                })
                .boxed()
        })
        .collect();
    h.run(CASES, Union::new(reads), |r| {
        h.block_on(async {
            let auth = [("authorization", format!("Bearer {}", h.token).into_bytes())];
            let before = h.state().await;
            let a = h
                .send(Method::GET, &format!("{}?{}", r.path, r.query), headers(&auth), None)
                .await;
            let after = h.state().await;
            check_answer(&h, r.op, false, &a, &before, &after)
        })
    });
}

#[derive(Clone, Debug)]
struct Target {
    op: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
}

/// What can stand where an id goes: a real id of the right kind or of another, a uuid spelled
/// another way, the nil uuid, and hostile text, percent-encoded.
fn segment(param: &str, h: &Harness, ctx: &Ctx) -> BoxedStrategy<String> {
    let own = ids_by_param(h)[param].clone();
    let any_id = ctx.ids.clone();
    let forms = any_id.clone();
    prop_oneof![
        3 => prop::sample::select(own),
        2 => prop::sample::select(any_id),
        2 => (prop::sample::select(forms), 0u8..5).prop_map(|(id, how)| match how {
            0 => id.to_uppercase(),
            1 => id.replace('-', ""),
            2 => format!("{{{id}}}"),
            3 => format!("urn:uuid:{id}"),
            _ => format!("{id}%00"),
        }),
        1 => Just("00000000-0000-0000-0000-000000000000".to_owned()),
        3 => values::text(ctx).prop_map(|t| {
            let s = raw(&in_url(&t)).replace('/', "%2F").replace('?', "%3F");
            // `.` and `..` (`%2E` too) would move the request to another path before it is sent.
            if s.to_ascii_lowercase().replace("%2e", ".").chars().all(|c| c == '.') { format!("{s}x") } else { s }
        }),
    ]
    .boxed()
}

/// Text cut to what fits in a URL: the server's HTTP layer bounds a request line, as any does.
fn in_url(t: &str) -> String {
    t.chars().take(2_000).collect()
}

#[test]
fn path_ids_never_break_the_server_or_write_half() {
    let h = Harness::start();
    let ctx = ctx(&h);
    let targets: Vec<BoxedStrategy<Target>> = ops()
        .filter(|op| !op.spec().path_params().is_empty())
        .map(|op| {
            let spec = op.spec();
            let params: Vec<BoxedStrategy<String>> = spec.path_params().iter().map(|p| segment(p, &h, &ctx)).collect();
            let methods = prop::sample::select(vec![
                method_of(&spec),
                method_of(&spec),
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::DELETE,
                Method::PUT,
            ]);
            let body = prop::option::of(values::object_for(&op.args_schema(), &spec.path_params(), &ctx));
            (params, methods, body)
                .prop_map(move |(ids, method, body)| {
                    let mut path = spec.path.to_owned();
                    for (param, id) in spec.path_params().iter().zip(ids) {
                        path = path.replace(&format!("{{{param}}}"), &id);
                    }
                    Target {
                        op: spec.name,
                        method,
                        path,
                        body,
                    }
                })
                .boxed()
        })
        .collect();
    h.run(CASES, Union::new(targets), |t| {
        h.block_on(async {
            let auth = [
                ("authorization", format!("Bearer {}", h.token).into_bytes()),
                ("content-type", b"application/json".to_vec()),
            ];
            let template = catalog::find(t.op).unwrap().spec().path;
            // The operation this method reaches on this path, if any (GET and PATCH share one).
            let reached = catalog::all()
                .map(|op| op.spec())
                .find(|s| s.path == template && method_of(s) == t.method);
            let body = t
                .body
                .as_ref()
                .filter(|_| t.method == Method::POST || t.method == Method::PATCH)
                .map(|b| serde_json::to_vec(b).unwrap());
            let before = h.state().await;
            let a = h.send(t.method.clone(), &t.path, headers(&auth), body).await;
            let after = h.state().await;
            match reached {
                Some(spec) => check_answer(&h, spec.name, spec.is_write(), &a, &before, &after),
                None => {
                    check(
                        a.status == 404 || a.status == 405,
                        format!("{} {}: {} {}", t.method, t.path, a.status, a.text()),
                    )?;
                    h.check_envelope(&a)?;
                    h.check_no_secret(&a)?;
                    check(before == after, format!("{} {} changed state", t.method, t.path))
                }
            }
        })
    });
}

/// How an `Authorization` header is made from the caller's token.
#[derive(Clone, Debug)]
enum Credential {
    /// `<scheme> <token>` with the token untouched.
    Scheme(String),
    /// `Bearer <token>` with one edit of the token.
    Edited(Edit),
    /// `Bearer <text>`, or text alone.
    Other(Vec<u8>),
}

#[derive(Clone, Debug)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    OtherEnvironment,
}

fn credential() -> BoxedStrategy<Credential> {
    let at = 0usize..62;
    // Bytes a header value can carry: visible ASCII, space, tab, and obs-text.
    let byte = prop_oneof![
        prop::sample::select(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-".to_vec()),
        32u8..127,
        128u8..=255,
        Just(b'\t'),
    ];
    // Well-formed, but never minted.
    let stranger = memberpass::domain::token::TokenSecret::generate(memberpass::domain::token::TokenEnv::Test);
    let stranger = format!("Bearer {}", stranger.expose_secret()).into_bytes();
    prop_oneof![
        2 => prop::sample::select(vec!["Bearer", "bearer", "BEARER", "bEaReR", "Basic", "Token", "Bearer:", "", "mpt"])
            .prop_map(|s| Credential::Scheme(s.to_owned())),
        5 => prop_oneof![
            (at.clone(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
            (at.clone(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
            at.clone().prop_map(Edit::Remove),
            at.prop_map(Edit::Truncate),
            Just(Edit::OtherEnvironment),
        ]
        .prop_map(Credential::Edited),
        1 => prop::collection::vec(any::<u8>(), 0..80).prop_map(Credential::Other),
        1 => Just(Credential::Other(stranger)),
    ]
    .boxed()
}

/// The header value, and whether it must authenticate as the caller.
fn header_for(h: &Harness, c: &Credential) -> (Vec<u8>, bool) {
    let token = h.token.as_bytes();
    match c {
        Credential::Scheme(s) => ([s.as_bytes(), b" ", token].concat(), s.eq_ignore_ascii_case("bearer")),
        Credential::Edited(e) => {
            let mut t = token.to_vec();
            match *e {
                Edit::Replace(i, b) if i < t.len() => t[i] = b,
                Edit::Insert(i, b) => t.insert(i.min(t.len()), b),
                Edit::Remove(i) if i < t.len() => {
                    t.remove(i);
                }
                Edit::Truncate(i) => t.truncate(i),
                Edit::OtherEnvironment => {
                    let body = String::from_utf8_lossy(&t[..54]).replacen("mpt_test_", "mpt_live_", 1);
                    t = format!("{body}{}", memberpass::domain::token::checksum(&body)).into_bytes();
                }
                _ => {}
            }
            // Whitespace around a header value is not part of it; anything else is an edit.
            let same = t.trim_ascii() == token;
            ([b"Bearer ".as_slice(), &t].concat(), same)
        }
        Credential::Other(b) => (b.clone(), false),
    }
}

#[test]
fn authorization_headers_authenticate_only_the_exact_token() {
    let h = Harness::start();
    h.run(CASES, credential(), |c| {
        let (value, valid) = header_for(&h, &c);
        if reqwest::header::HeaderValue::from_bytes(&value).is_err() {
            // Not a header HTTP can carry (a control byte): nothing to send. Not a rejection,
            // which long runs would exhaust.
            return Ok(());
        }
        h.block_on(async {
            let a = h
                .send(Method::GET, "/v1/me", headers(&[("authorization", value)]), None)
                .await;
            check(a.status < 500, format!("{} {}", a.status, a.text()))?;
            h.check_documented("get_token_info", &a)?;
            h.check_no_secret(&a)?;
            if valid {
                check(
                    a.status == 200,
                    format!("the token was refused: {} {}", a.status, a.text()),
                )?;
            } else {
                check(
                    a.status == 401,
                    format!("accepted or not 401: {} {}", a.status, a.text()),
                )?;
                h.check_envelope(&a)?;
                let body: Value = serde_json::from_slice(&a.bytes).unwrap();
                check(body["error"]["code"] == "AUTHENTICATION_REQUIRED", a.text())?;
            }
            Ok(())
        })
    });
}
