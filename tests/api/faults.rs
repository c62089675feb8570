//! Issue 11, item 4: faults of what the server stands on, with the real binary under load. Its
//! PostgreSQL restarted ([`postgres_restart`]); its SQLite disk full, then read-only ([`disk`]).
//! Whatever fails, every call is answered, with a success that has its audit entry or with a 5xx
//! and the §4 envelope; the process stays up; nothing is half-written; and it recovers by itself
//! once the fault is gone.

mod disk;
mod postgres_restart;
mod private_postgres;
mod small_disk;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::durability::crash::assert_every_change_has_its_entry;
use crate::durability::{ENTRY_COLUMNS, Entry};
use crate::helpers::token_id;

/// One call of a fault load and what came back.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    event: &'static str,
    /// The HTTP status, or what the client got instead (a reset, a timeout).
    status: Result<u16, String>,
    request_id: Option<String>,
    body: Value,
    /// The id a `201` returned.
    created: Option<String>,
    sent: Instant,
    took: Duration,
}

impl Answer {
    fn is_success(&self) -> bool {
        matches!(self.status, Ok(200 | 201))
    }

    fn is_5xx(&self) -> bool {
        matches!(self.status, Ok(500..=599))
    }

    fn is_write(&self) -> bool {
        matches!(self.event, "create_project" | "update_project")
    }
}

/// A call the load (or a probe) makes.
pub(crate) enum Call<'a> {
    Create {
        name: &'a str,
        description: Option<&'a str>,
    },
    Rename {
        id: &'a str,
        name: &'a str,
    },
    Me,
    List,
}

/// Writers that create a project and rename it, and readers that read, each one call at a time
/// until stopped; every answer is kept.
pub(crate) struct Load {
    client: reqwest::Client,
    base: String,
    token: String,
    answers: Arc<Mutex<Vec<Answer>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `description`: how long a description each creation carries (0: none), to make writes
    /// bigger.
    pub(crate) fn start(base: &str, token: &str, writers: usize, readers: usize, description: usize) -> Load {
        let client = reqwest::Client::builder()
            // Longer than the server's own request timeout (30 s): every call gets its answer.
            .timeout(Duration::from_secs(45))
            .build()
            .unwrap();
        let mut load = Load {
            client,
            base: base.to_owned(),
            token: token.to_owned(),
            answers: Default::default(),
            stop: Default::default(),
            tasks: Vec::new(),
        };
        let description = Arc::new((description > 0).then(|| "d".repeat(description)));
        for t in 0..writers + readers {
            let caller = load.caller();
            let description = description.clone();
            load.tasks.push(tokio::spawn(async move {
                for n in 0.. {
                    if caller.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let answer = if t < writers {
                        let name = format!("Fault {t}-{n}");
                        let created = caller
                            .call(Call::Create {
                                name: &name,
                                description: description.as_deref(),
                            })
                            .await;
                        match &created.created {
                            Some(id) => {
                                let renamed = format!("{name} renamed");
                                caller.call(Call::Rename { id, name: &renamed }).await
                            }
                            None => created,
                        }
                    } else if n % 2 == 0 {
                        caller.call(Call::Me).await
                    } else {
                        caller.call(Call::List).await
                    };
                    if !answer.is_success() {
                        // A failing server answers fast: no flood of failures.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
        load
    }

    fn caller(&self) -> Caller {
        Caller {
            client: self.client.clone(),
            base: self.base.clone(),
            token: self.token.clone(),
            answers: self.answers.clone(),
            stop: self.stop.clone(),
        }
    }

    /// One call outside the load's tasks (a probe), kept with the load's answers.
    pub(crate) async fn call(&self, call: Call<'_>) -> Answer {
        self.caller().call(call).await
    }

    /// Every answer so far.
    pub(crate) fn answers(&self) -> Vec<Answer> {
        self.answers.lock().unwrap().clone()
    }

    /// Waits until calls sent after `since` got `writes` successful writes and `reads` successful
    /// reads; panics after `within`.
    pub(crate) async fn wait_for_successes(&self, since: Instant, writes: usize, reads: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (w, r) = self
                .answers()
                .iter()
                .filter(|a| a.sent >= since && a.is_success())
                .fold((0, 0), |(w, r), a| if a.is_write() { (w + 1, r) } else { (w, r + 1) });
            if w >= writes && r >= reads {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the load got {w} writes and {r} reads through in {within:?}, wanted {writes} and {reads}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the callers; each finishes its call in flight. Calls made with [`Load::call`] are
    /// still kept.
    pub(crate) async fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks.drain(..) {
            t.await.unwrap();
        }
    }

    /// Stops the callers and returns every answer.
    pub(crate) async fn finish(mut self) -> Vec<Answer> {
        self.stop().await;
        std::mem::take(&mut self.answers.lock().unwrap())
    }
}

struct Caller {
    client: reqwest::Client,
    base: String,
    token: String,
    answers: Arc<Mutex<Vec<Answer>>>,
    stop: Arc<AtomicBool>,
}

impl Caller {
    async fn call(&self, call: Call<'_>) -> Answer {
        let base = &self.base;
        let (req, event) = match call {
            Call::Create { name, description } => {
                let mut body = json!({ "name": name });
                if let Some(d) = description {
                    body["description"] = json!(d);
                }
                (
                    self.client.post(format!("{base}/v1/projects")).json(&body),
                    "create_project",
                )
            }
            Call::Rename { id, name } => (
                self.client
                    .patch(format!("{base}/v1/projects/{id}"))
                    .json(&json!({ "name": name })),
                "update_project",
            ),
            Call::Me => (self.client.get(format!("{base}/v1/me")), "get_token_info"),
            Call::List => (self.client.get(format!("{base}/v1/projects?limit=5")), "list_projects"),
        };
        let sent = Instant::now();
        let answer = match req.bearer_auth(&self.token).send().await {
            Err(e) => Answer {
                event,
                status: Err(format!("{e:?}")),
                request_id: None,
                body: Value::Null,
                created: None,
                sent,
                took: sent.elapsed(),
            },
            Ok(res) => {
                let status = res.status().as_u16();
                let request_id = res
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                match res.bytes().await {
                    Err(e) => Answer {
                        event,
                        status: Err(format!("{status}, then the body failed: {e:?}")),
                        request_id,
                        body: Value::Null,
                        created: None,
                        sent,
                        took: sent.elapsed(),
                    },
                    Ok(bytes) => {
                        let body = serde_json::from_slice(&bytes)
                            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
                        let created = (status == 201)
                            .then(|| body["data"]["id"].as_str().map(str::to_owned))
                            .flatten();
                        Answer {
                            event,
                            status: Ok(status),
                            request_id,
                            body,
                            created,
                            sent,
                            took: sent.elapsed(),
                        }
                    }
                }
            }
        };
        self.answers.lock().unwrap().push(answer.clone());
        answer
    }
}

/// Every call was answered (no reset, no timeout, no cut body), with a success, or with a 5xx
/// whose body is the §4 envelope carrying the answer's request id and saying nothing else.
pub(crate) fn assert_success_or_envelope(answers: &[Answer]) {
    for a in answers {
        match a.status {
            Ok(200 | 201) => assert!(a.body["data"].is_object() || a.body["data"].is_array(), "{a:?}"),
            Ok(500..=599) => {
                let e = &a.body["error"];
                assert!(e["code"].is_string(), "a 5xx without the envelope: {a:?}");
                assert!(e["message"].is_string(), "{a:?}");
                assert_eq!(e["request_id"].as_str(), a.request_id.as_deref(), "{a:?}");
                assert!(a.body.get("data").is_none(), "a 5xx with data: {a:?}");
            }
            _ => panic!("neither a success nor a 5xx with the envelope: {a:?}"),
        }
    }
}

/// The load's audit entries (its token's, through REST), oldest first.
pub(crate) async fn entries_of(conn: &mut sqlx::AnyConnection, token: &str) -> Vec<Entry> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE token_id = $1 AND actor_kind = 'api_token' ORDER BY seq"
    )))
    .bind(token_id(token))
    .fetch_all(conn)
    .await
    .unwrap()
}

/// The audit log against the answers: each success has exactly its entry (its event, `success`,
/// what it created); a 5xx has at most one (a failure's, or, when the commit landed as the
/// database went away but its answer did not, a success's); no entry belongs to a call that was
/// not made; each project has its creation entry and holds the name its last rename's entry
/// records, and each write's entry names a project that exists. Returns how many 5xx answers
/// had a success entry.
pub(crate) fn assert_audit_matches(answers: &[Answer], entries: &[Entry], projects: &[(String, String)]) -> usize {
    let mut by_request: HashMap<&str, &Entry> = HashMap::new();
    for e in entries {
        let id = e.request_id.as_deref().expect("a call's entry has its request id");
        assert!(by_request.insert(id, e).is_none(), "two entries for {id}");
    }
    let mut committed_but_failed = 0;
    let mut heard: HashMap<&str, &Answer> = HashMap::new();
    for a in answers {
        let id = a.request_id.as_deref().expect("every answer has its request id");
        heard.insert(id, a);
        match (a.is_success(), by_request.get(id)) {
            (true, None) => panic!("a success without its entry: {a:?}"),
            (true, Some(e)) => {
                assert_eq!((e.event.as_str(), e.outcome.as_str()), (a.event, "success"), "{a:?}");
                if let Some(created) = &a.created {
                    assert_eq!(e.subject_id.as_ref(), Some(created), "{a:?}");
                }
            }
            (false, Some(e)) => {
                assert_eq!(e.event, a.event, "{a:?}");
                committed_but_failed += usize::from(e.outcome == "success");
            }
            (false, None) => {}
        }
    }
    for e in entries {
        assert!(
            heard.contains_key(e.request_id.as_deref().unwrap()),
            "an entry of a call nobody made: {e:?}"
        );
    }
    let successes: Vec<Entry> = entries.iter().filter(|e| e.outcome == "success").cloned().collect();
    assert_every_change_has_its_entry(&successes, projects);
    committed_but_failed
}

/// How many answers, successes and 5xx, and the slowest answer, among `answers`.
pub(crate) fn summary(answers: &[Answer]) -> String {
    let ok = answers.iter().filter(|a| a.is_success()).count();
    let failed = answers.iter().filter(|a| a.is_5xx()).count();
    let slowest = answers.iter().map(|a| a.took).max().unwrap_or_default();
    format!(
        "{} answers: {ok} successes, {failed} 5xx, slowest {:.1} s",
        answers.len(),
        slowest.as_secs_f64()
    )
}
