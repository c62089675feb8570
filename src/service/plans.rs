//! Plans: prices a project sells; names unique per project.

use serde::Deserialize;
use serde_json::json;
use sqlx::AssertSqlSafe;

use super::catalog::Op;
use super::page::Page;
use super::projects::{project_in_scope, validate_name};
use super::{Call, Done, Output, Principal, Service};
use crate::domain::error::{Error, Result};
use crate::domain::ids::{new_id, parse_id};
use crate::store::Filter;
use crate::store::rows::Plan;
use crate::store::{is_unique_violation, now_ms};

const COLUMNS: &str = "id, project_id, name, price_cents, currency, billing_interval, active, created_at, updated_at";
pub const INTERVALS: &[&str] = &["week", "month", "year", "lifetime"];

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    pub name: String,
    #[schemars(range(min = 0, max = 100_000_000))]
    pub price_cents: i64,
    #[schemars(length(min = 3, max = 3))]
    pub currency: String,
    #[schemars(extend("enum" = ["week", "month", "year", "lifetime"]))]
    pub billing_interval: String,
    /// Plans start unpublished unless asked.
    pub active: Option<bool>,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishPlan {
    pub active: bool,
}

pub async fn plan_in_scope(c: &mut Call, id: &str) -> Result<Plan> {
    let id = parse_id(id)?;
    let team = c.team_id();
    let plan = sqlx::query_as::<_, Plan>(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM plans WHERE id = $1 AND team_id = $2"
    )))
    .bind(&id)
    .bind(&team)
    .fetch_optional(c.conn())
    .await?
    .ok_or(Error::NotFound)?;
    c.check_project(&plan.project_id)?;
    Ok(plan)
}

impl Service {
    pub async fn list_plans(&self, p: &Principal, project_id: &str, page: Page) -> Result<Done> {
        let pid = project_id.to_owned();
        let args = json!({"project_id": project_id, "page": page.page, "limit": page.limit});
        self.run(p, Op::ListPlans, None, args, move |c| {
            Box::pin(async move {
                let project = project_in_scope(c, &pid).await?;
                let filter = Filter::default().eq("project_id", &project.id);
                page.fetch::<Plan>(c.conn(), filter, COLUMNS, "plans", "created_at, id")
                    .await
            })
        })
        .await
    }

    pub async fn get_plan(&self, p: &Principal, plan_id: &str) -> Result<Done> {
        let id = plan_id.to_owned();
        self.run(p, Op::GetPlan, Some(plan_id), json!({"plan_id": plan_id}), move |c| {
            Box::pin(async move { Output::one(plan_in_scope(c, &id).await?) })
        })
        .await
    }

    pub async fn create_plan(&self, p: &Principal, project_id: &str, input: CreatePlan) -> Result<Done> {
        let pid = project_id.to_owned();
        let args = json!({"project_id": project_id, "name": input.name, "price_cents": input.price_cents,
            "currency": input.currency, "billing_interval": input.billing_interval, "active": input.active});
        self.run(p, Op::CreatePlan, None, args, move |c| {
            Box::pin(async move {
                let project = project_in_scope(c, &pid).await?;
                let name = validate_name("name", &input.name, 100)?;
                if !(0..=100_000_000).contains(&input.price_cents) {
                    return Err(Error::field("price_cents", "must be from 0 to 100000000"));
                }
                let currency = input.currency.trim().to_ascii_uppercase();
                if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(Error::field("currency", "must be a three-letter ISO 4217 code"));
                }
                if !INTERVALS.contains(&input.billing_interval.as_str()) {
                    return Err(Error::field("billing_interval", format!("must be one of {}", INTERVALS.join(", "))));
                }
                let (id, now) = (new_id(), now_ms());
                let inserted = sqlx::query(
                    "INSERT INTO plans (id, team_id, project_id, name, price_cents, currency, billing_interval, active, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                )
                .bind(&id)
                .bind(c.team_id())
                .bind(&project.id)
                .bind(&name)
                .bind(input.price_cents)
                .bind(&currency)
                .bind(&input.billing_interval)
                .bind(i64::from(input.active.unwrap_or(false)))
                .bind(now)
                .execute(c.conn())
                .await;
                match inserted {
                    Err(e) if is_unique_violation(&e) => {
                        return Err(Error::Conflict("a plan with this name already exists in the project".into()));
                    }
                    other => other?,
                };
                c.subject(&id);
                Output::one(plan_in_scope(c, &id).await?)
            })
        })
        .await
    }

    pub async fn publish_plan(&self, p: &Principal, plan_id: &str, input: PublishPlan) -> Result<Done> {
        let id = plan_id.to_owned();
        self.run(
            p,
            Op::PublishPlan,
            Some(plan_id),
            json!({"plan_id": plan_id, "active": input.active}),
            move |c| {
                Box::pin(async move {
                    let before = plan_in_scope(c, &id).await?;
                    let active = i64::from(input.active);
                    if before.active != active {
                        sqlx::query("UPDATE plans SET active = $1, updated_at = $2 WHERE id = $3")
                            .bind(active)
                            .bind(now_ms())
                            .bind(&before.id)
                            .execute(c.conn())
                            .await?;
                        c.changes(json!({"active": {"from": before.active != 0, "to": input.active}}));
                    }
                    Output::one(plan_in_scope(c, &before.id).await?)
                })
            },
        )
        .await
    }
}
