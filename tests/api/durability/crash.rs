//! The real binary killed (SIGKILL) in the middle of a load of writers and readers: every answered
//! call keeps its entry, every change has its entry and every write entry its change; the chain
//! verifies and the same database serves again.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use memberpass::domain::ability::Ability;
use serde_json::{Value, json};

use super::{ENTRY_COLUMNS, Entry, last_name_recorded, request_id};
use crate::helpers::{scratch_database, token_id};
use crate::served::{Served, cli_json, cli_json_at};

/// One answered call of the crash load.
#[derive(Debug)]
pub(crate) struct Heard {
    event: &'static str,
    pub(crate) status: u16,
    request_id: String,
    created: Option<String>,
}

impl Heard {
    pub(crate) fn is_write(&self) -> bool {
        matches!(self.event, "create_project" | "update_project")
    }
}

/// Sends one call; `None` when no status came back (the server is gone).
async fn hear(req: reqwest::RequestBuilder, event: &'static str) -> Option<Heard> {
    let res = req.send().await.ok()?;
    let status = res.status().as_u16();
    let request_id = request_id(res.headers());
    // The body may be cut by the kill: the status and request id were answered all the same.
    let body: Option<Value> = res.json().await.ok();
    let created = body
        .filter(|_| status == 201)
        .and_then(|b| b["data"]["id"].as_str().map(str::to_owned));
    Some(Heard {
        event,
        status,
        request_id,
        created,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_answered_entry() {
    // The one TLS provider in the tree (ring), for this test's own client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = scratch_database().await;
    let token = mint_project_token(&db.url).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    let heard = load_then_kill(Served::start(&db.url).await, &client, &token).await;

    for h in &heard {
        assert!(matches!(h.status, 200 | 201), "{h:?}");
    }
    let verify = cli_json(&db, &["audit", "verify"]).await;
    assert_eq!(verify["ok"], true, "{verify}");
    let store = memberpass::store::Db::connect(&db.url).await.unwrap();
    let entries: Vec<Entry> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE token_id = $1 AND actor_kind = 'api_token' ORDER BY seq"
    )))
    .bind(token_id(&token))
    .fetch_all(store.pool())
    .await
    .unwrap();
    let projects: Vec<(String, String)> = sqlx::query_as("SELECT id, name FROM projects")
        .fetch_all(store.pool())
        .await
        .unwrap();
    store.pool().close().await;
    assert_every_answer_kept(&heard, &entries);
    assert_every_change_has_its_entry(&entries, &projects);
    let heard_ids: HashSet<&str> = heard.iter().map(|h| h.request_id.as_str()).collect();
    let unanswered = entries
        .iter()
        .filter(|e| !heard_ids.contains(e.request_id.as_deref().unwrap_or_default()))
        .count();
    eprintln!(
        "sigkill: {} answered ({} writes), {} entries ({unanswered} committed but not answered), {} projects",
        heard.len(),
        heard.iter().filter(|h| h.is_write()).count(),
        entries.len(),
        projects.len()
    );

    // The same database serves again.
    let server = Served::start(&db.url).await;
    let ready = client.get(format!("{}/readyz", server.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let me = client
        .get(format!("{}/v1/me", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}

/// A user, their team and a token that reads, creates and renames projects, all by the CLI.
pub(crate) async fn mint_project_token(db: &str) -> String {
    let email = "load@example.com";
    cli_json_at(db, &["user", "create", "--email", email, "--name", "Load"]).await;
    let team = cli_json_at(db, &["team", "create", "--name", "Load", "--owner", email]).await;
    let team = team["id"].as_str().unwrap();
    let mut mint = vec!["token", "mint", "--team", team, "--user", email, "--name", "load"];
    for a in [
        Ability::ProjectViewAny,
        Ability::ProjectView,
        Ability::ProjectCreate,
        Ability::ProjectUpdate,
    ] {
        mint.extend(["--ability", a.as_str()]);
    }
    cli_json_at(db, &mint).await["token"].as_str().unwrap().to_owned()
}

/// Writers create a project and rename it; readers read. Once `WRITES` writes and `READS` reads
/// are answered (counted, not timed, and both: either side may be the slower one) the process
/// is killed with the others in flight. Returns every call answered.
async fn load_then_kill(mut server: Served, client: &reqwest::Client, token: &str) -> Vec<Heard> {
    let bases = [server.base.clone()];
    load_then_kill_one(&mut server, &bases, client, token).await
}

/// [`load_then_kill`] with the load spread over `bases` (each task calls one of them), and
/// `victim` the process killed.
pub(crate) async fn load_then_kill_one(
    victim: &mut Served,
    bases: &[String],
    client: &reqwest::Client,
    token: &str,
) -> Vec<Heard> {
    const WRITERS: usize = 32;
    const READERS: usize = 32;
    const WRITES: usize = 160;
    const READS: usize = 160;
    // Every answer so far, and how many of them were writes'.
    let heard: Arc<Mutex<(Vec<Heard>, usize)>> = Default::default();
    let reached = Arc::new(tokio::sync::Notify::new());
    let killed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..WRITERS + READERS {
        let (client, base, token) = (client.clone(), bases[t % bases.len()].clone(), token.to_owned());
        let (heard, reached, killed) = (heard.clone(), reached.clone(), killed.clone());
        tasks.push(tokio::spawn(async move {
            let record = |h: Heard| {
                let mut heard = heard.lock().unwrap();
                heard.1 += usize::from(h.is_write());
                heard.0.push(h);
                if heard.1 >= WRITES && heard.0.len() - heard.1 >= READS {
                    reached.notify_one();
                }
            };
            // A call in flight at the kill ends with it; none starts after it.
            for n in 0.. {
                if killed.load(Ordering::SeqCst) {
                    return;
                }
                let req = if t < WRITERS {
                    let body = json!({"name": format!("Crash {t}-{n}")});
                    (client.post(format!("{base}/v1/projects")).json(&body), "create_project")
                } else if n % 2 == 0 {
                    (client.get(format!("{base}/v1/me")), "get_token_info")
                } else {
                    (client.get(format!("{base}/v1/projects?limit=5")), "list_projects")
                };
                let Some(h) = hear(req.0.bearer_auth(&token), req.1).await else {
                    return;
                };
                let created = h.created.clone();
                record(h);
                if let Some(id) = created {
                    let body = json!({"name": format!("Crash {t}-{n} renamed")});
                    let req = client.patch(format!("{base}/v1/projects/{id}")).json(&body);
                    let Some(h) = hear(req.bearer_auth(&token), "update_project").await else {
                        return;
                    };
                    record(h);
                }
            }
        }));
    }
    // A guard, not a budget: a loaded machine running the debug build may take minutes.
    tokio::time::timeout(Duration::from_secs(300), reached.notified())
        .await
        .expect("the load reached its answers");
    killed.store(true, Ordering::SeqCst);
    victim.kill();
    for t in tasks {
        t.await.unwrap();
    }
    let heard = std::mem::take(&mut heard.lock().unwrap().0);
    assert!(heard.len() >= WRITES + READS);
    heard
}

/// Every answered call has exactly its one entry; entries of calls whose answer the kill cut
/// may exist too (their commit landed first).
pub(crate) fn assert_every_answer_kept(heard: &[Heard], entries: &[Entry]) {
    let mut by_request: HashMap<&str, &Entry> = HashMap::new();
    for e in entries {
        assert_eq!(e.outcome, "success", "{e:?}");
        let id = e.request_id.as_deref().expect("a call's entry has its request id");
        assert!(by_request.insert(id, e).is_none(), "two entries for {id}");
    }
    for h in heard {
        let e = by_request
            .get(h.request_id.as_str())
            .unwrap_or_else(|| panic!("an answered call lost its entry: {h:?}"));
        assert_eq!(e.event, h.event, "{h:?}");
        if let Some(id) = &h.created {
            assert_eq!(e.subject_id.as_ref(), Some(id), "{h:?}");
        }
    }
}

/// No change without its entry, no entry without its change: each project has one creation
/// entry and holds the name its last rename entry (or its creation entry) records; each write
/// entry names a project that exists.
pub(crate) fn assert_every_change_has_its_entry(entries: &[Entry], projects: &[(String, String)]) {
    for (id, name) in projects {
        let creations: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.event == "create_project" && e.subject_id.as_ref() == Some(id))
            .collect();
        let [creation] = creations.as_slice() else {
            panic!("project {id} has {} creation entries", creations.len());
        };
        let created_as: Value = serde_json::from_str(&creation.properties).unwrap();
        let recorded =
            last_name_recorded(entries, id).unwrap_or_else(|| created_as["name"].as_str().unwrap().to_owned());
        assert_eq!(&recorded, name, "project {id}");
    }
    let ids: HashSet<&str> = projects.iter().map(|(id, _)| id.as_str()).collect();
    for e in entries
        .iter()
        .filter(|e| matches!(e.event.as_str(), "create_project" | "update_project"))
    {
        let subject = e.subject_id.as_deref().unwrap_or_default();
        assert!(ids.contains(subject), "an entry without its change: {e:?}");
    }
}
