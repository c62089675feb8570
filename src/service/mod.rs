//! The one service layer. Every surface (REST, MCP, dashboard, CLI) calls these operations;
//! each one checks the ability and the tenancy, acts, and writes its audit entry in one
//! transaction (`run`).

pub mod access_codes;
pub mod activity;
pub mod admin;
pub mod args;
pub mod auth;
pub mod catalog;
pub mod demo;
pub mod members;
pub mod page;
pub mod plans;
pub mod projects;
pub mod resources;
pub mod teams;
pub mod tokens;

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::ability::{Ability, AbilitySet};
use crate::domain::audit::{ActorKind, AuditDraft, Outcome, RequestCtx};
use crate::domain::error::{Error, Result};
use crate::domain::role::Role;
use crate::domain::token::TokenEnv;
use crate::store::{Conn, Db, Tx, audit, now_ms};
use catalog::Op;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub env: TokenEnv,
    /// Where the portal and docs links point.
    pub public_url: String,
}

#[derive(Clone, Debug)]
pub struct Service {
    db: Db,
    config: ServiceConfig,
    /// Wakes this process's job worker when a job is queued here (others poll).
    jobs_waiting: std::sync::Arc<tokio::sync::Notify>,
}

/// Who is calling: resolved from a token on every request, never cached across requests.
#[derive(Clone, Debug)]
pub struct Principal {
    pub token_id: String,
    pub token_name: String,
    pub team_id: String,
    pub user_id: String,
    pub user_email: String,
    pub user_name: String,
    pub role: Role,
    /// The token's own abilities, as minted.
    pub abilities: AbilitySet,
    pub project_ids: Option<Vec<String>>,
    pub actor: ActorKind,
    pub ctx: RequestCtx,
    pub idempotency: Option<IdempotencyKey>,
}

/// An `Idempotency-Key` with the fingerprint of the request it came with.
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    pub key: String,
    pub fingerprint: String,
}

impl Principal {
    /// Effective permission: the token's abilities ∩ what the owner's role holds now.
    pub fn can(&self, ability: Ability) -> bool {
        self.abilities.contains(&ability) && self.role.holds(ability)
    }

    pub fn effective_abilities(&self) -> AbilitySet {
        self.abilities.iter().copied().filter(|a| self.role.holds(*a)).collect()
    }

    pub fn sees_project(&self, project_id: &str) -> bool {
        self.project_ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|p| p == project_id))
    }

    fn draft(&self, event: &str, outcome: Outcome) -> AuditDraft {
        AuditDraft {
            team_id: Some(self.team_id.clone()),
            project_id: None,
            actor_kind: self.actor,
            causer_id: Some(self.user_id.clone()),
            token_id: Some(self.token_id.clone()),
            event: event.to_owned(),
            subject_type: None,
            subject_id: None,
            properties: json!({}),
            outcome,
            error_code: None,
            ctx: self.ctx.clone(),
        }
    }
}

/// One operation in flight: its transaction and what its audit entry will say. Only [`Service::run`]
/// builds one, after the ability check, so holding a `Call` is the proof a write was permitted.
pub struct Call {
    tx: Tx,
    pub principal: Principal,
    subject_id: Option<String>,
    project_id: Option<String>,
    changes: Option<Value>,
    extra: serde_json::Map<String, Value>,
}

impl Call {
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.tx
    }

    pub fn subject(&mut self, id: &str) {
        self.subject_id = Some(id.to_owned());
    }

    pub fn in_project(&mut self, project_id: &str) {
        self.project_id = Some(project_id.to_owned());
    }

    /// `changes: {field: {from, to}}` for the audit entry.
    pub fn changes(&mut self, changes: Value) {
        self.changes = Some(changes);
    }

    pub fn note(&mut self, key: &str, value: Value) {
        self.extra.insert(key.to_owned(), value);
    }

    pub fn team_id(&self) -> String {
        self.principal.team_id.clone()
    }

    /// Checks an ability beyond the operation's own (e.g. scope rules); audit says denied.
    pub fn require(&self, ability: Ability) -> Result<()> {
        if self.principal.can(ability) {
            Ok(())
        } else {
            Err(Error::missing(ability))
        }
    }

    /// Refuses anything outside the token's projects; a project the token cannot see does not exist.
    pub fn check_project(&mut self, project_id: &str) -> Result<()> {
        if self.principal.sees_project(project_id) {
            self.in_project(project_id);
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }
}

/// What an operation returns on success: the `data` of the response, and `meta` for lists.
#[derive(Debug, Serialize)]
pub struct Output {
    pub data: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

impl Output {
    pub fn one<T: Serialize>(v: T) -> Result<Output> {
        Ok(Output {
            data: to_value(v)?,
            meta: None,
        })
    }

    pub fn list<T: Serialize>(items: Vec<T>, meta: Value) -> Result<Output> {
        Ok(Output {
            data: to_value(items)?,
            meta: Some(meta),
        })
    }
}

fn to_value<T: Serialize>(v: T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Internal(e.into()))
}

/// A response saved under an Idempotency-Key and replayed as it was.
#[derive(Debug, Clone)]
pub struct Replay {
    pub status: u16,
    pub body: String,
}

/// The result of an operation as a surface sees it.
pub enum Done {
    Fresh(Output),
    Replayed(Replay),
}

impl Service {
    pub fn new(db: Db, config: ServiceConfig) -> Self {
        Service {
            db,
            config,
            jobs_waiting: Default::default(),
        }
    }

    /// Runs queued jobs until `shutdown` fires: woken by new jobs here, polling for other replicas'.
    pub async fn run_jobs(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.try_run_one_job().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::error!(error = ?e, "job worker"),
            }
            tokio::select! {
                _ = self.jobs_waiting.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// Runs one operation: ability check → transaction → body → audit entry → commit.
    /// A failure rolls the body back and records the refusal in an entry of its own.
    pub async fn run<F>(&self, p: &Principal, op: Op, subject_id: Option<&str>, args: Value, body: F) -> Result<Done>
    where
        F: for<'c> FnOnce(&'c mut Call) -> BoxFuture<'c, Result<Output>> + Send,
    {
        let spec = op.spec();
        // Kept only when it looks like an id (UUID or token ID): junk from a path stays out of the log.
        let subject_id = subject_id
            .filter(|s| s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .map(str::to_owned);
        let mut entry = p.draft(spec.event, Outcome::Success);
        entry.subject_type = Some(spec.subject_type.to_owned());
        entry.subject_id = subject_id.clone();
        entry.properties = args;

        if let Some(ability) = spec.ability
            && !p.can(ability)
        {
            return Err(self.record_failure(entry, Error::missing(ability)).await);
        }

        let mut tx = self.db.begin_write().await?;
        let idem = match (&p.idempotency, spec.method) {
            (Some(k), "POST") => Some(k),
            _ => None,
        };
        if let Some(k) = idem
            && let Some(replay) = saved_response(&mut tx, &p.token_id, k).await?
        {
            entry.properties["idempotent_replay"] = json!(true);
            audit::append(&mut tx, entry).await?;
            tx.commit().await?;
            return Ok(Done::Replayed(replay));
        }

        let mut call = Call {
            tx,
            principal: p.clone(),
            subject_id,
            project_id: None,
            changes: None,
            extra: Default::default(),
        };
        match body(&mut call).await {
            Ok(output) => {
                let Call {
                    mut tx,
                    subject_id,
                    project_id,
                    changes,
                    extra,
                    ..
                } = call;
                entry.subject_id = subject_id;
                entry.project_id = project_id;
                if let Some(changes) = changes {
                    entry.properties["changes"] = changes;
                }
                for (k, v) in extra {
                    entry.properties[k] = v;
                }
                audit::append(&mut tx, entry).await?;
                if let Some(k) = idem {
                    save_response(&mut tx, &p.token_id, k, spec.success_status, &output).await?;
                }
                tx.commit().await?;
                Ok(Done::Fresh(output))
            }
            Err(e) => {
                let Call {
                    tx,
                    subject_id,
                    project_id,
                    ..
                } = call;
                tx.rollback().await?;
                entry.subject_id = subject_id;
                entry.project_id = project_id;
                Err(self.record_failure(entry, e).await)
            }
        }
    }

    /// Audits a call the HTTP layer refused before the operation ran (bad body, query or id).
    pub async fn record_rejected(&self, p: &Principal, op: Op, error: &Error) -> sqlx::Result<()> {
        let spec = op.spec();
        let mut entry = p.draft(spec.event, Outcome::Failed);
        entry.subject_type = Some(spec.subject_type.to_owned());
        entry.outcome = if error.outcome() == "denied" {
            Outcome::Denied
        } else {
            Outcome::Failed
        };
        entry.error_code = Some(error.code().as_str());
        if let Error::Validation(fields) = error {
            entry.properties = json!({ "invalid_fields": fields.keys().collect::<Vec<_>>() });
        }
        self.append_alone(entry).await
    }

    /// Writes the entry of a refused or failed call in its own transaction.
    async fn record_failure(&self, mut entry: AuditDraft, e: Error) -> Error {
        entry.outcome = if e.outcome() == "denied" {
            Outcome::Denied
        } else {
            Outcome::Failed
        };
        entry.error_code = Some(e.code().as_str());
        if let Error::MissingAbility(a, _) = &e {
            entry.properties["required_ability"] = json!(a.as_str());
        }
        match self.append_alone(entry).await {
            Ok(()) => e,
            Err(audit_err) => {
                tracing::error!(error = ?audit_err, "could not record a refused call");
                Error::Internal(audit_err.into())
            }
        }
    }

    /// Appends one entry in a transaction of its own (refusals, auth failures, CLI events).
    pub async fn append_alone(&self, entry: AuditDraft) -> sqlx::Result<()> {
        let mut tx = self.db.begin_write().await?;
        audit::append(&mut tx, entry).await?;
        tx.commit().await
    }
}

const IDEMPOTENCY_TTL_MS: i64 = crate::domain::time::DAY_MS;

async fn saved_response(tx: &mut Tx, token_id: &str, k: &IdempotencyKey) -> Result<Option<Replay>> {
    sqlx::query("DELETE FROM idempotency_keys WHERE token_id = $1 AND idem_key = $2 AND created_at < $3")
        .bind(token_id)
        .bind(&k.key)
        .bind(now_ms() - IDEMPOTENCY_TTL_MS)
        .execute(&mut **tx)
        .await?;
    let row: Option<(String, i64, String)> =
        sqlx::query_as("SELECT fingerprint, status, body FROM idempotency_keys WHERE token_id = $1 AND idem_key = $2")
            .bind(token_id)
            .bind(&k.key)
            .fetch_optional(&mut **tx)
            .await?;
    match row {
        None => Ok(None),
        Some((fingerprint, _, _)) if fingerprint != k.fingerprint => Err(Error::IdempotencyKeyReused),
        Some((_, status, body)) => Ok(Some(Replay {
            status: status as u16,
            body,
        })),
    }
}

async fn save_response(tx: &mut Tx, token_id: &str, k: &IdempotencyKey, status: u16, output: &Output) -> Result<()> {
    let body = serde_json::to_string(output).map_err(|e| Error::Internal(e.into()))?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (token_id, idem_key, fingerprint, status, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_id)
    .bind(&k.key)
    .bind(&k.fingerprint)
    .bind(i64::from(status))
    .bind(body)
    .bind(now_ms())
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if crate::store::is_unique_violation(&e) => Err(Error::Conflict(
            "a request with this Idempotency-Key is already in progress".into(),
        )),
        Err(e) => Err(e.into()),
    }
}
