//! `oauth_clients`: the OAuth clients a grant can name — registered at `POST /register`,
//! added by the operator, or a client ID metadata document cached under its URL. (The grant,
//! code and refresh-token tables of migration 0006 get their SQL with the endpoints that use
//! them.)

use sqlx::FromRow;

use super::Conn;

/// How a client came to be known.
pub const REGISTERED: &str = "registered";
pub const PREREGISTERED: &str = "preregistered";
pub const METADATA_DOCUMENT: &str = "metadata_document";

/// A stored client. `redirect_uris` and `metadata` are JSON text.
#[derive(Clone, Debug, FromRow)]
pub struct ClientRow {
    pub id: String,
    pub kind: String,
    pub client_name: Option<String>,
    pub redirect_uris: String,
    pub metadata: String,
    pub registered_ip: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ClientRow {
    pub fn redirect_uri_list(&self) -> Vec<String> {
        serde_json::from_str(&self.redirect_uris).unwrap_or_default()
    }
}

const COLUMNS: &str =
    "id, kind, client_name, redirect_uris, metadata, registered_ip, created_at, updated_at, expires_at, revoked_at";

pub struct NewClient<'a> {
    pub id: &'a str,
    pub kind: &'static str,
    pub client_name: Option<&'a str>,
    pub redirect_uris: &'a str,
    pub metadata: &'a str,
    pub registered_ip: Option<&'a str>,
    pub now: i64,
    pub expires_at: Option<i64>,
}

pub async fn insert(conn: &mut Conn, c: &NewClient<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO oauth_clients (id, kind, client_name, redirect_uris, metadata, registered_ip, created_at, updated_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
    )
    .bind(c.id)
    .bind(c.kind)
    .bind(c.client_name)
    .bind(c.redirect_uris)
    .bind(c.metadata)
    .bind(c.registered_ip)
    .bind(c.now)
    .bind(c.expires_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

/// Stores a fetched metadata document under its URL, replacing the copy cached before
/// (`ON CONFLICT … DO UPDATE`: SQLite ≥ 3.24 and PostgreSQL alike). A revoked URL stays revoked.
pub async fn upsert_document(conn: &mut Conn, c: &NewClient<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO oauth_clients (id, kind, client_name, redirect_uris, metadata, registered_ip, created_at, updated_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, NULL, $6, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET client_name = $3, redirect_uris = $4, metadata = $5, updated_at = $6, expires_at = $7 \
         WHERE oauth_clients.kind = $2",
    )
    .bind(c.id)
    .bind(c.kind)
    .bind(c.client_name)
    .bind(c.redirect_uris)
    .bind(c.metadata)
    .bind(c.now)
    .bind(c.expires_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub async fn find(conn: &mut Conn, id: &str) -> sqlx::Result<Option<ClientRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM oauth_clients WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// Every client of these kinds, oldest first.
pub async fn list(conn: &mut Conn, include_documents: bool) -> sqlx::Result<Vec<ClientRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM oauth_clients WHERE kind <> $1 OR $2 = 1 ORDER BY created_at, id"
    )))
    .bind(METADATA_DOCUMENT)
    .bind(i64::from(include_documents))
    .fetch_all(&mut *conn)
    .await
}

/// Marks a client revoked; false when it was unknown or already revoked.
pub async fn revoke(conn: &mut Conn, id: &str, now: i64) -> sqlx::Result<bool> {
    sqlx::query("UPDATE oauth_clients SET revoked_at = $1, updated_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected() == 1)
}
