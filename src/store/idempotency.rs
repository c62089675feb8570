//! `idempotency_keys`: the saved output of a replayable call, by owner (token, or signed-in
//! user) and key.

use super::Conn;

/// Forgets this key if it was saved before `cutoff`.
pub async fn forget_older(conn: &mut Conn, owner: &str, key: &str, cutoff: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE token_id = $1 AND idem_key = $2 AND created_at < $3")
        .bind(owner)
        .bind(key)
        .bind(cutoff)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// The fingerprint and saved output of a key.
pub async fn find(conn: &mut Conn, owner: &str, key: &str) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as("SELECT fingerprint, body FROM idempotency_keys WHERE token_id = $1 AND idem_key = $2")
        .bind(owner)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
}

pub struct NewKey<'a> {
    pub owner: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub status: u16,
    pub body: &'a str,
    pub created_at: i64,
}

/// Saves a key; one already saved (a concurrent call with the same key) is a unique violation.
pub async fn insert(conn: &mut Conn, k: &NewKey<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO idempotency_keys (token_id, idem_key, fingerprint, status, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(k.owner)
    .bind(k.key)
    .bind(k.fingerprint)
    .bind(i64::from(k.status))
    .bind(k.body)
    .bind(k.created_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}
