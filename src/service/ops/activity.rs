//! `get_activity_log`: the team's audit trail, newest first, with filters and a cursor.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::ability::Ability;
use crate::domain::audit::{ActorKind, Outcome};
use crate::domain::error::{Error, Result};
use crate::domain::time::parse_rfc3339;
use crate::service::Call;
use crate::service::core::args::Bounded;
use crate::service::core::op::{DynOp, Operation, Paged, Spec};
use crate::store::audit::{self, AuditFilter, AuditView};

pub static OPS: &[&dyn DynOp] = &[&GetActivityLog];

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub causer_id: Option<String>,
    pub token_id: Option<String>,
    pub actor_kind: Option<ActorKind>,
    pub event: Option<String>,
    pub outcome: Option<Outcome>,
    /// `false`: leave out the dashboard's page views (`dashboard.view` entries), as the
    /// dashboard's Activity Log does by default. Absent or `true`: every entry.
    pub page_views: Option<bool>,
    /// Entries at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Entries before this RFC 3339 time.
    pub until: Option<String>,
    /// Entries per page, 1 to 200 (default 50).
    pub limit: Option<Bounded<1, 200>>,
    /// `meta.next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The `meta` of a page of the log: the next page starts after `next_cursor`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CursorMeta {
    pub limit: i64,
    pub has_more: bool,
    /// The `cursor` of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

fn time_field(name: &str, v: &Option<String>) -> Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            parse_rfc3339(s).ok_or_else(|| Error::field(name, "must be an RFC 3339 time such as 2026-01-31T12:00:00Z"))
        })
        .transpose()
}

pub struct GetActivityLog;
impl Operation for GetActivityLog {
    type Args = ActivityQuery;
    type Output = Paged<AuditView, CursorMeta>;
    const SPEC: Spec = Spec {
        name: "get_activity_log",
        event: "get_activity_log",
        ability: Some(Ability::ActivityRead),
        path: "/v1/activity",
        subject_type: "activity",
        summary: "The team's activity log, newest first.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, q: ActivityQuery) -> Result<Self::Output> {
        let limit = q.limit.map_or(50, Bounded::get);
        let before_seq = q
            .cursor
            .as_deref()
            .map(|s| {
                s.parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| Error::field("cursor", "is not a cursor this server issued"))
            })
            .transpose()?;
        let filter = AuditFilter {
            team_id: Some(c.team_id()),
            project_ids: c.caller.project_ids().map(<[String]>::to_vec),
            since_ms: time_field("since", &q.since)?,
            until_ms: time_field("until", &q.until)?,
            subject_type: q.subject_type,
            subject_id: q.subject_id,
            causer_id: q.causer_id,
            token_id: q.token_id,
            actor_kind: q.actor_kind.map(|k| k.as_str().to_owned()),
            event: q.event,
            not_event: (q.page_views == Some(false)).then(|| crate::domain::audit::PAGE_VIEW.to_owned()),
            outcome: q.outcome.map(|o| o.as_str().to_owned()),
            before_seq,
        };
        // One extra row tells whether there is a next page.
        let mut rows = audit::list(c.conn(), &filter, limit + 1).await?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if has_more {
            rows.last().map(|r| r.seq.to_string())
        } else {
            None
        };
        let data = rows.iter().map(|r| r.view()).collect();
        Paged::ok(
            data,
            CursorMeta {
                limit,
                has_more,
                next_cursor,
            },
        )
    }
}
