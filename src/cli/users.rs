//! `user create` and `user set-password`.

use std::io::Read;

use serde_json::json;

use super::args::{Global, UserCmd};
use super::common::{print, service};

pub(super) async fn user(g: &Global, cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Create {
            email,
            name,
            password_stdin,
        } => {
            let password = if password_stdin {
                let mut buf = String::new();
                std::io::stdin().read_to_string(&mut buf)?;
                Some(buf.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let id = service(g)
                .await?
                .create_user(&email, &name, password.as_deref())
                .await?;
            print(
                g.json,
                json!({"id": id, "email": email.trim().to_lowercase(), "name": name}),
                || format!("user {id} created"),
            );
        }
        UserCmd::SetPassword { email } => {
            let mut buf = String::new();
            std::io::stdin().read_to_string(&mut buf)?;
            let password = buf.trim_end_matches(['\r', '\n']);
            let ended = service(g).await?.set_password(&email, password).await?;
            print(
                g.json,
                json!({"email": email.trim().to_lowercase(), "sessions_ended": ended}),
                || format!("password set; {ended} session(s) signed out"),
            );
        }
    }
    Ok(())
}
