//! Members (subscribers), their subscriptions and payments, with the status rules of SPEC §5.

use serde::Deserialize;
use serde_json::json;
use sqlx::AssertSqlSafe;

use super::catalog::Op;
use super::page::Page;
use super::projects::{project_in_scope, validate_name};
use super::{Call, Done, Output, Principal, Service};
use crate::domain::error::{Error, Result};
use crate::domain::ids::parse_id;
use crate::store::rows::{Member, Payment, Subscription};
use crate::store::{Filter, now_ms};

const COLUMNS: &str =
    "id, project_id, telegram_user_id, username, display_name, status, status_reason, created_at, updated_at";
const SUB_COLUMNS: &str = "id, project_id, member_id, plan_id, status, started_at, current_period_end, canceled_at";
pub const MEMBER_STATUSES: &[&str] = &["lead", "trialing", "customer", "churned", "banned"];
pub const SUBSCRIPTION_STATUSES: &[&str] = &["trialing", "active", "past_due", "canceled", "expired"];
pub const PAYMENT_STATUSES: &[&str] = &["succeeded", "pending", "failed", "refunded"];

#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct SubscriberQuery {
    pub status: Option<String>,
    pub search: Option<String>,
}

pub fn check_enum(field: &str, value: Option<&str>, allowed: &[&str]) -> Result<()> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(Error::field(field, format!("must be one of {}", allowed.join(", ")))),
        _ => Ok(()),
    }
}

async fn member_in_scope(c: &mut Call, id: &str) -> Result<Member> {
    let id = parse_id(id)?;
    let team = c.team_id();
    let m = sqlx::query_as::<_, Member>(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM members WHERE id = $1 AND team_id = $2"
    )))
    .bind(&id)
    .bind(&team)
    .fetch_optional(c.conn())
    .await?
    .ok_or(Error::NotFound)?;
    c.check_project(&m.project_id)?;
    Ok(m)
}

async fn subscriptions_of(c: &mut Call, member_id: &str) -> Result<Vec<Subscription>> {
    Ok(sqlx::query_as::<_, Subscription>(AssertSqlSafe(format!(
        "SELECT {SUB_COLUMNS} FROM subscriptions WHERE member_id = $1 ORDER BY started_at DESC, id"
    )))
    .bind(member_id)
    .fetch_all(c.conn())
    .await?)
}

/// Which way a status-changing operation moves a member.
#[derive(Clone, Copy)]
enum Move {
    Ban,
    Unban,
    Kick,
}

impl Service {
    pub async fn list_subscribers(
        &self,
        p: &Principal,
        project_id: &str,
        q: SubscriberQuery,
        page: Page,
    ) -> Result<Done> {
        let pid = project_id.to_owned();
        let args = json!({"project_id": project_id, "status": q.status, "search": q.search, "page": page.page, "limit": page.limit});
        self.run(p, Op::ListSubscribers, None, args, move |c| {
            Box::pin(async move {
                let project = project_in_scope(c, &pid).await?;
                check_enum("status", q.status.as_deref(), MEMBER_STATUSES)?;
                if q.search.as_ref().is_some_and(|s| s.chars().count() > 100) {
                    return Err(Error::field("search", "must be at most 100 characters"));
                }
                let mut f = Filter::default()
                    .eq("project_id", &project.id)
                    .eq_opt("status", q.status.as_deref());
                if let Some(s) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    f = f.contains_any(&["display_name", "username", "telegram_user_id"], s);
                }
                page.fetch::<Member>(c.conn(), f, COLUMNS, "members", "created_at DESC, id")
                    .await
            })
        })
        .await
    }

    pub async fn get_member(&self, p: &Principal, member_id: &str) -> Result<Done> {
        let id = member_id.to_owned();
        self.run(
            p,
            Op::GetMember,
            Some(member_id),
            json!({"member_id": member_id}),
            move |c| {
                Box::pin(async move {
                    let member = member_in_scope(c, &id).await?;
                    let subs = subscriptions_of(c, &member.id).await?;
                    let mut v = serde_json::to_value(&member).map_err(|e| Error::Internal(e.into()))?;
                    v["subscriptions"] = serde_json::to_value(subs).map_err(|e| Error::Internal(e.into()))?;
                    Output::one(v)
                })
            },
        )
        .await
    }

    pub async fn ban_member(&self, p: &Principal, member_id: &str, input: Reason) -> Result<Done> {
        self.move_member(p, Op::BanMember, Move::Ban, member_id, input).await
    }

    pub async fn unban_member(&self, p: &Principal, member_id: &str) -> Result<Done> {
        self.move_member(p, Op::UnbanMember, Move::Unban, member_id, Reason::default())
            .await
    }

    pub async fn kick_member(&self, p: &Principal, member_id: &str, input: Reason) -> Result<Done> {
        self.move_member(p, Op::KickMember, Move::Kick, member_id, input).await
    }

    async fn move_member(&self, p: &Principal, op: Op, mv: Move, member_id: &str, input: Reason) -> Result<Done> {
        let id = member_id.to_owned();
        self.run(
            p,
            op,
            Some(member_id),
            json!({"member_id": member_id, "reason": input.reason}),
            move |c| {
                Box::pin(async move {
                    let before = member_in_scope(c, &id).await?;
                    let reason = input
                        .reason
                        .as_deref()
                        .map(|r| validate_name("reason", r, 500))
                        .transpose()?;
                    // ban → banned; unban → churned (only from banned); kick → churned (a banned member
                    // stays banned). Each is a no-op when the member is already there.
                    let target = match mv {
                        Move::Ban => (before.status != "banned").then_some("banned"),
                        Move::Unban => (before.status == "banned").then_some("churned"),
                        Move::Kick => (!matches!(before.status.as_str(), "banned" | "churned")).then_some("churned"),
                    };
                    if let Some(target) = target {
                        let now = now_ms();
                        sqlx::query(
                            "UPDATE members SET status = $1, status_reason = $2, updated_at = $3 WHERE id = $4",
                        )
                        .bind(target)
                        .bind(&reason)
                        .bind(now)
                        .bind(&before.id)
                        .execute(c.conn())
                        .await?;
                        let mut changes = json!({"status": {"from": before.status, "to": target}});
                        if matches!(mv, Move::Ban | Move::Kick) {
                            let ended = sqlx::query(
                                "UPDATE subscriptions SET status = 'canceled', canceled_at = $1 \
                             WHERE member_id = $2 AND status IN ('trialing', 'active', 'past_due')",
                            )
                            .bind(now)
                            .bind(&before.id)
                            .execute(c.conn())
                            .await?
                            .rows_affected();
                            if ended > 0 {
                                changes["subscriptions_canceled"] = json!(ended);
                            }
                        }
                        c.changes(changes);
                    }
                    let after = member_in_scope(c, &before.id).await?;
                    Output::one(after)
                })
            },
        )
        .await
    }

    pub async fn cancel_subscription(&self, p: &Principal, subscription_id: &str) -> Result<Done> {
        let id = subscription_id.to_owned();
        self.run(
            p,
            Op::CancelSubscription,
            Some(subscription_id),
            json!({"subscription_id": subscription_id}),
            move |c| {
                Box::pin(async move {
                    let sid = parse_id(&id)?;
                    let team = c.team_id();
                    let sub = sqlx::query_as::<_, Subscription>(AssertSqlSafe(format!(
                        "SELECT {SUB_COLUMNS} FROM subscriptions WHERE id = $1 AND team_id = $2"
                    )))
                    .bind(&sid)
                    .bind(&team)
                    .fetch_optional(c.conn())
                    .await?
                    .ok_or(Error::NotFound)?;
                    c.check_project(&sub.project_id)?;
                    if matches!(sub.status.as_str(), "canceled" | "expired") {
                        return Err(Error::Conflict(format!("the subscription is already {}", sub.status)));
                    }
                    sqlx::query("UPDATE subscriptions SET status = 'canceled', canceled_at = $1 WHERE id = $2")
                        .bind(now_ms())
                        .bind(&sub.id)
                        .execute(c.conn())
                        .await?;
                    c.changes(json!({"status": {"from": sub.status, "to": "canceled"}}));
                    let after = sqlx::query_as::<_, Subscription>(AssertSqlSafe(format!(
                        "SELECT {SUB_COLUMNS} FROM subscriptions WHERE id = $1"
                    )))
                    .bind(&sub.id)
                    .fetch_one(c.conn())
                    .await?;
                    Output::one(after)
                })
            },
        )
        .await
    }

    pub async fn list_recent_payments(
        &self,
        p: &Principal,
        project_id: &str,
        status: Option<String>,
        page: Page,
    ) -> Result<Done> {
        let pid = project_id.to_owned();
        let args = json!({"project_id": project_id, "status": status, "page": page.page, "limit": page.limit});
        self.run(p, Op::ListRecentPayments, None, args, move |c| {
            Box::pin(async move {
                let project = project_in_scope(c, &pid).await?;
                check_enum("status", status.as_deref(), PAYMENT_STATUSES)?;
                let f = Filter::default()
                    .eq("project_id", &project.id)
                    .eq_opt("status", status.as_deref());
                let columns = "id, project_id, member_id, subscription_id, amount_cents, currency, status, created_at";
                page.fetch::<Payment>(c.conn(), f, columns, "payments", "created_at DESC, id")
                    .await
            })
        })
        .await
    }
}
