//! `Idempotency-Key`: a replayable operation called again with the same key and arguments
//! within 24 h replays its first output instead of running again. Keys belong to the caller (the
//! token, or the signed-in user) and are saved in the transaction of the call they answer.

use sha2::{Digest, Sha256};

use super::op::{JsonOutput, Spec};
use crate::domain::error::{Error, Result};
use crate::domain::time::DAY_MS;
use crate::store::idempotency as store;
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
pub async fn saved(tx: &mut Tx, k: &IdempotencyKey) -> Result<Option<JsonOutput>> {
    store::forget_older(tx, &k.owner, &k.key, now_ms() - TTL_MS).await?;
    match store::find(tx, &k.owner, &k.key).await? {
        None => Ok(None),
        Some((fingerprint, _)) if fingerprint != k.fingerprint => Err(Error::IdempotencyKeyReused),
        Some((_, body)) => serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| Error::Internal(e.into())),
    }
}

/// Saves an output under its key, in the transaction that produced it.
pub async fn save(tx: &mut Tx, k: &IdempotencyKey, status: u16, output: &JsonOutput) -> Result<()> {
    let body = serde_json::to_string(output).map_err(|e| Error::Internal(e.into()))?;
    let new = store::NewKey {
        owner: &k.owner,
        key: &k.key,
        fingerprint: &k.fingerprint,
        status,
        body: &body,
        created_at: now_ms(),
    };
    match store::insert(tx, &new).await {
        Ok(()) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::Conflict(
            "a request with this Idempotency-Key is already in progress".into(),
        )),
        Err(e) => Err(e.into()),
    }
}
