//! `--revoke URL`: each token found is handed to a server's revoke-by-possession endpoint
//! (`POST {URL}/v1/tokens/revoke`, `{"token", "source"}`), which answers 202 whether or not it
//! knew the token. The token travels only in that body; what is reported is the status.
//!
//! The request goes straight to the server: proxy variables (`http_proxy`, `https_proxy`,
//! `all_proxy`) are ignored unless `--use-proxy` asks for them: over `http://` a proxy would
//! read each token in clear and could answer for the server.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use url::Url;

use crate::domain::refresh_token::AnyToken;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per token when the server says to slow down (429): its leak-report limit is per
/// IP per minute, and a scan can find more tokens than that.
const ATTEMPTS: u32 = 4;
/// Longest wait honoured from `Retry-After`.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The server's limit on `source`, in characters.
const MAX_SOURCE_CHARS: usize = 500;

/// A token to revoke and where it was found.
pub struct Handed {
    pub token: AnyToken,
    /// `memberpass scan <path>:<line>`, for the owner's audit trail.
    pub source: String,
}

/// What the server answered for one token: a status, or why no answer came.
pub type Answer = Result<StatusCode, String>;

/// The endpoint under a server's base URL, or why the URL cannot be one.
pub fn endpoint(base: &str) -> Result<Url, String> {
    let url = Url::parse(base).map_err(|e| format!("--revoke: `{base}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("--revoke: `{base}` must be an http:// or https:// server URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "--revoke: `{base}` must be the server's base URL, without `?` or `#`"
        ));
    }
    let joined = format!("{}/v1/tokens/revoke", url.as_str().trim_end_matches('/'));
    Url::parse(&joined).map_err(|e| format!("--revoke: `{base}` is not a URL ({e})"))
}

/// Whether a token sent to `url` could be read on the way (plain HTTP beyond this machine).
pub fn is_exposed_in_transit(url: &Url) -> bool {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    url.scheme() == "http" && !loopback
}

/// `memberpass scan <path>:<line>`, shortened from the left to the server's limit.
pub fn source_of(path: &str, line: u64) -> String {
    let full = format!("memberpass scan {path}:{line}");
    let extra = full.chars().count().saturating_sub(MAX_SOURCE_CHARS);
    if extra == 0 {
        return full;
    }
    let path_tail: String = path.chars().skip(extra + 1).collect();
    format!("memberpass scan …{path_tail}:{line}")
}

/// Hands each token to the endpoint in turn (through the environment's proxy only with
/// `use_proxy`); one answer per token, in order.
pub async fn revoke_all(endpoint: &Url, handed: &[Handed], use_proxy: bool) -> Vec<Answer> {
    let client = match client(use_proxy) {
        Ok(client) => client,
        Err(e) => return handed.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut answers = Vec::with_capacity(handed.len());
    for h in handed {
        answers.push(revoke_one(&client, endpoint, h).await);
    }
    answers
}

fn client(use_proxy: bool) -> Result<reqwest::Client, String> {
    // rustls needs a process-wide crypto provider: the one in the tree (ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder()
        .user_agent(concat!("memberpass-scan/", env!("CARGO_PKG_VERSION")))
        .timeout(TIMEOUT)
        // A redirect would carry the token to wherever the server points; never follow one.
        .redirect(reqwest::redirect::Policy::none());
    // reqwest reads the proxy variables by default; only the flag lets it.
    let builder = if use_proxy { builder } else { builder.no_proxy() };
    builder.build().map_err(|e| format!("cannot build an HTTP client: {e}"))
}

async fn revoke_one(client: &reqwest::Client, endpoint: &Url, h: &Handed) -> Answer {
    let body = json!({"token": h.token.expose_secret(), "source": h.source});
    let mut attempt = 1;
    loop {
        let response = client
            .post(endpoint.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("no answer: {}", e.without_url()))?;
        let status = response.status();
        if status != StatusCode::TOO_MANY_REQUESTS || attempt == ATTEMPTS {
            return Ok(status);
        }
        tokio::time::sleep(retry_after(response.headers())).await;
        attempt += 1;
    }
}

/// The wait a 429 asks for (`Retry-After` in seconds), within reason.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(2), Duration::from_secs)
        .min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_under_the_base_url_with_or_without_a_slash() {
        for base in ["https://mp.example.com", "https://mp.example.com/"] {
            assert_eq!(
                endpoint(base).unwrap().as_str(),
                "https://mp.example.com/v1/tokens/revoke"
            );
        }
        assert_eq!(
            endpoint("http://127.0.0.1:8080/memberpass/").unwrap().as_str(),
            "http://127.0.0.1:8080/memberpass/v1/tokens/revoke"
        );
        for bad in [
            "mp.example.com",
            "ftp://mp.example.com",
            "file:///tmp/x",
            "",
            "https://mp.example.com/?a=b",
        ] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_http_is_only_fine_on_this_machine() {
        assert!(!is_exposed_in_transit(&endpoint("http://127.0.0.1:1").unwrap()));
        assert!(!is_exposed_in_transit(&endpoint("http://localhost:1").unwrap()));
        assert!(!is_exposed_in_transit(&endpoint("https://mp.example.com").unwrap()));
        assert!(is_exposed_in_transit(&endpoint("http://mp.example.com").unwrap()));
    }

    #[test]
    fn the_source_fits_the_servers_limit_keeping_the_end_of_the_path() {
        assert_eq!(source_of("logs/a.log", 3), "memberpass scan logs/a.log:3");
        let long = format!("/{}/session.jsonl", "d".repeat(600));
        let source = source_of(&long, 12);
        assert_eq!(source.chars().count(), MAX_SOURCE_CHARS);
        assert!(source.ends_with("/session.jsonl:12"), "{source}");
    }
}
