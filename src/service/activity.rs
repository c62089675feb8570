//! `get_activity_log`: the team's audit trail, newest first, with filters and a cursor.

use serde_json::json;

use super::catalog::Op;
use super::members::check_enum;
use super::{Done, Output, Principal, Service};
use crate::domain::audit::ActorKind;
use crate::domain::error::{Error, Result};
use crate::domain::time::parse_rfc3339;
use crate::store::audit::{self, AuditFilter};

#[derive(Clone, Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub causer_id: Option<String>,
    pub token_id: Option<String>,
    #[schemars(extend("enum" = ["mcp", "api_token", "human", "system", null]))]
    pub actor_kind: Option<String>,
    pub event: Option<String>,
    #[schemars(extend("enum" = ["success", "denied", "failed", null]))]
    pub outcome: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn time_field(name: &str, v: &Option<String>) -> Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            parse_rfc3339(s).ok_or_else(|| Error::field(name, "must be an RFC 3339 time such as 2026-01-31T12:00:00Z"))
        })
        .transpose()
}

impl Service {
    pub async fn get_activity_log(&self, p: &Principal, q: ActivityQuery) -> Result<Done> {
        let args = serde_json::to_value(json!({
            "subject_type": q.subject_type, "subject_id": q.subject_id, "causer_id": q.causer_id,
            "token_id": q.token_id, "actor_kind": q.actor_kind, "event": q.event, "outcome": q.outcome,
            "since": q.since, "until": q.until, "limit": q.limit, "cursor": q.cursor,
        }))
        .unwrap_or_default();
        self.run(p, Op::GetActivityLog, None, args, move |c| {
            Box::pin(async move {
                let kinds: Vec<&str> = ActorKind::ALL.iter().map(|k| k.as_str()).collect();
                check_enum("actor_kind", q.actor_kind.as_deref(), &kinds)?;
                check_enum("outcome", q.outcome.as_deref(), &["success", "denied", "failed"])?;
                let limit = q.limit.unwrap_or(50);
                if !(1..=200).contains(&limit) {
                    return Err(Error::field("limit", "must be a whole number from 1 to 200"));
                }
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
                    project_ids: c.principal.project_ids.clone(),
                    subject_type: q.subject_type,
                    subject_id: q.subject_id,
                    causer_id: q.causer_id,
                    token_id: q.token_id,
                    actor_kind: q.actor_kind,
                    event: q.event,
                    outcome: q.outcome,
                    since_ms: time_field("since", &q.since)?,
                    until_ms: time_field("until", &q.until)?,
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
                let data: Vec<_> = rows.iter().map(|r| r.to_json()).collect();
                Output::list(
                    data,
                    json!({"limit": limit, "has_more": has_more, "next_cursor": next_cursor}),
                )
            })
        })
        .await
    }
}
