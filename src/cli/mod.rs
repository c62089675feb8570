//! The operator CLI (SPEC §10). Each command translates arguments into one service call and
//! prints the result, as one JSON object with `--json`.

mod args;

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

pub use args::{AuditCmd, Cli, Command, Global, ProjectCmd, ScanArgs, ServeArgs, TeamCmd, TokenCmd, UserCmd};

use crate::app::{Application, ServeConfig, Tls};
use crate::domain::error::Error;
use crate::service::accounts::tokens::{Actor, MintRequest, parse_duration_ms};
use crate::service::{Service, ServiceConfig};
use crate::store::Db;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let stderr = std::io::stderr();
    let ansi = std::io::IsTerminal::is_terminal(&stderr);
    let _log = crate::telemetry::init(stderr, ansi);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let message = match e.downcast_ref::<Error>() {
                Some(Error::Validation(fields)) => {
                    let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k} {v}")).collect();
                    format!("invalid input: {}", parts.join("; "))
                }
                Some(Error::NotFound) => "not found".to_owned(),
                _ => format!("{e:#}"),
            };
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn database_url(g: &Global) -> anyhow::Result<String> {
    match &g.database_url {
        Some(url) => Ok(url.clone()),
        None => Db::sqlite_url_in(&g.data_dir),
    }
}

async fn service(g: &Global) -> anyhow::Result<Service> {
    let db = Db::connect(&database_url(g)?).await?;
    db.migrate().await?;
    Ok(Service::new(
        db,
        ServiceConfig {
            env: g.env,
            public_url: "http://127.0.0.1:8080".into(),
            secret_scanning_keys_url: crate::service::GITHUB_KEYS_URL.into(),
        },
    ))
}

fn print(json_mode: bool, value: Value, human: impl FnOnce() -> String) {
    if json_mode {
        println!("{value}");
    } else {
        println!("{}", human());
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = cli.global.clone();
    let actor = Actor::system();
    match cli.command {
        Command::Serve(args) => return serve(&g, args).await.map(|()| ExitCode::SUCCESS),
        // Before any database: scanning files needs none.
        Command::Scan(args) => return Ok(scan(&g, args).await),
        Command::Migrate => {
            service(&g).await?;
            print(g.json, json!({"migrated": true}), || "migrations applied".into());
        }
        Command::Demo => {
            let s = service(&g).await?;
            let demo = s.seed_demo().await?;
            print_demo(&g, &demo, "http://127.0.0.1:8080");
        }
        Command::User(UserCmd::Create {
            email,
            name,
            password_stdin,
        }) => {
            let password = if password_stdin {
                let mut buf = String::new();
                std::io::stdin().read_to_string(&mut buf)?;
                Some(buf.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let id = service(&g)
                .await?
                .create_user(&email, &name, password.as_deref())
                .await?;
            print(
                g.json,
                json!({"id": id, "email": email.trim().to_lowercase(), "name": name}),
                || format!("user {id} created"),
            );
        }
        Command::User(UserCmd::SetPassword { email }) => {
            let mut buf = String::new();
            std::io::stdin().read_to_string(&mut buf)?;
            let password = buf.trim_end_matches(['\r', '\n']);
            let ended = service(&g).await?.set_password(&email, password).await?;
            print(
                g.json,
                json!({"email": email.trim().to_lowercase(), "sessions_ended": ended}),
                || format!("password set; {ended} session(s) signed out"),
            );
        }
        Command::Team(TeamCmd::Create { name, owner }) => {
            let id = service(&g).await?.create_team(&name, &owner).await?;
            print(g.json, json!({"id": id, "name": name, "owner": owner}), || {
                format!("team {id} created")
            });
        }
        Command::Team(TeamCmd::AddMember { team, email, role }) => {
            service(&g).await?.set_member_role(&team, &email, role).await?;
            print(g.json, json!({"team_id": team, "email": email, "role": role}), || {
                format!("{email} is now {role} in {team}")
            });
        }
        Command::Team(TeamCmd::RemoveMember { team, email }) => {
            service(&g).await?.remove_member(&team, &email).await?;
            print(
                g.json,
                json!({"team_id": team, "email": email, "removed": true}),
                || format!("{email} removed from {team}"),
            );
        }
        Command::Project(ProjectCmd::Create { team, name, handle }) => {
            let id = service(&g)
                .await?
                .create_project_system(&team, &name, handle.as_deref())
                .await?;
            print(g.json, json!({"id": id, "team_id": team, "name": name}), || {
                format!("project {id} created")
            });
        }
        Command::Token(cmd) => token(&g, &actor, cmd).await?,
        Command::Audit(AuditCmd::Verify) => {
            let s = service(&g).await?;
            let mut conn = s.db().pool().acquire().await?;
            let report = crate::store::audit::verify(&mut conn).await?;
            let ok = report.ok;
            print(g.json, serde_json::to_value(&report)?, || {
                if ok {
                    format!("audit log intact: {} entries", report.entries)
                } else {
                    format!("AUDIT LOG TAMPERED:\n  {}", report.problems.join("\n  "))
                }
            });
            if !ok {
                return Ok(ExitCode::from(2));
            }
        }
        Command::Audit(AuditCmd::Export { team, since }) => {
            let since_ms = since
                .as_deref()
                .map(|s| crate::domain::time::parse_rfc3339(s).context("--since must be an RFC 3339 time"))
                .transpose()?;
            let s = service(&g).await?;
            let mut conn = s.db().pool().acquire().await?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut after = 0;
            loop {
                let rows = crate::store::audit::page_in_order(&mut conn, after, 1000).await?;
                let Some(last) = rows.last() else { break };
                after = last.seq;
                for row in rows.iter().filter(|r| {
                    team.as_ref().is_none_or(|t| r.team_id.as_ref() == Some(t))
                        && since_ms.is_none_or(|s| r.created_at >= s)
                }) {
                    let mut v = row.to_json();
                    v["seq"] = json!(row.seq);
                    v["prev_hash"] = json!(row.prev_hash);
                    v["hash"] = json!(row.hash);
                    writeln!(out, "{v}")?;
                }
            }
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn scan(g: &Global, args: ScanArgs) -> ExitCode {
    crate::scan::run(crate::scan::Options {
        paths: args.paths,
        json: g.json,
        redact: args.redact,
        revoke: args.revoke,
        use_proxy: args.use_proxy,
    })
    .await
}

async fn token(g: &Global, actor: &Actor, cmd: TokenCmd) -> anyhow::Result<()> {
    let s = service(g).await?;
    match cmd {
        TokenCmd::Mint {
            team,
            user,
            name,
            abilities,
            projects,
            expires_in,
        } => {
            let expires_in_ms = match expires_in.as_deref() {
                Some(d) => Some(parse_duration_ms(d).context("--expires-in must look like 30d, 12h or 45m")?),
                None => None,
            };
            let req = MintRequest {
                team_id: team,
                user_email: user,
                name,
                abilities,
                project_ids: projects,
                expires_in_ms,
                replaces: None,
            };
            let minted = s.mint_token(actor, req).await?;
            print(g.json, minted.to_json(), || {
                format!(
                    "{}\n\nThis is the only time the token is shown. Its ID is {} (safe to share with support).",
                    minted.secret.expose_secret(),
                    minted.row.id
                )
            });
        }
        TokenCmd::Rotate { token_id } => {
            let minted = s.rotate_token(actor, &token_id).await?;
            print(g.json, minted.to_json(), || {
                format!(
                    "{}\n\nReplaces {token_id} (now revoked). New ID: {}. Shown once.",
                    minted.secret.expose_secret(),
                    minted.row.id
                )
            });
        }
        TokenCmd::List { user, team } => {
            let rows = s.list_tokens_admin(user.as_deref(), team.as_deref()).await?;
            let data: Vec<Value> = rows.iter().map(|r| r.to_json()).collect();
            print(g.json, json!({"data": data}), || {
                rows.iter()
                    .map(|r| {
                        let state = if r.revoked_at.is_some() { "revoked" } else { "active" };
                        format!("{}  {:<8} {}  [{}]", r.id, state, r.name, r.ability_names().join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        TokenCmd::Show { token_id } => {
            let row = s.show_token(&token_id).await?;
            let v = row.to_json();
            print(g.json, v.clone(), || {
                serde_json::to_string_pretty(&v).unwrap_or_default()
            });
        }
        TokenCmd::Revoke { token_id, reason } => {
            let row = s.revoke_token(actor, &token_id, reason.as_deref()).await?;
            print(g.json, row.to_json(), || format!("token {token_id} revoked"));
        }
    }
    Ok(())
}

async fn serve(g: &Global, args: ServeArgs) -> anyhow::Result<()> {
    let tls = match (args.tls_cert, args.tls_key, args.tls_self_signed) {
        (Some(cert), Some(key), false) => Tls::Files { cert, key },
        (None, None, true) => Tls::SelfSigned,
        (None, None, false) => Tls::Off,
        _ => bail!("use either --tls-cert with --tls-key, or --tls-self-signed"),
    };
    let config = ServeConfig {
        database_url: database_url(g)?,
        listen: args.listen,
        public_url: args.public_url,
        env: g.env,
        tls,
        behind_tls_proxy: args.behind_tls_proxy,
        allowed_origins: args.allowed_origins,
        rate_limit_mcp: args.rate_limit_mcp,
        rate_limit_rest: args.rate_limit_rest,
        rate_limit_auth_failures: args.rate_limit_auth_failures,
        rate_limit_leak_reports: args.rate_limit_leak_reports,
        secret_scanning_keys_url: args.secret_scanning_keys_url.clone(),
        sqlite_synchronous: args.sqlite_synchronous,
        run_jobs: true,
        header_read_timeout: std::time::Duration::from_secs(10),
        request_timeout: std::time::Duration::from_secs(30),
    };
    let app = Application::build(config).await?;
    let url = app.public_url().to_owned();
    if args.demo {
        let demo = app.service().seed_demo().await?;
        print_demo(g, &demo, &url);
    }
    tracing::info!(url = %url, env = %g.env, "MemberPass listening");
    app.run_until_stopped(stop_signal()).await
}

/// `SIGTERM` (what an orchestrator sends) or `SIGINT` (Ctrl-C): the server stops accepting
/// connections, finishes the calls in flight (up to 10 s), puts a running job back in the queue
/// for another replica, and exits.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping: finishing the calls in flight");
}

fn print_demo(g: &Global, demo: &crate::service::demo::DemoLogin, url: &str) {
    let token = demo.token.secret.expose_secret();
    let abilities = demo.token.row.ability_names();
    let claude = crate::web::mcp::clients::claude_desktop(url, token);
    if g.json {
        println!(
            "{}",
            json!({"url": url, "login_url": format!("{url}/login"), "team_id": demo.team_id, "email": demo.email, "password": demo.password,
                   "token": token, "token_id": demo.token.row.id, "abilities": abilities, "claude_desktop_config": claude})
        );
        return;
    }
    let mut out = String::new();
    out.push_str(&format!("\nMemberPass demo at {url}\n"));
    match &demo.password {
        Some(p) => out.push_str(&format!(
            "  dashboard: {url}/login as {} / {p}   (shown once)\n",
            demo.email
        )),
        None => out.push_str(&format!(
            "  dashboard: {url}/login as {} (password was printed when the demo was first seeded)\n",
            demo.email
        )),
    }
    out.push_str(&format!(
        "  read-only token (shown once; ID {}): {token}\n",
        demo.token.row.id
    ));
    out.push_str(&format!("  abilities: {}\n\n", abilities.join(", ")));
    out.push_str(&format!(
        "Try it:\n  curl -H \"Authorization: Bearer {token}\" {url}/v1/projects\n\n"
    ));
    out.push_str(&format!(
        "Claude Desktop (claude_desktop_config.json, via mcp-remote):\n{}\n",
        serde_json::to_string_pretty(&claude).unwrap_or_default()
    ));
    println!("{out}");
}
