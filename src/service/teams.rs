//! Team reads: the token's team, its people, and the role catalog.

use serde_json::json;

use super::catalog::Op;
use super::page::Page;
use super::{Done, Output, Principal, Service};
use crate::domain::ability::Ability;
use crate::domain::error::{Error, Result};
use crate::domain::ids::parse_id;
use crate::domain::role::Role;
use crate::store::Conn;
use crate::store::rows::{Team, TeamMember};

async fn own_team(conn: &mut Conn, p_team: &str, requested: &str) -> Result<Team> {
    // A request can never name another team: any other id is simply not found.
    let id = parse_id(requested)?;
    if id != p_team {
        return Err(Error::NotFound);
    }
    sqlx::query_as::<_, Team>("SELECT id, name, created_at FROM teams WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound)
}

impl Service {
    pub async fn list_teams(&self, p: &Principal, page: Page) -> Result<Done> {
        self.run(
            p,
            Op::ListTeams,
            None,
            json!({"page": page.page, "limit": page.limit}),
            move |c| {
                Box::pin(async move {
                    let team = c.team_id();
                    let team = own_team(c.conn(), &team, &team).await?;
                    let items = if page.page == 1 { vec![team] } else { vec![] };
                    Output::list(items, page.meta(1))
                })
            },
        )
        .await
    }

    pub async fn get_team(&self, p: &Principal, team_id: &str) -> Result<Done> {
        let requested = team_id.to_owned();
        self.run(p, Op::GetTeam, Some(team_id), json!({"team_id": team_id}), move |c| {
            Box::pin(async move {
                let team = c.team_id();
                Output::one(own_team(c.conn(), &team, &requested).await?)
            })
        })
        .await
    }

    pub async fn list_team_members(&self, p: &Principal, team_id: &str, page: Page) -> Result<Done> {
        let requested = team_id.to_owned();
        self.run(p, Op::ListTeamMembers, Some(team_id), json!({"team_id": team_id, "page": page.page, "limit": page.limit}), move |c| {
            Box::pin(async move {
                let team = c.team_id();
                let team = own_team(c.conn(), &team, &requested).await?;
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM team_members WHERE team_id = $1")
                    .bind(&team.id)
                    .fetch_one(c.conn())
                    .await?;
                let rows = sqlx::query_as::<_, TeamMember>(
                    "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at FROM team_members m \
                     JOIN users u ON u.id = m.user_id WHERE m.team_id = $1 ORDER BY m.created_at, u.id LIMIT $2 OFFSET $3",
                )
                .bind(&team.id)
                .bind(page.limit)
                .bind(page.offset())
                .fetch_all(c.conn())
                .await?;
                Output::list(rows, page.meta(total))
            })
        })
        .await
    }

    pub async fn list_roles(&self, p: &Principal) -> Result<Done> {
        self.run(p, Op::ListRoles, None, json!({}), |_c| {
            Box::pin(async move {
                let roles: Vec<_> = Role::ALL
                    .iter()
                    .map(|r| json!({"name": r.as_str(), "abilities": r.abilities().iter().map(|a: &Ability| a.as_str()).collect::<Vec<_>>()}))
                    .collect();
                let n = roles.len() as i64;
                Output::list(roles, json!({"page": 1, "limit": n, "total": n, "has_more": false}))
            })
        })
        .await
    }
}
