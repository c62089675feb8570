//! Team reads: the caller's team, its people, and the role catalog.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::ability::Ability;
use crate::domain::error::{Error, Result};
use crate::domain::ids::TeamId;
use crate::domain::role::Role;
use crate::service::Call;
use crate::service::core::args::{Limit, NoArgs, PageArgs, PageNo};
use crate::service::core::op::{DynOp, One, Operation, PageMeta, Paged, Spec};
use crate::service::core::page::Page;
use crate::store::teams::{self as store, Team};

pub static OPS: &[&dyn DynOp] = &[&ListTeams, &GetTeam, &ListTeamMembers, &ListRoles];

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamRef {
    pub team_id: TeamId,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamPage {
    pub team_id: TeamId,
    /// Page number, from 1.
    pub page: Option<PageNo>,
    /// Items per page, 1 to 100 (default 25).
    pub limit: Option<Limit>,
}

/// The caller's own team. A call can never name another team: any other id is not found.
async fn own_team(c: &mut Call, requested: Option<&TeamId>) -> Result<Team> {
    let team = c.team_id();
    if requested.is_some_and(|r| r.as_str() != team) {
        return Err(Error::NotFound);
    }
    store::find(c.conn(), &team).await?.ok_or(Error::NotFound)
}

pub struct ListTeams;
impl Operation for ListTeams {
    type Args = PageArgs;
    type Output = Paged<Team>;
    const SPEC: Spec = Spec {
        name: "list_teams",
        event: "list_teams",
        ability: Some(Ability::TeamViewAny),
        path: "/v1/teams",
        subject_type: "team",
        summary: "The token's team.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: PageArgs) -> Result<Self::Output> {
        let page = args.page();
        let team = own_team(c, None).await?;
        let items = if page.page == 1 { vec![team] } else { vec![] };
        Paged::ok(items, page.meta(1))
    }
}

pub struct GetTeam;
impl Operation for GetTeam {
    type Args = TeamRef;
    type Output = One<Team>;
    const SPEC: Spec = Spec {
        name: "get_team",
        event: "get_team",
        ability: Some(Ability::TeamView),
        path: "/v1/teams/{team_id}",
        subject_type: "team",
        subject_arg: Some("team_id"),
        summary: "One team (only the token's own).",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: TeamRef) -> Result<Self::Output> {
        One::ok(own_team(c, Some(&args.team_id)).await?)
    }
}

pub struct ListTeamMembers;
impl Operation for ListTeamMembers {
    type Args = TeamPage;
    type Output = Paged<store::TeamMember>;
    const SPEC: Spec = Spec {
        name: "list_team_members",
        event: "list_team_members",
        ability: Some(Ability::TeamMemberViewAny),
        path: "/v1/teams/{team_id}/members",
        subject_type: "team",
        subject_arg: Some("team_id"),
        summary: "People in the team and their roles.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: TeamPage) -> Result<Self::Output> {
        let team = own_team(c, Some(&args.team_id)).await?;
        let page = Page::of(args.page, args.limit);
        let (rows, total) = store::members_page(c.conn(), &team.id, page.limit, page.offset()).await?;
        Paged::ok(rows, page.meta(total))
    }
}

/// A role and the abilities it holds, as `list_roles` shows it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RoleView {
    pub name: Role,
    pub abilities: Vec<Ability>,
}

pub struct ListRoles;
impl Operation for ListRoles {
    type Args = NoArgs;
    type Output = Paged<RoleView>;
    const SPEC: Spec = Spec {
        name: "list_roles",
        event: "list_roles",
        ability: Some(Ability::RoleViewAny),
        path: "/v1/roles",
        subject_type: "role",
        summary: "Roles and the abilities each holds.",
        ..Spec::READ
    };

    async fn run(_: &mut Call, _: NoArgs) -> Result<Self::Output> {
        let roles: Vec<_> = Role::ALL
            .iter()
            .map(|r| RoleView {
                name: *r,
                abilities: r.abilities().iter().copied().collect(),
            })
            .collect();
        let n = roles.len() as i64;
        let meta = PageMeta {
            page: 1,
            limit: n,
            total: n,
            has_more: false,
        };
        Paged::ok(roles, meta)
    }
}
