//! `--demo`: a realistic team to try the server with, a second team to show isolation, a
//! dashboard login, and one least-privilege read token.

use serde_json::json;

use super::Service;
use super::accounts::tokens::{MintRequest, Minted};
use super::core::caller::Caller;
use crate::domain::ability::Ability;
use crate::domain::audit::AuditDraft;
use crate::domain::error::{Error, Result};
use crate::domain::ids::new_id;
use crate::domain::kinds::{BillingInterval, MemberStatus, PaymentStatus, ResourceKind, SubscriptionStatus};
use crate::domain::role::Role;
use crate::domain::time::DAY_MS;
use crate::domain::token::random_base62;
use crate::store::members::NewMember;
use crate::store::plans::NewPlan;
use crate::store::projects::NewProject;
use crate::store::resources::NewResource;
use crate::store::subscriptions::{NewPayment, NewSubscription};
use crate::store::{self, Tx, audit, now_ms};

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
const STATUSES: &[MemberStatus] = &[
    MemberStatus::Lead,
    MemberStatus::Trialing,
    MemberStatus::Customer,
    MemberStatus::Customer,
    MemberStatus::Customer,
    MemberStatus::Churned,
    MemberStatus::Banned,
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
        let mut conn = self.db.pool().acquire().await?;
        let existing = store::teams::owned_by_email(&mut conn, DEMO_EMAIL).await?;
        let (team_id, password) = match existing {
            Some((_, team)) => (team, None),
            None => {
                if store::teams::count(&mut conn).await? > 0 {
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
        let actor = Caller::system();
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
                    allowed_ips: Vec::new(),
                    replaces: None,
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
    use MemberStatus::{Banned, Lead, Trialing};
    let mut rng = Lcg(seed);
    let now = now_ms();
    for (pi, (name, handle)) in projects.iter().enumerate() {
        let description = format!("{name}: a paid Telegram community");
        let new = NewProject {
            team_id: team,
            name,
            handle,
            description: Some(&description),
            created_at: now - 200 * DAY_MS,
        };
        let project = store::projects::insert(tx, &new).await?;
        for (ri, (kind, title)) in [
            (ResourceKind::Channel, "Announcements"),
            (ResourceKind::Supergroup, "Members chat"),
        ]
        .into_iter()
        .enumerate()
        {
            let title = format!("{name} {title}");
            let chat = format!("-100{}{}{}", 1_000_000 + seed * 1000, pi, ri);
            let new = NewResource {
                team_id: team,
                project_id: &project,
                kind,
                title: &title,
                telegram_chat_id: &chat,
                created_at: now - 199 * DAY_MS,
            };
            store::resources::insert(tx, &new).await?;
        }
        let mut plans = Vec::new();
        for (plan_name, cents, interval, active) in [
            ("Monthly", 1500, BillingInterval::Month, true),
            ("Yearly", 15000, BillingInterval::Year, true),
            ("Founders (closed)", 900, BillingInterval::Month, false),
        ] {
            let new = NewPlan {
                team_id: team,
                project_id: &project,
                name: plan_name,
                price_cents: cents,
                currency: "USD",
                billing_interval: interval,
                active,
                created_at: now - 198 * DAY_MS,
            };
            plans.push((store::plans::insert(tx, &new).await?, cents));
        }
        let count = if projects.len() > 1 { 25 } else { 8 };
        for i in 0..count {
            let member = new_id();
            let status = STATUSES[(i + pi) % STATUSES.len()];
            let first = FIRST[rng.next(FIRST.len())];
            let last = LAST[rng.next(LAST.len())];
            let joined = now - (rng.next(180) as i64 + 1) * DAY_MS;
            let telegram_id = format!("{}", 500_000_000 + seed * 100_000 + (pi * 100 + i) as u64);
            let username = format!("{}_{}", first.to_lowercase(), i);
            let display = format!("{first} {last}");
            let new = NewMember {
                id: &member,
                team_id: team,
                project_id: &project,
                telegram_user_id: &telegram_id,
                username: Some(&username),
                display_name: &display,
                status,
                status_reason: (status == Banned).then_some("spam in the members chat"),
                created_at: joined,
            };
            store::members::insert(tx, &new).await?;
            if status == Lead {
                continue;
            }
            let (plan, cents) = &plans[rng.next(2)];
            let sub_status = match status {
                Trialing => SubscriptionStatus::Trialing,
                MemberStatus::Customer => SubscriptionStatus::Active,
                _ => SubscriptionStatus::Canceled,
            };
            let sub = new_id();
            let canceled = sub_status == SubscriptionStatus::Canceled;
            let new = NewSubscription {
                id: &sub,
                team_id: team,
                project_id: &project,
                member_id: &member,
                plan_id: plan,
                status: sub_status,
                started_at: joined,
                current_period_end: Some(joined + 30 * DAY_MS),
                canceled_at: canceled.then_some(joined + 20 * DAY_MS),
            };
            store::subscriptions::insert(tx, &new).await?;
            if status == Trialing {
                continue;
            }
            for k in 0..(1 + rng.next(3)) {
                use PaymentStatus::{Failed, Refunded, Succeeded};
                let pay = new_id();
                let new = NewPayment {
                    id: &pay,
                    team_id: team,
                    project_id: &project,
                    member_id: &member,
                    subscription_id: Some(&sub),
                    amount_cents: *cents,
                    currency: "USD",
                    status: [Succeeded, Succeeded, Succeeded, Failed, Refunded][rng.next(5)],
                    created_at: joined + k as i64 * 30 * DAY_MS,
                };
                store::subscriptions::insert_payment(tx, &new).await?;
            }
        }
    }
    Ok(())
}
