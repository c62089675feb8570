//! `notifications`: what a person is told on the dashboard until they dismiss it.

use sqlx::FromRow;

use super::Conn;

#[derive(Clone, Debug, FromRow)]
pub struct NotificationRow {
    pub id: String,
    pub token_id: String,
    pub kind: String,
    pub properties: String,
    pub created_at: i64,
}

pub struct NewNotification<'a> {
    pub id: &'a str,
    pub team_id: &'a str,
    pub user_id: &'a str,
    pub token_id: &'a str,
    pub kind: &'a str,
    pub properties: &'a str,
    pub created_at: i64,
}

pub async fn insert(conn: &mut Conn, n: &NewNotification<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notifications (id, team_id, user_id, token_id, kind, properties, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(n.id)
    .bind(n.team_id)
    .bind(n.user_id)
    .bind(n.token_id)
    .bind(n.kind)
    .bind(n.properties)
    .bind(n.created_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

/// A person's notifications in one team that they have not dismissed, newest first.
pub async fn open_for(conn: &mut Conn, team_id: &str, user_id: &str) -> sqlx::Result<Vec<NotificationRow>> {
    sqlx::query_as(
        "SELECT id, token_id, kind, properties, created_at FROM notifications \
         WHERE team_id = $1 AND user_id = $2 AND dismissed_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 50",
    )
    .bind(team_id)
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await
}

/// Dismisses one of the person's own notifications; false when there is none such open.
pub async fn dismiss(conn: &mut Conn, id: &str, team_id: &str, user_id: &str, now: i64) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE notifications SET dismissed_at = $1 WHERE id = $2 AND team_id = $3 AND user_id = $4 AND dismissed_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(team_id)
    .bind(user_id)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected() == 1)
}
