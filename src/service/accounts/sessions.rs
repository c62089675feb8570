//! Dashboard sessions: sign-in with an argon2id password, a random session secret in a cookie
//! (only its SHA-256 stored), a CSRF token tied to the session, sign-out. A session resolves to
//! a [`Member`] — the user's live role in the session's team — who calls as [`Who::Person`]
//! (actor `human`).
//!
//! [`Who::Person`]: crate::service::Who::Person
//!
//! argon2 takes tens of milliseconds of CPU and 19 MiB per verification, so it runs on Tokio's
//! blocking pool, at most [`concurrent_password_checks`] at once: a burst of sign-ins waits for a
//! permit instead of holding the async workers that serve every other request. (The surface
//! limits failed sign-ins before calling here; see `web::limits::sign_in`.)

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::domain::audit::{ActorKind, AuditDraft, Outcome, RequestCtx};
use crate::domain::error::{Error, ErrorCode, Result};
use crate::domain::role::Role;
use crate::domain::time::DAY_MS;
use crate::domain::token::random_base62;
use crate::service::{Caller, Member, Service};
use crate::store::now_ms;
use crate::store::sessions::{self as store, NewSession};

/// How long a session lasts after sign-in.
pub const SESSION_TTL_MS: i64 = DAY_MS / 2;

/// A signed-in person, resolved from the cookie on every request.
#[derive(Clone, Debug)]
pub struct Session {
    pub person: Member,
    /// The token every state-changing form must carry.
    pub csrf: String,
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A hash no password matches, verified for unknown emails so that they cost the same time.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Vt3fIn3v1cD0rY1gFZ1dVf2x3QjC0Hk2bq3sR3Vq1Yc";

/// How many passwords are verified at once: half the cores (at least one), so that sign-ins,
/// however many arrive, leave the other half to the requests of everyone else.
pub fn concurrent_password_checks() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

fn password_matches(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

impl Service {
    /// Signs a person in; returns the cookie secret and the session. A wrong email and a wrong
    /// password get the same answer and take the same time; both are audited
    /// (`session.login_failed`), the first without a causer.
    pub async fn sign_in(&self, email: &str, password: &str, ctx: &RequestCtx) -> Result<(String, Session)> {
        let email = email.trim().to_lowercase();
        let mut conn = self.db.pool().acquire().await?;
        let found = store::credentials(&mut conn, &email).await?;
        let hash = found.as_ref().and_then(|(_, h)| h.clone());
        let user_id = found.map(|(id, _)| id);
        let team_id = match &user_id {
            Some(u) => store::first_team(&mut conn, u).await?,
            None => None,
        };
        drop(conn);
        let matches = self.verify_password(hash, password).await?;
        let (Some(user_id), Some(team_id), true) = (user_id.clone(), team_id.clone(), matches) else {
            let mut entry = AuditDraft::system("session.login_failed", team_id);
            entry.actor_kind = ActorKind::Human;
            entry.causer_id = user_id;
            entry.outcome = Outcome::Denied;
            entry.error_code = Some(ErrorCode::AuthenticationRequired.as_str());
            entry.ctx = ctx.clone();
            self.append_alone(entry).await?;
            return Err(Error::AuthenticationRequired);
        };
        let secret = random_base62(43);
        let csrf = random_base62(32);
        let now = now_ms();
        let mut w = self.audited().await?;
        let new = NewSession {
            id_digest: &digest(&secret),
            user_id: &user_id,
            team_id: &team_id,
            csrf: &csrf,
            created_at: now,
            expires_at: now + SESSION_TTL_MS,
        };
        store::insert(w.conn(), &new).await?;
        let mut entry = AuditDraft::system("session.login", Some(team_id.clone())).subject("user", &user_id);
        entry.actor_kind = ActorKind::Human;
        entry.causer_id = Some(user_id.clone());
        entry.ctx = ctx.clone();
        w.record(entry);
        w.commit().await?;
        let session = self.session(&secret).await?.ok_or(Error::AuthenticationRequired)?;
        Ok((secret, session))
    }

    /// Always one argon2 verification, against a decoy when there is no user or no password (so
    /// both cost the same time), on the blocking pool and within the limit of checks at once.
    async fn verify_password(&self, hash: Option<String>, password: &str) -> Result<bool> {
        // The permit moves into the blocking task, so a request abandoned while it waits for
        // the verification (its 30 s budget) does not free a permit still in use.
        let permit = self
            .password_checks
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(e.into()))?;
        let has_hash = hash.is_some();
        let hash = hash.unwrap_or_else(|| DECOY_HASH.to_owned());
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            password_matches(&hash, &password)
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?;
        Ok(matches && has_hash)
    }

    /// The live session of a cookie secret: not revoked, not expired, its user still in its
    /// team (with the role they hold now).
    pub async fn session(&self, secret: &str) -> Result<Option<Session>> {
        let mut conn = self.db.pool().acquire().await?;
        let Some(row) = store::find(&mut conn, &digest(secret)).await? else {
            return Ok(None);
        };
        if row.revoked_at.is_some() || row.expires_at <= now_ms() {
            return Ok(None);
        }
        let Some((email, name, role)) = store::member(&mut conn, &row.team_id, &row.user_id).await? else {
            return Ok(None);
        };
        let role: Role = role
            .parse()
            .map_err(|e: String| Error::Internal(anyhow::anyhow!("corrupt role: {e}")))?;
        Ok(Some(Session {
            person: Member {
                team_id: row.team_id,
                user_id: row.user_id,
                user_email: email,
                user_name: name,
                role,
            },
            csrf: row.csrf,
        }))
    }

    /// The name of a team, for the dashboard's header.
    pub async fn team_name(&self, team_id: &str) -> Result<String> {
        let mut conn = self.db.pool().acquire().await?;
        Ok(crate::store::teams::find(&mut conn, team_id)
            .await?
            .map(|t| t.name)
            .unwrap_or_default())
    }

    /// The teams the signed-in person belongs to (id, name), for the team switcher.
    pub async fn teams_of(&self, user_id: &str) -> Result<Vec<(String, String)>> {
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::teams_of(&mut conn, user_id).await?)
    }

    /// Moves a session to another team the person belongs to (`session.team_switched`, in the
    /// team it moves to). Any other team does not exist for them.
    pub async fn switch_team(&self, secret: &str, caller: &Caller, team_id: &str) -> Result<()> {
        let p = caller.in_team()?;
        let team_id = crate::domain::ids::parse_id(team_id)?;
        let mut w = self.audited().await?;
        if store::member(w.conn(), &team_id, &p.user_id).await?.is_none() {
            return Err(Error::NotFound);
        }
        store::set_team(w.conn(), &digest(secret), &team_id).await?;
        let entry = caller
            .draft("session.team_switched", &team_id)
            .subject("user", &p.user_id)
            .properties(json!({"from": p.team_id}));
        w.record(entry);
        w.commit().await?;
        Ok(())
    }

    /// Ends a session (`session.logout`).
    pub async fn sign_out(&self, secret: &str, caller: &Caller) -> Result<()> {
        let p = caller.in_team()?;
        let mut w = self.audited().await?;
        store::revoke(w.conn(), &digest(secret), now_ms()).await?;
        w.record(caller.draft("session.logout", &p.team_id).subject("user", &p.user_id));
        w.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decoy_hash_parses_so_unknown_emails_cost_a_full_verification() {
        use argon2::password_hash::PasswordHash;
        let parsed = PasswordHash::new(DECOY_HASH).expect("a valid PHC string");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert!(!password_matches(DECOY_HASH, "anything"));
    }
}
