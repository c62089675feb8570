//! The handle an operation's body gets: its transaction, the caller, and what its audit entry
//! will say. Only the call path builds one, after the ability check.

use serde_json::Value;

use super::caller::Caller;
use super::output::Paged;
use super::page::Page;
use super::service::ServiceConfig;
use crate::domain::ability::Ability;
use crate::domain::audit::AuditDraft;
use crate::domain::error::{Error, Result};
use crate::domain::ids::{Id, ProjectId};
use crate::store::{Conn, Scoped, Tx, find_scoped, page_in_project};

/// One operation in flight: its transaction and what its audit entry will say. Only the call
/// path builds one, after the ability check, so holding a `Call` is the proof a write was
/// permitted.
pub struct Call {
    pub(super) tx: Tx,
    /// Who is calling: always a member of a team (the call path lets nobody else in).
    pub caller: Caller,
    team_id: String,
    user_id: String,
    config: std::sync::Arc<ServiceConfig>,
    pub(super) subject_id: Option<String>,
    pub(super) project_id: Option<String>,
    pub(super) changes: Option<Value>,
    pub(super) wakes_jobs: bool,
    /// Entries the call records beside its own (the approvals a revocation voids).
    pub(super) also: Vec<AuditDraft>,
}

impl Call {
    /// The handle of `caller`'s call. The call path lets only a member of a team in (the server
    /// itself is refused before anything runs); were it not so, the empty team would own nothing.
    pub(super) fn new(tx: Tx, caller: Caller, config: std::sync::Arc<ServiceConfig>, entry: &AuditDraft) -> Call {
        let (team_id, user_id) = caller
            .member()
            .map(|m| (m.team_id.to_string(), m.user_id.to_string()))
            .unwrap_or_default();
        Call {
            tx,
            caller,
            team_id,
            user_id,
            config,
            subject_id: entry.subject_id.clone(),
            project_id: None,
            changes: None,
            wakes_jobs: false,
            also: Vec::new(),
        }
    }

    pub fn conn(&mut self) -> &mut Conn {
        &mut self.tx
    }

    pub fn config(&self) -> &ServiceConfig {
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
        self.team_id.clone()
    }

    /// The calling person (the token's owner, or who is signed in).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Entries that commit with this call's, after it.
    pub fn record(&mut self, entries: impl IntoIterator<Item = AuditDraft>) {
        self.also.extend(entries);
    }

    /// The process's job worker is woken once this call commits.
    pub fn wake_jobs(&mut self) {
        self.wakes_jobs = true;
    }

    /// Checks an ability beyond the operation's own (e.g. scope rules); audit says denied.
    pub fn require(&self, ability: Ability) -> Result<()> {
        if self.caller.can(ability) {
            Ok(())
        } else {
            Err(Error::missing(ability))
        }
    }

    /// Loads one row of the caller's team, by id, in a project the caller may see: the only way
    /// an operation loads a row it is given an id of. Anything else — another team's row, a
    /// project outside a scoped token's, no such id — is the same `RESOURCE_NOT_FOUND`.
    pub async fn load<R: Scoped>(&mut self, id: &Id<R::Kind>) -> Result<R> {
        let team = self.team_id();
        let row: R = find_scoped(self.conn(), &team, id).await?.ok_or(Error::NotFound)?;
        self.check_project(row.project_id())?;
        Ok(row)
    }

    /// A page of one kind of row in a project of the caller's team that the caller may see
    /// (any other project does not exist for it), oldest first.
    pub async fn page_in_project<R: Scoped>(&mut self, project: &ProjectId, page: Page) -> Result<Paged<R>> {
        let project = self.load::<crate::store::projects::Project>(project).await?;
        let (rows, total) = page_in_project(self.conn(), &project.id, page.limit, page.offset()).await?;
        Paged::ok(rows, page.meta(total))
    }

    /// Refuses anything outside the caller's projects; a project it cannot see does not exist.
    pub fn check_project(&mut self, project_id: &str) -> Result<()> {
        if self.caller.sees_project(project_id) {
            self.in_project(project_id);
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }
}
