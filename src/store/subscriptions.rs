//! `subscriptions` and `payments`.

use serde::Serialize;
use sqlx::{AssertSqlSafe, FromRow};

use super::{Conn, Filter};
use crate::domain::ids::{MemberId, PlanId, ProjectId, SubscriptionId};
use crate::domain::kinds::{PaymentStatus, SubscriptionStatus};
use crate::domain::time::Millis;

pub const COLUMNS: &str = "id, project_id, member_id, plan_id, status, started_at, current_period_end, canceled_at";
pub const PAYMENT_COLUMNS: &str =
    "id, project_id, member_id, subscription_id, amount_cents, currency, status, created_at";

#[derive(Clone, Debug, FromRow, Serialize, schemars::JsonSchema)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub project_id: ProjectId,
    pub member_id: MemberId,
    pub plan_id: PlanId,
    #[sqlx(try_from = "String")]
    pub status: SubscriptionStatus,
    pub started_at: Millis,
    pub current_period_end: Option<Millis>,
    pub canceled_at: Option<Millis>,
}

super::query::scoped!(
    Subscription,
    crate::domain::ids::marker::Subscription,
    "subscriptions",
    project_id
);

#[derive(Clone, Debug, FromRow, Serialize, schemars::JsonSchema)]
pub struct Payment {
    pub id: String,
    pub project_id: ProjectId,
    pub member_id: MemberId,
    pub subscription_id: Option<SubscriptionId>,
    pub amount_cents: i64,
    pub currency: String,
    #[sqlx(try_from = "String")]
    pub status: PaymentStatus,
    pub created_at: Millis,
}

pub struct NewSubscription<'a> {
    pub id: &'a str,
    pub team_id: &'a str,
    pub project_id: &'a str,
    pub member_id: &'a str,
    pub plan_id: &'a str,
    pub status: SubscriptionStatus,
    pub started_at: i64,
    pub current_period_end: Option<i64>,
    pub canceled_at: Option<i64>,
}

pub async fn insert(conn: &mut Conn, s: &NewSubscription<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO subscriptions (id, team_id, project_id, member_id, plan_id, status, started_at, current_period_end, canceled_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $7)",
    )
    .bind(s.id)
    .bind(s.team_id)
    .bind(s.project_id)
    .bind(s.member_id)
    .bind(s.plan_id)
    .bind(s.status.as_str())
    .bind(s.started_at)
    .bind(s.current_period_end)
    .bind(s.canceled_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub struct NewPayment<'a> {
    pub id: &'a str,
    pub team_id: &'a str,
    pub project_id: &'a str,
    pub member_id: &'a str,
    pub subscription_id: Option<&'a str>,
    pub amount_cents: i64,
    pub currency: &'a str,
    pub status: PaymentStatus,
    pub created_at: i64,
}

pub async fn insert_payment(conn: &mut Conn, p: &NewPayment<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO payments (id, team_id, project_id, member_id, subscription_id, amount_cents, currency, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(p.id)
    .bind(p.team_id)
    .bind(p.project_id)
    .bind(p.member_id)
    .bind(p.subscription_id)
    .bind(p.amount_cents)
    .bind(p.currency)
    .bind(p.status.as_str())
    .bind(p.created_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub async fn of_member(conn: &mut Conn, member_id: &str) -> sqlx::Result<Vec<Subscription>> {
    sqlx::query_as::<_, Subscription>(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE member_id = $1 ORDER BY started_at DESC, id"
    )))
    .bind(member_id)
    .fetch_all(&mut *conn)
    .await
}

pub async fn cancel(conn: &mut Conn, id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE subscriptions SET status = 'canceled', canceled_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Cancels a member's live subscriptions (trialing, active, past due); returns how many.
pub async fn cancel_live_of_member(conn: &mut Conn, member_id: &str, now: i64) -> sqlx::Result<u64> {
    sqlx::query(
        "UPDATE subscriptions SET status = 'canceled', canceled_at = $1 \
         WHERE member_id = $2 AND status IN ('trialing', 'active', 'past_due')",
    )
    .bind(now)
    .bind(member_id)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected())
}

pub async fn payments_of_project(
    conn: &mut Conn,
    project_id: &str,
    status: Option<PaymentStatus>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<Payment>, i64)> {
    Filter::default()
        .eq("project_id", project_id)
        .eq_opt("status", status.map(PaymentStatus::as_str))
        .page(conn, PAYMENT_COLUMNS, "payments", "created_at DESC, id", limit, offset)
        .await
}
