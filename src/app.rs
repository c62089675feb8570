//! Startup: connect, migrate, bind, serve. Built from a config value so tests can run the real
//! server on port 0.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hyper_util::rt::TokioTimer;

use crate::domain::token::TokenEnv;
use crate::service::{Service, ServiceConfig};
use crate::store::{Backend, Db};
use crate::web::limits::{Limits, PerMinute};
use crate::web::{AppState, HttpConfig, make_service, router};

#[derive(Clone, Debug)]
pub enum Tls {
    Off,
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub database_url: String,
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    pub env: TokenEnv,
    pub tls: Tls,
    pub behind_tls_proxy: bool,
    pub allowed_origins: Vec<String>,
    pub rate_limit_mcp: u32,
    pub rate_limit_rest: u32,
    pub rate_limit_auth_failures: u32,
    /// Per client IP per minute, for each unauthenticated leak-report endpoint.
    pub rate_limit_leak_reports: u32,
    pub secret_scanning_keys_url: String,
    /// SQLite's `synchronous` (WAL): `full` by default.
    pub sqlite_synchronous: crate::store::Synchronous,
    /// Run the background job worker in this process (tests turn it off to simulate a crash).
    pub run_jobs: bool,
    /// How long a client may take to send its request headers (slow-loris guard).
    pub header_read_timeout: Duration,
    /// How long one request may run before it is abandoned and rolled back.
    pub request_timeout: Duration,
    /// Per client IP per minute: `POST /register` (OAuth dynamic client registration).
    pub rate_limit_oauth_registrations: u32,
    /// `--oauth-access-ttl`, `--oauth-refresh-grace`, `--oauth-allow-loopback-client-metadata`.
    pub oauth: crate::domain::oauth::OAuthConfig,
    /// `--approval-ttl`: how long a held call's approval request lives.
    pub approval_ttl: Duration,
    /// `--maintenance-interval`: how often expiry warnings are given and the unused rule applied.
    pub maintenance_interval: Duration,
    /// `--metrics-listen`: where `/metrics` is served (nowhere when `None`; never on `listen`).
    pub metrics_listen: Option<SocketAddr>,
}

impl ServeConfig {
    pub fn local(database_url: String) -> Self {
        ServeConfig {
            database_url,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            env: TokenEnv::Test,
            tls: Tls::Off,
            behind_tls_proxy: false,
            allowed_origins: vec![],
            rate_limit_mcp: 120,
            rate_limit_rest: 300,
            rate_limit_auth_failures: 5,
            rate_limit_leak_reports: 30,
            secret_scanning_keys_url: crate::service::GITHUB_KEYS_URL.to_owned(),
            sqlite_synchronous: crate::store::Synchronous::Full,
            run_jobs: true,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            rate_limit_oauth_registrations: 10,
            oauth: Default::default(),
            approval_ttl: crate::service::DEFAULT_APPROVAL_TTL,
            maintenance_interval: Duration::from_secs(3600),
            metrics_listen: None,
        }
    }
}

pub struct Application {
    addr: SocketAddr,
    public_url: String,
    service: Service,
    listener: TcpListener,
    state: AppState,
    tls: Tls,
    run_jobs: bool,
    header_read_timeout: Duration,
    maintenance_interval: Duration,
    /// The `/metrics` listener, when `--metrics-listen` is given.
    metrics_listener: Option<TcpListener>,
}

impl Application {
    pub async fn build(config: ServeConfig) -> anyhow::Result<Application> {
        let tls_on = !matches!(config.tls, Tls::Off);
        if !config.listen.ip().is_loopback() && !tls_on && !config.behind_tls_proxy {
            bail!(
                "refusing plain HTTP on {}: use --tls-cert/--tls-key or --tls-self-signed, \
                 or --behind-tls-proxy if a TLS proxy is in front",
                config.listen
            );
        }
        let db = Db::connect_with(&config.database_url, config.sqlite_synchronous).await?;
        db.migrate().await?;
        crate::store::audit::check_writable(&db).await.context(
            "the database cannot be written (a read-only file or file system, or a read-only \
             PostgreSQL): every call writes an audit entry, so MemberPass cannot serve",
        )?;
        let listener =
            TcpListener::bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let scheme = if tls_on { "https" } else { "http" };
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{addr}"));
        let service = Service::new(
            db,
            ServiceConfig {
                env: config.env,
                public_url: public_url.clone(),
                secret_scanning_keys_url: config.secret_scanning_keys_url.clone(),
                oauth: config.oauth.clone(),
                approval_ttl: config.approval_ttl,
                holdable: crate::service::ops::catalog::can_be_held,
                metrics: config.metrics_listen.is_some(),
            },
        );
        let per_minute = PerMinute {
            rest: config.rate_limit_rest,
            mcp: config.rate_limit_mcp,
            auth_failures: config.rate_limit_auth_failures,
            leak_reports: config.rate_limit_leak_reports,
            oauth_registrations: config.rate_limit_oauth_registrations,
        };
        // SPEC §8: with several replicas the limits are shared. Only PostgreSQL serves several.
        let limits = Arc::new(match service.db().backend() {
            Backend::Postgres => Limits::shared(service.db().pool().clone(), per_minute)
                .await
                .context("cannot create the rate-limit table")?,
            Backend::Sqlite => Limits::in_memory(per_minute),
        });
        limits.spawn_sweeper();
        let _ = limits.metrics.set(service.metrics().clone());
        let metrics_listener = match config.metrics_listen {
            Some(at) => {
                let l = TcpListener::bind(at).with_context(|| format!("cannot listen on {at} for /metrics"))?;
                l.set_nonblocking(true)?;
                Some(l)
            }
            None => None,
        };
        let state = AppState::new(crate::web::Shared {
            service: service.clone(),
            limits: limits.clone(),
            http: Arc::new(HttpConfig {
                behind_proxy: config.behind_tls_proxy,
                public_url: public_url.clone(),
                request_timeout: config.request_timeout,
                // The server's own origin is a same-origin page (the dashboard's), never a
                // rebinding attack: it passes; other browser origins only when listed.
                allowed_origins: std::iter::once(public_url.clone())
                    .chain(config.allowed_origins.iter().cloned())
                    .collect(),
                mcp_hosts: mcp_hosts(&public_url),
            }),
            requests: Default::default(),
        });
        crate::web::request_log::spawn_summary(&state.requests);
        Ok(Application {
            addr,
            public_url,
            service,
            listener,
            state,
            tls: config.tls,
            run_jobs: config.run_jobs,
            header_read_timeout: config.header_read_timeout,
            maintenance_interval: config.maintenance_interval,
            metrics_listener,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Serves until `shutdown` resolves, running the job worker alongside.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let handle = axum_server::Handle::new();
        let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
        let sweeper = {
            let service = self.service.clone();
            let mut stopping = jobs_stopped.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(APPROVAL_SWEEP) => {}
                        _ = stopping.changed() => return,
                    }
                    if let Err(e) = service.sweep_approvals().await {
                        tracing::error!(error = ?e, "approval sweep");
                    }
                }
            })
        };
        // Token maintenance: at start, then every interval (expiry warnings).
        let maintenance = {
            let service = self.service.clone();
            let mut stopping = jobs_stopped.clone();
            let every = self.maintenance_interval;
            tokio::spawn(async move {
                loop {
                    if let Err(e) = service.maintain_tokens().await {
                        tracing::error!(error = ?e, "token maintenance");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = stopping.changed() => return,
                    }
                }
            })
        };
        let worker = {
            let service = self.service.clone();
            let run = self.run_jobs;
            tokio::spawn(async move {
                if run {
                    service.run_jobs(jobs_stopped).await
                }
            })
        };
        let metrics_handle = axum_server::Handle::new();
        {
            let (handle, metrics_handle) = (handle.clone(), metrics_handle.clone());
            tokio::spawn(async move {
                shutdown.await;
                let _ = stop_jobs.send(true);
                handle.graceful_shutdown(Some(Duration::from_secs(10)));
                metrics_handle.shutdown();
            });
        }
        if let Some(listener) = self.metrics_listener {
            let service = self.service.clone();
            let metrics = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let service = service.clone();
                    async move {
                        (
                            [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                            service.metrics_text().await,
                        )
                    }
                }),
            );
            let handle = metrics_handle.clone();
            tokio::spawn(async move {
                let server = axum_server::from_tcp(listener).map(|s| s.handle(handle));
                match server {
                    Ok(server) => {
                        if let Err(e) = server.serve(metrics.into_make_service()).await {
                            tracing::error!(error = ?e, "the /metrics listener stopped");
                        }
                    }
                    Err(e) => tracing::error!(error = ?e, "cannot serve /metrics"),
                }
            });
        }
        let app = make_service(router(self.state));
        let timeout = self.header_read_timeout;
        match self.tls {
            Tls::Off => {
                guarded(axum_server::from_tcp(self.listener)?, timeout)
                    .handle(handle)
                    .serve(app)
                    .await?
            }
            tls => {
                let config = rustls_config(&tls).await?;
                let server = axum_server::tls_rustls::from_tcp_rustls(self.listener, config)?;
                guarded(server, timeout).handle(handle).serve(app).await?
            }
        }
        let _ = worker.await;
        let _ = sweeper.await;
        let _ = maintenance.await;
        self.service.db().close().await;
        Ok(())
    }
}

/// How often approval requests past their expiry are marked so (`approval.expired`) and budget
/// uses older than a day forgotten.
const APPROVAL_SWEEP: Duration = Duration::from_secs(5);

/// The `Host` names `/mcp` answers to: the public URL's host, and loopback.
fn mcp_hosts(public_url: &str) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    if let Some(host) = url::Url::parse(public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}

/// A client must finish sending its request headers within `timeout` (slow-loris guard).
fn guarded<A: axum_server::Address, Acc>(
    mut server: axum_server::Server<A, Acc>,
    timeout: Duration,
) -> axum_server::Server<A, Acc> {
    server
        .http_builder()
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout);
    server
}

async fn rustls_config(tls: &Tls) -> anyhow::Result<axum_server::tls_rustls::RustlsConfig> {
    use axum_server::tls_rustls::RustlsConfig;
    let _ = rustls::crypto::ring::default_provider().install_default();
    match tls {
        Tls::Files { cert, key } => RustlsConfig::from_pem_file(cert, key)
            .await
            .context("cannot load the TLS certificate or key"),
        Tls::SelfSigned => {
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
            Ok(RustlsConfig::from_pem(
                cert.cert.pem().into_bytes(),
                cert.signing_key.serialize_pem().into_bytes(),
            )
            .await?)
        }
        Tls::Off => bail!("TLS is off"),
    }
}
