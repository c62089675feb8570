//! `get_job_status`: a background job started by the caller (the worker that runs them is
//! [`crate::service::jobs`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::error::{Error, Result};
use crate::domain::ids::JobId;
use crate::service::Call;
use crate::service::core::op::{DynOp, One, Operation, Spec};
use crate::store::jobs as store;

pub static OPS: &[&dyn DynOp] = &[&GetJobStatus];

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRef {
    pub job_id: JobId,
}

pub struct GetJobStatus;
impl Operation for GetJobStatus {
    type Args = JobRef;
    type Output = One<store::JobView>;
    const SPEC: Spec = Spec {
        name: "get_job_status",
        event: "get_job_status",
        path: "/v1/jobs/{job_id}",
        subject_type: "job",
        subject_arg: Some("job_id"),
        summary: "A background job started by the caller.",
        ..Spec::READ
    };

    /// A job is visible to the user who started it, in the team it was started in.
    async fn run(c: &mut Call, args: JobRef) -> Result<Self::Output> {
        let job = store::find(c.conn(), args.job_id.as_str())
            .await?
            .ok_or(Error::NotFound)?;
        if job.team_id != c.team_id() || job.created_by_user_id != c.user_id() {
            return Err(Error::NotFound);
        }
        if let Some(pid) = &job.project_id {
            c.check_project(pid)?;
        }
        One::ok(job.view())
    }
}
