//! What `/mcp` checks before any JSON-RPC is read: a valid token (and the `mcp` bucket), the
//! `Host`, a browser `Origin`, and the `mcp:full` gate. A refusal is a JSON-RPC error response
//! with the §4 object in `data`, so every MCP client can show the reason; when the token is
//! known, the refusal is audited.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

use super::framing::{self, refusal};
use crate::domain::ability::Ability;
use crate::domain::audit::Outcome;
use crate::domain::error::{Error, ErrorBody, ErrorCode};
use crate::domain::narrowing::Narrowing;
use crate::service::{Caller, Surface};
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::extract::request_ctx;

/// Who is calling and from where, put in the request by the guard for the handler to read.
#[derive(Clone, Debug)]
pub struct McpCaller {
    pub caller: Caller,
    /// `<public URL>/docs`, for the envelope's `docs_url`.
    pub docs_base: Arc<str>,
}

pub async fn guard(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let ctx = request_ctx(&parts, s.http.behind_proxy);
    let docs_base: Arc<str> = format!("{}/docs", s.http.public_url.trim_end_matches('/')).into();
    let (caller, body) = match s.authenticate(&parts.headers, &ctx, Surface::Mcp).await {
        Ok(p) => (p, body),
        // A token out of requests may still call what is not metered (revoking itself): only
        // then is the body read before the token is let through.
        Err(e) if e.body.code == ErrorCode::RateLimited => match unmetered_call(&parts, body).await {
            (true, body) => match s.authenticate_for(&parts.headers, &ctx, Surface::Mcp, false).await {
                Ok(p) => (p, body),
                Err(e) => return refuse(e, body).await,
            },
            (false, body) => return refuse(e, body).await,
        },
        Err(e) => return refuse(e, body).await,
    };
    let refusal = if !host_allowed(&parts.headers, &parts.uri, &s.http.mcp_hosts) {
        Some((
            ApiError::new(
                ErrorCode::OriginNotAllowed,
                "This Host is not one this server answers to.",
            ),
            "host_not_allowed",
        ))
    } else if !origin_allowed(&parts.headers, &s.http.allowed_origins) {
        Some((
            ApiError::new(
                ErrorCode::OriginNotAllowed,
                "Requests from this browser origin are not allowed.",
            ),
            "origin_not_allowed",
        ))
    } else if !caller.can(Ability::McpFull) {
        Some((ApiError::from(Error::missing(Ability::McpFull)), "mcp_full_missing"))
    } else {
        None
    };
    if let Some((error, reason)) = refusal {
        audit_refusal(&s, &caller, &error.body, reason).await;
        return refuse(error, body).await;
    }
    let mut caller = caller;
    match narrowing(&parts.headers) {
        Ok(n) => {
            if let crate::service::Who::Token { grant, .. } = &mut caller.who {
                grant.narrowing = n.map(Box::new);
            }
        }
        Err(why) => {
            // The field is the header; the reason names the offending value.
            let header = why.split(':').next().unwrap_or("headers").trim().to_owned();
            let header = if header.starts_with("X-MemberPass-") {
                header
            } else {
                "headers".to_owned()
            };
            let mut error = ApiError::from(Error::field(&header, why.clone()));
            // Every reason starts with the header it is about.
            error.body.message = why;
            audit_refusal(&s, &caller, &error.body, "narrowing_invalid").await;
            let mut res = refuse(error, body).await;
            *res.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            return res;
        }
    }
    let body = match framing::checked_body(&parts, body).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let body = match step_up(&s, &caller, body).await {
        Ok(body) => body,
        Err(challenge) => return challenge,
    };
    parts.extensions.insert(McpCaller { caller, docs_base });
    framing::as_json_rpc(next.run(Request::from_parts(parts, body)).await).await
}

/// What this connection's `X-MemberPass-*` headers take away (a value that is not text is read
/// as one that names no tool, and refused as such).
fn narrowing(headers: &HeaderMap) -> Result<Option<Narrowing>, String> {
    Narrowing::from_headers(
        |name| {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap_or("\u{fffd}"))
                .collect()
        },
        |tool| crate::service::ops::catalog::find(tool).is_some(),
    )
}

/// Whether the request is one `tools/call` of an operation that takes nothing from the token's
/// bucket ([`crate::service::core::op::Spec::metered`]), and the body to pass on (read here, at most
/// the size rmcp accepts; a larger one is passed on empty and refused later).
async fn unmetered_call(parts: &axum::http::request::Parts, body: Body) -> (bool, Body) {
    let Ok(bytes) = axum::body::to_bytes(body, crate::web::limits::MAX_BODY_BYTES).await else {
        return (false, Body::empty());
    };
    let message: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let unmetered = parts.method == axum::http::Method::POST
        && message["method"] == "tools/call"
        && message["params"]["name"]
            .as_str()
            .and_then(crate::service::ops::catalog::find)
            .is_some_and(|op| !op.spec().metered);
    (unmetered, Body::from(bytes))
}

/// For an OAuth access token, a `tools/call` of a tool whose ability the person's role holds but
/// the grant does not is answered HTTP `403` with an `insufficient_scope` challenge naming every
/// scope the call needs, so the client can ask the person for more (step-up), before rmcp
/// dispatches anything. The refusal is the call's own, audited by the service's call path. A
/// pasted token, or a role without the ability, keeps the tool result with `isError`: asking the
/// person again could not help.
async fn step_up(s: &AppState, caller: &Caller, body: Body) -> Result<Body, Response> {
    if caller.grant().is_none_or(|g| g.oauth.is_none()) {
        return Ok(body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, crate::web::limits::MAX_BODY_BYTES).await else {
        return Ok(Body::empty());
    };
    let message: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let needed = (message["method"] == "tools/call")
        .then(|| message["params"]["name"].as_str())
        .flatten()
        .and_then(crate::service::ops::catalog::find)
        // A tool this connection's headers took away is not asked for either.
        .filter(|op| caller.narrowed_out(op.spec().name, op.spec().is_write()).is_none())
        .and_then(|op| Some((op, op.spec().ability?)))
        .filter(|(_, ability)| caller.member().is_some_and(|m| m.role.holds(*ability)) && !caller.can(*ability));
    let Some((op, ability)) = needed else {
        return Ok(Body::from(bytes));
    };
    let args = message["params"]["arguments"].clone();
    let input = crate::service::Input::json(if args.is_null() { json!({}) } else { args });
    let error = match s.service.call(op, caller, input).await {
        Err(e) => ApiError::from(e),
        // Not reached: the grant lacks the ability, so the call path refused it.
        Ok(_) => ApiError::from(Error::missing(ability)),
    };
    let mut res = refusal(error, framing::echoable_id(message.get("id")));
    *res.status_mut() = axum::http::StatusCode::FORBIDDEN;
    let scope = format!("{} {}", Ability::McpFull.as_str(), ability.as_str());
    let metadata = crate::domain::oauth::mcp_resource_metadata_url(&s.http.public_url);
    let challenge = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{metadata}\"");
    if let Ok(value) = axum::http::HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    Err(res)
}

/// The JSON-RPC error response of a refusal, answering the request's id when it can be read.
async fn refuse(error: ApiError, body: Body) -> Response {
    let id = axum::body::to_bytes(body, 64 * 1024)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .map_or(Value::Null, |v| framing::echoable_id(v.get("id")));
    refusal(error, id)
}

async fn audit_refusal(s: &AppState, caller: &Caller, body: &ErrorBody, reason: &str) {
    let (Some(member), Some(token_id)) = (caller.member(), caller.token_id()) else {
        return;
    };
    let mut properties = json!({ "reason": reason });
    if let Some(a) = body.required_ability {
        properties["required_ability"] = json!(a.as_str());
    }
    let mut entry = caller
        .draft("mcp.request", &member.team_id)
        .subject("token", token_id)
        .properties(properties);
    entry.outcome = Outcome::Denied;
    entry.error_code = Some(body.code.as_str());
    if let Err(e) = s.service.append_alone(entry).await {
        tracing::error!(error = ?e, "could not audit a refused MCP request");
    }
}

/// The `Host` (without its port) must be the public URL's host or a loopback name. HTTP/2
/// carries it as the `:authority` of the URI instead of a header.
fn host_allowed(headers: &HeaderMap, uri: &axum::http::Uri, allowed: &[String]) -> bool {
    let host = match headers.get(header::HOST) {
        Some(v) => v.to_str().ok(),
        None => uri.authority().map(|a| a.as_str()),
    };
    let Some(host) = host else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// A request with an `Origin` (a browser) must come from the server's own origin (its public
/// URL's: the dashboard's pages) or one on `--allowed-origin`. Origins are compared as origins
/// (scheme, host, port with the scheme's default filled in), so `https://mp.example` and
/// `https://mp.example:443` are the same; `null` and anything unparsable are refused.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(origin) = origin.to_str().ok().and_then(origin_of) else {
        return false;
    };
    allowed.iter().filter_map(|a| origin_of(a)).any(|a| a == origin)
}

/// The origin a URL or an `Origin` header names, if it names one (`null` and opaque origins do
/// not: they equal nothing).
fn origin_of(text: &str) -> Option<url::Origin> {
    let origin = url::Url::parse(text).ok()?.origin();
    origin.is_tuple().then_some(origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_host_comes_from_the_header_or_the_http2_authority() {
        let allowed = [
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "mp.example".to_owned(),
        ];
        let with_host = |h: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_str(h).unwrap());
            m
        };
        let plain: axum::http::Uri = "/mcp".parse().unwrap();
        for ok in ["localhost:8080", "127.0.0.1", "[::1]:9", "MP.example", "mp.example:443"] {
            assert!(host_allowed(&with_host(ok), &plain, &allowed), "{ok}");
        }
        for bad in [
            "evil.example",
            "mp.example.evil.example",
            "127.0.0.1.nip.io",
            "[::2]:80",
        ] {
            assert!(!host_allowed(&with_host(bad), &plain, &allowed), "{bad}");
        }
        let h2: axum::http::Uri = "https://mp.example:8443/mcp".parse().unwrap();
        assert!(host_allowed(&HeaderMap::new(), &h2, &allowed));
        let h2_evil: axum::http::Uri = "https://evil.example/mcp".parse().unwrap();
        assert!(!host_allowed(&HeaderMap::new(), &h2_evil, &allowed));
        assert!(!host_allowed(&HeaderMap::new(), &plain, &allowed), "no host at all");
    }

    #[test]
    fn origins_are_compared_as_origins() {
        let allowed = ["https://mp.example/".to_owned(), "http://127.0.0.1:8080".to_owned()];
        let with_origin = |o: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            m
        };
        for ok in ["https://mp.example", "https://MP.example:443", "http://127.0.0.1:8080/"] {
            assert!(origin_allowed(&with_origin(ok), &allowed), "{ok}");
        }
        for bad in [
            "http://mp.example",
            "https://mp.example:8443",
            "https://mp.example.evil.example",
            "http://127.0.0.1:8081",
            "null",
            "",
            "mp.example",
        ] {
            assert!(!origin_allowed(&with_origin(bad), &allowed), "{bad}");
        }
        assert!(origin_allowed(&HeaderMap::new(), &allowed), "no Origin: not a browser");
    }
}
