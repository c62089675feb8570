//! `token mint`, `token list`, `token revoke`, `token rotate`, `token budget`: the lifecycle, as
//! the system.

use anyhow::Context;
use serde_json::{Value, json};

use super::args::{Global, TokenCmd};
use super::common::{print, service};
use crate::service::Caller;
use crate::service::accounts::tokens::{MintRequest, parse_duration_ms};

pub(super) async fn token(g: &Global, actor: &Caller, cmd: TokenCmd) -> anyhow::Result<()> {
    let s = service(g).await?;
    match cmd {
        TokenCmd::Mint {
            team,
            user,
            name,
            abilities,
            projects,
            expires_in,
            allow_ips,
        } => {
            let expires_in_ms = match expires_in.as_deref() {
                Some(d) => Some(parse_duration_ms(d).context("--expires-in must look like 30d, 12h or 45m")?),
                None => None,
            };
            let req = MintRequest {
                team_id: team,
                user_email: user,
                name,
                abilities,
                project_ids: projects,
                expires_in_ms,
                allowed_ips: allow_ips,
                replaces: None,
            };
            let minted = s.mint_token(actor, req).await?;
            print(g.json, minted.to_json(), || {
                format!(
                    "{}\n\nThis is the only time the token is shown. Its ID is {} (safe to share with support).",
                    minted.secret.expose_secret(),
                    minted.row.id
                )
            });
        }
        TokenCmd::Rotate { token_id, grace } => {
            let minted = s.rotate_token(actor, &token_id, grace).await?;
            let old = if grace.is_zero() {
                "now revoked".to_owned()
            } else {
                format!("works for {}s more, every use audited", grace.as_secs())
            };
            print(g.json, minted.to_json(), || {
                format!(
                    "{}\n\nReplaces {token_id} ({old}). New ID: {}. Shown once.",
                    minted.secret.expose_secret(),
                    minted.row.id
                )
            });
        }
        TokenCmd::EndGrace { token_id } => {
            let row = s.end_grace(actor, &token_id).await?;
            print(g.json, row.to_json(), || {
                format!("token {token_id} revoked: its grace ended")
            });
        }
        TokenCmd::List { user, team } => {
            let rows = s.list_tokens_admin(user.as_deref(), team.as_deref()).await?;
            let data: Vec<Value> = rows.iter().map(|r| r.to_json()).collect();
            print(g.json, json!({"data": data}), || {
                rows.iter()
                    .map(|r| {
                        let state = if r.revoked_at.is_some() { "revoked" } else { "active" };
                        format!("{}  {:<8} {}  [{}]", r.id, state, r.name, r.ability_names().join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        TokenCmd::Show { token_id } => {
            let row = s.show_token(&token_id).await?;
            let v = row.to_json();
            print(g.json, v.clone(), || {
                serde_json::to_string_pretty(&v).unwrap_or_default()
            });
        }
        TokenCmd::Revoke { token_id, reason } => {
            let row = s.revoke_token(actor, &token_id, reason.as_deref()).await?;
            print(g.json, row.to_json(), || format!("token {token_id} revoked"));
        }
        TokenCmd::AllowIp { token_id, cidrs } => {
            let row = s.set_allowed_ips(actor, &token_id, &cidrs).await?;
            let v = row.to_json();
            print(g.json, v.clone(), || match v["allowed_ips"].as_array() {
                Some(list) => format!(
                    "token {token_id}: usable only from {}",
                    list.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
                ),
                None => format!("token {token_id}: usable from anywhere"),
            });
        }
        TokenCmd::Budget {
            token_id,
            operation,
            limit,
        } => {
            let change = s.set_token_budget(actor, &token_id, &operation, limit).await?;
            print(g.json, change.to_json(), || match change.to {
                Some(n) => format!("token {token_id}: at most {n} {operation} per rolling 24 h"),
                None => format!("token {token_id}: no budget for {operation}"),
            });
        }
    }
    Ok(())
}
