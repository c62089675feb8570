//! Client ID metadata documents: an OAuth client whose `client_id` is an https URL publishes
//! its metadata there, and the server fetches it — a request to a URL a stranger chose, so it
//! is guarded against server-side request forgery:
//!
//! - https only (plain http only from a loopback address, and only with
//!   `--oauth-allow-loopback-client-metadata`, for tests and local development);
//! - the host is resolved here and every address it resolves to must be public
//!   ([`crate::domain::address::is_public`]); the connection then goes to the address that was
//!   checked (the HTTP client is pinned to it), so a second DNS answer cannot rebind it;
//! - no proxy, no redirect followed (a 3xx is a refusal), at most [`MAX_DOCUMENT_BYTES`],
//!   everything within [`FETCH_TIMEOUT`];
//! - the document's `client_id` must be the URL exactly, and its metadata passes the same
//!   checks as a registration.
//!
//! How long it may be cached comes from its `Cache-Control` ([`cache_for`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::domain::address::{is_loopback, is_public};
use crate::domain::oauth::{ClientMetadata, RegistrationRequest};

/// Largest document read.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// The whole fetch (resolution, connection, TLS, headers, body) must end within this.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a document is cached, whatever its `Cache-Control` says.
pub const MAX_CACHE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Shortest: a document that forbids caching is still not fetched again for every request.
pub const MIN_CACHE: Duration = Duration::from_secs(60);
/// Without `max-age`.
pub const DEFAULT_CACHE: Duration = Duration::from_secs(3600);

/// Why a document was not accepted. Never shown to the client (it gets a generic
/// `invalid_client`); logged for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("the client_id is not an https URL with a host and a path")]
    NotAnHttpsUrl,
    #[error("plain http is allowed only from loopback with --oauth-allow-loopback-client-metadata")]
    PlainHttp,
    #[error("the host could not be resolved")]
    Unresolvable,
    #[error("the host resolves to an address that is not public ({0})")]
    PrivateAddress(IpAddr),
    #[error("the fetch failed or timed out")]
    Fetch,
    #[error("the server answered a redirect, which is not followed")]
    Redirect,
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("the document is not a JSON object")]
    NotJson,
    #[error("the document's metadata is refused: {0}")]
    Invalid(String),
}

/// A document as fetched and checked, and how long it may be cached.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub metadata: ClientMetadata,
    pub cache_for: Duration,
}

/// Whether a `client_id` names a metadata document (rather than a registered client).
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Fetches and checks the metadata document at `url` (see the module doc).
pub async fn fetch(url: &str, allow_loopback_http: bool) -> Result<Fetched, DocumentError> {
    tokio::time::timeout(FETCH_TIMEOUT, fetch_unbounded(url, allow_loopback_http))
        .await
        .map_err(|_| DocumentError::Fetch)?
}

async fn fetch_unbounded(url: &str, allow_loopback_http: bool) -> Result<Fetched, DocumentError> {
    let target = Target::of(url, allow_loopback_http).await?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut client = reqwest::Client::builder()
        .user_agent(concat!("memberpass/", env!("CARGO_PKG_VERSION"), " (client metadata)"))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT);
    if let Some(domain) = &target.domain {
        // The connection goes to the address checked above, whatever DNS says next.
        client = client.resolve(domain, target.addr);
    }
    let client = client.build().map_err(|_| DocumentError::Fetch)?;
    let mut res = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|_| DocumentError::Fetch)?;
    let status = res.status();
    if status.is_redirection() {
        return Err(DocumentError::Redirect);
    }
    if status != reqwest::StatusCode::OK {
        return Err(DocumentError::Status(status.as_u16()));
    }
    if res.content_length().is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
        return Err(DocumentError::TooLarge);
    }
    let cache = cache_for(
        res.headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|_| DocumentError::Fetch)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(DocumentError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let request: RegistrationRequest = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v @ serde_json::Value::Object(_)) => serde_json::from_value(v).map_err(|_| DocumentError::NotJson)?,
        _ => return Err(DocumentError::NotJson),
    };
    let metadata = request
        .check_document(url)
        .map_err(|e| DocumentError::Invalid(e.description().to_owned()))?;
    Ok(Fetched {
        metadata,
        cache_for: cache,
    })
}

/// Where a fetch may connect: the checked address, and the name to pin it to.
#[derive(Debug)]
struct Target {
    domain: Option<String>,
    addr: SocketAddr,
}

impl Target {
    async fn of(url: &str, allow_loopback_http: bool) -> Result<Target, DocumentError> {
        let parsed = url::Url::parse(url).map_err(|_| DocumentError::NotAnHttpsUrl)?;
        let plain = match parsed.scheme() {
            "https" => false,
            "http" if allow_loopback_http => true,
            "http" => return Err(DocumentError::PlainHttp),
            _ => return Err(DocumentError::NotAnHttpsUrl),
        };
        if !parsed.username().is_empty()
            || parsed.password().is_some()
            || parsed.fragment().is_some()
            || parsed.path() == "/"
            || url.contains('\\')
        {
            return Err(DocumentError::NotAnHttpsUrl);
        }
        let port = parsed.port_or_known_default().ok_or(DocumentError::NotAnHttpsUrl)?;
        let (domain, addrs): (Option<String>, Vec<IpAddr>) = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => (None, vec![IpAddr::V4(v4)]),
            Some(url::Host::Ipv6(v6)) => (None, vec![IpAddr::V6(v6)]),
            Some(url::Host::Domain(d)) => {
                let found = tokio::net::lookup_host((d, port))
                    .await
                    .map_err(|_| DocumentError::Unresolvable)?
                    .map(|a| a.ip())
                    .collect::<Vec<_>>();
                (Some(d.to_owned()), found)
            }
            None => return Err(DocumentError::NotAnHttpsUrl),
        };
        let Some(&first) = addrs.first() else {
            return Err(DocumentError::Unresolvable);
        };
        // Every address must pass, not just the one connected to: a name with one public and
        // one private address is someone's attempt.
        for ip in &addrs {
            let allowed = if plain { is_loopback(*ip) } else { is_public(*ip) };
            if !allowed {
                return Err(match plain {
                    true => DocumentError::PlainHttp,
                    false => DocumentError::PrivateAddress(*ip),
                });
            }
        }
        Ok(Target {
            domain,
            addr: SocketAddr::new(first, port),
        })
    }
}

/// How long a document may be cached: its `max-age` (or `s-maxage`), between [`MIN_CACHE`] and
/// [`MAX_CACHE`]; `no-store` / `no-cache` give the minimum; no directive gives [`DEFAULT_CACHE`].
pub fn cache_for<'a>(headers: impl IntoIterator<Item = &'a str>) -> Duration {
    let mut max_age: Option<u64> = None;
    let mut forbidden = false;
    for directive in headers.into_iter().flat_map(|h| h.split(',')) {
        let directive = directive.trim().to_ascii_lowercase();
        match directive.split_once('=') {
            Some((name, value)) if name.trim() == "max-age" || name.trim() == "s-maxage" => {
                if let Ok(secs) = value.trim().trim_matches('"').parse::<u64>() {
                    max_age = Some(max_age.map_or(secs, |m| m.min(secs)));
                }
            }
            None if directive == "no-store" || directive == "no-cache" => forbidden = true,
            _ => {}
        }
    }
    let chosen = match (forbidden, max_age) {
        (true, _) => MIN_CACHE,
        (false, Some(secs)) => Duration::from_secs(secs),
        (false, None) => DEFAULT_CACHE,
    };
    chosen.clamp(MIN_CACHE, MAX_CACHE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_lifetimes_follow_cache_control_within_bounds() {
        assert_eq!(cache_for([]), DEFAULT_CACHE);
        assert_eq!(cache_for(["max-age=600"]), Duration::from_secs(600));
        assert_eq!(cache_for(["public, max-age=86400"]), Duration::from_secs(86_400));
        assert_eq!(cache_for(["max-age=99999999"]), MAX_CACHE);
        assert_eq!(cache_for(["max-age=0"]), MIN_CACHE);
        assert_eq!(cache_for(["no-store"]), MIN_CACHE);
        assert_eq!(cache_for(["max-age=600", "no-cache"]), MIN_CACHE);
        assert_eq!(cache_for(["Max-Age=7200"]), Duration::from_secs(7200));
        assert_eq!(cache_for(["max-age=oops"]), DEFAULT_CACHE);
    }

    #[tokio::test]
    async fn urls_that_are_not_plain_https_documents_are_refused_before_any_connection() {
        for (url, want) in [
            ("ftp://a.example/x", DocumentError::NotAnHttpsUrl),
            ("https://a.example/", DocumentError::NotAnHttpsUrl),
            ("https://a.example", DocumentError::NotAnHttpsUrl),
            ("https://u:p@a.example/x", DocumentError::NotAnHttpsUrl),
            ("https://a.example/x#f", DocumentError::NotAnHttpsUrl),
            ("http://a.example/x", DocumentError::PlainHttp),
            ("http://127.0.0.1:9/x", DocumentError::PlainHttp),
            (
                "https://127.0.0.1/x",
                DocumentError::PrivateAddress("127.0.0.1".parse().unwrap()),
            ),
            (
                "https://169.254.169.254/latest",
                DocumentError::PrivateAddress("169.254.169.254".parse().unwrap()),
            ),
            (
                "https://10.0.0.1/x",
                DocumentError::PrivateAddress("10.0.0.1".parse().unwrap()),
            ),
            ("https://[::1]/x", DocumentError::PrivateAddress("::1".parse().unwrap())),
            (
                "https://[::ffff:7f00:1]/x",
                DocumentError::PrivateAddress("::ffff:127.0.0.1".parse().unwrap()),
            ),
            (
                "https://[fd00::1]/x",
                DocumentError::PrivateAddress("fd00::1".parse().unwrap()),
            ),
            (
                "https://100.64.1.1/x",
                DocumentError::PrivateAddress("100.64.1.1".parse().unwrap()),
            ),
        ] {
            assert_eq!(Target::of(url, false).await.map(|_| ()), Err(want), "{url}");
        }
        // With the flag, plain http from loopback only; https keeps every rule.
        assert!(Target::of("http://127.0.0.1:9/x", true).await.is_ok());
        assert!(Target::of("http://[::1]:9/x", true).await.is_ok());
        assert_eq!(
            Target::of("http://10.0.0.1:9/x", true).await.map(|_| ()),
            Err(DocumentError::PlainHttp)
        );
        assert!(matches!(
            Target::of("https://127.0.0.1/x", true).await,
            Err(DocumentError::PrivateAddress(_))
        ));
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() {
        assert!(matches!(
            Target::of("https://localhost/x", false).await,
            Err(DocumentError::PrivateAddress(_))
        ));
    }
}
