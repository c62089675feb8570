//! `team create`, `team add-member`, `team remove-member` and `project create`.

use serde_json::json;

use super::args::{Global, ProjectCmd, TeamCmd};
use super::common::{print, service};

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
