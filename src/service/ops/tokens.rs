//! The operations on the calling token: what it is, the caller's tokens, and a token revoking
//! itself. (Minting, rotation and the other revocations are account lifecycle:
//! [`crate::service::accounts::tokens`].)

use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::ability::Ability;
use crate::domain::error::{Error, Result};
use crate::domain::role::Role;
use crate::service::Call;
use crate::service::core::args::{NoArgs, PageArgs};
use crate::service::core::op::{DynOp, Effect, One, Operation, Paged, Spec, Verb};
use crate::store::tokens::{self as store, TokenRow, TokenView};

/// The token's owner, as `get_token_info` shows it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Owner {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
}

/// The calling token, its owner, and what it may do now (its abilities ∩ the owner's role).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TokenInfo {
    #[serde(flatten)]
    pub token: TokenView,
    pub owner: Owner,
    pub effective_abilities: Vec<Ability>,
    /// The token's budgets: calls of an operation per rolling 24 h, and how many it made; a call
    /// past its limit needs a person's approval.
    pub budgets: Vec<Budget>,
}

/// One budget of a token, as `get_token_info` reports it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Budget {
    pub operation: String,
    pub limit: i64,
    pub used: i64,
    pub remaining: i64,
    /// The rolling window the budget counts over.
    pub window: &'static str,
}

pub static OPS: &[&dyn DynOp] = &[&GetTokenInfo, &ListTokens, &RevokeCurrentToken];

/// The token a call was made with; a call without one (the dashboard) has none to show.
fn own_token_id(c: &Call) -> Result<String> {
    c.caller.token_id().map(str::to_owned).ok_or(Error::NotFound)
}

pub struct GetTokenInfo;
impl Operation for GetTokenInfo {
    type Args = NoArgs;
    type Output = One<TokenInfo>;
    const SPEC: Spec = Spec {
        name: "get_token_info",
        event: "get_token_info",
        path: "/v1/me",
        subject_type: "token",
        summary: "The calling token's id, name, abilities, scopes and owner.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, _: NoArgs) -> Result<Self::Output> {
        let id = own_token_id(c)?;
        c.subject(&id);
        let row = store::find(c.conn(), &id).await?.ok_or(Error::NotFound)?;
        let since = crate::store::now_ms() - crate::domain::time::DAY_MS;
        let budgets = crate::store::approvals::budgets_used(c.conn(), &id, since)
            .await?
            .into_iter()
            .map(|(operation, limit, used)| Budget {
                operation,
                limit,
                used,
                remaining: (limit - used).max(0),
                window: "24h",
            })
            .collect();
        let p = c.caller.in_team()?;
        One::ok(TokenInfo {
            token: row.view(),
            owner: Owner {
                id: p.user_id.to_string(),
                email: p.user_email.clone(),
                name: p.user_name.clone(),
                role: p.role,
            },
            effective_abilities: c.caller.effective_abilities().into_iter().collect(),
            budgets,
        })
    }
}

pub struct ListTokens;
impl Operation for ListTokens {
    type Args = PageArgs;
    type Output = Paged<TokenView>;
    const SPEC: Spec = Spec {
        name: "list_tokens",
        event: "list_tokens",
        path: "/v1/tokens",
        subject_type: "token",
        summary: "The owner's tokens in this team (metadata only, never secrets).",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: PageArgs) -> Result<Self::Output> {
        let page = args.page();
        let (team, user) = (c.team_id(), c.user_id().to_owned());
        let (rows, total) = store::page_of_owner(c.conn(), &team, &user, page.limit, page.offset()).await?;
        Paged::ok(rows.iter().map(TokenRow::view).collect(), page.meta(total))
    }
}

/// `DELETE /v1/tokens/current`: a token revoking itself.
pub struct RevokeCurrentToken;
impl Operation for RevokeCurrentToken {
    type Args = NoArgs;
    type Output = One<TokenView>;
    const SPEC: Spec = Spec {
        name: "revoke_current_token",
        event: "token.revoked",
        method: Verb::Delete,
        path: "/v1/tokens/current",
        subject_type: "token",
        effect: Effect::Destructive,
        replayable: false,
        summary: "Revoke the calling token.",
        metered: false,
        ..Spec::WRITE
    };

    async fn run(c: &mut Call, _: NoArgs) -> Result<Self::Output> {
        let id = own_token_id(c)?;
        c.subject(&id);
        store::revoke(c.conn(), &id, "revoked by its own holder").await?;
        let voided = crate::service::core::hold::void_approvals(
            c.conn(),
            crate::store::approvals::Voids::Token(&id),
            "token_revoked",
        )
        .await?;
        c.record(voided);
        let row = store::find(c.conn(), &id).await?.ok_or(Error::NotFound)?;
        One::ok(row.view())
    }
}
