//! `--demo`: a realistic team to try the server with, a second team to show isolation, a
//! dashboard login, and one least-privilege read token.

use serde_json::json;

use super::Service;
use super::tokens::{Actor, MintRequest, Minted};
use crate::domain::ability::Ability;
use crate::domain::audit::AuditDraft;
use crate::domain::error::{Error, Result};
use crate::domain::ids::new_id;
use crate::domain::role::Role;
use crate::domain::time::DAY_MS;
use crate::domain::token::random_base62;
use crate::store::{Tx, audit, now_ms};

pub const DEMO_EMAIL: &str = "demo@memberpass.test";
pub const DEMO_TOKEN_NAME: &str = "demo read-only agent";

/// The abilities of the demo token: enough to look around over MCP or REST, nothing that writes.
pub const DEMO_ABILITIES: &[Ability] = &[
    Ability::McpFull,
    Ability::TeamView,
    Ability::ProjectViewAny,
    Ability::ProjectView,
    Ability::PlanViewAny,
    Ability::MemberViewAny,
    Ability::MemberView,
];

pub struct DemoLogin {
    pub email: String,
    /// Only set when this call created the user.
    pub password: Option<String>,
    pub team_id: String,
    pub token: Minted,
}

const FIRST: &[&str] = &[
    "Ana", "Ben", "Chen", "Dana", "Eli", "Femi", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena", "Milo", "Nia", "Omar",
    "Pia", "Quinn",
];
const LAST: &[&str] = &[
    "Silva", "Okafor", "Novak", "Kim", "Haddad", "Berg", "Rossi", "Sato", "Ivanova", "Moreau", "Diaz",
];
const STATUSES: &[&str] = &[
    "lead", "trialing", "customer", "customer", "customer", "churned", "banned",
];

/// A small deterministic generator, so every demo database looks alike.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

impl Service {
    /// Seeds on an empty database; on one already seeded, only mints a fresh demo token
    /// (revoking the previous one), so every start prints a token that works.
    pub async fn seed_demo(&self) -> Result<DemoLogin> {
        let existing: Option<(String, String)> = sqlx::query_as(
            "SELECT u.id, m.team_id FROM users u JOIN team_members m ON m.user_id = u.id AND m.role = 'owner' WHERE u.email = $1",
        )
        .bind(DEMO_EMAIL)
        .fetch_optional(self.db.pool())
        .await?;
        let (team_id, password) = match existing {
            Some((_, team)) => (team, None),
            None => {
                let teams: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM teams")
                    .fetch_one(self.db.pool())
                    .await?;
                if teams > 0 {
                    return Err(Error::Conflict(
                        "--demo only seeds an empty database, and this one already holds teams".into(),
                    ));
                }
                let password = random_base62(20);
                self.create_user(DEMO_EMAIL, "Demo Owner", Some(&password)).await?;
                let team = self.create_team("Northwind Creators", DEMO_EMAIL).await?;
                self.create_user("viewer@memberpass.test", "Vera Viewer", None).await?;
                self.set_member_role(&team, "viewer@memberpass.test", Role::Viewer)
                    .await?;
                self.create_user("other@memberpass.test", "Otto Other", None).await?;
                let other = self.create_team("Other Creator Co", "other@memberpass.test").await?;
                let mut tx = self.db.begin_write().await?;
                seed_team(
                    &mut tx,
                    &team,
                    &[
                        ("Trading Signals", "trading-signals"),
                        ("Morning Yoga Club", "morning-yoga"),
                    ],
                    1,
                )
                .await?;
                seed_team(&mut tx, &other, &[("Private Book Circle", "book-circle")], 7).await?;
                audit::append(
                    &mut tx,
                    AuditDraft::system("demo.seeded", Some(team.clone())).properties(json!({"second_team": other})),
                )
                .await?;
                tx.commit().await?;
                (team, Some(password))
            }
        };
        let actor = Actor::system();
        for t in self.list_tokens_admin(Some(DEMO_EMAIL), Some(&team_id)).await? {
            if t.name == DEMO_TOKEN_NAME && t.revoked_at.is_none() {
                self.revoke_token(&actor, &t.id, Some("superseded by a new demo token"))
                    .await?;
            }
        }
        let token = self
            .mint_token(
                &actor,
                MintRequest {
                    team_id: team_id.clone(),
                    user_email: DEMO_EMAIL.to_owned(),
                    name: DEMO_TOKEN_NAME.to_owned(),
                    abilities: DEMO_ABILITIES.iter().map(|a| a.as_str().to_owned()).collect(),
                    project_ids: vec![],
                    expires_in_ms: None,
                },
            )
            .await?;
        Ok(DemoLogin {
            email: DEMO_EMAIL.to_owned(),
            password,
            team_id,
            token,
        })
    }
}

async fn seed_team(tx: &mut Tx, team: &str, projects: &[(&str, &str)], seed: u64) -> sqlx::Result<()> {
    let mut rng = Lcg(seed);
    let now = now_ms();
    for (pi, (name, handle)) in projects.iter().enumerate() {
        let project = new_id();
        sqlx::query("INSERT INTO projects (id, team_id, name, handle, description, active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $6)")
            .bind(&project).bind(team).bind(*name).bind(*handle).bind(format!("{name}: a paid Telegram community"))
            .bind(now - 200 * DAY_MS).execute(&mut **tx).await?;
        for (ri, (kind, title)) in [("channel", "Announcements"), ("supergroup", "Members chat")]
            .iter()
            .enumerate()
        {
            sqlx::query("INSERT INTO project_resources (id, team_id, project_id, kind, title, telegram_chat_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(new_id()).bind(team).bind(&project).bind(*kind).bind(format!("{name} {title}"))
                .bind(format!("-100{}{}{}", 1_000_000 + seed * 1000, pi, ri)).bind(now - 199 * DAY_MS).execute(&mut **tx).await?;
        }
        let mut plans = Vec::new();
        for (plan_name, cents, interval, active) in [
            ("Monthly", 1500, "month", 1),
            ("Yearly", 15000, "year", 1),
            ("Founders (closed)", 900, "month", 0),
        ] {
            let plan = new_id();
            sqlx::query("INSERT INTO plans (id, team_id, project_id, name, price_cents, currency, billing_interval, active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'USD', $6, $7, $8, $8)")
                .bind(&plan).bind(team).bind(&project).bind(plan_name).bind(cents as i64).bind(interval).bind(active as i64)
                .bind(now - 198 * DAY_MS).execute(&mut **tx).await?;
            plans.push((plan, cents as i64));
        }
        let count = if projects.len() > 1 { 25 } else { 8 };
        for i in 0..count {
            let member = new_id();
            let status = STATUSES[(i + pi) % STATUSES.len()];
            let first = FIRST[rng.next(FIRST.len())];
            let last = LAST[rng.next(LAST.len())];
            let joined = now - (rng.next(180) as i64 + 1) * DAY_MS;
            sqlx::query("INSERT INTO members (id, team_id, project_id, telegram_user_id, username, display_name, status, status_reason, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)")
                .bind(&member).bind(team).bind(&project).bind(format!("{}", 500_000_000 + seed * 100_000 + (pi * 100 + i) as u64))
                .bind(format!("{}_{}", first.to_lowercase(), i)).bind(format!("{first} {last}")).bind(status)
                .bind((status == "banned").then_some("spam in the members chat")).bind(joined).execute(&mut **tx).await?;
            if status == "lead" {
                continue;
            }
            let (plan, cents) = &plans[rng.next(2)];
            let sub_status = match status {
                "trialing" => "trialing",
                "customer" => "active",
                _ => "canceled",
            };
            let sub = new_id();
            sqlx::query("INSERT INTO subscriptions (id, team_id, project_id, member_id, plan_id, status, started_at, current_period_end, canceled_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $7)")
                .bind(&sub).bind(team).bind(&project).bind(&member).bind(plan).bind(sub_status).bind(joined)
                .bind(joined + 30 * DAY_MS).bind((sub_status == "canceled").then_some(joined + 20 * DAY_MS)).execute(&mut **tx).await?;
            if status == "trialing" {
                continue;
            }
            for k in 0..(1 + rng.next(3)) {
                let pay_status = ["succeeded", "succeeded", "succeeded", "failed", "refunded"][rng.next(5)];
                sqlx::query("INSERT INTO payments (id, team_id, project_id, member_id, subscription_id, amount_cents, currency, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'USD', $7, $8)")
                    .bind(new_id()).bind(team).bind(&project).bind(&member).bind(&sub).bind(*cents).bind(pay_status)
                    .bind(joined + k as i64 * 30 * DAY_MS).execute(&mut **tx).await?;
            }
        }
    }
    Ok(())
}
