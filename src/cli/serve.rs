//! `serve`: the server on the configured database, the demo when asked, and a graceful stop on
//! SIGTERM or Ctrl-C.

use anyhow::bail;
use serde_json::json;

use super::args::{Global, ServeArgs};
use super::common::database_url;
use crate::app::{Application, ServeConfig, Tls};

pub(super) async fn serve(g: &Global, args: ServeArgs) -> anyhow::Result<()> {
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
        rate_limit_oauth_registrations: args.rate_limit_oauth_registrations,
        oauth: crate::domain::oauth::OAuthConfig {
            access_ttl: args.oauth_access_ttl,
            refresh_grace: args.oauth_refresh_grace,
            allow_loopback_client_metadata: args.oauth_allow_loopback_client_metadata,
        },
        approval_ttl: args.approval_ttl,
        maintenance_interval: args.maintenance_interval,
        metrics_listen: args.metrics_listen,
    };
    if let Some(at) = args.metrics_listen.filter(|a| !a.ip().is_loopback()) {
        tracing::warn!(%at, "/metrics is served beyond loopback: keep that address off the internet");
    }
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
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            },
            Err(e) => {
                tracing::warn!(error = %e, "no SIGTERM handler: only Ctrl-C stops the server gracefully");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping: finishing the calls in flight");
}

pub(super) fn print_demo(g: &Global, demo: &crate::service::demo::DemoLogin, url: &str) {
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
