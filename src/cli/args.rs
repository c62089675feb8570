//! The command line of SPEC §10, as clap types.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::domain::role::Role;
use crate::domain::token::TokenEnv;

#[derive(Parser, Debug)]
#[command(name = "memberpass", version, about = "MemberPass server and operator CLI")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// `sqlite://…` or `postgres://…`; default: a SQLite file in --data-dir.
    #[arg(long, global = true, env = "MEMBERPASS_DATABASE_URL")]
    pub database_url: Option<String>,
    #[arg(
        long,
        global = true,
        default_value = "./memberpass-data",
        env = "MEMBERPASS_DATA_DIR"
    )]
    pub data_dir: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Token environment this server and its tokens belong to.
    #[arg(long, global = true, default_value = "test", env = "MEMBERPASS_ENV")]
    pub env: TokenEnv,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Apply the embedded migrations.
    Migrate,
    /// Seed demo data; print a login and a least-privilege MCP token.
    Demo,
    #[command(subcommand)]
    User(UserCmd),
    #[command(subcommand)]
    Team(TeamCmd),
    #[command(subcommand)]
    Project(ProjectCmd),
    #[command(subcommand)]
    Token(TokenCmd),
    #[command(subcommand)]
    Audit(AuditCmd),
    /// OAuth clients of /mcp: pre-register one, list them, remove one.
    #[command(subcommand, name = "oauth-client")]
    OAuthClient(OAuthClientCmd),
    /// Find MemberPass tokens in files (logs, transcripts, histories); report file, line and ID.
    ///
    /// Exit code: 0 nothing found, 1 tokens found, 2 the command line cannot be run.
    Scan(ScanArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[arg(long)]
    pub public_url: Option<String>,
    #[arg(long, requires = "tls_key", conflicts_with = "tls_self_signed")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    #[arg(long)]
    pub tls_self_signed: bool,
    #[arg(long)]
    pub behind_tls_proxy: bool,
    #[arg(long = "allowed-origin")]
    pub allowed_origins: Vec<String>,
    #[arg(long, default_value_t = 120)]
    pub rate_limit_mcp: u32,
    #[arg(long, default_value_t = 300)]
    pub rate_limit_rest: u32,
    /// Failed token authentications per client IP per minute; failed dashboard sign-ins per
    /// (account, client IP) per minute, and four times it per client IP.
    #[arg(long, default_value_t = 5)]
    pub rate_limit_auth_failures: u32,
    /// Unauthenticated leak reports per client IP per minute: revoke by possession
    /// (`POST /v1/tokens/revoke`) and the secret-scanning partner endpoint, each its own bucket.
    #[arg(long, default_value_t = 30)]
    pub rate_limit_leak_reports: u32,
    /// SQLite only: `full` syncs at every commit (no answered call is lost on power loss);
    /// `normal` syncs at checkpoints and can lose the last commits on power loss.
    #[arg(long, value_enum, default_value_t = crate::store::Synchronous::Full)]
    pub sqlite_synchronous: crate::store::Synchronous,
    /// Where GitHub's secret-scanning public keys are published.
    #[arg(long, default_value = crate::service::GITHUB_KEYS_URL)]
    pub secret_scanning_keys_url: String,
    /// Seed demo data (on an empty database) and print a read-only token.
    #[arg(long)]
    pub demo: bool,
    /// OAuth dynamic client registrations (`POST /register`) per client IP per minute.
    #[arg(long, default_value_t = 10)]
    pub rate_limit_oauth_registrations: u32,
    /// Lifetime of an OAuth access token (e.g. 15m, 1h, 24h).
    #[arg(long, default_value = "1h", value_parser = crate::domain::oauth::parse_duration)]
    pub oauth_access_ttl: std::time::Duration,
    /// How long a used OAuth refresh token stays valid after its successor is issued, so that
    /// parallel sessions of one client do not log the person out (e.g. 60s, 5m).
    #[arg(long, default_value = "60s", value_parser = crate::domain::oauth::parse_duration)]
    pub oauth_refresh_grace: std::time::Duration,
    /// Tests and local development only: let an OAuth client ID metadata document be fetched
    /// over plain http from a loopback address. Never on a server others use.
    #[arg(long)]
    pub oauth_allow_loopback_client_metadata: bool,
    /// How long a held call's approval request lives: a person approves, and the caller repeats
    /// the call, within it (e.g. 90s, 15m; at most 7d).
    #[arg(long, default_value = "15m", value_parser = parse_approval_ttl)]
    pub approval_ttl: std::time::Duration,
    /// How often tokens are checked for expiry warnings (7 days and 1 day before, and on
    /// expiry): e.g. 1h (default), 1s in tests.
    #[arg(long, default_value = "1h", value_parser = crate::domain::oauth::parse_duration)]
    pub maintenance_interval: std::time::Duration,
    /// Serve Prometheus metrics at `/metrics` on this address (alone: 127.0.0.1:9464); off when
    /// absent. Never on the main listener.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9464")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// A grace: `0` (none), or a duration of at most 7 days.
fn parse_grace(s: &str) -> Result<std::time::Duration, String> {
    if s.trim() == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    parse_approval_ttl(s)
}

/// A duration of at most 7 days (`90s`, `15m`, `2h`, `7d`).
fn parse_approval_ttl(s: &str) -> Result<std::time::Duration, String> {
    let d = crate::domain::oauth::parse_duration(s)?;
    if d > std::time::Duration::from_secs(7 * 86_400) {
        return Err(format!("`{s}` is longer than 7 days"));
    }
    Ok(d)
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files and directories to scan; default: where AI clients and shells keep logs and
    /// transcripts under $HOME. Hidden files are scanned, .gitignore is not honoured, symlinks
    /// are not followed.
    pub paths: Vec<PathBuf>,
    /// Overwrite each token's secret in place with [REDACTED] padded with X to its length
    /// (mpt_<env>_<id>_[REDACTED]XXX…), keeping every other byte; gzip files are rewritten.
    #[arg(long)]
    pub redact: bool,
    /// Hand each token found to this MemberPass server's revoke-by-possession endpoint.
    #[arg(long, value_name = "URL")]
    pub revoke: Option<String>,
    /// Send --revoke's requests through the proxy named by http_proxy, https_proxy or all_proxy
    /// (and their upper-case forms, minus no_proxy). Without this flag those variables are
    /// ignored: over http:// a proxy would read each token in clear and could answer for the
    /// server.
    #[arg(long, requires = "revoke")]
    pub use_proxy: bool,
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Read the dashboard password from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a person's dashboard password (read from stdin) and sign them out everywhere.
    SetPassword {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TeamCmd {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner: String,
    },
    /// Add a person to a team, or change their role.
    AddMember {
        #[arg(long)]
        team: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: Role,
    },
    RemoveMember {
        #[arg(long)]
        team: String,
        #[arg(long)]
        email: String,
    },
    /// Show a team's approval policy, or change it (as the operator; audited).
    Policy {
        #[arg(long)]
        team: String,
        /// OPERATION=mcp|rest|both|none: where calls of a write operation wait for a person's
        /// approval. Repeatable.
        #[arg(long = "approval", value_name = "OPERATION=RULE")]
        approvals: Vec<String>,
        /// Who may approve: owner-or-admin (the token's owner or an owner/admin of the team),
        /// or not-the-caller (an owner/admin other than the token's owner).
        #[arg(long)]
        approver: Option<String>,
        /// The token policy: the longest lifetime of a new token (`90d`, `12h`), or `off`.
        #[arg(long, value_name = "DURATION|off")]
        max_lifetime: Option<String>,
        /// Whether a new token must have an expiry (`--require-expiry` alone: true).
        #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true")]
        require_expiry: Option<bool>,
        /// ROLE=ABILITY,ABILITY,…: the only abilities people of ROLE may put on a token
        /// (`ROLE=any`: whatever the role holds, the default). Repeatable.
        #[arg(long = "role-abilities", value_name = "ROLE=A,B,…")]
        role_abilities: Vec<String>,
        /// Tokens not used for this long expire (a warning 7 days and 1 day before), or `off`.
        #[arg(long, value_name = "DURATION|off")]
        expire_unused: Option<String>,
        /// Whether tokens minted by a person (pasted into a client) may be used on /mcp.
        #[arg(long, value_name = "allow|deny")]
        mcp_pasted_tokens: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProjectCmd {
    Create {
        #[arg(long)]
        team: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        handle: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    Mint {
        #[arg(long)]
        team: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        #[arg(long = "ability")]
        abilities: Vec<String>,
        #[arg(long = "project")]
        projects: Vec<String>,
        /// e.g. 30d, 12h, 45m
        #[arg(long)]
        expires_in: Option<String>,
        /// A CIDR block (IPv4 or IPv6) or address the token may be used from; repeatable.
        /// Without it: from anywhere.
        #[arg(long = "allow-ip")]
        allow_ips: Vec<String>,
    },
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        team: Option<String>,
    },
    /// Metadata for support, by ID; never the secret.
    Show { token_id: String },
    Revoke {
        token_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Mint a replacement; the old secret is revoked now, or keeps working for `--grace`
    /// (0 to 7d), every use of it audited as superseded.
    Rotate {
        token_id: String,
        #[arg(long, default_value = "0", value_parser = parse_grace)]
        grace: std::time::Duration,
    },
    /// End a superseded token's grace now: it is revoked.
    EndGrace { token_id: String },
    /// Replace the token's network allowlist with these CIDR blocks; none clears it (anywhere).
    AllowIp { token_id: String, cidrs: Vec<String> },
    /// At most N calls of OPERATION per rolling 24 h by this token; beyond it a call needs
    /// approval. `0` removes the budget.
    Budget {
        token_id: String,
        operation: String,
        limit: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check the hash chain; exits non-zero if any entry was edited, inserted or deleted.
    Verify,
    /// Write entries as NDJSON, oldest first.
    Export {
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum OAuthClientCmd {
    /// Pre-register a public OAuth client (PKCE, no secret) with its redirect URIs.
    Add {
        #[arg(long)]
        name: String,
        /// Each redirect URI the client may be sent back to (https, loopback http, or a
        /// private-use scheme such as cursor://); repeat for several.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// The client id to give it (letters, digits, `-`, `_`, `.`); default: a fresh UUID.
        #[arg(long)]
        client_id: Option<String>,
    },
    /// Registered and pre-registered clients, oldest first.
    List {
        /// Also the cached client ID metadata documents.
        #[arg(long)]
        documents: bool,
    },
    /// Remove a client: it can no longer be authorised.
    Remove { client_id: String },
}
