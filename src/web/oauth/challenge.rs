//! The challenge of a `401` from `/mcp` (RFC 6750 §3, RFC 9728 §5.1): where the protected
//! resource's metadata is and which scopes to ask for, so an MCP client can start OAuth by
//! itself, plus `error="invalid_token"` when the request carried a bearer token that did not
//! authenticate (none for a request without credentials, as RFC 6750 asks).

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::domain::oauth::{baseline_scopes, mcp_resource_metadata_url};
use crate::web::AppState;

/// `Bearer resource_metadata="…", scope="…"` (and `, error="invalid_token"` when a token was
/// sent). Quotes and backslashes in the URL are escaped as RFC 9110's quoted-string wants.
pub fn www_authenticate(resource_metadata: &str, scope: &str, token_sent: bool) -> HeaderValue {
    let quoted = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut value = format!(
        "Bearer resource_metadata=\"{}\", scope=\"{}\"",
        quoted(resource_metadata),
        quoted(scope)
    );
    if token_sent {
        value.push_str(", error=\"invalid_token\"");
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// The challenge of `/mcp` on the server at `public_url`.
pub fn mcp_challenge(public_url: &str, token_sent: bool) -> HeaderValue {
    www_authenticate(
        &mcp_resource_metadata_url(public_url),
        &baseline_scopes().join(" "),
        token_sent,
    )
}

/// Whether a request carries bearer credentials (whatever they are worth).
fn bearer_sent(headers: &HeaderMap) -> bool {
    headers.get_all(header::AUTHORIZATION).iter().any(|v| {
        v.to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .is_some_and(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
    })
}

/// Wraps the `/mcp` routes: every `401` they answer leaves with the OAuth challenge in its
/// `WWW-Authenticate`, whichever layer refused (the guard's authentication today).
pub fn with_challenge(mcp: Router<AppState>, state: &AppState) -> Router<AppState> {
    mcp.layer(middleware::from_fn_with_state(state.clone(), challenge))
}

async fn challenge(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let token_sent = bearer_sent(req.headers());
    let mut res = next.run(req).await;
    if res.status() == StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, mcp_challenge(&s.http.public_url, token_sent));
        res.headers_mut().insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate"),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_names_the_metadata_and_the_scopes() {
        let v = www_authenticate(
            "https://mp.example/.well-known/oauth-protected-resource/mcp",
            "mcp:full team:view",
            false,
        );
        assert_eq!(
            v.to_str().unwrap(),
            "Bearer resource_metadata=\"https://mp.example/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:full team:view\""
        );
        let v = www_authenticate("https://mp.example/x", "a", true);
        assert!(v.to_str().unwrap().ends_with(", error=\"invalid_token\""));
        let v = www_authenticate("https://mp.example/\"x\\", "a", false);
        assert!(
            v.to_str()
                .unwrap()
                .contains("resource_metadata=\"https://mp.example/\\\"x\\\\\"")
        );
    }

    #[test]
    fn only_bearer_credentials_count_as_a_token_sent() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(bearer_sent(&with("Bearer abc")));
        assert!(bearer_sent(&with("bearer abc")));
        assert!(!bearer_sent(&with("Bearer ")));
        assert!(!bearer_sent(&with("Basic dXNlcjpwYXNz")));
        assert!(!bearer_sent(&HeaderMap::new()));
    }
}
