//! Connected apps (issue 19 item 5): the grants a person sees — client, team, projects,
//! abilities, use — and revokes (`oauth.grant_revoked`, with the person as causer and
//! `revoked_by`).

use serde_json::json;

use crate::domain::error::{Error, Result};
use crate::service::{Caller, Service};
use crate::store::now_ms;
use crate::store::oauth::{self as clients, REGISTERED};
use crate::store::oauth_grants::{self as store, GrantRow};

impl Service {
    /// Connected apps: the person's live grants in every team, newest first, with the names the
    /// page shows.
    pub async fn connected_apps(&self, caller: &Caller) -> Result<Vec<ConnectedApp>> {
        let person = caller.in_team()?;
        let mut conn = self.db.pool().acquire().await?;
        let mut apps = Vec::new();
        for grant in store::live_grants_of_user(&mut conn, &person.user_id).await? {
            let client = clients::find(&mut conn, &grant.client_id).await?;
            let team_name = crate::store::teams::find(&mut conn, &grant.team_id)
                .await?
                .map(|t| t.name)
                .unwrap_or_default();
            let mut project_names = Vec::new();
            for pid in grant.project_id_list() {
                let name = crate::store::projects::find_in_team(&mut conn, &grant.team_id, &pid)
                    .await?
                    .map_or(pid, |p| p.name);
                project_names.push(name);
            }
            apps.push(ConnectedApp {
                client_name: client
                    .as_ref()
                    .and_then(|c| c.client_name.clone())
                    .unwrap_or_else(|| grant.client_id.clone()),
                unverified: client.as_ref().is_some_and(|c| c.kind == REGISTERED),
                team_name,
                project_names,
                grant,
            });
        }
        Ok(apps)
    }

    /// Revokes one of the signed-in person's grants (Connected apps): its access tokens fail
    /// at their next request, its refresh tokens are dead. Anyone else's grant does not exist
    /// for them.
    pub async fn revoke_own_grant(&self, caller: &Caller, grant_id: &str) -> Result<()> {
        let person = caller.in_team()?;
        let mut w = self.audited().await?;
        let grant = store::find_grant(w.conn(), grant_id)
            .await?
            .filter(|g| g.user_id == person.user_id.as_str())
            .ok_or(Error::NotFound)?;
        if !store::revoke_grant(
            w.conn(),
            &grant.id,
            "revoked from Connected apps",
            Some(&person.user_id),
            now_ms(),
        )
        .await?
        {
            return Err(Error::Conflict("This app was already disconnected.".into()));
        }
        w.void_approvals(crate::store::approvals::Voids::Grant(&grant.id), "token_revoked")
            .await?;
        w.record(
            caller
                .draft("oauth.grant_revoked", &grant.team_id)
                .subject("oauth_grant", &grant.id)
                .properties(json!({"reason": "revoked from Connected apps", "client_id": grant.client_id})),
        );
        w.commit().await
    }
}

/// One row of Connected apps.
#[derive(Clone, Debug)]
pub struct ConnectedApp {
    pub grant: GrantRow,
    pub client_name: String,
    /// Registered at `POST /register`: anyone can pick any name.
    pub unverified: bool,
    pub team_name: String,
    pub project_names: Vec<String>,
}
