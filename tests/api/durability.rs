//! Issue 10, item 6, functionally: under concurrent mixed load every answered call has exactly its
//! one audit entry and every change its entry; a SIGKILL in the middle of a load loses no answered
//! call's entry and leaves no change without its entry (the real binary, restarted afterwards:
//! [`crash`]).

pub(crate) mod crash;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use memberpass::domain::ability::Ability;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, Reply, TestApp, World, spawn_app, token_id};

/// What an entry of the load says, read back from `audit_log`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct Entry {
    pub(crate) seq: i64,
    pub(crate) request_id: Option<String>,
    pub(crate) token_id: Option<String>,
    pub(crate) event: String,
    pub(crate) outcome: String,
    pub(crate) subject_id: Option<String>,
    pub(crate) properties: String,
}

pub(crate) const ENTRY_COLUMNS: &str = "seq, request_id, token_id, event, outcome, subject_id, properties";

/// One answered call: what was asked, and what came back.
#[derive(Debug)]
struct Answered {
    kind: Kind,
    status: u16,
    request_id: String,
    /// The id a `201` returned.
    created: Option<String>,
}

/// The calls of the mixed load, each with the answer and the entry it must get.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Me,
    ListProjects,
    GetProject,
    CreateProject,
    RenameProject,
    /// A write with a read-only token.
    CreateWithReader,
    CreateWithEmptyName,
    /// A write whose body fails inside its transaction (the handle is taken): rolled back.
    CreateWithTakenHandle,
    GetUnknownProject,
    RenameWithUnknownField,
}

impl Kind {
    const ALL: [Kind; 10] = [
        Kind::Me,
        Kind::ListProjects,
        Kind::GetProject,
        Kind::CreateProject,
        Kind::RenameProject,
        Kind::CreateWithReader,
        Kind::CreateWithEmptyName,
        Kind::CreateWithTakenHandle,
        Kind::GetUnknownProject,
        Kind::RenameWithUnknownField,
    ];

    /// The status, event and outcome this call must get.
    fn expected(self) -> (u16, &'static str, &'static str) {
        match self {
            Kind::Me => (200, "get_token_info", "success"),
            Kind::ListProjects => (200, "list_projects", "success"),
            Kind::GetProject => (200, "get_project", "success"),
            Kind::CreateProject => (201, "create_project", "success"),
            Kind::RenameProject => (200, "update_project", "success"),
            Kind::CreateWithReader => (403, "create_project", "denied"),
            Kind::CreateWithEmptyName => (422, "create_project", "failed"),
            Kind::CreateWithTakenHandle => (409, "create_project", "failed"),
            Kind::GetUnknownProject => (404, "get_project", "denied"),
            Kind::RenameWithUnknownField => (422, "update_project", "failed"),
        }
    }
}

struct Tokens {
    writer: String,
    reader: String,
}

impl Tokens {
    /// Which token a kind of call is made with.
    fn of(&self, kind: Kind) -> &str {
        match kind {
            Kind::Me | Kind::GetProject | Kind::CreateWithReader | Kind::GetUnknownProject => &self.reader,
            _ => &self.writer,
        }
    }
}

async fn send(app: &TestApp, w: &World, tokens: &Tokens, kind: Kind, tag: &str) -> Reply {
    let token = tokens.of(kind);
    let p1 = format!("/v1/projects/{}", w.p1);
    let p2 = format!("/v1/projects/{}", w.p2);
    let (method, path, body) = match kind {
        Kind::Me => (Method::GET, "/v1/me".to_owned(), None),
        Kind::ListProjects => (Method::GET, "/v1/projects?limit=5".to_owned(), None),
        Kind::GetProject => (Method::GET, p1, None),
        Kind::CreateProject | Kind::CreateWithReader => (
            Method::POST,
            "/v1/projects".to_owned(),
            Some(json!({"name": format!("Load {tag}")})),
        ),
        Kind::RenameProject => (Method::PATCH, p2, Some(json!({"name": format!("Renamed {tag}")}))),
        Kind::CreateWithEmptyName => (Method::POST, "/v1/projects".to_owned(), Some(json!({"name": "  "}))),
        Kind::CreateWithTakenHandle => (
            Method::POST,
            "/v1/projects".to_owned(),
            Some(json!({"name": format!("Clash {tag}"), "handle": "trading-signals"})),
        ),
        Kind::GetUnknownProject => (Method::GET, format!("/v1/projects/{}", uuid::Uuid::now_v7()), None),
        Kind::RenameWithUnknownField => (Method::PATCH, p2, Some(json!({"colour": "red"}))),
    };
    app.call(method, &path, Some(token), body).await
}

pub(crate) fn request_id(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("every answer carries x-request-id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_one_entry_per_answered_call() {
    const TASKS: usize = 64;
    const CALLS_EACH: usize = 6;
    let app = Arc::new(spawn_app().await);
    let w = Arc::new(app.world().await);
    let read = [Ability::ProjectViewAny, Ability::ProjectView];
    let write = [read.as_slice(), &[Ability::ProjectCreate, Ability::ProjectUpdate]].concat();
    let tokens = Arc::new(Tokens {
        writer: app.mint(OWNER_A, &w.team_a, &write, &[]).await,
        reader: app.mint(OWNER_A, &w.team_a, &read, &[]).await,
    });
    let projects_before: HashSet<String> = sqlx::query_scalar("SELECT id FROM projects")
        .fetch_all(app.pool())
        .await
        .unwrap()
        .into_iter()
        .collect();

    let answered = mixed_load(app.clone(), w.clone(), tokens.clone(), TASKS, CALLS_EACH).await;

    assert_eq!(answered.len(), TASKS * CALLS_EACH);
    for a in &answered {
        assert_eq!(a.status, a.kind.expected().0, "{a:?}");
    }
    let entries: Vec<Entry> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE request_id IS NOT NULL ORDER BY seq"
    )))
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_one_entry_each(&answered, &entries, &tokens);

    // Every project the load created has its creation entry; no other project appeared.
    let created: HashSet<String> = answered.iter().filter_map(|a| a.created.clone()).collect();
    let projects_after: HashSet<String> = sqlx::query_scalar("SELECT id FROM projects")
        .fetch_all(app.pool())
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        projects_after
            .difference(&projects_before)
            .cloned()
            .collect::<HashSet<_>>(),
        created
    );
    let unaudited: Vec<String> = sqlx::query_scalar(
        "SELECT p.id FROM projects p WHERE NOT EXISTS (SELECT 1 FROM audit_log a \
         WHERE a.event = 'create_project' AND a.outcome = 'success' AND a.subject_id = p.id)",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert!(
        unaudited.iter().all(|id| projects_before.contains(id)),
        "created without its entry: {unaudited:?}"
    );
    // The renamed project holds the name its last committed rename's entry records.
    let name: String = sqlx::query_scalar("SELECT name FROM projects WHERE id = $1")
        .bind(&w.p2)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(last_name_recorded(&entries, &w.p2).as_deref(), Some(name.as_str()));

    let out = app.cli(&["--json", "audit", "verify"]).await;
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["entries"], app.count("audit_log").await);
}

/// `tasks` callers making `calls_each` calls of every kind, all at once. Returns every answer.
async fn mixed_load(
    app: Arc<TestApp>,
    w: Arc<World>,
    tokens: Arc<Tokens>,
    tasks: usize,
    calls_each: usize,
) -> Vec<Answered> {
    let mut callers = Vec::new();
    for i in 0..tasks {
        let (app, w, tokens) = (app.clone(), w.clone(), tokens.clone());
        callers.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            for j in 0..calls_each {
                // Neighbouring tasks start on different kinds, so every kind runs alongside others.
                let kind = Kind::ALL[(i + j * 7) % Kind::ALL.len()];
                let reply = send(&app, &w, &tokens, kind, &format!("{i}-{j}")).await;
                let created = (reply.status == 201).then(|| reply.body["data"]["id"].as_str().unwrap().to_owned());
                answered.push(Answered {
                    kind,
                    status: reply.status.as_u16(),
                    request_id: request_id(&reply.headers),
                    created,
                });
            }
            answered
        }));
    }
    let mut answered = Vec::new();
    for t in callers {
        answered.extend(t.await.unwrap());
    }
    answered
}

/// Each answer has exactly one entry, with its request id, the operation's event, the outcome
/// its status implies, the token it was made with, and (for a creation) what it created; no
/// other request has one.
fn assert_one_entry_each(answered: &[Answered], entries: &[Entry], tokens: &Tokens) {
    let mut by_request: HashMap<&str, Vec<&Entry>> = HashMap::new();
    for e in entries {
        by_request.entry(e.request_id.as_deref().unwrap()).or_default().push(e);
    }
    for a in answered {
        let (_, event, outcome) = a.kind.expected();
        let found = by_request
            .get(a.request_id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let [e] = found else {
            panic!("{a:?} has {} entries: {found:?}", found.len());
        };
        assert_eq!((e.event.as_str(), e.outcome.as_str()), (event, outcome), "{a:?}: {e:?}");
        assert_eq!(
            e.token_id.as_deref(),
            Some(token_id(tokens.of(a.kind)).as_str()),
            "{a:?}"
        );
        if let Some(id) = &a.created {
            assert_eq!(
                e.subject_id.as_ref(),
                Some(id),
                "a creation's entry names what it created"
            );
        }
    }
    assert_eq!(
        entries.len(),
        answered.len(),
        "no entry for a request the client was not answered"
    );
}

/// The name the last successful `update_project` entry of `project` set, if any.
pub(crate) fn last_name_recorded(entries: &[Entry], project: &str) -> Option<String> {
    entries
        .iter()
        .filter(|e| e.event == "update_project" && e.outcome == "success" && e.subject_id.as_deref() == Some(project))
        .max_by_key(|e| e.seq)
        .map(|e| {
            let props: Value = serde_json::from_str(&e.properties).unwrap();
            props["changes"]["name"]["to"].as_str().unwrap().to_owned()
        })
}
