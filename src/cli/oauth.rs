//! `oauth-client add`, `oauth-client list`, `oauth-client remove`: the operator's OAuth clients
//! of `/mcp`, as the system. A pre-registered client passes the same checks as one registered
//! at `POST /register`.

use serde_json::{Value, json};

use super::args::{Global, OAuthClientCmd};
use super::common::{print, service};
use crate::domain::error::Error;
use crate::domain::oauth::RegistrationRequest;

pub(super) async fn oauth_client(g: &Global, cmd: OAuthClientCmd) -> anyhow::Result<()> {
    let s = service(g).await?;
    match cmd {
        OAuthClientCmd::Add {
            name,
            redirect_uris,
            client_id,
        } => {
            let request = RegistrationRequest {
                client_name: Some(json!(name)),
                redirect_uris: Some(json!(redirect_uris)),
                grant_types: Some(json!(["authorization_code", "refresh_token"])),
                ..Default::default()
            };
            let client = s
                .add_client(client_id.as_deref(), request)
                .await?
                .map_err(|e| Error::field(e.code(), e.description()))?;
            print(g.json, client.to_admin_json(), || {
                format!(
                    "OAuth client {} added ({}), redirect URIs: {}",
                    client.id,
                    client.client_name.as_deref().unwrap_or("unnamed"),
                    client.redirect_uris.join(", ")
                )
            });
        }
        OAuthClientCmd::List { documents } => {
            let clients = s.list_clients(documents).await?;
            let data: Vec<Value> = clients.iter().map(|c| c.to_admin_json()).collect();
            print(g.json, json!({"data": data}), || {
                clients
                    .iter()
                    .map(|c| {
                        let state = if c.revoked_at.is_some() { "removed" } else { "active" };
                        format!(
                            "{}  {:<8} {:<17} {}  [{}]",
                            c.id,
                            state,
                            c.kind,
                            c.client_name.as_deref().unwrap_or("-"),
                            c.redirect_uris.join(", ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        OAuthClientCmd::Remove { client_id } => {
            let client = s.remove_client(&client_id).await?;
            print(g.json, client.to_admin_json(), || {
                format!("OAuth client {client_id} removed")
            });
        }
    }
    Ok(())
}
