//! `users`: the people who own tokens and sign in to the dashboard.

use super::Conn;

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: Option<&'a str>,
    pub created_at: i64,
}

/// Inserts a user; an email already in use is a unique violation.
pub async fn insert(conn: &mut Conn, u: &NewUser<'_>) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(u.id)
        .bind(u.email)
        .bind(u.name)
        .bind(u.password_hash)
        .bind(u.created_at)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// The id of the user with this (normalised) email.
pub async fn id_by_email(conn: &mut Conn, email: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(&mut *conn)
        .await
}

/// Replaces a user's password hash; false when there is no such user.
pub async fn set_password_hash(conn: &mut Conn, id: &str, hash: &str) -> sqlx::Result<bool> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected() == 1)
}

/// A user's name and email.
pub async fn name_and_email(conn: &mut Conn, id: &str) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as("SELECT name, email FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}
