//! The team's credential inventory (issue 21): every token of the team with its owner, what it
//! may do and whether it still works, and the revocation of any one of them. Owners and admins
//! hold the two abilities; managers and viewers do not.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::ability::Ability;
use crate::domain::error::{Error, Result};
use crate::domain::ids::{TeamId, parse_id};
use crate::domain::time::DAY_MS;
use crate::domain::token::TokenId;
use crate::domain::usage::{Usage, WINDOW_DAYS, day_of};
use crate::service::Call;
use crate::service::core::args::{Bounded, Limit, PageNo};
use crate::service::core::op::{DynOp, Effect, One, Operation, Paged, Spec};
use crate::service::core::page::Page;
use crate::store::tokens::{self as store, InventoryRow, TeamTokenFilter, TokenRow, TokenView};
use crate::store::{now_ms, usage};

pub static OPS: &[&dyn DynOp] = &[&ListTeamTokens, &RevokeTeamToken];

/// The kind of the notification a token's owner gets when someone of the team revoked it.
pub const REVOKED_BY_TEAM: &str = "revoked_by_team";

/// A number of days for the inventory's filters.
pub type Days = Bounded<1, 3650>;

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamTokensQuery {
    pub team_id: TeamId,
    /// Only the tokens of this person (a user id).
    pub user_id: Option<String>,
    /// Only the tokens that carry this ability.
    pub ability: Option<Ability>,
    /// Only the tokens with (`true`) or without (`false`) an ability that permits writes.
    pub can_write: Option<bool>,
    /// Only the tokens not used for this many days (one never used: not since it was minted).
    pub unused_days: Option<Days>,
    /// Only the tokens that expire within this many days (not the ones already expired).
    pub expiring_days: Option<Days>,
    /// Only the tokens never used (`true`), or used at least once (`false`).
    pub never_used: Option<bool>,
    /// Page number, from 1.
    pub page: Option<PageNo>,
    /// Items per page, 1 to 100 (default 25).
    pub limit: Option<Limit>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRef {
    /// The token's ID (the 12 characters after `mpt_<env>_`): one of the team's.
    pub token_id: String,
}

/// Who holds a token.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TokenHolder {
    pub id: String,
    pub email: String,
    pub name: String,
}

/// How a token came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Minted by a person (dashboard or CLI).
    Minted,
    /// Issued to an application the person connected (OAuth).
    Oauth,
}

/// Whether a token works now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    Active,
    Revoked,
    Expired,
}

/// One token of the team's inventory (metadata only, never a secret).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TeamToken {
    #[serde(flatten)]
    pub token: TokenView,
    pub owner: TokenHolder,
    /// Whether one of its abilities permits writes.
    pub can_write: bool,
    pub origin: Origin,
    pub state: TokenState,
    /// Its calls over the last 30 days (UTC, today included), per day: the entries its own
    /// calls left (see the README, "Usage you can see").
    pub usage: Usage,
    /// The client of its latest successful call (the MCP client's name and version, else the
    /// HTTP `User-Agent`), from the audit log; `null` when never used or not known.
    pub last_used_client: Option<String>,
}

impl TeamToken {
    fn of(row: &InventoryRow, now: i64, usage: Usage) -> TeamToken {
        let t = &row.token;
        let state = if t.revoked_at.is_some() {
            TokenState::Revoked
        } else if t.expires_at.is_some_and(|e| e <= now) {
            TokenState::Expired
        } else {
            TokenState::Active
        };
        TeamToken {
            token: t.view(),
            owner: TokenHolder {
                id: t.user_id.to_string(),
                email: row.owner_email.clone(),
                name: row.owner_name.clone(),
            },
            can_write: t
                .ability_names()
                .iter()
                .any(|n| n.parse::<Ability>().is_ok_and(Ability::permits_writes)),
            origin: if row.oauth_grant_id.is_some() {
                Origin::Oauth
            } else {
                Origin::Minted
            },
            state,
            usage,
            last_used_client: row.last_used_client.clone(),
        }
    }
}

/// The caller's own team; any other id is not found (as `get_team` answers it).
fn own_team(c: &Call, requested: &TeamId) -> Result<()> {
    if requested.as_str() == c.team_id() {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// `GET /v1/teams/{team_id}/tokens`: every token of the team, newest first.
///
/// A project-scoped token is refused (`TOKEN_MISSING_ABILITY`, saying why) even when it carries
/// `token:view-any`: the inventory is the whole team's, and a token limited to some projects
/// sees nothing of other people's tokens.
pub struct ListTeamTokens;
impl Operation for ListTeamTokens {
    type Args = TeamTokensQuery;
    type Output = Paged<TeamToken>;
    const SPEC: Spec = Spec {
        name: "list_team_tokens",
        event: "list_team_tokens",
        ability: Some(Ability::TokenViewAny),
        path: "/v1/teams/{team_id}/tokens",
        subject_type: "token",
        summary: "Every token of the team (minted and OAuth, live or not) with its owner, whether it can write, \
                  its origin and state, and its calls per day over the last 30 days (successes, refusals, writes); \
                  filters: user_id, ability, can_write, unused_days, expiring_days, never_used.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: TeamTokensQuery) -> Result<Self::Output> {
        own_team(c, &args.team_id)?;
        if c.caller.project_ids().is_some() {
            return Err(Error::MissingAbility(
                Ability::TokenViewAny,
                Some("a project-scoped token cannot list the team's tokens".into()),
            ));
        }
        let user_id = match &args.user_id {
            Some(u) => Some(parse_id(u).map_err(|_| Error::field("user_id", "must be a user id"))?),
            None => None,
        };
        let writes: Vec<&'static str> = Ability::ALL
            .iter()
            .filter(|a| a.permits_writes())
            .map(|a| a.as_str())
            .collect();
        let now = now_ms();
        let filter = TeamTokenFilter {
            user_id: user_id.as_deref(),
            ability: args.ability.map(Ability::as_str),
            can_write: args.can_write.map(|w| (writes.as_slice(), w)),
            idle_since: args.unused_days.map(|d| now - d.get() * DAY_MS),
            expires_by: args.expiring_days.map(|d| now + d.get() * DAY_MS),
            never_used: args.never_used,
        };
        let page = Page::of(args.page, args.limit);
        let team = c.team_id();
        let (rows, total) = store::page_of_team(c.conn(), &team, &filter, now, page.limit, page.offset()).await?;
        // The page's usage in one query.
        let today = day_of(now);
        let ids: Vec<&str> = rows.iter().map(|r| r.token.id.as_str()).collect();
        let stored = usage::of_tokens(c.conn(), &team, None, &ids, today - (WINDOW_DAYS - 1)).await?;
        let mut usage = Usage::per_token(today, &ids, stored);
        let items = rows
            .iter()
            .map(|r| {
                let u = usage.remove(&r.token.id).unwrap_or_else(|| Usage::window(today, []));
                TeamToken::of(r, now, u)
            })
            .collect();
        Paged::ok(items, page.meta(total))
    }
}

/// `POST /v1/tokens/{token_id}/revoke`: revokes any token of the caller's team, audited as the
/// caller (`token.revoked`, the token its subject); its pending approval requests are voided and
/// its owner finds a notification on the dashboard, all in the same transaction.
///
/// Another team's token, an unknown or malformed ID is not found; so is every token for a
/// project-scoped caller (it sees nothing of other people's tokens). A token already revoked is
/// `409 CONFLICT`.
pub struct RevokeTeamToken;
impl Operation for RevokeTeamToken {
    type Args = TokenRef;
    type Output = One<TokenView>;
    const SPEC: Spec = Spec {
        name: "revoke_team_token",
        event: "token.revoked",
        path: "/v1/tokens/{token_id}/revoke",
        ability: Some(Ability::TokenRevokeAny),
        subject_type: "token",
        subject_arg: Some("token_id"),
        effect: Effect::Destructive,
        replayable: false,
        summary: "Revoke any token of the team; its owner is notified.",
        ..Spec::WRITE
    };

    async fn run(c: &mut Call, args: TokenRef) -> Result<Self::Output> {
        let id = TokenId::parse(&args.token_id).map_err(|_| Error::NotFound)?;
        if c.caller.project_ids().is_some() {
            return Err(Error::NotFound);
        }
        let team = c.team_id();
        let row = store::find(c.conn(), id.as_str())
            .await?
            .filter(|t| t.team_id.as_str() == team)
            .ok_or(Error::NotFound)?;
        c.subject(id.as_str());
        let by = c.caller.in_team()?.user_email.clone();
        if !store::revoke(c.conn(), id.as_str(), &format!("revoked by {by}")).await? {
            return Err(Error::Conflict("this token is already revoked".into()));
        }
        let voided = crate::service::core::hold::void_approvals(
            c.conn(),
            crate::store::approvals::Voids::Token(id.as_str()),
            "token_revoked",
        )
        .await?;
        c.record(voided);
        notify_owner(c, &row, &by).await?;
        let row = store::find(c.conn(), id.as_str()).await?.ok_or(Error::NotFound)?;
        One::ok(row.view())
    }
}

/// "Your token NAME was revoked by EMAIL", on the owner's dashboard until dismissed.
async fn notify_owner(c: &mut Call, row: &TokenRow, by: &str) -> Result<()> {
    let properties = json!({"token_name": row.name, "revoked_by": by}).to_string();
    crate::store::notifications::insert(
        c.conn(),
        &crate::store::notifications::NewNotification {
            id: &crate::domain::ids::new_id(),
            team_id: row.team_id.as_str(),
            user_id: row.user_id.as_str(),
            token_id: &row.id,
            kind: REVOKED_BY_TEAM,
            properties: &properties,
            created_at: now_ms(),
        },
    )
    .await?;
    Ok(())
}
