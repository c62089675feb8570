//! The one path every call takes: ability check → arguments → transaction → body → audit entry
//! → commit. A refusal at any step is answered and audited here, so no surface can forget it.

use serde_json::{Value, json};

use super::Service;
use super::args::from_json;
use super::batch::Written;
use super::idempotency::{self, IdempotencyKey};
use super::op::{Done, Input, Operation, Spec};
use super::principal::Principal;
use crate::domain::ability::Ability;
use crate::domain::audit::{AuditDraft, Outcome, RequestCtx};
use crate::domain::error::{Error, Result};
use crate::domain::role::Role;
use crate::store::teams as store_teams;
use crate::store::tokens as store_tokens;
use crate::store::{Conn, Tx, audit};

/// One operation in flight: its transaction and what its audit entry will say. Only the call
/// path builds one, after the ability check, so holding a `Call` is the proof a write was
/// permitted.
pub struct Call {
    tx: Tx,
    pub principal: Principal,
    config: std::sync::Arc<super::ServiceConfig>,
    subject_id: Option<String>,
    project_id: Option<String>,
    changes: Option<Value>,
    wakes_jobs: bool,
}

impl Call {
    fn new(tx: Tx, principal: Principal, config: std::sync::Arc<super::ServiceConfig>, entry: &AuditDraft) -> Call {
        Call {
            tx,
            principal,
            config,
            subject_id: entry.subject_id.clone(),
            project_id: None,
            changes: None,
            wakes_jobs: false,
        }
    }

    pub fn conn(&mut self) -> &mut Conn {
        &mut self.tx
    }

    pub fn config(&self) -> &super::ServiceConfig {
        &self.config
    }

    /// Names the entity acted on (a creation names what it created).
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

    pub fn team_id(&self) -> String {
        self.principal.team_id.clone()
    }

    /// The process's job worker is woken once this call commits.
    pub fn wake_jobs(&mut self) {
        self.wakes_jobs = true;
    }

    /// Checks an ability beyond the operation's own (e.g. scope rules); audit says denied.
    pub fn require(&self, ability: Ability) -> Result<()> {
        if self.principal.can(ability) {
            Ok(())
        } else {
            Err(Error::missing(ability))
        }
    }

    /// Refuses anything outside the caller's projects; a project it cannot see does not exist.
    pub fn check_project(&mut self, project_id: &str) -> Result<()> {
        if self.principal.sees_project(project_id) {
            self.in_project(project_id);
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }
}

impl Service {
    /// Calls an operation with JSON arguments, as every surface does: the ability is checked
    /// first (whatever the arguments), then the arguments are read into the operation's type,
    /// then it runs. Every outcome, refusals included, leaves one audit entry.
    pub async fn call(&self, op: &dyn super::op::Op, p: &Principal, ctx: &RequestCtx, input: Input) -> Result<Done> {
        op.call(self, p, ctx, input).await
    }

    /// Calls an operation with typed arguments, for in-process callers.
    pub async fn invoke<O: Operation>(&self, p: &Principal, ctx: &RequestCtx, args: O::Args) -> Result<Done> {
        let value = super::to_value(&args)?;
        let entry = draft(p, ctx, &O::SPEC, Some(&value));
        let entry = self.check_ability(&O::SPEC, p, entry, Some(&value)).await?;
        self.run::<O>(p, args, entry, None).await
    }

    pub(super) async fn call_json<O: Operation>(&self, p: &Principal, ctx: &RequestCtx, input: Input) -> Result<Done> {
        let spec = O::SPEC;
        let raw = input.args.as_ref().ok();
        let entry = draft(p, ctx, &spec, raw);
        let entry = self.check_ability(&spec, p, entry, raw).await?;
        let read = input.args.and_then(|value| {
            let key = match (spec.replayable, input.idempotency_key) {
                (true, Some(key)) => Some(IdempotencyKey::new(
                    p.idempotency_owner(),
                    valid_key(key)?,
                    &spec,
                    &value,
                )),
                _ => None,
            };
            Ok((from_json::<O::Args>(value)?, key))
        });
        match read {
            Ok((args, key)) => self.run::<O>(p, args, entry, key).await,
            Err(e) => Err(self.record_refused_input(entry, e).await),
        }
    }

    /// Passes the entry on when the caller holds the operation's ability; otherwise records the
    /// refusal with the names of the arguments sent, never their values: they were not read, so
    /// nothing checked them for tokens or size.
    async fn check_ability(
        &self,
        spec: &Spec,
        p: &Principal,
        mut entry: AuditDraft,
        args: Option<&Value>,
    ) -> Result<AuditDraft> {
        match spec.ability {
            Some(ability) if !p.can(ability) => {
                if let Some(args) = args {
                    entry.properties = crate::domain::audit::argument_keys(args);
                }
                Err(self.record_failure(entry, Error::missing(ability)).await)
            }
            _ => Ok(entry),
        }
    }

    /// A read runs here and hands its entry to the batch writer; a write runs inside the batch.
    async fn run<O: Operation>(
        &self,
        p: &Principal,
        args: O::Args,
        mut entry: AuditDraft,
        key: Option<IdempotencyKey>,
    ) -> Result<Done> {
        // What the entry records is the arguments as the operation read them.
        entry.properties = super::to_value(&args)?;
        if !O::SPEC.is_write() && key.is_none() {
            return self.run_read::<O>(p, args, entry).await;
        }
        let p = p.clone();
        let config = self.config.clone();
        let job: super::batch::WriteJob =
            Box::new(move |tx, entry| Box::pin(run_write::<O>(tx, p, config, args, entry, key)));
        self.batch.write(entry, job).await
    }

    fn new_call(&self, tx: Tx, p: &Principal, entry: &AuditDraft) -> Call {
        Call::new(tx, p.clone(), self.config.clone(), entry)
    }

    /// A read: the body in a read transaction of its own, then the entry through the batch
    /// writer (group commit), which re-checks the caller under the chain's lock. The answer
    /// waits for the commit that holds its entry.
    async fn run_read<O: Operation>(&self, p: &Principal, args: O::Args, mut entry: AuditDraft) -> Result<Done> {
        let mut call = self.new_call(self.db.begin_read().await?, p, &entry);
        let result = O::run(&mut call, args).await;
        let Call {
            tx,
            subject_id,
            project_id,
            ..
        } = call;
        tx.rollback().await?;
        entry.subject_id = subject_id;
        entry.project_id = project_id;
        match result {
            Ok(output) => {
                self.batch.append_checked(p, O::SPEC.ability, entry).await?;
                Ok(Done {
                    output,
                    replayed: false,
                })
            }
            Err(e) => Err(self.record_failure(entry, e).await),
        }
    }

    /// Audits input refused before the body ran: which fields, never their values.
    async fn record_refused_input(&self, mut entry: AuditDraft, e: Error) -> Error {
        entry.properties = match &e {
            Error::Validation(fields) => json!({ "invalid_fields": fields.keys().collect::<Vec<_>>() }),
            _ => json!({}),
        };
        self.record_failure(entry, e).await
    }

    /// Writes the entry of a refused or failed call (through the batch writer).
    async fn record_failure(&self, mut entry: AuditDraft, e: Error) -> Error {
        mark_refused(&mut entry, &e);
        match self.batch.append(entry).await {
            Ok(()) => e,
            Err(audit_err) => {
                tracing::error!(error = ?audit_err, "could not record a refused call");
                audit_err
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

/// A write inside its batch (in a savepoint the batch rolls back when the answer is an error):
/// the caller re-checked under the chain's lock the batch holds, then a replay or the body, then
/// the saved output. Whatever happens, the entry that comes back says it.
async fn run_write<O: Operation>(
    mut tx: Tx,
    p: Principal,
    config: std::sync::Arc<super::ServiceConfig>,
    args: O::Args,
    mut entry: AuditDraft,
    key: Option<IdempotencyKey>,
) -> (Tx, Written) {
    let refused = |mut entry: AuditDraft, e: Error| {
        mark_refused(&mut entry, &e);
        Written {
            entry,
            answer: Err(e),
            wakes_jobs: false,
        }
    };
    // Every revocation, removal and role change commits with an entry of its own, so under the
    // chain's lock it has either committed (and is seen here) or waits for this batch: nothing
    // commits for a token once its revocation has. (No row of the token is locked: a busy token
    // must never hold its revocation back.)
    if let Err((e, reason)) = still_allowed(&mut tx, &p, O::SPEC.ability).await {
        if let Some(reason) = reason {
            entry.properties = json!({ "reason": reason });
        }
        return (tx, refused(entry, e));
    }
    if let Some(k) = &key {
        match idempotency::saved(&mut tx, k).await {
            Ok(Some(output)) => {
                entry.properties["idempotent_replay"] = json!(true);
                let done = Done { output, replayed: true };
                return (
                    tx,
                    Written {
                        entry,
                        answer: Ok(done),
                        wakes_jobs: false,
                    },
                );
            }
            Ok(None) => {}
            Err(e) => return (tx, refused(entry, e)),
        }
    }
    let mut call = Call::new(tx, p, config, &entry);
    let result = O::run(&mut call, args).await;
    let Call {
        mut tx,
        subject_id,
        project_id,
        changes,
        wakes_jobs,
        ..
    } = call;
    entry.subject_id = subject_id;
    entry.project_id = project_id;
    let output = match result {
        Ok(output) => output,
        Err(e) => return (tx, refused(entry, e)),
    };
    if let Some(changes) = changes {
        entry.properties["changes"] = changes;
    }
    if let Some(k) = &key
        && let Err(e) = idempotency::save(&mut tx, k, O::SPEC.success_status, &output).await
    {
        return (tx, refused(entry, e));
    }
    let done = Done {
        output,
        replayed: false,
    };
    (
        tx,
        Written {
            entry,
            answer: Ok(done),
            wakes_jobs,
        },
    )
}

/// Re-reads, inside a write transaction, what authentication read before it: the token is still
/// live, its owner still in the team, and the role they hold now still grants the operation's
/// ability. A refusal carries the reason for the audit entry.
pub(super) async fn still_allowed(
    tx: &mut Tx,
    p: &Principal,
    ability: Option<Ability>,
) -> Result<(), (Error, Option<&'static str>)> {
    let role = current_role(tx, p).await?;
    if let Some(ability) = ability
        && !p.can_as(role, ability)
    {
        return Err((Error::missing(ability), None));
    }
    Ok(())
}

/// The role the caller holds now, if their token is still live and they are still in the team.
pub(super) async fn current_role(tx: &mut Tx, p: &Principal) -> Result<Role, (Error, Option<&'static str>)> {
    let internal = |e: sqlx::Error| (Error::from(e), None);
    let role = match &p.token {
        Some(token) => {
            let state = store_tokens::state_and_role(tx, &token.id, &p.team_id, &p.user_id)
                .await
                .map_err(internal)?;
            let (revoked, expires, role) = state.ok_or((Error::AuthenticationRequired, Some("unknown_id")))?;
            if revoked.is_some() {
                return Err((Error::AuthenticationRequired, Some("revoked")));
            }
            if expires.is_some_and(|e| e <= crate::store::now_ms()) {
                return Err((Error::AuthenticationRequired, Some("expired")));
            }
            role
        }
        None => store_teams::role_of(tx, &p.team_id, &p.user_id)
            .await
            .map_err(internal)?,
    };
    role.ok_or((Error::AuthenticationRequired, Some("owner_not_in_team")))?
        .parse()
        .map_err(|e: String| (Error::Internal(anyhow::anyhow!("corrupt role: {e}")), None))
}

/// What a refused or failed call's entry says about why.
pub(super) fn mark_refused(entry: &mut AuditDraft, e: &Error) {
    entry.outcome = e.outcome();
    entry.error_code = Some(e.code().as_str());
    if let Error::MissingAbility(a, _) = e {
        entry.properties["required_ability"] = json!(a.as_str());
    }
}

/// The entry a call starts with: who, through which surface, which operation, with what.
fn draft(p: &Principal, ctx: &RequestCtx, spec: &Spec, args: Option<&Value>) -> AuditDraft {
    // The subject is kept only when it looks like an id: junk stays out of the log.
    let subject_id = spec
        .subject_arg
        .and_then(|name| args?.get(name))
        .and_then(Value::as_str)
        .filter(|s| s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_owned);
    AuditDraft {
        team_id: Some(p.team_id.clone()),
        project_id: None,
        actor_kind: p.actor,
        causer_id: Some(p.user_id.clone()),
        token_id: p.token_id().map(str::to_owned),
        event: spec.event.to_owned(),
        subject_type: Some(spec.subject_type.to_owned()),
        subject_id,
        properties: json!({}),
        outcome: Outcome::Success,
        error_code: None,
        ctx: ctx.clone(),
    }
}

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters (inner spaces allowed).
fn valid_key(key: String) -> Result<String> {
    let trimmed = key.trim();
    let ok = !trimmed.is_empty() && trimmed.len() <= 255 && trimmed.bytes().all(|b| (b' '..=b'~').contains(&b));
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err(Error::field(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        ))
    }
}
