//! The operator CLI (SPEC §10). Each command translates arguments into one service call and
//! prints the result, as one JSON object with `--json`. `main` only dispatches: one module per
//! command group, and `common` for what they share.

mod args;
mod audit;
mod common;
mod oauth;
mod scan;
mod serve;
mod teams;
mod tokens;
mod users;

use std::process::ExitCode;

use clap::Parser;
use serde_json::json;

pub use args::{
    AuditCmd, Cli, Command, Global, OAuthClientCmd, ProjectCmd, ScanArgs, ServeArgs, TeamCmd, TokenCmd, UserCmd,
};

use crate::domain::error::Error;
use crate::service::Caller;
use common::{print, service};

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let stderr = std::io::stderr();
    let ansi = std::io::IsTerminal::is_terminal(&stderr);
    let _log = crate::telemetry::init(stderr, ansi);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let message = match e.downcast_ref::<Error>() {
                Some(Error::Validation(fields)) => {
                    let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k} {v}")).collect();
                    format!("invalid input: {}", parts.join("; "))
                }
                Some(Error::NotFound) => "not found".to_owned(),
                Some(Error::PolicyViolation(v)) => format!(
                    "POLICY_VIOLATION: {} (team policy {} = {})",
                    v.message, v.policy, v.limit
                ),
                _ => format!("{e:#}"),
            };
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = cli.global.clone();
    match cli.command {
        Command::Serve(args) => serve::serve(&g, args).await?,
        // Before any database: scanning files needs none.
        Command::Scan(args) => return Ok(scan::scan(&g, args).await),
        Command::Migrate => {
            service(&g).await?;
            print(g.json, json!({"migrated": true}), || "migrations applied".into());
        }
        Command::Demo => {
            let s = service(&g).await?;
            let demo = s.seed_demo().await?;
            serve::print_demo(&g, &demo, "http://127.0.0.1:8080");
        }
        Command::User(cmd) => users::user(&g, cmd).await?,
        Command::Team(cmd) => teams::team(&g, cmd).await?,
        Command::Project(cmd) => teams::project(&g, cmd).await?,
        Command::Token(cmd) => tokens::token(&g, &Caller::system(), cmd).await?,
        Command::Audit(cmd) => return audit::audit(&g, cmd).await,
        Command::OAuthClient(cmd) => oauth::oauth_client(&g, cmd).await?,
    }
    Ok(ExitCode::SUCCESS)
}
