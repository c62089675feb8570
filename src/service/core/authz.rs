//! The rights a call was authenticated with, read again where it commits: the token still live,
//! its owner still in the team, their role now still holding the ability. The call path and the
//! batch writer both ask here, so the rule is written once.

use serde_json::json;

use super::caller::Caller;
use crate::domain::ability::Ability;
use crate::domain::audit::AuditDraft;
use crate::domain::error::{Error, Result};
use crate::domain::role::Role;
use crate::store::Tx;
use crate::store::teams as store_teams;
use crate::store::tokens as store_tokens;

/// Re-reads, inside a write transaction, what authentication read before it: the token is still
/// live, its owner still in the team, and the role they hold now still grants the operation's
/// ability. A refusal carries the reason for the audit entry.
pub(in crate::service) async fn still_allowed(
    tx: &mut Tx,
    p: &Caller,
    ability: Option<Ability>,
) -> Result<(), (Error, Option<&'static str>)> {
    let role = current_role(tx, p).await?;
    if let Some(ability) = ability
        && !p.can_as(role, ability)
    {
        return Err((Error::missing(ability), None));
    }
    Ok(())
}

/// The role the caller holds now, if their token is still live and they are still in the team.
pub(in crate::service) async fn current_role(tx: &mut Tx, p: &Caller) -> Result<Role, (Error, Option<&'static str>)> {
    let internal = |e: sqlx::Error| (Error::from(e), None);
    let member = p.in_team().map_err(|e| (e, None))?;
    let role = match p.grant() {
        Some(token) => {
            let state = store_tokens::state_and_role(tx, &token.id, &member.team_id, &member.user_id)
                .await
                .map_err(internal)?;
            let (revoked, expires, role) = state.ok_or((Error::AuthenticationRequired, Some("unknown_id")))?;
            if revoked.is_some() {
                return Err((Error::AuthenticationRequired, Some("revoked")));
            }
            if expires.is_some_and(|e| e <= crate::store::now_ms()) {
                return Err((Error::AuthenticationRequired, Some("expired")));
            }
            role
        }
        None => store_teams::role_of(tx, &member.team_id, &member.user_id)
            .await
            .map_err(internal)?,
    };
    role.ok_or((Error::AuthenticationRequired, Some("owner_not_in_team")))?
        .parse()
        .map_err(|e: String| (Error::Internal(anyhow::anyhow!("corrupt role: {e}")), None))
}

/// What a refused or failed call's entry says about why.
pub(in crate::service) fn mark_refused(entry: &mut AuditDraft, e: &Error) {
    entry.outcome = e.outcome();
    entry.error_code = Some(e.code().as_str());
    if let Error::MissingAbility(a, _) = e {
        entry.properties["required_ability"] = json!(a.as_str());
    }
}
