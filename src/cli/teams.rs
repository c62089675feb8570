//! `team create`, `team add-member`, `team remove-member`, `team policy` and `project create`.

use serde_json::json;

use super::args::{Global, ProjectCmd, TeamCmd};
use super::common::{print, service};
use crate::service::Caller;
use crate::service::accounts::approvals::PolicyChange;

pub(super) async fn team(g: &Global, cmd: TeamCmd) -> anyhow::Result<()> {
    match cmd {
        TeamCmd::Create { name, owner } => {
            let id = service(g).await?.create_team(&name, &owner).await?;
            print(g.json, json!({"id": id, "name": name, "owner": owner}), || {
                format!("team {id} created")
            });
        }
        TeamCmd::AddMember { team, email, role } => {
            service(g).await?.set_member_role(&team, &email, role).await?;
            print(g.json, json!({"team_id": team, "email": email, "role": role}), || {
                format!("{email} is now {role} in {team}")
            });
        }
        TeamCmd::RemoveMember { team, email } => {
            service(g).await?.remove_member(&team, &email).await?;
            print(
                g.json,
                json!({"team_id": team, "email": email, "removed": true}),
                || format!("{email} removed from {team}"),
            );
        }
        TeamCmd::Policy {
            team,
            approvals,
            approver,
        } => {
            let s = service(g).await?;
            let change = PolicyChange { approvals, approver };
            let policy = if change.is_empty() {
                s.approval_policy(&team).await?
            } else {
                s.change_approval_policy(&Caller::system(), &team, &change).await?
            };
            let mut v = policy.to_json();
            v["team_id"] = json!(team);
            print(g.json, v, || {
                let mut lines = vec![format!(
                    "approval policy of {team} (version {}), approver: {}",
                    policy.version, policy.approver
                )];
                if policy.rules.is_empty() {
                    lines.push("  no operation needs approval".into());
                }
                for (op, rule) in &policy.rules {
                    lines.push(format!("  {op}={rule}"));
                }
                lines.join("\n")
            });
        }
    }
    Ok(())
}

pub(super) async fn project(g: &Global, cmd: ProjectCmd) -> anyhow::Result<()> {
    match cmd {
        ProjectCmd::Create { team, name, handle } => {
            let id = service(g)
                .await?
                .create_project_system(&team, &name, handle.as_deref())
                .await?;
            print(g.json, json!({"id": id, "team_id": team, "name": name}), || {
                format!("project {id} created")
            });
        }
    }
    Ok(())
}
