//! The authorization-code flow of OAuth 2.1 for `/mcp` (issue 19), the pure part: how a
//! requested redirect URI matches a registered one, PKCE S256, which `resource` values name
//! `/mcp`, how a `scope` maps to abilities, where a redirect's answer goes, and which `next`
//! path the sign-in page may follow.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ability::Ability;
use super::oauth::{is_loopback_host, issuer, mcp_resource};
use super::time::{DAY_MS, MINUTE_MS};

/// How long a consent form may be answered after it was shown.
pub const REQUEST_TTL_MS: i64 = 10 * MINUTE_MS;
/// How long an authorization code may be exchanged.
pub const CODE_TTL_MS: i64 = 5 * MINUTE_MS;
/// How long a refresh token lives (each rotation issues a new one with a fresh lifetime).
pub const REFRESH_TTL_MS: i64 = 30 * DAY_MS;

/// A loopback `http` redirect with its port removed, or `None` for any other URI.
fn loopback_without_port(uri: &str) -> Option<url::Url> {
    let mut u = url::Url::parse(uri).ok()?;
    if u.scheme() != "http" || !u.host().is_some_and(|h| is_loopback_host(&h)) {
        return None;
    }
    u.set_port(None).ok()?;
    Some(u)
}

/// Whether `requested` may be used for the registered `registered`: exactly the same string, or
/// both `http` on the same loopback host with the same path and query, whatever the ports
/// (RFC 8252 §7.3: a native app listens on a port it gets from the system).
pub fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (loopback_without_port(registered), loopback_without_port(requested)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// What makes two grants "the same client and redirect" for re-authorisation: the URI, with the
/// port dropped on a loopback host.
pub fn redirect_key(uri: &str) -> String {
    loopback_without_port(uri).map_or_else(|| uri.to_owned(), |u| u.to_string())
}

/// The origin (or, for a private-use scheme, the scheme) a browser is sent to by the redirect:
/// what the consent page's `form-action` must allow.
pub fn redirect_source(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    match u.scheme() {
        // CSP has no syntax for an IPv6 literal: its scheme has to do.
        "http" | "https" if matches!(u.host(), Some(url::Host::Ipv6(_))) => Some(format!("{}:", u.scheme())),
        "http" | "https" => {
            let origin = u.origin();
            origin.is_tuple().then(|| origin.ascii_serialization())
        }
        scheme => Some(format!("{scheme}:")),
    }
}

/// The host the consent page names, and whether it is a loopback one (an app on this computer).
pub fn redirect_host(uri: &str) -> (String, bool) {
    match url::Url::parse(uri) {
        Ok(u) => match u.host() {
            Some(h) => (h.to_string(), is_loopback_host(&h)),
            None => (format!("{}:", u.scheme()), false),
        },
        Err(_) => (uri.to_owned(), false),
    }
}

/// A PKCE S256 challenge as a client sends it: BASE64URL(SHA-256(verifier)), 43 characters.
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
pub fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// BASE64URL(SHA-256(verifier)), without padding.
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` proves possession for `challenge` (compared in constant time).
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    is_verifier(verifier) && bool::from(s256(verifier).as_bytes().ct_eq(challenge.as_bytes()))
}

/// The one resource a grant is for, `<public URL>/mcp`, when `resource` names it: absent, that
/// URL, the origin, or the origin with `/` (Claude Code sends the last). Scheme and host may be
/// in any case; nothing else is normalised (`/mcp/` is another resource).
pub fn resource_of(public_url: &str, resource: Option<&str>) -> Option<String> {
    let canonical = mcp_resource(public_url);
    let Some(resource) = resource else {
        return Some(canonical);
    };
    let normal = |s: &str| url::Url::parse(s).ok().map(|u| u.to_string());
    let given = normal(resource)?;
    let origin = issuer(public_url);
    let aliases = [canonical.clone(), origin.clone(), format!("{origin}/")];
    aliases
        .iter()
        .any(|a| normal(a).is_some_and(|a| a == given) && !resource.contains('#'))
        .then_some(canonical)
}

/// The abilities a `scope` names, in catalog order; anything else in it (`openid`,
/// `offline_access`, a typo) is ignored.
pub fn scope_abilities(scope: &str) -> Vec<Ability> {
    let named: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    Ability::ALL
        .iter()
        .copied()
        .filter(|a| named.contains(&a.as_str()))
        .collect()
}

/// A grant's abilities as a `scope`: the names, space-separated.
pub fn scope_of(abilities: &[Ability]) -> String {
    abilities.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(" ")
}

/// `uri` with the answer's parameters added to its query (a redirect URI has no fragment).
pub fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let glue = match uri.split_once('?') {
        None => "?",
        Some((_, "")) => "",
        Some(_) => "&",
    };
    format!("{uri}{glue}{query}")
}

/// The path the sign-in page may send a person on to: a relative path of this origin only —
/// starting with one `/` (not `//`, not `/\`), printable ASCII, no backslash anywhere, at most
/// 4096 characters. Anything else (a scheme, a host, control characters) is refused.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.len() <= 4096
        && next.starts_with('/')
        && !next.starts_with("//")
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    ok.then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_vector_holds() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(s256(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(verifier_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!verifier_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!is_s256_challenge("short"));
        assert!(!is_verifier("short"));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!verifier_matches(&format!("{verifier}!"), "x"));
    }

    #[test]
    fn redirects_match_exactly_but_for_the_loopback_port() {
        assert!(redirect_matches("https://a.example/cb", "https://a.example/cb"));
        assert!(!redirect_matches("https://a.example/cb", "https://a.example/cb/"));
        assert!(!redirect_matches("https://a.example/cb", "https://a.example:8443/cb"));
        assert!(redirect_matches("http://127.0.0.1/cb", "http://127.0.0.1:5555/cb"));
        assert!(redirect_matches("http://127.0.0.1:1/cb", "http://127.0.0.1:5555/cb"));
        assert!(redirect_matches("http://localhost:1/cb", "http://localhost:2/cb"));
        assert!(redirect_matches("http://[::1]:1/cb", "http://[::1]:2/cb"));
        assert!(!redirect_matches("http://127.0.0.1/cb", "http://127.0.0.1:5555/other"));
        assert!(!redirect_matches("http://127.0.0.1/cb", "http://localhost:5555/cb"));
        assert!(!redirect_matches("http://127.0.0.1/cb", "https://127.0.0.1:5555/cb"));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1@evil.example/cb"
        ));
        assert_eq!(
            redirect_key("http://127.0.0.1:5/cb"),
            redirect_key("http://127.0.0.1:9/cb")
        );
        assert_ne!(
            redirect_key("https://a.example/cb"),
            redirect_key("https://b.example/cb")
        );
    }

    #[test]
    fn the_resource_is_mcp_or_the_origin() {
        let p = "https://mp.example";
        let mcp = Some("https://mp.example/mcp".to_owned());
        assert_eq!(resource_of(p, None), mcp);
        for ok in [
            "https://mp.example/mcp",
            "https://mp.example",
            "https://mp.example/",
            "HTTPS://MP.example/mcp",
        ] {
            assert_eq!(resource_of(p, Some(ok)), mcp, "{ok}");
        }
        for bad in [
            "https://mp.example/mcp/",
            "https://mp.example/other",
            "https://evil.example/mcp",
            "http://mp.example/mcp",
            "https://mp.example/mcp#x",
            "https://mp.example/mcp?x=1",
            "",
            "mcp",
        ] {
            assert_eq!(resource_of(p, Some(bad)), None, "{bad}");
        }
    }

    #[test]
    fn scopes_name_abilities_and_nothing_else() {
        assert_eq!(
            scope_abilities("openid project:view-any  mcp:full offline_access nope"),
            vec![Ability::McpFull, Ability::ProjectViewAny]
        );
        assert_eq!(
            scope_of(&[Ability::McpFull, Ability::ProjectView]),
            "mcp:full project:view"
        );
    }

    #[test]
    fn answers_are_added_to_the_redirect_query() {
        assert_eq!(
            with_query("https://a.example/cb", &[("code", "x y")]),
            "https://a.example/cb?code=x+y"
        );
        assert_eq!(
            with_query("https://a.example/cb?k=1", &[("a", "b")]),
            "https://a.example/cb?k=1&a=b"
        );
        assert_eq!(
            with_query("https://a.example/cb?", &[("a", "b")]),
            "https://a.example/cb?a=b"
        );
    }

    #[test]
    fn only_a_relative_path_of_this_origin_is_a_next() {
        for ok in ["/", "/authorize?client_id=x&state=%2F%2F", "/settings/apps"] {
            assert_eq!(safe_next(ok), Some(ok));
        }
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "/a\\b",
            "https://evil.example",
            "javascript:alert(1)",
            "evil.example/x",
            "/a\nb",
            "/a\tb",
            "/a b",
            "/\u{e9}",
            "\u{0}/x",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(5000))), None);
    }

    #[test]
    fn the_form_action_allows_where_the_answer_goes() {
        assert_eq!(
            redirect_source("http://127.0.0.1:5/cb").as_deref(),
            Some("http://127.0.0.1:5")
        );
        assert_eq!(
            redirect_source("https://a.example/cb").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(redirect_source("cursor://x/cb").as_deref(), Some("cursor:"));
        assert_eq!(redirect_source("http://[::1]:5/cb").as_deref(), Some("http:"));
        assert_eq!(redirect_host("http://localhost:9/cb"), ("localhost".to_owned(), true));
        assert_eq!(redirect_host("https://a.example/cb"), ("a.example".to_owned(), false));
    }
}
