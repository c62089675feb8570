//! OAuth 2.1 for `/mcp` (issue 19), the pure part: the settings, the names the discovery
//! documents publish (issuer, resource, scopes), and what a client may register — its redirect
//! URIs and its metadata, from `POST /register` (RFC 7591), the operator's CLI, or a client ID
//! metadata document.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ability::Ability;
use super::text;

/// The `serve --oauth-*` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthConfig {
    /// Lifetime of an access token (`--oauth-access-ttl`, default 1 h).
    pub access_ttl: Duration,
    /// How long a refresh token stays usable after its successor is issued
    /// (`--oauth-refresh-grace`, default 60 s).
    pub refresh_grace: Duration,
    /// Lets a client ID metadata document be fetched over plain http from a loopback address
    /// (`--oauth-allow-loopback-client-metadata`): tests and local development only.
    pub allow_loopback_client_metadata: bool,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            access_ttl: Duration::from_secs(3600),
            refresh_grace: Duration::from_secs(60),
            allow_loopback_client_metadata: false,
        }
    }
}

/// A duration on the command line: a positive whole number and one unit, `s`, `m`, `h` or `d`
/// (`60s`, `15m`, `1h`, `7d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("`{s}` is not a duration like 60s, 15m, 1h or 7d");
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: u64 = s[..s.len() - unit.len_utf8()]
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(bad)?;
    let secs = match unit {
        's' => Some(n),
        'm' => n.checked_mul(60),
        'h' => n.checked_mul(3600),
        'd' => n.checked_mul(86_400),
        _ => None,
    };
    secs.map(Duration::from_secs).ok_or_else(bad)
}

/// The issuer: the public URL's origin (`https://mp.example`, no trailing slash).
pub fn issuer(public_url: &str) -> String {
    match url::Url::parse(public_url) {
        Ok(u) if u.origin().is_tuple() => u.origin().ascii_serialization(),
        _ => public_url.trim_end_matches('/').to_owned(),
    }
}

/// The protected resource `/mcp` is: `<public URL>/mcp`.
pub fn mcp_resource(public_url: &str) -> String {
    format!("{}/mcp", public_url.trim_end_matches('/'))
}

/// Where the protected-resource metadata of `/mcp` is published (RFC 9728, path-inserted).
pub fn mcp_resource_metadata_url(public_url: &str) -> String {
    format!("{}/.well-known/oauth-protected-resource/mcp", issuer(public_url))
}

/// The read-only baseline a client asks for when it is told nothing else: every ability that
/// permits no write (the MCP gate included), never `offline_access`.
pub fn baseline_scopes() -> Vec<&'static str> {
    Ability::ALL
        .iter()
        .filter(|a| a.is_read_only())
        .map(|a| a.as_str())
        .collect()
}

/// Every scope a grant may hold: the ability catalog.
pub fn all_scopes() -> Vec<&'static str> {
    Ability::ALL.iter().map(|a| a.as_str()).collect()
}

/// Most redirect URIs one client may register, and the longest of each.
pub const MAX_REDIRECT_URIS: usize = 10;
pub const MAX_REDIRECT_URI_LEN: usize = 2000;
/// The longest client name kept, in characters.
pub const MAX_CLIENT_NAME: usize = 100;
/// The longest other URL (`client_uri`, `logo_uri`) and label (`software_id`, …) kept.
const MAX_URL_LEN: usize = 2000;
const MAX_LABEL: usize = 200;

/// Schemes never accepted as a redirect, whatever else holds: they run code, read local files,
/// or are not an application's callback.
const REFUSED_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "blob",
    "about",
    "filesystem",
    "view-source",
    "ws",
    "wss",
    "ftp",
    "mailto",
    "tel",
    "sms",
    "urn",
    // Android's `intent:` launches any app; `jar:` and `resource:` read local archives.
    "intent",
    "jar",
    "resource",
    "chrome",
];

/// Why a registration is refused: RFC 7591's two error codes, with our own description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationError {
    InvalidRedirectUri(String),
    InvalidClientMetadata(String),
}

impl RegistrationError {
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            RegistrationError::InvalidClientMetadata(_) => "invalid_client_metadata",
        }
    }

    pub fn description(&self) -> &str {
        match self {
            RegistrationError::InvalidRedirectUri(d) | RegistrationError::InvalidClientMetadata(d) => d,
        }
    }
}

fn metadata(why: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidClientMetadata(why.into())
}

/// Whether `host` is a loopback name (RFC 8252 §7.3): `localhost`, `127.0.0.1`, `[::1]`.
pub fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(v4) => *v4 == std::net::Ipv4Addr::LOCALHOST,
        url::Host::Ipv6(v6) => *v6 == std::net::Ipv6Addr::LOCALHOST,
    }
}

/// One redirect URI as it may be registered: absolute, no fragment, no user info, and `https`,
/// `http` on a loopback host, or an application's private-use scheme (`cursor://…`,
/// `com.example.app:/cb`). It is kept exactly as given, for the exact match `/authorize` makes.
pub fn check_redirect_uri(uri: &str) -> Result<(), RegistrationError> {
    let refuse = |why: &str| Err(RegistrationError::InvalidRedirectUri(format!("a redirect URI {why}")));
    if uri.is_empty() {
        return refuse("is empty");
    }
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return refuse(&format!("is longer than {MAX_REDIRECT_URI_LEN} characters"));
    }
    if uri.chars().any(|c| c.is_whitespace() || text::is_unsafe(c)) {
        return refuse("holds spaces or control characters");
    }
    if uri.contains('#') {
        return refuse("must not have a fragment");
    }
    if uri.contains('\\') {
        return refuse("must not hold a backslash");
    }
    let Ok(parsed) = url::Url::parse(uri) else {
        return refuse("must be an absolute URI");
    };
    let scheme = parsed.scheme();
    if REFUSED_SCHEMES.contains(&scheme) {
        return refuse(&format!("must not use the `{scheme}:` scheme"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() || uri_has_userinfo(uri) {
        return refuse("must not carry user information (user:password@)");
    }
    if matches!(scheme, "http" | "https") {
        // `https:///host` is read as `https://host/` by browsers: spelled oddly, refused.
        let after = uri.get(scheme.len()..).unwrap_or_default();
        if !after.starts_with("://") || after[3..].starts_with('/') {
            return refuse("must be written `scheme://host/…`");
        }
    }
    match scheme {
        "https" => {
            if parsed.host().is_none() {
                return refuse("must name a host");
            }
        }
        "http" => match parsed.host() {
            Some(host) if is_loopback_host(&host) => {}
            _ => return refuse("may use http only on a loopback host (127.0.0.1, [::1], localhost)"),
        },
        _ => {
            // A private-use scheme (RFC 8252 §7.1): something must follow the colon.
            if uri.len() <= scheme.len() + 1 || parsed.cannot_be_a_base() && parsed.path().is_empty() {
                return refuse("with a private-use scheme must have a path");
            }
        }
    }
    Ok(())
}

/// `user@` or `user:pass@` in the authority, which some parsers take apart differently.
fn uri_has_userinfo(uri: &str) -> bool {
    let Some((_, rest)) = uri.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority.contains('@')
}

/// A registration request, as a client sends it (RFC 7591 §2). Fields we do not keep are
/// ignored, as the RFC allows.
#[derive(Debug, Default, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Option<Value>,
    #[serde(default)]
    pub client_name: Option<Value>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<Value>,
    #[serde(default)]
    pub grant_types: Option<Value>,
    #[serde(default)]
    pub response_types: Option<Value>,
    #[serde(default)]
    pub client_uri: Option<Value>,
    #[serde(default)]
    pub logo_uri: Option<Value>,
    #[serde(default)]
    pub software_id: Option<Value>,
    #[serde(default)]
    pub software_version: Option<Value>,
    #[serde(default)]
    pub application_type: Option<Value>,
    /// Only in a client ID metadata document: its own URL.
    #[serde(default)]
    pub client_id: Option<Value>,
}

/// What is kept of a client: checked, trimmed, safe to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMetadata {
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
}

impl RegistrationRequest {
    /// Checks a registration (dynamic or the operator's) into what is kept.
    pub fn check(self) -> Result<ClientMetadata, RegistrationError> {
        match self.token_endpoint_auth_method.as_ref() {
            None | Some(Value::Null) => {}
            Some(Value::String(m)) if m == "none" => {}
            Some(_) => {
                return Err(metadata(
                    "token_endpoint_auth_method must be `none`: only public clients (PKCE, no secret) are registered",
                ));
            }
        }
        let redirect_uris = match self.redirect_uris {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => {
                return Err(RegistrationError::InvalidRedirectUri(
                    "redirect_uris is required (an array of 1 to 10 URIs)".into(),
                ));
            }
            Some(_) => return Err(metadata("redirect_uris must be an array of strings")),
        };
        if redirect_uris.is_empty() || redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(RegistrationError::InvalidRedirectUri(format!(
                "redirect_uris must hold 1 to {MAX_REDIRECT_URIS} URIs"
            )));
        }
        let mut uris = Vec::with_capacity(redirect_uris.len());
        for uri in redirect_uris {
            let Value::String(uri) = uri else {
                return Err(metadata("redirect_uris must be an array of strings"));
            };
            check_redirect_uri(&uri)?;
            if !uris.contains(&uri) {
                uris.push(uri);
            }
        }
        let client_name = match self.client_name {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(client_name(&name)?),
            Some(_) => return Err(metadata("client_name must be a string")),
        };
        let grant_types = string_list(self.grant_types, "grant_types", &["authorization_code"])?;
        if let Some(g) = grant_types
            .iter()
            .find(|g| !["authorization_code", "refresh_token"].contains(&g.as_str()))
        {
            return Err(metadata(format!(
                "grant_types may only hold authorization_code and refresh_token, not `{}`",
                text::storable(g, 50)
            )));
        }
        if !grant_types.iter().any(|g| g == "authorization_code") {
            return Err(metadata("grant_types must include authorization_code"));
        }
        let response_types = string_list(self.response_types, "response_types", &["code"])?;
        if response_types.iter().any(|r| r != "code") {
            return Err(metadata("response_types may only hold `code`"));
        }
        let application_type = optional_label(self.application_type, "application_type")?;
        if application_type.as_deref().is_some_and(|t| t != "native" && t != "web") {
            return Err(metadata("application_type must be `native` or `web`"));
        }
        Ok(ClientMetadata {
            client_name,
            redirect_uris: uris,
            grant_types,
            response_types,
            client_uri: optional_url(self.client_uri, "client_uri")?,
            logo_uri: optional_url(self.logo_uri, "logo_uri")?,
            software_id: optional_label(self.software_id, "software_id")?,
            software_version: optional_label(self.software_version, "software_version")?,
            application_type,
        })
    }

    /// Checks a client ID metadata document fetched from `url`: its `client_id` must be that
    /// URL exactly, and it must name itself and its redirect URIs.
    pub fn check_document(mut self, url: &str) -> Result<ClientMetadata, RegistrationError> {
        match self.client_id.take() {
            Some(Value::String(id)) if id == url => {}
            _ => return Err(metadata("the document's client_id is not the URL it was fetched from")),
        }
        if !matches!(self.client_name, Some(Value::String(_))) {
            return Err(metadata("the document must have a client_name"));
        }
        self.check()
    }
}

/// A client's name as it will be shown on the consent page: no control, zero-width or bidi
/// characters (refused, not replaced: a name that needs them is trying to read as another),
/// trimmed, 1 to [`MAX_CLIENT_NAME`] characters.
pub fn client_name(name: &str) -> Result<String, RegistrationError> {
    if name.chars().any(text::is_unsafe) {
        return Err(metadata(
            "client_name must not hold control, zero-width or bidirectional formatting characters",
        ));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_CLIENT_NAME {
        return Err(metadata(format!(
            "client_name must be 1 to {MAX_CLIENT_NAME} characters"
        )));
    }
    Ok(name.to_owned())
}

fn string_list(v: Option<Value>, field: &str, default: &[&str]) -> Result<Vec<String>, RegistrationError> {
    match v {
        None | Some(Value::Null) => Ok(default.iter().map(|s| (*s).to_owned()).collect()),
        Some(Value::Array(items)) if items.len() <= 5 => {
            let mut out = Vec::new();
            for item in items {
                let Value::String(s) = item else {
                    return Err(metadata(format!("{field} must be an array of strings")));
                };
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            Ok(out)
        }
        Some(_) => Err(metadata(format!("{field} must be an array of at most 5 strings"))),
    }
}

fn optional_label(v: Option<Value>, field: &str) -> Result<Option<String>, RegistrationError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_LABEL && !s.chars().any(text::is_unsafe) => {
            Ok(text::label(&s, MAX_LABEL))
        }
        Some(_) => Err(metadata(format!(
            "{field} must be a string of at most {MAX_LABEL} printable characters"
        ))),
    }
}

fn optional_url(v: Option<Value>, field: &str) -> Result<Option<String>, RegistrationError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s))
            if s.len() <= MAX_URL_LEN
                && !s.chars().any(|c| c.is_whitespace() || text::is_unsafe(c))
                && url::Url::parse(&s)
                    .is_ok_and(|u| u.scheme() == "https" && u.username().is_empty() && u.password().is_none()) =>
        {
            Ok(Some(s))
        }
        Some(_) => Err(metadata(format!("{field} must be an https URL"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(v: Value) -> RegistrationRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn durations_take_one_unit() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        for bad in [
            "",
            "h",
            "0s",
            "-1h",
            "1.5h",
            "1w",
            "1 h",
            "1hh",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn issuer_and_resource_come_from_the_public_url() {
        assert_eq!(issuer("https://mp.example/"), "https://mp.example");
        assert_eq!(issuer("https://MP.example:443"), "https://mp.example");
        assert_eq!(issuer("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(mcp_resource("https://mp.example/"), "https://mp.example/mcp");
        assert_eq!(
            mcp_resource_metadata_url("https://mp.example"),
            "https://mp.example/.well-known/oauth-protected-resource/mcp"
        );
    }

    #[test]
    fn the_baseline_is_read_only() {
        let baseline = baseline_scopes();
        assert!(baseline.contains(&"mcp:full"));
        assert!(baseline.contains(&"project:view-any"));
        assert!(!baseline.contains(&"offline_access"));
        for s in &baseline {
            let a: Ability = s.parse().unwrap();
            assert!(!a.permits_writes(), "{s}");
        }
    }

    #[test]
    fn good_redirect_uris_are_accepted() {
        for ok in [
            "https://claude.ai/api/mcp/auth_callback",
            "https://vscode.dev/redirect",
            "http://127.0.0.1:33418/",
            "http://127.0.0.1/callback",
            "http://localhost:3334/oauth/callback",
            "http://[::1]:8080/cb",
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "com.example.app:/oauth2redirect",
            "https://example.com/cb?x=1",
        ] {
            assert_eq!(check_redirect_uri(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn dangerous_redirect_uris_are_refused() {
        for bad in [
            "",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "vbscript:msgbox(1)",
            "blob:https://a.example/x",
            "https://a.example/cb#frag",
            "https://a.example/cb#",
            "https://user@a.example/cb",
            "https://user:pw@a.example/cb",
            "http://evil.example/cb",
            "http://127.0.0.2/cb",
            "http://localhost.evil.example/cb",
            "/relative/path",
            "a.example/cb",
            "https:///nohost",
            "https://a.example/c b",
            "https://a.example/\u{202e}cb",
            "cursor:",
            "ws://127.0.0.1/cb",
            "intent://scan/#Intent;scheme=zxing;end",
            "intent:/cb",
            "jar:https://a.example/x.jar!/cb",
        ] {
            assert!(
                matches!(check_redirect_uri(bad), Err(RegistrationError::InvalidRedirectUri(_))),
                "{bad:?}"
            );
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_REDIRECT_URI_LEN));
        assert!(check_redirect_uri(&long).is_err());
    }

    #[test]
    fn a_minimal_public_client_registers_with_defaults() {
        let m = request(json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "client_name": " Tool "}))
            .check()
            .unwrap();
        assert_eq!(m.client_name.as_deref(), Some("Tool"));
        assert_eq!(m.grant_types, ["authorization_code"]);
        assert_eq!(m.response_types, ["code"]);
    }

    #[test]
    fn confidential_clients_and_bad_metadata_are_refused() {
        let uris = json!(["https://a.example/cb"]);
        for (body, code) in [
            (
                json!({"redirect_uris": uris, "token_endpoint_auth_method": "client_secret_basic"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": uris, "token_endpoint_auth_method": "private_key_jwt"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": uris, "token_endpoint_auth_method": 1}),
                "invalid_client_metadata",
            ),
            (json!({}), "invalid_redirect_uri"),
            (json!({"redirect_uris": []}), "invalid_redirect_uri"),
            (
                json!({"redirect_uris": "https://a.example/cb"}),
                "invalid_client_metadata",
            ),
            (json!({"redirect_uris": [1]}), "invalid_client_metadata"),
            (
                json!({"redirect_uris": uris, "client_name": "a\u{202e}b"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": uris, "client_name": "a\nb"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": uris, "client_name": "x".repeat(101)}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": uris, "client_name": "  "}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": uris, "grant_types": ["client_credentials"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": uris, "grant_types": ["refresh_token"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": uris, "response_types": ["token"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": uris, "logo_uri": "javascript:alert(1)"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": uris, "application_type": "daemon"}),
                "invalid_client_metadata",
            ),
        ] {
            let got = request(body.clone()).check().map(|_| ()).map_err(|e| e.code());
            assert_eq!(got, Err(code), "{body}");
        }
        let eleven: Vec<String> = (0..11).map(|i| format!("https://a.example/{i}")).collect();
        assert!(request(json!({ "redirect_uris": eleven })).check().is_err());
    }

    #[test]
    fn a_metadata_document_must_name_its_own_url() {
        let url = "https://app.example/oauth/client.json";
        let doc = |id: &str| {
            request(json!({"client_id": id, "client_name": "App", "redirect_uris": ["https://app.example/cb"]}))
        };
        assert!(doc(url).check_document(url).is_ok());
        assert!(doc("https://app.example/other.json").check_document(url).is_err());
        assert!(doc(&format!("{url}/")).check_document(url).is_err());
        let unnamed = request(json!({"client_id": url, "redirect_uris": ["https://app.example/cb"]}));
        assert!(unnamed.check_document(url).is_err());
    }
}
