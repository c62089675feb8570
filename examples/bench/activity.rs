//! `GET /v1/activity` over a seeded log: each filter the README lists, with a value the seeded
//! entries hold, and the cases an index-less walk finds hardest.

use memberpass::domain::time::{DAY_MS, rfc3339};
use memberpass::store::Db;

use crate::seed::Samples;
use crate::{Auth, Scenario};

/// The migrations that index the filters; `--activity-indexes off` undoes them, so one binary can
/// measure with and without their indexes.
const MIGRATIONS: [&str; 2] = [
    include_str!("../../migrations/0004_activity_indexes.sql"),
    include_str!("../../migrations/0005_chain_time.sql"),
];
const INIT: &str = include_str!("../../migrations/0001_init.sql");

/// Drops the indexes the migrations create and puts back the one 0004 redefines, on one connection
/// (another could still hold the old schema and refuse to create an index it thinks exists).
pub async fn undo_migration(db: &Db) -> sqlx::Result<()> {
    let index = |line: &str, prefix: &str| {
        line.strip_prefix(prefix)
            .and_then(|rest| rest.split([' ', ';']).next())
            .map(str::to_owned)
    };
    let mut conn = db.pool().acquire().await?;
    let lines = || MIGRATIONS.iter().flat_map(|m| m.lines());
    for name in lines().filter_map(|l| index(l, "CREATE INDEX ")) {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {name}")))
            .execute(&mut *conn)
            .await?;
    }
    for name in lines().filter_map(|l| index(l, "DROP INDEX ")) {
        let original = INIT
            .lines()
            .find(|l| index(l, "CREATE INDEX ").as_deref() == Some(name.as_str()))
            .expect("the redefined index is one of 0001's");
        sqlx::query(sqlx::AssertSqlSafe(original)).execute(&mut *conn).await?;
    }
    Ok(())
}

/// `quiet` is scoped to the demo team's quiet project, `fresh` to two projects the log holds
/// nothing about (the walk a scoped token's listing falls back to, at its longest).
pub fn scenarios(s: &Samples, quiet: String, fresh: String) -> Vec<Scenario> {
    let hour = DAY_MS / 24;
    let get = |name: &str, query: String| {
        Scenario::get(format!("activity {name}"), format!("/v1/activity{query}"), Auth::Team)
    };
    vec![
        get("(no filter)", String::new()),
        get("subject_type=job", "?subject_type=job".into()),
        get("subject_id=<a member>", format!("?subject_id={}", s.member_id)),
        get("causer_id=<the viewer>", format!("?causer_id={}", s.causer_id)),
        get("token_id=<the demo token>", format!("?token_id={}", s.token_id)),
        get("actor_kind=human", "?actor_kind=human".into()),
        get("event=ban_member", "?event=ban_member".into()),
        get("outcome=failed", "?outcome=failed".into()),
        get("event=<none such> (no match)", "?event=no.such.event".into()),
        get(
            "since=<a day before the end>",
            format!("?since={}", rfc3339(s.end_ms - DAY_MS)),
        ),
        get("until=<middle of the log>", format!("?until={}", rfc3339(s.middle_ms))),
        get(
            "since..until=<an hour, middle>",
            format!("?since={}&until={}", rfc3339(s.middle_ms), rfc3339(s.middle_ms + hour)),
        ),
        get(
            "until=<before the log> (no match)",
            format!("?until={}", rfc3339(s.middle_ms - 1000 * DAY_MS)),
        ),
        get("cursor=<middle of the log>", format!("?cursor={}", s.middle_seq)),
        Scenario::get(
            "activity, token scoped to the quiet project",
            "/v1/activity",
            Auth::Bearer(quiet),
        ),
        Scenario::get(
            "activity, token scoped to 2 new projects (no match)",
            "/v1/activity",
            Auth::Bearer(fresh),
        ),
    ]
}
