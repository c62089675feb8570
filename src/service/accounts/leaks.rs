//! Leak response: a token reported leaked by a secret-scanning partner (GitHub), or handed in by
//! whoever holds it (revoke by possession), dies at once. The revocation, its audit entries and
//! the owner's notification commit together; the caller is `system` (no principal: the one who
//! reports a token proves nothing but possession of it, which is exactly what a revocation needs).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::audit::{AuditDraft, RequestCtx};
use crate::domain::error::{Error, Result};
use crate::domain::ids::new_id;
use crate::domain::token::{TokenDigest, TokenSecret};
use crate::service::{Caller, Service};
use crate::store::notifications::{self, NewNotification, NotificationRow};
use crate::store::now_ms;
use crate::store::tokens::{self, TokenRow};

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
        // A refresh token (`mprt_`) held by a stranger revokes its whole grant.
        let held = match crate::domain::refresh_token::RefreshSecret::parse(token) {
            Ok(refresh) => self.revoke_by_refresh_token(&refresh, HANDED_IN, ctx).await,
            Err(_) => self.revoke_held(token, HANDED_IN, details, ctx).await.map(|_| ()),
        };
        tokio::time::sleep_until(answer_at).await;
        held
    }

    /// The revocation both paths share: the token's ID and secret must match a row (compared in
    /// constant time, against a decoy for an unknown ID); a live token is revoked with its
    /// entries (`token.revoked`, and `token.leaked` for a leak) and its owner's notification, in
    /// one transaction. A second report of the same token changes nothing.
    async fn revoke_held(&self, plaintext: &str, reason: &str, details: Value, ctx: &RequestCtx) -> Result<Held> {
        let Ok(secret) = TokenSecret::parse(plaintext) else {
            return Ok(Held::NotOurs);
        };
        let mut w = self.audited().await?;
        let row = tokens::find(w.conn(), secret.id().as_str()).await?;
        let stored = row
            .as_ref()
            .map(|r| TokenDigest::from_stored(r.digest.clone()))
            .unwrap_or_else(TokenDigest::decoy);
        let matches = secret.digest().ct_eq(&stored);
        let Some(row) = row.filter(|_| matches) else {
            return Ok(Held::NotOurs);
        };
        if row.revoked_at.is_some() || !tokens::revoke(w.conn(), &row.id, reason).await? {
            return Ok(Held::AlreadyRevoked);
        }
        let entry = |event: &str, properties: Value| {
            let mut draft = AuditDraft::system(event, Some(row.team_id.to_string()))
                .subject("token", &row.id)
                .properties(properties);
            draft.ctx = ctx.clone();
            draft
        };
        w.void_approvals(crate::store::approvals::Voids::Token(&row.id), "token_revoked")
            .await?;
        let mut revoked = json!({"reason": reason});
        merge(&mut revoked, &details);
        w.record(entry("token.revoked", revoked));
        if reason == LEAKED {
            w.record(entry("token.leaked", details.clone()));
        }
        let mut told = json!({"reason": reason, "token_name": row.name});
        merge(&mut told, &details);
        notify(w.conn(), &row, reason, &told).await?;
        w.commit().await?;
        tracing::warn!(token_id = %row.id, reason, "token revoked on report");
        Ok(Held::RevokedNow)
    }

    /// The person's open notifications in their session's team, newest first.
    pub async fn notifications(&self, caller: &Caller) -> Result<Vec<NotificationRow>> {
        let p = caller.in_team()?;
        let mut conn = self.db.pool().acquire().await?;
        Ok(notifications::open_for(&mut conn, &p.team_id, &p.user_id).await?)
    }

    /// Dismisses one of the person's notifications (audited); anything else is not found.
    pub async fn dismiss_notification(&self, caller: &Caller, id: &str) -> Result<()> {
        let p = caller.in_team()?;
        let mut w = self.audited().await?;
        if !notifications::dismiss(w.conn(), id, &p.team_id, &p.user_id, now_ms()).await? {
            return Err(Error::NotFound);
        }
        w.record(
            caller
                .draft("notification.dismissed", &p.team_id)
                .subject("notification", id),
        );
        w.commit().await?;
        Ok(())
    }
}

pub(crate) async fn notify(
    conn: &mut crate::store::Conn,
    row: &TokenRow,
    kind: &str,
    properties: &Value,
) -> Result<()> {
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
