//! The one path every call takes: ability check → arguments → transaction → body → audit entry
//! → commit. A refusal at any step is answered and audited here, so no surface can forget it.

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::args::from_json;
use super::authz::{mark_refused, still_allowed};
use super::batch::Written;
use super::call::Call;
use super::caller::Caller;
use super::hold::{self, Gate, Held};
use super::idempotency::{self, IdempotencyKey};
use super::op::{Done, Input, JsonOutput, Operation, Spec};
use super::service::Service;
use crate::domain::audit::{AuditDraft, PAGE_VIEW};
use crate::domain::error::{Error, Result};
use crate::store::{Tx, audit};

impl Service {
    /// Calls an operation with JSON arguments, as every surface does: the ability is checked
    /// first (whatever the arguments), then the arguments are read into the operation's type,
    /// then it runs. Every outcome, refusals included, leaves one audit entry.
    pub async fn call(&self, op: &dyn super::op::DynOp, caller: &Caller, input: Input) -> Result<Done> {
        op.call(self, caller, input).await
    }

    /// Calls an operation with typed arguments, for in-process callers, and answers its typed
    /// output. The same path as [`Service::call`]: ability, body, audit entry, commit.
    pub async fn invoke<O: Operation>(&self, p: &Caller, args: O::Args) -> Result<O::Output> {
        let mut value = super::op::to_value(&args)?;
        // An argument left out is `null` in its type, and no argument the caller gave.
        if let Some(m) = value.as_object_mut() {
            m.retain(|_, v| !v.is_null());
        }
        let started = std::time::Instant::now();
        let done = async {
            let entry = draft(p, &O::SPEC, Some(&value))?;
            let entry = self.check_ability(&O::SPEC, p, entry, Some(&value)).await?;
            let (keep, kept) = oneshot::channel();
            self.run::<O>(p, args, entry, None, Some(keep)).await?;
            typed(kept).await
        }
        .await;
        self.measure(p, &O::SPEC, &done, started);
        done
    }

    /// Counts one call in the metrics: its surface, operation, outcome and time.
    fn measure<T>(&self, p: &Caller, spec: &Spec, r: &Result<T>, started: std::time::Instant) {
        use crate::domain::audit::ActorKind;
        let surface = match p.actor_kind() {
            ActorKind::ApiToken => "rest",
            ActorKind::Mcp => "mcp",
            ActorKind::Human => "dashboard",
            ActorKind::System => "system",
        };
        self.metrics
            .operation(surface, spec.name, crate::metrics::outcome_of(r), started.elapsed());
    }

    /// Calls an operation with JSON arguments read exactly as a surface's are (so a caller that
    /// passes on what a person typed gets the same refusals), and answers its typed output. No
    /// `Idempotency-Key`: a replay would answer saved JSON, not a typed output.
    pub async fn invoke_json<O: Operation>(&self, p: &Caller, input: Input) -> Result<O::Output> {
        let input = Input {
            idempotency_key: None,
            ..input
        };
        let (keep, kept) = oneshot::channel();
        self.call_keeping::<O>(p, input, Some(keep)).await?;
        typed(kept).await
    }

    pub(super) async fn call_json<O: Operation>(&self, p: &Caller, input: Input) -> Result<Done> {
        self.call_keeping::<O>(p, input, None).await
    }

    /// The JSON path; `keep`, when given, receives the typed output of a success.
    async fn call_keeping<O: Operation>(&self, p: &Caller, input: Input, keep: Option<Keep<O>>) -> Result<Done> {
        let started = std::time::Instant::now();
        let done = self.call_unmeasured::<O>(p, input, keep).await;
        self.measure(p, &O::SPEC, &done, started);
        done
    }

    async fn call_unmeasured<O: Operation>(&self, p: &Caller, input: Input, keep: Option<Keep<O>>) -> Result<Done> {
        let spec = O::SPEC;
        let raw = input.args.as_ref().ok();
        let entry = draft(p, &spec, raw)?;
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
            Ok((args, key)) => self.run::<O>(p, args, entry, key, keep).await,
            Err(e) => Err(self.record_refused_input(entry, e).await),
        }
    }

    /// Passes the entry on when the caller holds the operation's ability; otherwise records the
    /// refusal with the names of the arguments sent, never their values: they were not read, so
    /// nothing checked them for tokens or size.
    async fn check_ability(
        &self,
        spec: &Spec,
        p: &Caller,
        mut entry: AuditDraft,
        args: Option<&Value>,
    ) -> Result<AuditDraft> {
        let refused = match spec.ability {
            Some(ability) if !p.can(ability) => Some(Error::missing(ability)),
            // A connection narrowed by its headers: the tool is not available on it.
            _ => p.narrowed_out(spec.name, spec.is_write()).map(|why| {
                Error::MissingAbility(
                    spec.ability.unwrap_or(crate::domain::ability::Ability::McpFull),
                    Some(why.into()),
                )
            }),
        };
        match refused {
            Some(e) => {
                if let Some(args) = args {
                    entry.properties = crate::domain::audit::argument_keys(args);
                }
                Err(self.record_failure(entry, e).await)
            }
            None => Ok(entry),
        }
    }

    /// A read runs here and hands its entry to the batch writer; a write runs inside the batch.
    async fn run<O: Operation>(
        &self,
        p: &Caller,
        args: O::Args,
        mut entry: AuditDraft,
        key: Option<IdempotencyKey>,
        keep: Option<Keep<O>>,
    ) -> Result<Done> {
        // What the entry records is the arguments as the operation read them.
        entry.properties = super::op::to_value(&args)?;
        if !O::SPEC.is_write() && key.is_none() {
            return self.run_read::<O>(p, args, entry, keep).await;
        }
        let p = p.clone();
        let config = self.config.clone();
        let job: super::batch::WriteJob =
            Box::new(move |tx, entry| Box::pin(run_write::<O>(tx, p, config, args, entry, key, keep)));
        self.batch.write(entry, job).await
    }

    fn new_call(&self, tx: Tx, p: &Caller, entry: &AuditDraft) -> Call {
        Call::new(tx, p.clone(), self.config.clone(), entry)
    }

    /// A read: the body in a read transaction of its own, then the entry through the batch
    /// writer (group commit), which re-checks the caller under the chain's lock. The answer
    /// waits for the commit that holds its entry.
    async fn run_read<O: Operation>(
        &self,
        p: &Caller,
        args: O::Args,
        mut entry: AuditDraft,
        keep: Option<Keep<O>>,
    ) -> Result<Done> {
        let mut call = self.new_call(self.db.begin_read().await?, p, &entry);
        let result = O::run(&mut call, args).await.and_then(|o| erase(o, keep));
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
                match &p.page_view {
                    // A dashboard page's read: its page's `dashboard.view` entry, re-checked for
                    // this ability before the page is answered, stands for it.
                    Some(view) => view.read(O::SPEC.ability),
                    None => self.batch.append_checked(p, O::SPEC.ability, entry).await?,
                }
                Ok(Done {
                    output,
                    replayed: false,
                })
            }
            Err(e) => Err(self.record_failure(entry, e).await),
        }
    }

    /// Records one dashboard page view (`dashboard.view`, with `page` and `filters` in its
    /// properties and what `entry` already says) once the caller is still allowed under the
    /// chain's lock: still in the team, their role now still holding every ability the page's
    /// reads needed. A refusal is audited (the entry says `denied` and why) and answered: the
    /// page must not be shown.
    pub async fn record_page_view(&self, p: &Caller, properties: Value, subject: Option<(&str, &str)>) -> Result<()> {
        let team_id = &p.in_team()?.team_id;
        let mut entry = p.draft(PAGE_VIEW, team_id);
        entry.subject_type = Some(subject.map_or("dashboard", |s| s.0).to_owned());
        entry.subject_id = subject.map(|s| s.1.to_owned());
        entry.properties = properties;
        let abilities = p.page_view.as_ref().map(|v| v.abilities()).unwrap_or_default();
        self.batch.append_checked_all(p, abilities, entry).await
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

    /// Records a refusal's entry through the batch writer (a call refused at the door, like a
    /// token used from outside its network allowlist); answers once it is durable.
    pub async fn record_denied(&self, entry: AuditDraft) -> Result<()> {
        self.batch.append(entry).await
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
    p: Caller,
    config: std::sync::Arc<super::service::ServiceConfig>,
    args: O::Args,
    mut entry: AuditDraft,
    key: Option<IdempotencyKey>,
    keep: Option<Keep<O>>,
) -> (Tx, Written) {
    let refused = |mut entry: AuditDraft, e: Error| {
        mark_refused(&mut entry, &e);
        Written::answer(entry, Err(e), false)
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
                return (tx, Written::answer(entry, Ok(done), false));
            }
            Ok(None) => {}
            Err(e) => return (tx, refused(entry, e)),
        }
    }
    // The approval gate: a held call leaves its request (or its refusal) and does not run.
    let pass = match hold::gate(&mut tx, &p, &O::SPEC, &entry, &config).await {
        Ok(Gate::Run(pass)) => pass,
        Ok(Gate::Hold(held)) => return hold_call::<O>(tx, p, config, args, entry, *held).await,
        Err(e) => return (tx, refused(entry, e)),
    };
    let mut call = Call::new(tx, p.clone(), config, &entry);
    let result = O::run(&mut call, args).await.and_then(|o| erase(o, keep));
    let Call {
        mut tx,
        subject_id,
        project_id,
        changes,
        wakes_jobs,
        also,
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
    if let Some((approval_id, approved_by)) = pass.approved {
        entry.properties["approval_id"] = json!(approval_id);
        entry.properties["approved_by"] = json!(approved_by);
    }
    if pass.budgeted
        && let Err(e) = hold::count_use(&mut tx, &p, &O::SPEC).await
    {
        return (tx, refused(entry, e));
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
    let mut written = Written::answer(entry, Ok(done), wakes_jobs);
    written.also = also;
    (tx, written)
}

/// A call the approval gate holds. Its body runs first, in a savepoint rolled back whatever
/// happens: a call that would fail (an id outside the caller's projects, a state that forbids
/// it, bad input) answers that failure and asks nobody for anything; one that would succeed is
/// recorded as a request with the changes it would make, and the caller is told where a person
/// decides. The batch keeps what the gate wrote although the answer is an error.
async fn hold_call<O: Operation>(
    tx: Tx,
    p: Caller,
    config: std::sync::Arc<super::service::ServiceConfig>,
    args: O::Args,
    mut entry: AuditDraft,
    held: Held,
) -> (Tx, Written) {
    let refused = |mut entry: AuditDraft, e: Error| {
        mark_refused(&mut entry, &e);
        Written::answer(entry, Err(e), false)
    };
    let mut tx = tx;
    if let Err(e) = sqlx::query("SAVEPOINT held_call").execute(&mut *tx).await {
        return (tx, refused(entry, e.into()));
    }
    let mut call = Call::new(tx, p, config.clone(), &entry);
    let result = O::run(&mut call, args).await;
    let Call {
        mut tx,
        subject_id,
        project_id,
        changes,
        ..
    } = call;
    for step in ["ROLLBACK TO SAVEPOINT held_call", "RELEASE SAVEPOINT held_call"] {
        if let Err(e) = sqlx::query(step).execute(&mut *tx).await {
            return (tx, refused(entry, e.into()));
        }
    }
    entry.subject_id = subject_id;
    entry.project_id = project_id.clone();
    if let Err(e) = result {
        return (tx, refused(entry, e));
    }
    let stop = held.record(&mut tx, changes, project_id, &config).await;
    let keep = matches!(stop.error, Error::ApprovalRequired(_) | Error::ApprovalInvalid(_));
    let entry = match stop.entry {
        Some(requested) => requested,
        None => {
            if let Error::ApprovalRequired(n) | Error::ApprovalInvalid(n) = &stop.error {
                entry.properties["approval_id"] = json!(n.approval_id);
                if let Some(reason) = n.reason {
                    entry.properties["approval_invalid"] = json!(reason);
                }
            }
            mark_refused(&mut entry, &stop.error);
            entry
        }
    };
    let written = Written {
        entry,
        answer: Err(stop.error),
        wakes_jobs: false,
        also: stop.also,
        keep,
    };
    (tx, written)
}

/// The output as JSON; its typed self goes to the caller that asked to keep it.
fn erase<T: serde::Serialize>(output: T, keep: Option<oneshot::Sender<T>>) -> Result<JsonOutput> {
    let json = JsonOutput::of(&output)?;
    if let Some(keep) = keep {
        // Nobody left to receive it (the caller gave up) is no failure of the call.
        let _ = keep.send(output);
    }
    Ok(json)
}

/// Where an in-process caller receives the typed output of its call.
type Keep<O> = oneshot::Sender<<O as Operation>::Output>;

/// The typed output a call kept. A call that succeeded always kept it: none of these callers
/// sends an `Idempotency-Key`, so no success of theirs is a replay of saved JSON.
async fn typed<T>(kept: oneshot::Receiver<T>) -> Result<T> {
    kept.await
        .map_err(|_| Error::Internal(anyhow::anyhow!("a successful call kept no typed output")))
}

/// The entry a call starts with: who, through which surface, which operation, with what. Only a
/// member of a team calls an operation: the server itself is refused here, before anything.
fn draft(p: &Caller, spec: &Spec, args: Option<&Value>) -> Result<AuditDraft> {
    let team_id = &p.in_team()?.team_id;
    // The subject is kept only when it looks like an id: junk stays out of the log.
    let subject_id = spec
        .subject_arg
        .and_then(|name| args?.get(name))
        .and_then(Value::as_str)
        .filter(|s| s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let mut entry = p.draft(spec.event, team_id);
    entry.subject_type = Some(spec.subject_type.to_owned());
    entry.subject_id = subject_id.map(str::to_owned);
    entry.write = spec.is_write();
    Ok(entry)
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
