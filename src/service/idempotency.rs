//! `Idempotency-Key`: a replayable operation called again with the same key and arguments
//! within 24 h replays its first output instead of running again. Keys belong to the caller (the
//! token, or the signed-in user) and are saved in the transaction of the call they answer.

use sha2::{Digest, Sha256};

use super::op::{Output, Spec};
use crate::domain::error::{Error, Result};
use crate::domain::time::DAY_MS;
use crate::store::{Tx, is_unique_violation, now_ms};

const TTL_MS: i64 = DAY_MS;

/// A key with the fingerprint of the call it came with (operation and arguments).
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    pub owner: String,
    pub key: String,
    pub fingerprint: String,
}

impl IdempotencyKey {
    pub fn new(owner: String, key: String, spec: &Spec, args: &serde_json::Value) -> Self {
        let mut h = Sha256::new();
        h.update(spec.name.as_bytes());
        h.update(b"\n");
        h.update(args.to_string().as_bytes());
        IdempotencyKey {
            owner,
            key,
            fingerprint: hex::encode(h.finalize()),
        }
    }
}

/// The saved output for this key, if any; a key reused with other arguments is refused.
pub async fn saved(tx: &mut Tx, k: &IdempotencyKey) -> Result<Option<Output>> {
    sqlx::query("DELETE FROM idempotency_keys WHERE token_id = $1 AND idem_key = $2 AND created_at < $3")
        .bind(&k.owner)
        .bind(&k.key)
        .bind(now_ms() - TTL_MS)
        .execute(&mut **tx)
        .await?;
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT fingerprint, body FROM idempotency_keys WHERE token_id = $1 AND idem_key = $2")
            .bind(&k.owner)
            .bind(&k.key)
            .fetch_optional(&mut **tx)
            .await?;
    match row {
        None => Ok(None),
        Some((fingerprint, _)) if fingerprint != k.fingerprint => Err(Error::IdempotencyKeyReused),
        Some((_, body)) => serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| Error::Internal(e.into())),
    }
}

/// Saves an output under its key, in the transaction that produced it.
pub async fn save(tx: &mut Tx, k: &IdempotencyKey, status: u16, output: &Output) -> Result<()> {
    let body = serde_json::to_string(output).map_err(|e| Error::Internal(e.into()))?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (token_id, idem_key, fingerprint, status, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&k.owner)
    .bind(&k.key)
    .bind(&k.fingerprint)
    .bind(i64::from(status))
    .bind(body)
    .bind(now_ms())
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::Conflict(
            "a request with this Idempotency-Key is already in progress".into(),
        )),
        Err(e) => Err(e.into()),
    }
}
