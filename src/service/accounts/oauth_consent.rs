//! The authorization endpoint's operations (issue 19 item 3): checking an authorization
//! request, the consent form bound to it server-side, the person's answer (a grant and a code,
//! or a refusal). Every change commits with its entries: `oauth.consent_granted`,
//! `oauth.code_issued`, `oauth.consent_denied`, `oauth.grant_revoked` (a replaced grant).

use serde_json::json;

use super::oauth_clients::OAuthClient;
use crate::domain::ability::Ability;
use crate::domain::error::{Error, Result};
use crate::domain::ids::new_id;
use crate::domain::oauth::issuer;
use crate::domain::oauth_flow::{
    CODE_TTL_MS, REQUEST_TTL_MS, is_s256_challenge, redirect_key, redirect_matches, resource_of, scope_abilities,
    with_query,
};
use crate::domain::role::Role;
use crate::domain::token::{TokenDigest, random_base62};
use crate::service::{Caller, Service};
use crate::store::now_ms;
use crate::store::oauth_grants::{self as store, CodeRow, GrantRow, RequestRow};

/// The query of `GET /authorize`, as sent.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub state: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
}

/// Why an authorization request is refused.
#[derive(Debug)]
pub enum AuthorizeRefusal {
    /// Shown in the browser, never sent anywhere: the client or its redirect is not known.
    Page(&'static str),
    /// Sent back to the client: its redirect URI with `error`, `error_description`, `state`
    /// and `iss`.
    Redirect(String),
}

/// An authorization request that passed every check, waiting for a signed-in person.
#[derive(Clone, Debug)]
pub struct CheckedRequest {
    pub client: OAuthClient,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub state: Option<String>,
    pub resource: String,
    pub scope: Option<String>,
}

/// A team the consent form offers: the person's role there and its projects.
#[derive(Clone, Debug)]
pub struct ConsentTeam {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub projects: Vec<(String, String)>,
}

/// What the consent page shows, and the handle its form carries.
#[derive(Clone, Debug)]
pub struct Consent {
    pub handle: String,
    pub request: CheckedRequest,
    pub teams: Vec<ConsentTeam>,
    /// The abilities the scope asked for (shown as "requested"; never pre-selected beyond the
    /// read-only preset).
    pub requested: Vec<Ability>,
}

/// The person's answer to a consent form.
#[derive(Clone, Debug, Default)]
pub struct ConsentAnswer {
    pub handle: String,
    pub allow: bool,
    pub team: String,
    pub projects: Vec<String>,
    pub abilities: Vec<String>,
}

/// The digest a handle, a code or a consent form is stored as.
fn digest(secret: &str) -> String {
    TokenDigest::of(secret).as_str().to_owned()
}

/// One more ability than a grant needs on its own: an OAuth grant always speaks MCP.
fn with_gate(mut abilities: Vec<Ability>) -> Vec<Ability> {
    if !abilities.contains(&Ability::McpFull) {
        abilities.push(Ability::McpFull);
    }
    abilities.sort();
    abilities.dedup();
    abilities
}

impl Service {
    /// The issuer (`iss` of every answer, RFC 9207).
    pub fn oauth_issuer(&self) -> String {
        issuer(&self.config.public_url)
    }

    /// Checks `GET /authorize` (see the README's OAuth section for the order): the client and
    /// its redirect first — refused on a page, never by a redirect — then the rest, refused by a
    /// redirect to the client.
    pub async fn check_authorization(
        &self,
        p: &AuthorizeParams,
    ) -> Result<std::result::Result<CheckedRequest, AuthorizeRefusal>> {
        let Some(client_id) = p.client_id.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(Err(AuthorizeRefusal::Page("The request names no client (client_id).")));
        };
        let Some(client) = self.oauth_client(client_id).await? else {
            return Ok(Err(AuthorizeRefusal::Page(
                "The application asking for access is not known to MemberPass.",
            )));
        };
        let Some(redirect_uri) = p.redirect_uri.clone().filter(|r| !r.is_empty()) else {
            return Ok(Err(AuthorizeRefusal::Page(
                "The request names no redirect_uri; MemberPass needs it to answer the application.",
            )));
        };
        if !client.redirect_uris.iter().any(|r| redirect_matches(r, &redirect_uri)) {
            return Ok(Err(AuthorizeRefusal::Page(
                "The application asked to be answered at an address it did not register. Nothing was sent to it.",
            )));
        }
        let refuse = |error: &str, description: &str| {
            let mut pairs = vec![("error", error), ("error_description", description)];
            if let Some(state) = p.state.as_deref() {
                pairs.push(("state", state));
            }
            let iss = self.oauth_issuer();
            pairs.push(("iss", &iss));
            Ok(Err(AuthorizeRefusal::Redirect(with_query(&redirect_uri, &pairs))))
        };
        match p.response_type.as_deref() {
            Some("code") => {}
            None => return refuse("invalid_request", "response_type is required"),
            Some(_) => return refuse("unsupported_response_type", "only response_type=code is supported"),
        }
        let Some(challenge) = p.code_challenge.as_deref().filter(|c| !c.is_empty()) else {
            return refuse(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            );
        };
        if p.code_challenge_method.as_deref() != Some("S256") {
            return refuse("invalid_request", "code_challenge_method must be S256");
        }
        if !is_s256_challenge(challenge) {
            return refuse(
                "invalid_request",
                "code_challenge must be 43 base64url characters (S256)",
            );
        }
        let Some(resource) = resource_of(&self.config.public_url, p.resource.as_deref()) else {
            return refuse("invalid_target", "resource must be this server's /mcp endpoint");
        };
        if p.state.as_deref().is_some_and(|s| s.len() > 2000) || p.scope.as_deref().is_some_and(|s| s.len() > 4000) {
            return refuse("invalid_request", "state or scope is too long");
        }
        Ok(Ok(CheckedRequest {
            client,
            redirect_uri,
            code_challenge: challenge.to_owned(),
            state: p.state.clone(),
            resource,
            scope: p.scope.clone(),
        }))
    }

    /// Stores a checked request for the signed-in person (10 minutes, answered once, by them
    /// only) and gathers what the consent page offers them.
    pub async fn open_consent(&self, caller: &Caller, request: CheckedRequest) -> Result<Consent> {
        let person = caller.in_team()?;
        let handle = random_base62(43);
        let now = now_ms();
        let mut conn = self.db.pool().acquire().await?;
        let mut teams = Vec::new();
        for (id, name, role) in store::memberships(&mut conn, &person.user_id).await? {
            let Ok(role) = role.parse::<Role>() else { continue };
            let projects = store::team_projects(&mut conn, &id).await?;
            teams.push(ConsentTeam {
                id,
                name,
                role,
                projects,
            });
        }
        drop(conn);
        // The session's team first: it is the one selected.
        teams.sort_by_key(|t| t.id != person.team_id.as_str());
        let mut w = self.audited().await?;
        // Requests expired for a day are forgotten as new ones arrive (no sweeper needed).
        store::sweep_requests(w.conn(), now - crate::domain::time::DAY_MS).await?;
        store::insert_request(
            w.conn(),
            &RequestRow {
                handle_digest: digest(&handle),
                client_id: request.client.id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                state: request.state.clone(),
                resource: request.resource.clone(),
                scope: request.scope.clone(),
                user_id: Some(person.user_id.to_string()),
                created_at: now,
                expires_at: now + REQUEST_TTL_MS,
                answered_at: None,
            },
        )
        .await?;
        w.commit().await?;
        let requested = request.scope.as_deref().map(scope_abilities).unwrap_or_default();
        Ok(Consent {
            handle,
            request,
            teams,
            requested,
        })
    }

    /// The person's answer: the form must be theirs, unanswered and unexpired. Deny answers the
    /// client `access_denied`; allow checks the choice (one team the person is in, abilities
    /// their role there holds — at least one beyond `mcp:full` — and projects of that team),
    /// replaces an earlier grant of the same client and redirect, and issues a code. Answers
    /// the URL the browser is sent to.
    pub async fn answer_consent(&self, caller: &Caller, answer: ConsentAnswer) -> Result<String> {
        let person = caller.in_team()?;
        let now = now_ms();
        let mut w = self.audited().await?;
        let handle_digest = digest(&answer.handle);
        let request = store::find_request(w.conn(), &handle_digest)
            .await?
            .filter(|r| r.user_id.as_deref() == Some(person.user_id.as_str()))
            .ok_or(Error::NotFound)?;
        if request.answered_at.is_some() {
            return Err(Error::Conflict(
                "This consent form was already answered. Start again from the application.".into(),
            ));
        }
        if request.expires_at <= now {
            return Err(Error::Conflict(
                "This consent form has expired (they last 10 minutes). Start again from the application.".into(),
            ));
        }
        let iss = self.oauth_issuer();
        let answer_to = |first: (&str, &str)| {
            let mut pairs = vec![first];
            if let Some(state) = request.state.as_deref() {
                pairs.push(("state", state));
            }
            pairs.push(("iss", iss.as_str()));
            with_query(&request.redirect_uri, &pairs)
        };
        if !answer.allow {
            if !store::answer_request(w.conn(), &handle_digest, now).await? {
                return Err(Error::Conflict("This consent form was already answered.".into()));
            }
            w.record(
                caller
                    .draft("oauth.consent_denied", &person.team_id)
                    .subject("oauth_client", &request.client_id)
                    .properties(json!({"client_id": request.client_id, "redirect_uri": request.redirect_uri})),
            );
            w.commit().await?;
            return Ok(answer_to(("error", "access_denied")));
        }
        let (team_id, abilities, projects) = self.check_choice(&mut w, &person.user_id, &answer).await?;
        if !store::answer_request(w.conn(), &handle_digest, now).await? {
            return Err(Error::Conflict("This consent form was already answered.".into()));
        }
        // Re-authorising the same client and redirect (the loopback port aside) replaces the
        // earlier grant, its tokens with it.
        let key = redirect_key(&request.redirect_uri);
        let mut replaced = Vec::new();
        for old in store::live_grants_of_client(w.conn(), &request.client_id, &person.user_id).await? {
            if redirect_key(&old.redirect_uri) == key
                && store::revoke_grant(w.conn(), &old.id, "replaced", Some(&person.user_id), now).await?
            {
                w.void_approvals(crate::store::approvals::Voids::Grant(&old.id), "token_revoked")
                    .await?;
                w.record(
                    caller
                        .draft("oauth.grant_revoked", &old.team_id)
                        .subject("oauth_grant", &old.id)
                        .properties(json!({"reason": "replaced", "client_id": old.client_id})),
                );
                replaced.push(old.id);
            }
        }
        let grant = GrantRow {
            id: new_id(),
            client_id: request.client_id.clone(),
            user_id: person.user_id.to_string(),
            team_id: team_id.clone(),
            abilities: json!(abilities).to_string(),
            project_ids: (!projects.is_empty()).then(|| json!(projects).to_string()),
            redirect_uri: request.redirect_uri.clone(),
            resource: request.resource.clone(),
            created_at: now,
            last_used_at: None,
            use_count: 0,
            revoked_at: None,
            revoked_reason: None,
            revoked_by: None,
        };
        store::insert_grant(w.conn(), &grant).await?;
        let code = random_base62(43);
        store::insert_code(
            w.conn(),
            &CodeRow {
                code_digest: digest(&code),
                grant_id: grant.id.clone(),
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                resource: request.resource.clone(),
                created_at: now,
                expires_at: now + CODE_TTL_MS,
                used_at: None,
                access_token_id: None,
                refresh_token_id: None,
            },
        )
        .await?;
        w.record(
            caller
                .draft("oauth.consent_granted", &team_id)
                .subject("oauth_grant", &grant.id)
                .properties(json!({
                    "client_id": grant.client_id, "redirect_uri": grant.redirect_uri, "abilities": abilities,
                    "project_ids": projects, "resource": grant.resource, "requested_scope": request.scope,
                    "replaced_grants": replaced,
                })),
        );
        w.record(
            caller
                .draft("oauth.code_issued", &team_id)
                .subject("oauth_grant", &grant.id)
                .properties(json!({"client_id": grant.client_id, "expires_in_seconds": CODE_TTL_MS / 1000})),
        );
        w.commit().await?;
        Ok(answer_to(("code", code.as_str())))
    }

    /// Checks what the person ticked against their role in the team they chose.
    async fn check_choice(
        &self,
        w: &mut crate::service::core::audited::Audited,
        user_id: &str,
        answer: &ConsentAnswer,
    ) -> Result<(String, Vec<Ability>, Vec<String>)> {
        let team_id =
            crate::domain::ids::parse_id(answer.team.trim()).map_err(|_| Error::field("team", "no such team"))?;
        let role: Role = crate::store::teams::role_of(w.conn(), &team_id, user_id)
            .await?
            .ok_or_else(|| Error::field("team", "you are not in this team"))?
            .parse()
            .map_err(|e: String| Error::Internal(anyhow::anyhow!(e)))?;
        let mut abilities = Vec::new();
        for name in &answer.abilities {
            let a: Ability = name
                .parse()
                .map_err(|e: crate::domain::ability::UnknownAbility| Error::field("abilities", e.to_string()))?;
            if !role.holds(a) {
                return Err(Error::field(
                    "abilities",
                    format!("your {role} role in this team does not hold `{a}`"),
                ));
            }
            abilities.push(a);
        }
        let abilities = with_gate(abilities);
        if abilities.len() < 2 {
            return Err(Error::field(
                "abilities",
                "pick at least one ability: a connection that may do nothing is not granted",
            ));
        }
        let mut projects = Vec::new();
        for pid in &answer.projects {
            let pid = crate::domain::ids::parse_id(pid)
                .map_err(|_| Error::field("projects", "no such project in this team"))?;
            crate::store::projects::find_in_team(w.conn(), &team_id, &pid)
                .await?
                .ok_or_else(|| Error::field("projects", "a chosen project is not in the chosen team"))?;
            if !projects.contains(&pid) {
                projects.push(pid);
            }
        }
        Ok((team_id, abilities, projects))
    }
}
