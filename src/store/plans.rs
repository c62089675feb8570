//! `plans`: the prices a project sells; names unique per project.

use serde::Serialize;
use sqlx::FromRow;

use super::{Conn, now_ms};
use crate::domain::ids::{PlanId, ProjectId};
use crate::domain::kinds::BillingInterval;
use crate::domain::time::Millis;

pub const COLUMNS: &str =
    "id, project_id, name, price_cents, currency, billing_interval, active, created_at, updated_at";

#[derive(Clone, Debug, FromRow, Serialize, schemars::JsonSchema)]
pub struct Plan {
    pub id: PlanId,
    pub project_id: ProjectId,
    pub name: String,
    pub price_cents: i64,
    pub currency: String,
    #[sqlx(try_from = "String")]
    pub billing_interval: BillingInterval,
    #[sqlx(try_from = "super::query::Flag")]
    pub active: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

super::query::scoped!(Plan, crate::domain::ids::marker::Plan, "plans", project_id);

pub struct NewPlan<'a> {
    pub team_id: &'a str,
    pub project_id: &'a str,
    pub name: &'a str,
    pub price_cents: i64,
    pub currency: &'a str,
    pub billing_interval: BillingInterval,
    pub active: bool,
    pub created_at: i64,
}

/// Inserts a plan; a name taken in the project is a unique violation.
pub async fn insert(conn: &mut Conn, p: &NewPlan<'_>) -> sqlx::Result<PlanId> {
    let id = PlanId::generate();
    sqlx::query(
        "INSERT INTO plans (id, team_id, project_id, name, price_cents, currency, billing_interval, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(id.as_str())
    .bind(p.team_id)
    .bind(p.project_id)
    .bind(p.name)
    .bind(p.price_cents)
    .bind(p.currency)
    .bind(p.billing_interval.as_str())
    .bind(i64::from(p.active))
    .bind(p.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

pub async fn set_active(conn: &mut Conn, id: &str, active: bool) -> sqlx::Result<()> {
    sqlx::query("UPDATE plans SET active = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(active))
        .bind(now_ms())
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}
