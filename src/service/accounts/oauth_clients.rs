//! OAuth clients: dynamic registration (RFC 7591, public clients only), the operator's
//! pre-registered clients, and client ID metadata documents resolved through the database's
//! cache. Every change commits with its audit entry (`oauth.client_registered`,
//! `oauth.client_added`, `oauth.client_removed`); the caller is `system` — a registration proves
//! nothing about who sends it, which is why registered clients are shown as unverified.

use serde_json::{Value, json};

use super::client_documents::{self, DocumentError};
use crate::domain::audit::{AuditDraft, RequestCtx};
use crate::domain::error::{Error, Result};
use crate::domain::ids::new_id;
use crate::domain::oauth::{ClientMetadata, RegistrationError, RegistrationRequest};
use crate::domain::time::rfc3339;
use crate::service::Service;
use crate::store::now_ms;
use crate::store::oauth::{self as store, ClientRow, NewClient};

/// A client as the rest of the server sees it: who it is and where it may be sent back to.
#[derive(Clone, Debug)]
pub struct OAuthClient {
    pub id: String,
    /// `registered`, `preregistered` or `metadata_document`.
    pub kind: String,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub metadata: ClientMetadata,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl OAuthClient {
    fn from_row(row: ClientRow) -> Self {
        let metadata: ClientMetadata = serde_json::from_str(&row.metadata).unwrap_or(ClientMetadata {
            client_name: row.client_name.clone(),
            redirect_uris: row.redirect_uri_list(),
            grant_types: vec!["authorization_code".into()],
            response_types: vec!["code".into()],
            client_uri: None,
            logo_uri: None,
            software_id: None,
            software_version: None,
            application_type: None,
        });
        OAuthClient {
            redirect_uris: row.redirect_uri_list(),
            id: row.id,
            kind: row.kind,
            client_name: row.client_name,
            metadata,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }

    /// The RFC 7591 §3.2.1 answer (and the CLI's `--json`): the client's metadata with its id.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.metadata).unwrap_or_else(|_| json!({}));
        v["client_id"] = json!(self.id);
        v["client_id_issued_at"] = json!(self.created_at / 1000);
        v["token_endpoint_auth_method"] = json!("none");
        if let (None, Some(o)) = (&self.client_name, v.as_object_mut()) {
            o.remove("client_name");
        }
        v
    }

    /// The CLI's listing: adds the kind and the revocation.
    pub fn to_admin_json(&self) -> Value {
        let mut v = self.to_json();
        v["kind"] = json!(self.kind);
        v["created_at"] = json!(rfc3339(self.created_at));
        v["revoked_at"] = json!(self.revoked_at.map(rfc3339));
        v
    }
}

/// An operator-chosen client id: short, printable, and never a URL (those are metadata documents).
fn check_client_id(id: &str) -> Result<()> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !client_documents::is_document_url(id);
    if ok {
        Ok(())
    } else {
        Err(Error::field(
            "client_id",
            "must be 1 to 64 letters, digits, `-`, `_` or `.`",
        ))
    }
}

impl Service {
    /// `POST /register`: checks the request and stores the client, with its entry. The refusal
    /// is RFC 7591's (`Ok(Err(…))`); a database failure is ours.
    pub async fn register_client(
        &self,
        request: RegistrationRequest,
        ctx: &RequestCtx,
    ) -> Result<std::result::Result<OAuthClient, RegistrationError>> {
        let metadata = match request.check() {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let client = self
            .store_client(
                &new_id(),
                store::REGISTERED,
                metadata,
                ctx.ip.as_deref(),
                ctx,
                "oauth.client_registered",
            )
            .await?;
        Ok(Ok(client))
    }

    /// `memberpass oauth-client add`: a client the operator vouches for, with an id of their
    /// choosing or a fresh one.
    pub async fn add_client(
        &self,
        client_id: Option<&str>,
        request: RegistrationRequest,
    ) -> Result<std::result::Result<OAuthClient, RegistrationError>> {
        let id = match client_id {
            Some(id) => {
                check_client_id(id)?;
                id.to_owned()
            }
            None => new_id(),
        };
        let metadata = match request.check() {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let mut conn = self.db.pool().acquire().await?;
        if store::find(&mut conn, &id).await?.is_some() {
            return Err(Error::Conflict(format!("a client with the id `{id}` exists")));
        }
        drop(conn);
        let client = self
            .store_client(
                &id,
                store::PREREGISTERED,
                metadata,
                None,
                &RequestCtx::default(),
                "oauth.client_added",
            )
            .await?;
        Ok(Ok(client))
    }

    async fn store_client(
        &self,
        id: &str,
        kind: &'static str,
        metadata: ClientMetadata,
        ip: Option<&str>,
        ctx: &RequestCtx,
        event: &str,
    ) -> Result<OAuthClient> {
        let now = now_ms();
        let uris = json!(metadata.redirect_uris).to_string();
        let stored = serde_json::to_string(&metadata).map_err(|e| Error::Internal(e.into()))?;
        let mut w = self.audited().await?;
        store::insert(
            w.conn(),
            &NewClient {
                id,
                kind,
                client_name: metadata.client_name.as_deref(),
                redirect_uris: &uris,
                metadata: &stored,
                registered_ip: ip,
                now,
                expires_at: None,
            },
        )
        .await?;
        let mut entry = AuditDraft::system(event, None)
            .subject("oauth_client", id)
            .properties(json!({
                "kind": kind,
                "client_name": metadata.client_name,
                "redirect_uris": metadata.redirect_uris,
                "software_id": metadata.software_id,
            }));
        entry.ctx = ctx.clone();
        w.record(entry);
        w.commit().await?;
        let mut conn = self.db.pool().acquire().await?;
        let row = store::find(&mut conn, id).await?.ok_or(Error::NotFound)?;
        Ok(OAuthClient::from_row(row))
    }

    /// `memberpass oauth-client list`: registered and pre-registered clients (and cached
    /// metadata documents when asked), oldest first.
    pub async fn list_clients(&self, include_documents: bool) -> Result<Vec<OAuthClient>> {
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::list(&mut conn, include_documents)
            .await?
            .into_iter()
            .map(OAuthClient::from_row)
            .collect())
    }

    /// `memberpass oauth-client remove`: the client can no longer be authorised, and its grants
    /// are revoked with it (their tokens fail at the next request).
    pub async fn remove_client(&self, id: &str) -> Result<OAuthClient> {
        let mut w = self.audited().await?;
        let now = now_ms();
        if !store::revoke(w.conn(), id, now).await? {
            return Err(Error::NotFound);
        }
        let grants = crate::store::oauth_grants::live_grant_ids_of_client(w.conn(), id).await?;
        for grant in &grants {
            crate::store::oauth_grants::revoke_grant(w.conn(), grant, "client_removed", None, now).await?;
            w.void_approvals(crate::store::approvals::Voids::Grant(grant), "token_revoked")
                .await?;
        }
        w.record(
            AuditDraft::system("oauth.client_removed", None)
                .subject("oauth_client", id)
                .properties(json!({"revoked_grants": grants})),
        );
        w.commit().await?;
        let mut conn = self.db.pool().acquire().await?;
        let row = store::find(&mut conn, id).await?.ok_or(Error::NotFound)?;
        Ok(OAuthClient::from_row(row))
    }

    /// The client a `client_id` names, if it may be authorised: a registered or pre-registered
    /// client, or the metadata document at that URL — from the shared cache while it is fresh,
    /// else fetched (with the guards of [`client_documents`]) and cached again. `None` for an
    /// unknown, removed or unfetchable client: the caller answers a generic `invalid_client`.
    pub async fn oauth_client(&self, client_id: &str) -> Result<Option<OAuthClient>> {
        let mut conn = self.db.pool().acquire().await?;
        let cached = store::find(&mut conn, client_id).await?;
        drop(conn);
        if let Some(row) = &cached {
            if row.revoked_at.is_some() {
                return Ok(None);
            }
            let fresh = row.kind != store::METADATA_DOCUMENT || row.expires_at.is_some_and(|t| t > now_ms());
            if fresh {
                return Ok(Some(OAuthClient::from_row(row.clone())));
            }
        }
        if !client_documents::is_document_url(client_id) {
            return Ok(None);
        }
        match self.fetch_client_document(client_id).await {
            Ok(()) => {}
            Err(why) => {
                tracing::warn!(why = %why, "client metadata document refused");
                return Ok(None);
            }
        }
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::find(&mut conn, client_id)
            .await?
            .filter(|r| r.revoked_at.is_none())
            .map(OAuthClient::from_row))
    }

    async fn fetch_client_document(&self, url: &str) -> std::result::Result<(), DocumentError> {
        let fetched = client_documents::fetch(url, self.config.oauth.allow_loopback_client_metadata).await?;
        let now = now_ms();
        let cache_ms = i64::try_from(fetched.cache_for.as_millis()).unwrap_or(i64::MAX / 2);
        let uris = json!(fetched.metadata.redirect_uris).to_string();
        let stored = serde_json::to_string(&fetched.metadata).map_err(|_| DocumentError::NotJson)?;
        let write = async {
            let mut conn = self.db.pool().acquire().await?;
            store::upsert_document(
                &mut conn,
                &NewClient {
                    id: url,
                    kind: store::METADATA_DOCUMENT,
                    client_name: fetched.metadata.client_name.as_deref(),
                    redirect_uris: &uris,
                    metadata: &stored,
                    registered_ip: None,
                    now,
                    expires_at: Some(now.saturating_add(cache_ms)),
                },
            )
            .await
        };
        write.await.map_err(|e: sqlx::Error| {
            tracing::error!(error = %e, "could not cache a client metadata document");
            DocumentError::Fetch
        })
    }
}
