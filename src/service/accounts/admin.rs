//! Operator actions (CLI): users, teams, memberships, projects. Audited as `system`.

use serde_json::json;

use crate::domain::audit::AuditDraft;
use crate::domain::error::{Error, Result};
use crate::domain::ids::{new_id, parse_id};
use crate::domain::role::Role;
use crate::service::Service;
use crate::service::ops::projects::{CreateProjectArgs, create_in, validate_name};
use crate::store::users::{self, NewUser};
use crate::store::{is_unique_violation, now_ms, teams, tokens};

/// The revocation reason of the tokens of someone removed from a team.
pub const MEMBER_REMOVED: &str = "member_removed";

pub fn hash_password(password: &str) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(anyhow::anyhow!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&bytes).map_err(|e| Error::Internal(anyhow::anyhow!("salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(anyhow::anyhow!("password hashing failed: {e}")))
}

fn normalize_email(email: &str) -> Result<String> {
    let e = email.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(a, d)| !a.is_empty() && d.contains('.') && !d.starts_with('.'));
    if ok {
        Ok(e)
    } else {
        Err(Error::field("email", "is not an email address"))
    }
}

impl Service {
    pub async fn create_user(&self, email: &str, name: &str, password: Option<&str>) -> Result<String> {
        let email = normalize_email(email)?;
        let name = validate_name("name", name, 100)?;
        let hash = match password {
            Some(p) if p.chars().count() < 12 => {
                return Err(Error::field("password", "must be at least 12 characters"));
            }
            Some(p) => Some(hash_password(p)?),
            None => None,
        };
        let id = new_id();
        let mut w = self.audited().await?;
        let new = NewUser {
            id: &id,
            email: &email,
            name: &name,
            password_hash: hash.as_deref(),
            created_at: now_ms(),
        };
        match users::insert(w.conn(), &new).await {
            Err(e) if is_unique_violation(&e) => return Err(Error::Conflict("a user with this email exists".into())),
            other => other?,
        };
        w.record(
            AuditDraft::system("user.created", None)
                .subject("user", &id)
                .properties(json!({"email": email})),
        );
        w.commit().await?;
        Ok(id)
    }

    /// Sets a person's dashboard password and ends every session they have, in one transaction:
    /// whoever signed in with the old password is signed out at their next request, on any
    /// replica. Audited as `user.password_changed` with the number of sessions ended.
    pub async fn set_password(&self, email: &str, password: &str) -> Result<u64> {
        if password.chars().count() < 12 {
            return Err(Error::field("password", "must be at least 12 characters"));
        }
        let hash = hash_password(password)?;
        let mut w = self.audited().await?;
        let user_id = self.user_id_by_email(w.conn(), email).await?;
        users::set_password_hash(w.conn(), &user_id, &hash).await?;
        let ended = crate::store::sessions::revoke_all_of(w.conn(), &user_id, now_ms()).await?;
        w.record(
            AuditDraft::system("user.password_changed", None)
                .subject("user", &user_id)
                .properties(json!({"sessions_ended": ended})),
        );
        w.commit().await?;
        Ok(ended)
    }

    async fn user_id_by_email(&self, conn: &mut crate::store::Conn, email: &str) -> Result<String> {
        let email = normalize_email(email)?;
        users::id_by_email(conn, &email)
            .await?
            .ok_or_else(|| Error::field("email", "no user with this email"))
    }

    async fn team_exists(&self, conn: &mut crate::store::Conn, team_id: &str) -> Result<String> {
        let id = parse_id(team_id).map_err(|_| Error::field("team", "no such team"))?;
        if teams::exists(conn, &id).await? {
            Ok(id)
        } else {
            Err(Error::field("team", "no such team"))
        }
    }

    /// Creates a team with its first owner.
    pub async fn create_team(&self, name: &str, owner_email: &str) -> Result<String> {
        let name = validate_name("name", name, 100)?;
        let mut w = self.audited().await?;
        let owner = self.user_id_by_email(w.conn(), owner_email).await?;
        let (id, now) = (new_id(), now_ms());
        teams::insert(w.conn(), &id, &name, now).await?;
        teams::add_member(w.conn(), &id, &owner, Role::Owner, now).await?;
        let entry = AuditDraft::system("team.created", Some(id.clone()))
            .subject("team", &id)
            .properties(json!({"name": name, "owner_id": owner}));
        w.record(entry);
        w.commit().await?;
        Ok(id)
    }

    /// Adds a person to a team, or changes their role if they are already in it.
    pub async fn set_member_role(&self, team_id: &str, email: &str, role: Role) -> Result<()> {
        let mut w = self.audited().await?;
        let team = self.team_exists(w.conn(), team_id).await?;
        let user = self.user_id_by_email(w.conn(), email).await?;
        let before = teams::role_of(w.conn(), &team, &user).await?;
        let event = if let Some(was) = &before {
            teams::set_role(w.conn(), &team, &user, role).await?;
            // A lower role voids what their tokens were waiting to be approved for: an approval
            // was asked for under the rights they had.
            if was.parse::<Role>().is_ok_and(|was| role.is_below(was)) {
                w.void_approvals(
                    crate::store::approvals::Voids::Owner {
                        team_id: &team,
                        user_id: &user,
                    },
                    "role_lowered",
                )
                .await?;
            }
            "team.member_role_changed"
        } else {
            teams::add_member(w.conn(), &team, &user, role, now_ms()).await?;
            "team.member_added"
        };
        let entry = AuditDraft::system(event, Some(team.clone()))
            .subject("user", &user)
            .properties(json!({"changes": {"role": {"from": before, "to": role.as_str()}}}));
        w.record(entry);
        w.commit().await?;
        Ok(())
    }

    /// Removes a person from a team; their tokens for it stop working at the next request.
    pub async fn remove_member(&self, team_id: &str, email: &str) -> Result<()> {
        let mut w = self.audited().await?;
        let team = self.team_exists(w.conn(), team_id).await?;
        let user = self.user_id_by_email(w.conn(), email).await?;
        if !teams::remove_member(w.conn(), &team, &user).await? {
            return Err(Error::field("email", "this user is not in the team"));
        }
        // Their tokens for this team die with the membership: adding them back later must not
        // bring an old, possibly leaked, token back to life.
        let revoked = tokens::revoke_all_of_member(w.conn(), &team, &user, MEMBER_REMOVED).await?;
        w.void_approvals(
            crate::store::approvals::Voids::Owner {
                team_id: &team,
                user_id: &user,
            },
            "member_removed",
        )
        .await?;
        // Their OAuth grants in it too (their access tokens are among the tokens above; this
        // kills the refresh tokens).
        let now = crate::store::now_ms();
        for grant in crate::store::oauth_grants::live_grant_ids_of_member(w.conn(), &team, &user).await? {
            crate::store::oauth_grants::revoke_grant(w.conn(), &grant, MEMBER_REMOVED, None, now).await?;
            w.record(
                AuditDraft::system("oauth.grant_revoked", Some(team.clone()))
                    .subject("oauth_grant", &grant)
                    .properties(json!({"reason": MEMBER_REMOVED, "owner_id": user})),
            );
        }
        w.record(
            AuditDraft::system("team.member_removed", Some(team.clone()))
                .subject("user", &user)
                .properties(json!({"tokens_revoked": revoked.len()})),
        );
        for id in revoked {
            let entry = AuditDraft::system("token.revoked", Some(team.clone()))
                .subject("token", &id)
                .properties(json!({"reason": MEMBER_REMOVED, "owner_id": user}));
            w.record(entry);
        }
        w.commit().await?;
        Ok(())
    }

    /// `memberpass project create`: the same validation and insert as `create_project`.
    pub async fn create_project_system(&self, team_id: &str, name: &str, handle: Option<&str>) -> Result<String> {
        let args = CreateProjectArgs {
            name: name.to_owned(),
            handle: handle.map(str::to_owned),
            description: None,
        };
        let mut w = self.audited().await?;
        let team = self.team_exists(w.conn(), team_id).await?;
        let project = create_in(w.conn(), &team, &args).await?;
        let mut entry = AuditDraft::system("create_project", Some(team.clone()))
            .subject("project", &project.id)
            .properties(json!({"name": project.name, "handle": project.handle}));
        entry.project_id = Some(project.id.to_string());
        w.record(entry);
        w.commit().await?;
        Ok(project.id.into())
    }
}
