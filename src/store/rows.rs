//! Row types, read with `FromRow` and written to the wire as they are.

use serde::Serialize;
use sqlx::FromRow;

use crate::domain::time::{ser_bool, ser_opt_ts, ser_ts};

#[derive(Clone, Debug, FromRow, Serialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    #[serde(serialize_with = "ser_ts")]
    pub created_at: i64,
}

#[derive(Clone, Debug, FromRow, Serialize)]
pub struct TeamMember {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    #[serde(serialize_with = "ser_ts")]
    pub created_at: i64,
}

#[derive(Clone, Debug, FromRow, Serialize)]
pub struct Project {
    pub id: String,
    pub team_id: String,
    pub name: String,
    pub handle: String,
    pub description: Option<String>,
    #[serde(serialize_with = "ser_bool")]
    pub active: i64,
    #[serde(serialize_with = "ser_ts")]
    pub created_at: i64,
    #[serde(serialize_with = "ser_ts")]
    pub updated_at: i64,
}

#[derive(Clone, Debug, FromRow, Serialize)]
pub struct Resource {
    pub id: String,
    pub project_id: String,
    pub kind: String,
    pub title: String,
    pub telegram_chat_id: String,
    #[serde(serialize_with = "ser_ts")]
    pub created_at: i64,
}

#[derive(Clone, Debug, FromRow, Serialize)]
pub struct Plan {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub price_cents: i64,
    pub currency: String,
    pub billing_interval: String,
    #[serde(serialize_with = "ser_bool")]
    pub active: i64,
    #[serde(serialize_with = "ser_ts")]
    pub created_at: i64,
    #[serde(serialize_with = "ser_ts")]
    pub updated_at: i64,
}

#[derive(Clone, Debug, FromRow, Serialize)]
pub struct Member {
    pub id: String,
    pub project_id: String,
    pub telegram_user_id: String,
    pub username: Option<String>,
    pub display_name: String,
    pub status: String,
    pub status_reason: Option<String>,
    #[serde(serialize_with = "ser_ts")]
    pub created_at: i64,
    #[serde(serialize_with = "ser_ts")]
    pub updated_at: i64,
}

#[derive(Clone, Debug, FromRow, Serialize)]
pub struct Subscription {
    pub id: String,
    pub project_id: String,
    pub member_id: String,
    pub plan_id: String,
    pub status: String,
    #[serde(serialize_with = "ser_ts")]
    pub started_at: i64,
    #[serde(serialize_with = "ser_opt_ts")]
    pub current_period_end: Option<i64>,
    #[serde(serialize_with = "ser_opt_ts")]
    pub canceled_at: Option<i64>,
}

#[derive(Clone, Debug, FromRow, Serialize)]
pub struct Payment {
    pub id: String,
    pub project_id: String,
    pub member_id: String,
    pub subscription_id: Option<String>,
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    #[serde(serialize_with = "ser_ts")]
    pub created_at: i64,
}

#[derive(Clone, Debug, FromRow, Serialize)]
pub struct AccessCode {
    pub id: String,
    pub plan_id: String,
    pub job_id: Option<String>,
    #[sqlx(rename = "code_masked")]
    pub code: String,
    pub status: String,
    #[serde(serialize_with = "ser_opt_ts")]
    pub expires_at: Option<i64>,
    #[serde(serialize_with = "ser_opt_ts")]
    pub redeemed_at: Option<i64>,
    #[serde(serialize_with = "ser_ts")]
    pub created_at: i64,
}

#[derive(Clone, Debug, FromRow)]
pub struct Job {
    pub id: String,
    pub team_id: String,
    pub project_id: Option<String>,
    pub kind: String,
    pub status: String,
    pub input: String,
    pub result: Option<String>,
    pub error: Option<String>,
    pub attempts: i64,
    pub created_by_user_id: String,
    pub created_by_token_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Job {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "result": self.result.as_deref().and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()),
            "error": self.error,
            "created_at": crate::domain::time::rfc3339(self.created_at),
            "updated_at": crate::domain::time::rfc3339(self.updated_at),
        })
    }
}

/// A stored token: metadata and the digest; the plaintext is never here.
#[derive(Clone, Debug, FromRow)]
pub struct TokenRow {
    pub id: String,
    pub env: String,
    pub digest: String,
    pub team_id: String,
    pub user_id: String,
    pub name: String,
    pub abilities: String,
    pub project_ids: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    pub replaced_by: Option<String>,
}

impl TokenRow {
    pub fn ability_names(&self) -> Vec<String> {
        serde_json::from_str(&self.abilities).unwrap_or_default()
    }

    pub fn project_id_list(&self) -> Option<Vec<String>> {
        self.project_ids.as_deref().and_then(|p| serde_json::from_str(p).ok())
    }

    /// The public view: everything but the digest.
    pub fn to_json(&self) -> serde_json::Value {
        use crate::domain::time::rfc3339;
        let projects = self.project_id_list();
        let mut scopes = vec![format!("scope:team:{}", self.team_id)];
        for p in projects.iter().flatten() {
            scopes.push(format!("scope:project:{p}"));
        }
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "env": self.env,
            "team_id": self.team_id,
            "user_id": self.user_id,
            "abilities": self.ability_names(),
            "project_ids": projects,
            "scopes": scopes,
            "created_at": rfc3339(self.created_at),
            "expires_at": self.expires_at.map(rfc3339),
            "last_used_at": self.last_used_at.map(rfc3339),
            "last_used_ip": self.last_used_ip,
            "revoked_at": self.revoked_at.map(rfc3339),
            "revoked_reason": self.revoked_reason,
            "replaced_by": self.replaced_by,
        })
    }
}

pub const TOKEN_COLUMNS: &str = "id, env, digest, team_id, user_id, name, abilities, project_ids, \
     created_at, expires_at, last_used_at, last_used_ip, revoked_at, revoked_reason, replaced_by";
