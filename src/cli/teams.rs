//! `team create`, `team add-member`, `team remove-member`, `team policy` and `project create`.

use serde_json::json;

use super::args::{Global, ProjectCmd, TeamCmd};
use super::common::{print, service};
use crate::service::Caller;
use crate::service::accounts::approvals::PolicyChange;
use crate::service::accounts::token_policy::PolicyChange as TokenPolicyChange;

pub(super) async fn team(g: &Global, cmd: TeamCmd) -> anyhow::Result<()> {
    match cmd {
        TeamCmd::Create { name, owner } => {
            let id = service(g).await?.create_team(&name, &owner).await?;
            print(g.json, json!({"id": id, "name": name, "owner": owner}), || {
                format!("team {id} created")
            });
        }
        TeamCmd::AddMember { team, email, role } => {
            service(g).await?.set_member_role(&team, &email, role).await?;
            print(g.json, json!({"team_id": team, "email": email, "role": role}), || {
                format!("{email} is now {role} in {team}")
            });
        }
        TeamCmd::RemoveMember { team, email } => {
            service(g).await?.remove_member(&team, &email).await?;
            print(
                g.json,
                json!({"team_id": team, "email": email, "removed": true}),
                || format!("{email} removed from {team}"),
            );
        }
        TeamCmd::Policy {
            team,
            approvals,
            approver,
            max_lifetime,
            require_expiry,
            role_abilities,
            expire_unused,
            mcp_pasted_tokens,
        } => {
            let s = service(g).await?;
            let change = PolicyChange { approvals, approver };
            let tokens = token_change(
                max_lifetime,
                require_expiry,
                &role_abilities,
                expire_unused,
                mcp_pasted_tokens,
            )?;
            let policy = if change.is_empty() {
                s.approval_policy(&team).await?
            } else {
                s.change_approval_policy(&Caller::system(), &team, &change).await?
            };
            let token_policy = if tokens.is_empty() {
                s.token_policy(&Caller::system(), &team).await?
            } else {
                s.set_token_policy(&Caller::system(), &team, &tokens).await?
            };
            let mut v = policy.to_json();
            v["team_id"] = json!(team);
            v["token_policy"] = token_policy.to_json();
            print(g.json, v, || {
                let mut lines = vec![format!(
                    "approval policy of {team} (version {}), approver: {}",
                    policy.version, policy.approver
                )];
                if policy.rules.is_empty() {
                    lines.push("  no operation needs approval".into());
                }
                for (op, rule) in &policy.rules {
                    lines.push(format!("  {op}={rule}"));
                }
                let t = token_policy.to_json();
                lines.push(format!("token policy of {team}:"));
                for key in [
                    "max_lifetime",
                    "require_expiry",
                    "role_abilities",
                    "expire_unused",
                    "mcp_pasted_tokens",
                ] {
                    let shown = match &t[key] {
                        serde_json::Value::Null => "off".to_owned(),
                        serde_json::Value::String(x) => x.clone(),
                        serde_json::Value::Object(m) if m.is_empty() => "any (each role: what it holds)".to_owned(),
                        other => other.to_string(),
                    };
                    lines.push(format!("  {key}: {shown}"));
                }
                lines.join("\n")
            });
        }
    }
    Ok(())
}

pub(super) async fn project(g: &Global, cmd: ProjectCmd) -> anyhow::Result<()> {
    match cmd {
        ProjectCmd::Create { team, name, handle } => {
            let id = service(g)
                .await?
                .create_project_system(&team, &name, handle.as_deref())
                .await?;
            print(g.json, json!({"id": id, "team_id": team, "name": name}), || {
                format!("project {id} created")
            });
        }
    }
    Ok(())
}

/// The token policy flags of `team policy`, read into a change.
fn token_change(
    max_lifetime: Option<String>,
    require_expiry: Option<bool>,
    role_abilities: &[String],
    expire_unused: Option<String>,
    mcp_pasted_tokens: Option<String>,
) -> anyhow::Result<TokenPolicyChange> {
    use crate::domain::token_policy::{PastedTokens, TokenPolicy};
    use crate::service::accounts::tokens::parse_duration_ms;
    use anyhow::Context;
    let duration = |flag: &str, v: Option<String>| -> anyhow::Result<Option<Option<i64>>> {
        match v.as_deref() {
            None => Ok(None),
            Some("off") => Ok(Some(None)),
            Some(d) => parse_duration_ms(d)
                .map(|ms| Some(Some(ms)))
                .with_context(|| format!("--{flag} must look like 90d, 12h or 45m, or be off")),
        }
    };
    let mut roles = Vec::new();
    for r in role_abilities {
        match r.split_once('=') {
            Some((role, "any")) => roles.push((role.trim().parse().map_err(anyhow::Error::msg)?, None)),
            _ => {
                let (role, list) = TokenPolicy::parse_role_rule(r).map_err(anyhow::Error::msg)?;
                anyhow::ensure!(
                    !list.is_empty(),
                    "--role-abilities {r}: name at least one ability (or ROLE=any)"
                );
                roles.push((role, Some(list)));
            }
        }
    }
    Ok(TokenPolicyChange {
        max_lifetime_ms: duration("max-lifetime", max_lifetime)?,
        require_expiry,
        role_abilities: roles,
        expire_unused_ms: duration("expire-unused", expire_unused)?,
        mcp_pasted_tokens: mcp_pasted_tokens
            .map(|m| PastedTokens::parse(&m).map_err(|e| anyhow::anyhow!("--mcp-pasted-tokens: {e}")))
            .transpose()?,
    })
}
