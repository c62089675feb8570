//! `--audit-entries N`: a log that has been in use for a while, before the scenarios run.
//!
//! The entries look like a server's traffic: several teams (the demo's two and a few made up), each
//! with its users, tokens and projects; mostly reads through API tokens and MCP, some dashboard
//! writes, a few refusals and failures, spread evenly over days. They are chained as the server
//! chains them (`lock_head`, then `append_after_at` in large write transactions), so `memberpass
//! audit verify` passes on the result. Time never goes back along the chain, and the log already
//! holds the demo's entries, stamped now: the seeded days start at the log's last entry and run
//! into the future, and the server's own entries after them take the last seeded time.

use std::time::{Duration, Instant};

use memberpass::domain::audit::{ActorKind, AuditDraft, Outcome, RequestCtx};
use memberpass::domain::ids::new_id;
use memberpass::domain::time::DAY_MS;
use memberpass::store::{Backend, Db, audit};
use serde_json::json;
use sqlx::{Connection, Executor};

/// Entries per write transaction.
const PER_TX: u64 = 20_000;

/// Shares of the traffic, in percent: the demo team (the bench token's), the demo's second team,
/// and each of six teams that exist only in the log.
const DEMO_SHARE: u64 = 30;
const OTHER_SHARE: u64 = 10;
const MADE_UP_TEAMS: usize = 6;
const MADE_UP_SHARE: u64 = 10;

/// Ids that exist in the seeded log, for the activity scenarios' filters.
pub struct Samples {
    pub member_id: String,
    /// The demo team's quiet project (5 % of its calls inside a project), for a scoped token.
    pub quiet_project_id: String,
    pub causer_id: String,
    pub token_id: String,
    /// A seq about halfway down the log, for a deep cursor.
    pub middle_seq: i64,
    /// `created_at` about halfway down the log.
    pub middle_ms: i64,
    /// `created_at` of the log's last entry.
    pub end_ms: i64,
}

pub struct Seeded {
    pub took: Duration,
    /// `VACUUM ANALYZE` on PostgreSQL (what autovacuum would have done by now).
    pub analyze_took: Duration,
}

struct Project {
    id: String,
    members: Vec<String>,
    plans: Vec<String>,
    resources: Vec<String>,
}

struct Team {
    id: String,
    /// Percent of the traffic.
    share: u64,
    users: Vec<String>,
    /// Token id, its owner, and the surface it calls through.
    tokens: Vec<(String, String, ActorKind)>,
    /// The first project gets most of the traffic; the others are quiet.
    projects: Vec<Project>,
}

/// What an entry is about.
#[derive(Clone, Copy)]
enum Subject {
    None,
    Team,
    Token,
    Project,
    Member,
    Plan,
    Resource,
    /// Something created by the call (a project, a subscription, a job).
    New,
}

/// Operations with their subject type, what the subject id names, whether they act inside one
/// project, and their weight in the traffic (per 1000 calls).
const EVENTS: &[(&str, &str, Subject, bool, u64)] = &[
    ("get_token_info", "token", Subject::None, false, 140),
    ("list_projects", "project", Subject::None, false, 140),
    ("get_project", "project", Subject::Project, true, 80),
    ("list_subscribers", "project-user", Subject::None, true, 120),
    ("get_member", "project-user", Subject::Member, true, 120),
    ("list_plans", "project-subscription-plan", Subject::None, true, 50),
    ("get_plan", "project-subscription-plan", Subject::Plan, true, 30),
    ("list_resources", "project-resource", Subject::None, true, 40),
    ("get_resource", "project-resource", Subject::Resource, true, 20),
    ("list_recent_payments", "payment", Subject::None, true, 40),
    ("list_team_members", "team", Subject::Team, false, 30),
    ("get_team", "team", Subject::Team, false, 20),
    ("list_tokens", "token", Subject::None, false, 20),
    ("get_activity_log", "activity", Subject::None, false, 20),
    ("list_roles", "role", Subject::None, false, 10),
    ("get_portal_url", "project", Subject::Project, true, 10),
    ("update_project", "project", Subject::Project, true, 15),
    ("create_project", "project", Subject::New, false, 3),
    ("archive_project", "project", Subject::Project, true, 1),
    ("ban_member", "project-user", Subject::Member, true, 10),
    ("unban_member", "project-user", Subject::Member, true, 3),
    ("kick_member", "project-user", Subject::Member, true, 8),
    ("cancel_subscription", "project-subscription", Subject::New, true, 5),
    ("create_plan", "project-subscription-plan", Subject::New, true, 3),
    ("publish_plan", "project-subscription-plan", Subject::Plan, true, 3),
    ("create_resource", "project-resource", Subject::New, true, 2),
    ("bulk_generate_access_codes", "job", Subject::New, true, 2),
    ("auth.failed", "token", Subject::Token, false, 5),
    ("token.revoked", "token", Subject::Token, false, 1),
];

/// xorshift64*: deterministic and cheap, so every seeded log has the same shape.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Appends `n` entries spread over the `days` after the log's last entry, then (PostgreSQL)
/// analyses the table.
pub async fn audit_entries(db: &Db, url: &str, demo_team: &str, n: u64, days: u64) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let mut teams = vec![demo_team_of(db, demo_team, DEMO_SHARE).await?];
    let other: Option<(String,)> = sqlx::query_as("SELECT id FROM teams WHERE id <> $1 LIMIT 1")
        .bind(demo_team)
        .fetch_optional(db.pool())
        .await?;
    if let Some((other,)) = other {
        teams.push(demo_team_of(db, &other, OTHER_SHARE).await?);
    }
    teams.extend((0..MADE_UP_TEAMS).map(|_| made_up_team()));

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (start,): (i64,) = sqlx::query_as("SELECT created_at FROM audit_head WHERE id = 1")
        .fetch_one(db.pool())
        .await?;
    let span = (days as i64 * DAY_MS).max(1);
    // A connection of its own: on SQLite with a page cache that holds a whole transaction's pages
    // (the default 2 MB spills them to the WAL again and again), while the server's keep theirs.
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let begin = match db.backend() {
        Backend::Sqlite => {
            conn.execute("PRAGMA busy_timeout = 10000; PRAGMA cache_size = -1048576")
                .await?;
            "BEGIN IMMEDIATE"
        }
        Backend::Postgres => "BEGIN",
    };
    // A batch of entries shares one time, as a batch of calls does, and goes in as one INSERT.
    // Small batches append fastest on both backends (measured, 50 000 to 100 000 entries):
    // SQLite binds `$N` parameters by looking each name up in a list, so a statement's binding
    // costs O(parameters²) (8 rows: 27 000 entries/s, 64 rows: 10 700); and sqlx 0.9.0 no longer
    // sets TCP_NODELAY (transact-rs/sqlx#4335), so a statement past about 16 KB waits on Nagle and
    // delayed ACK for 40 ms on PostgreSQL even over loopback (16 rows: 8 800 entries/s, 32: 745).
    let per_batch = match db.backend() {
        Backend::Sqlite => 8,
        Backend::Postgres => 16,
    };
    let mut done = 0u64;
    while done < n {
        let count = PER_TX.min(n - done);
        let mut tx = conn.begin_with(begin).await?;
        let mut head = audit::lock_head(&mut tx).await?;
        for first in (done..done + count).step_by(per_batch) {
            let at = start + (span as u128 * first as u128 / n as u128) as i64;
            let drafts = (first..(first + per_batch as u64).min(done + count))
                .map(|_| draft(&mut rng, &teams))
                .collect();
            let rows = audit::append_after_at(&mut tx, head, drafts, at).await?;
            let last = rows.last().expect("a row per draft");
            head = audit::Head::after(last);
        }
        tx.commit().await?;
        done += count;
    }
    let took = started.elapsed();

    let analysed = Instant::now();
    if db.backend() == Backend::Postgres {
        conn.execute("VACUUM ANALYZE audit_log").await?;
    }
    Ok(Seeded {
        took,
        analyze_took: analysed.elapsed(),
    })
}

/// Filter values the log holds (seeded by this run or an earlier one), found in the database.
pub async fn samples(db: &Db, demo_team: &str) -> anyhow::Result<Samples> {
    let demo = demo_team_of(db, demo_team, DEMO_SHARE).await?;
    // Someone who owns no token (the viewer: dashboard calls only), so the bench's own calls,
    // all by the owner, do not add to what the filter finds.
    let owners: Vec<&String> = demo.tokens.iter().map(|t| &t.1).collect();
    let causer = demo
        .users
        .iter()
        .find(|u| !owners.contains(u))
        .unwrap_or(&demo.users[0]);
    let (middle_seq, middle_ms): (i64, i64) =
        sqlx::query_as("SELECT seq, created_at FROM audit_log WHERE seq = (SELECT seq / 2 FROM audit_head)")
            .fetch_one(db.pool())
            .await?;
    let (end_ms,): (i64,) = sqlx::query_as("SELECT created_at FROM audit_head WHERE id = 1")
        .fetch_one(db.pool())
        .await?;
    Ok(Samples {
        member_id: demo.projects[0].members[0].clone(),
        quiet_project_id: demo.projects.last().expect("a project").id.clone(),
        causer_id: causer.clone(),
        token_id: demo.tokens[0].0.clone(),
        middle_seq,
        middle_ms,
        end_ms,
    })
}

/// Which team, then who, through which surface, doing what to what, with what outcome.
fn draft(rng: &mut Rng, teams: &[Team]) -> AuditDraft {
    let team = weighted(rng, teams, |t| t.share);
    let &(event, subject_type, subject, in_project, _) = weighted(rng, EVENTS, |e| e.4);
    // 8 % of calls come from the dashboard (a person, no token); the rest through a token.
    let (actor_kind, causer_id, token_id) = if event == "token.revoked" && rng.below(2) == 0 {
        (ActorKind::System, None, None)
    } else if rng.below(100) < 8 {
        (ActorKind::Human, Some(rng.pick(&team.users).clone()), None)
    } else {
        let (token, owner, kind) = rng.pick(&team.tokens);
        (*kind, Some(owner.clone()), Some(token.clone()))
    };
    // Nine calls in ten touch the team's first project.
    let project = if rng.below(10) == 0 {
        rng.pick(&team.projects)
    } else {
        &team.projects[0]
    };
    let subject_id = match subject {
        Subject::None => None,
        Subject::Team => Some(team.id.clone()),
        Subject::Token => Some(token_id.clone().unwrap_or_else(|| rng.pick(&team.tokens).0.clone())),
        Subject::Project => Some(project.id.clone()),
        Subject::Member => Some(rng.pick(&project.members).clone()),
        Subject::Plan => Some(rng.pick(&project.plans).clone()),
        Subject::Resource => Some(rng.pick(&project.resources).clone()),
        Subject::New => Some(new_id()),
    };
    let (outcome, error_code, properties) = match (event, rng.below(1000)) {
        ("auth.failed", _) => (
            Outcome::Denied,
            Some("AUTHENTICATION_REQUIRED"),
            json!({"reason": "wrong_secret"}),
        ),
        (_, 0..20) => (Outcome::Denied, Some("TOKEN_MISSING_ABILITY"), json!({})),
        (_, 20..25) => (Outcome::Failed, Some("VALIDATION_FAILED"), json!({})),
        (e, _) if e.starts_with("update_") => (
            Outcome::Success,
            None,
            json!({"changes": {"name": {"from": "Trading Signals", "to": "Trading Signals Pro"}}}),
        ),
        _ => (Outcome::Success, None, json!({})),
    };
    let (user_agent, client) = match actor_kind {
        ActorKind::Mcp => (Some("node".to_owned()), Some("claude-code/2.0.14".to_owned())),
        ActorKind::ApiToken => (Some("memberpass-agent/1.4 (python-httpx)".to_owned()), None),
        ActorKind::Human => (
            Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36".to_owned()),
            None,
        ),
        ActorKind::System => (None, None),
    };
    AuditDraft {
        team_id: Some(team.id.clone()),
        project_id: in_project.then(|| project.id.clone()),
        actor_kind,
        causer_id,
        token_id,
        event: event.to_owned(),
        subject_type: Some(subject_type.to_owned()),
        subject_id,
        properties,
        outcome,
        error_code,
        ctx: RequestCtx {
            request_id: Some(new_id()),
            ip: Some(format!("10.0.{}.{}", rng.below(4), rng.below(250) + 1)),
            user_agent,
            client,
        },
        oauth: None,
        marks: serde_json::Map::new(),
        write: false,
    }
}

fn weighted<'a, T>(rng: &mut Rng, items: &'a [T], weight: impl Fn(&T) -> u64) -> &'a T {
    let mut at = rng.below(items.iter().map(&weight).sum());
    for item in items {
        if at < weight(item) {
            return item;
        }
        at -= weight(item);
    }
    unreachable!("the pick is below the sum of the weights")
}

/// A team of the demo data, with the ids its entries name.
async fn demo_team_of(db: &Db, team_id: &str, share: u64) -> anyhow::Result<Team> {
    let pool = db.pool();
    let users: Vec<(String,)> = sqlx::query_as("SELECT user_id FROM team_members WHERE team_id = $1 ORDER BY user_id")
        .bind(team_id)
        .fetch_all(pool)
        .await?;
    let tokens: Vec<(String, String)> =
        sqlx::query_as("SELECT id, user_id FROM tokens WHERE team_id = $1 ORDER BY created_at, id")
            .bind(team_id)
            .fetch_all(pool)
            .await?;
    // The demo's projects (the ones with members; not those the bench has created), busiest first.
    let projects: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM projects p WHERE team_id = $1 \
         AND EXISTS (SELECT 1 FROM members m WHERE m.project_id = p.id) ORDER BY name DESC",
    )
    .bind(team_id)
    .fetch_all(pool)
    .await?;
    let mut team = Team {
        id: team_id.to_owned(),
        share,
        users: users.into_iter().map(|(u,)| u).collect(),
        tokens: tokens
            .into_iter()
            .enumerate()
            .map(|(i, (t, u))| {
                (
                    t,
                    u,
                    if i % 2 == 0 {
                        ActorKind::ApiToken
                    } else {
                        ActorKind::Mcp
                    },
                )
            })
            .collect(),
        projects: Vec::new(),
    };
    for (project,) in projects {
        team.projects.push(Project {
            members: ids_in(db, "members", &project).await?,
            plans: ids_in(db, "plans", &project).await?,
            resources: ids_in(db, "project_resources", &project).await?,
            id: project,
        });
    }
    anyhow::ensure!(
        !team.users.is_empty() && !team.projects.is_empty(),
        "team {team_id} has no users or projects to seed entries for"
    );
    if team.tokens.is_empty() {
        // The demo's second team has none yet; its past traffic came through tokens that exist
        // only in the log, like the made-up teams'.
        team.tokens = made_up_tokens(&team.users);
    }
    Ok(team)
}

async fn ids_in(db: &Db, table: &str, project_id: &str) -> sqlx::Result<Vec<String>> {
    let sql = format!("SELECT id FROM {table} WHERE project_id = $1 ORDER BY id");
    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(project_id)
        .fetch_all(db.pool())
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Six tokens, half MCP and half REST, spread over `users`.
fn made_up_tokens(users: &[String]) -> Vec<(String, String, ActorKind)> {
    (0..6)
        .map(|i| {
            let kind = if i % 2 == 0 {
                ActorKind::ApiToken
            } else {
                ActorKind::Mcp
            };
            (new_id(), users[i % users.len()].clone(), kind)
        })
        .collect()
}

/// A team that exists only in the log: enough users, tokens and projects to spread over.
fn made_up_team() -> Team {
    let users: Vec<String> = (0..4).map(|_| new_id()).collect();
    let tokens = made_up_tokens(&users);
    let projects = (0..3)
        .map(|_| Project {
            id: new_id(),
            members: (0..40).map(|_| new_id()).collect(),
            plans: (0..3).map(|_| new_id()).collect(),
            resources: (0..2).map(|_| new_id()).collect(),
        })
        .collect();
    Team {
        id: new_id(),
        share: MADE_UP_SHARE,
        users,
        tokens,
        projects,
    }
}
