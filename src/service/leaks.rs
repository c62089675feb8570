//! Leak response: a token reported leaked by a secret-scanning partner (GitHub), or handed in by
//! whoever holds it (revoke by possession), dies at once. The revocation, its audit entries and
//! the owner's notification commit together; the caller is `system` (no principal: the one who
//! reports a token proves nothing but possession of it, which is exactly what a revocation needs).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Service;
use crate::domain::audit::{AuditDraft, RequestCtx};
use crate::domain::error::{Error, Result};
use crate::domain::ids::new_id;
use crate::domain::signature::P256Key;
use crate::domain::token::{TokenDigest, TokenSecret};
use crate::store::notifications::{self, NewNotification, NotificationRow};
use crate::store::tokens::{self, TokenRow};
use crate::store::{audit, now_ms};

/// The revocation reason of a token a secret-scanning partner found.
pub const LEAKED: &str = "leaked";
/// The revocation reason of a token its holder handed in.
pub const HANDED_IN: &str = "revoked_by_possession";

/// A hand-in is answered this long after it began, whatever it found: far above the time a
/// live token's revocation takes to commit (about 3 ms), so a live and an unknown token are
/// answered alike unless the server is overloaded past it.
pub const HAND_IN_ANSWER_AFTER: Duration = Duration::from_millis(200);

/// Most alert items one request may carry, and the longest string field we keep.
pub const MAX_ALERT_ITEMS: usize = 1000;
const MAX_FIELD: usize = 2048;

/// A refetch of the key document for an unknown key identifier happens at most this often, so
/// a stream of made-up identifiers cannot become a stream of fetches: at most 60 an hour, the
/// quota GitHub gives an unauthenticated client. Each refetch is conditional (`If-None-Match`).
const REFETCH_GAP: Duration = Duration::from_secs(60);
/// After a failed fetch (GitHub down or limiting us) the gap doubles, up to this.
const REFETCH_GAP_MAX: Duration = Duration::from_secs(30 * 60);

/// One item of a GitHub secret-scanning alert.
#[derive(Debug, Deserialize)]
pub struct AlertItem {
    pub token: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
}

/// GitHub's feedback format: which reported strings were ours.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Feedback {
    pub token_hash: String,
    pub token_type: String,
    pub label: &'static str,
}

/// Why an alert was not processed (each a 4xx; nothing was changed).
#[derive(Debug, PartialEq, Eq)]
pub enum AlertRejected {
    Unsigned,
    UnknownKey,
    BadSignature,
    Malformed(String),
}

/// GitHub's published secret-scanning keys, by identifier, fetched when first needed and again
/// (at most once per [`REFETCH_GAP`], backing off after failures) when an alert names a key we
/// do not know.
pub struct PartnerKeys {
    url: String,
    client: std::sync::OnceLock<reqwest::Client>,
    keys: RwLock<HashMap<String, P256Key>>,
    fetching: tokio::sync::Mutex<Fetching>,
    /// The gap after a fetch that worked.
    gap: Duration,
}

/// When the key document was last asked for, how long until it may be again, and the `ETag` of
/// the copy we hold.
#[derive(Debug, Default)]
struct Fetching {
    last: Option<Instant>,
    gap: Duration,
    etag: Option<String>,
}

impl std::fmt::Debug for PartnerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerKeys")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl PartnerKeys {
    pub fn new(url: String) -> Self {
        Self::with_gap(url, REFETCH_GAP)
    }

    fn with_gap(url: String, gap: Duration) -> Self {
        PartnerKeys {
            url,
            client: std::sync::OnceLock::new(),
            keys: RwLock::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(Fetching::default()),
            gap,
        }
    }

    /// The HTTP client, made on the first fetch (most processes never need it). rustls needs a
    /// process-wide crypto provider: the one in the tree (ring), unless one is installed.
    fn client(&self) -> anyhow::Result<&reqwest::Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("memberpass/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()?;
        Ok(self.client.get_or_init(|| client))
    }

    fn cached(&self, id: &str) -> Option<P256Key> {
        self.keys.read().expect("keys lock").get(id).cloned()
    }

    /// The key with this identifier, chosen by identifier (never by position in the document).
    /// Every key the document publishes is accepted, current or not: during a rotation GitHub
    /// may still sign with the previous key, and it stays GitHub's until it is unpublished.
    async fn key(&self, id: &str) -> Option<P256Key> {
        if let Some(key) = self.cached(id) {
            return Some(key);
        }
        let mut fetching = self.fetching.lock().await;
        // Another alert may have fetched while this one waited.
        if let Some(key) = self.cached(id) {
            return Some(key);
        }
        if fetching.last.is_some_and(|at| at.elapsed() < fetching.gap) {
            return None;
        }
        fetching.last = Some(Instant::now());
        let etag = fetching
            .etag
            .clone()
            .filter(|_| !self.keys.read().expect("keys lock").is_empty());
        match self.fetch(etag.as_deref()).await {
            Ok(Some((keys, etag))) => {
                *self.keys.write().expect("keys lock") = keys;
                fetching.etag = etag;
                fetching.gap = self.gap;
            }
            Ok(None) => fetching.gap = self.gap,
            Err(e) => {
                fetching.gap = (fetching.gap * 2).clamp(self.gap, REFETCH_GAP_MAX.max(self.gap));
                let wait = fetching.gap.as_secs();
                tracing::warn!(error = %e, url = %self.url, wait, "secret-scanning key document could not be fetched");
            }
        }
        self.cached(id)
    }

    /// The key document, or `None` when the copy whose `ETag` we sent is still current (304).
    async fn fetch(&self, etag: Option<&str>) -> anyhow::Result<Option<(HashMap<String, P256Key>, Option<String>)>> {
        let mut req = self.client()?.get(&self.url);
        if let Some(etag) = etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let res = req.send().await?;
        if res.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        let res = res.error_for_status()?;
        let etag = res
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = res.bytes().await?;
        anyhow::ensure!(bytes.len() <= 256 * 1024, "the key document is larger than 256 KiB");
        let doc: Value = serde_json::from_slice(&bytes)?;
        let keys = doc["public_keys"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("no public_keys array"))?
            .iter()
            .filter_map(|k| {
                let id = k["key_identifier"].as_str()?;
                Some((id.to_owned(), P256Key::from_pem(k["key"].as_str()?)?))
            })
            .collect();
        Ok(Some((keys, etag)))
    }
}

/// What a reported string turned out to be.
enum Held {
    /// Not a token this server issued (bad checksum, unknown ID, wrong secret).
    NotOurs,
    /// Ours, and already revoked: nothing changes, the answer is the same as the first time.
    AlreadyRevoked,
    RevokedNow,
}

impl Service {
    /// Handles one GitHub secret-scanning alert: the signature over the raw `body` first, then
    /// each item. A live token of ours is revoked (reason `leaked`), with a `token.leaked` entry
    /// and a notification for its owner; the answer labels every item.
    pub async fn github_alert(
        &self,
        key_id: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        ctx: &RequestCtx,
    ) -> std::result::Result<Result<Vec<Feedback>>, AlertRejected> {
        let (Some(key_id), Some(signature)) = (key_id, signature) else {
            return Err(AlertRejected::Unsigned);
        };
        let key = self
            .partner_keys
            .key(key_id.trim())
            .await
            .ok_or(AlertRejected::UnknownKey)?;
        if !key.verifies(signature, body) {
            return Err(AlertRejected::BadSignature);
        }
        let items: Vec<AlertItem> = serde_json::from_slice(body).map_err(|_| {
            AlertRejected::Malformed("the body must be a JSON array of {token, type, url, source}".into())
        })?;
        if items.len() > MAX_ALERT_ITEMS {
            return Err(AlertRejected::Malformed(format!(
                "at most {MAX_ALERT_ITEMS} items per alert"
            )));
        }
        let mut feedback = Vec::with_capacity(items.len());
        for item in items {
            let details = json!({
                "alert_type": clip(&item.kind),
                "url": item.url.as_deref().map(clip),
                "source": item.source.as_deref().map(clip),
                "reported_by": "github",
            });
            let held = match self.revoke_held(&item.token, LEAKED, details, ctx).await {
                Ok(held) => held,
                Err(e) => return Ok(Err(e)),
            };
            feedback.push(Feedback {
                token_hash: TokenDigest::of(&item.token).as_str().to_owned(),
                token_type: item.kind,
                label: match held {
                    Held::NotOurs => "false_positive",
                    Held::AlreadyRevoked | Held::RevokedNow => "true_positive",
                },
            });
        }
        Ok(Ok(feedback))
    }

    /// Revoke by possession: whoever holds a token may kill it. The caller learns nothing
    /// (every well-formed request gets the same answer, at the same time); a token of ours that
    /// was live is revoked (reason `revoked_by_possession`) and its owner told.
    ///
    /// The answer waits until [`HAND_IN_ANSWER_AFTER`] has passed since the call began: a live
    /// token's revocation commits a transaction (an fsync) that a stranger's string does not,
    /// and without the wait the time of the answer would tell which it was. The revocation has
    /// committed before the answer, whatever the wait.
    pub async fn revoke_by_possession(&self, token: &str, source: Option<&str>, ctx: &RequestCtx) -> Result<()> {
        let answer_at = tokio::time::Instant::now() + HAND_IN_ANSWER_AFTER;
        let details = json!({"source": source.map(clip), "reported_by": "holder"});
        let held = self.revoke_held(token, HANDED_IN, details, ctx).await;
        tokio::time::sleep_until(answer_at).await;
        held.map(|_| ())
    }

    /// The revocation both paths share: the token's ID and secret must match a row (compared in
    /// constant time, against a decoy for an unknown ID); a live token is revoked with its
    /// entries (`token.revoked`, and `token.leaked` for a leak) and its owner's notification, in
    /// one transaction. A second report of the same token changes nothing.
    async fn revoke_held(&self, plaintext: &str, reason: &str, details: Value, ctx: &RequestCtx) -> Result<Held> {
        let Ok(secret) = TokenSecret::parse(plaintext) else {
            return Ok(Held::NotOurs);
        };
        let mut tx = self.db.begin_write().await?;
        let row = tokens::find(&mut tx, secret.id().as_str()).await?;
        let stored = row
            .as_ref()
            .map(|r| TokenDigest::from_stored(r.digest.clone()))
            .unwrap_or_else(TokenDigest::decoy);
        let matches = secret.digest().ct_eq(&stored);
        let Some(row) = row.filter(|_| matches) else {
            return Ok(Held::NotOurs);
        };
        if row.revoked_at.is_some() || !tokens::revoke(&mut tx, &row.id, reason).await? {
            return Ok(Held::AlreadyRevoked);
        }
        let entry = |event: &str, properties: Value| {
            let mut draft = AuditDraft::system(event, Some(row.team_id.clone()))
                .subject("token", &row.id)
                .properties(properties);
            draft.ctx = ctx.clone();
            draft
        };
        let mut revoked = json!({"reason": reason});
        merge(&mut revoked, &details);
        audit::append(&mut tx, entry("token.revoked", revoked)).await?;
        if reason == LEAKED {
            audit::append(&mut tx, entry("token.leaked", details.clone())).await?;
        }
        let mut told = json!({"reason": reason, "token_name": row.name});
        merge(&mut told, &details);
        notify(&mut tx, &row, reason, &told).await?;
        tx.commit().await?;
        tracing::warn!(token_id = %row.id, reason, "token revoked on report");
        Ok(Held::RevokedNow)
    }

    /// The person's open notifications in their session's team, newest first.
    pub async fn notifications(&self, p: &super::Principal) -> Result<Vec<NotificationRow>> {
        let mut conn = self.db.pool().acquire().await?;
        Ok(notifications::open_for(&mut conn, &p.team_id, &p.user_id).await?)
    }

    /// Dismisses one of the person's notifications (audited); anything else is not found.
    pub async fn dismiss_notification(&self, p: &super::Principal, ctx: &RequestCtx, id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        if !notifications::dismiss(&mut tx, id, &p.team_id, &p.user_id, now_ms()).await? {
            return Err(Error::NotFound);
        }
        let actor = super::tokens::Actor::person(p, ctx);
        let mut draft =
            AuditDraft::system("notification.dismissed", Some(p.team_id.clone())).subject("notification", id);
        draft.actor_kind = actor.kind;
        draft.causer_id = actor.user_id;
        draft.ctx = actor.ctx;
        audit::append(&mut tx, draft).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn notify(conn: &mut crate::store::Conn, row: &TokenRow, kind: &str, properties: &Value) -> Result<()> {
    let properties = properties.to_string();
    notifications::insert(
        conn,
        &NewNotification {
            id: &new_id(),
            team_id: &row.team_id,
            user_id: &row.user_id,
            token_id: &row.id,
            kind,
            properties: &properties,
            created_at: now_ms(),
        },
    )
    .await?;
    Ok(())
}

fn merge(into: &mut Value, from: &Value) {
    if let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in from {
            into.insert(k.clone(), v.clone());
        }
    }
}

/// A reporter's free text, kept short, its unsafe characters replaced (see
/// [`crate::domain::text::storable`]), and with any token in it (a URL or a transcript line may
/// quote the very token reported) replaced by its ID only.
fn clip(s: &str) -> String {
    let mut text = crate::domain::text::storable(s, MAX_FIELD);
    while let Some((at, token)) = text.match_indices(crate::domain::token::PREFIX).find_map(|(at, _)| {
        let candidate = text.get(at..at + crate::domain::token::TOKEN_LEN)?;
        TokenSecret::parse(candidate).ok().map(|t| (at, t))
    }) {
        let redacted = format!("mpt_{}_{}_[REDACTED]", token.env().as_str(), token.id().as_str());
        text.replace_range(at..at + crate::domain::token::TOKEN_LEN, &redacted);
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use base64::Engine;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    use super::*;

    fn public_pem() -> String {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let key = P256Key::from_point(pair.public_key().as_ref()).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.spki_der());
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
    }

    /// A key document server that records each request's `If-None-Match` and answers 304 to the
    /// `ETag` it gave, or 503 while told to fail.
    async fn key_server(seen: Arc<Mutex<Vec<Option<String>>>>, failing: Arc<AtomicBool>) -> String {
        let doc =
            json!({"public_keys": [{"key_identifier": "k1", "key": public_pem(), "is_current": true}]}).to_string();
        let route = axum::routing::get(move |headers: axum::http::HeaderMap| {
            let sent = headers
                .get("if-none-match")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            seen.lock().unwrap().push(sent.clone());
            let (failing, doc) = (failing.load(Ordering::SeqCst), doc.clone());
            async move {
                use axum::response::IntoResponse;
                if failing {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else if sent.as_deref() == Some("\"v1\"") {
                    axum::http::StatusCode::NOT_MODIFIED.into_response()
                } else {
                    ([("etag", "\"v1\""), ("content-type", "application/json")], doc).into_response()
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/keys", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, axum::Router::new().route("/keys", route)).await;
        });
        url
    }

    #[tokio::test]
    async fn the_key_document_is_asked_for_conditionally_and_less_often_after_failures() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(AtomicBool::new(false));
        let url = key_server(seen.clone(), failing.clone()).await;
        let asked = || seen.lock().unwrap().clone();
        let gap = Duration::from_millis(300);
        let step = Duration::from_millis(400);
        let keys = PartnerKeys::with_gap(url, gap);

        assert!(keys.key("k1").await.is_some());
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked(), [None], "one fetch; the unknown id waits for the gap");
        tokio::time::sleep(step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked(), [None, Some("\"v1\"".to_owned())], "a conditional refetch");
        assert!(keys.key("k1").await.is_some(), "a 304 keeps the keys held");

        // Failures double the gap: 600 ms after the first, 1.2 s after the second.
        failing.store(true, Ordering::SeqCst);
        tokio::time::sleep(step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked().len(), 3);
        tokio::time::sleep(step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked().len(), 3, "within the doubled gap");
        tokio::time::sleep(step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked().len(), 4);
        tokio::time::sleep(2 * step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked().len(), 4, "within the gap doubled again");
        // A fetch that works puts the gap back.
        failing.store(false, Ordering::SeqCst);
        tokio::time::sleep(step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked().len(), 5);
        assert!(keys.key("k1").await.is_some());
        tokio::time::sleep(step).await;
        assert!(keys.key("made-up").await.is_none());
        assert_eq!(asked().len(), 6, "back to the normal gap");
    }
}
