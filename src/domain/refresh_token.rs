//! The OAuth refresh-token format `mprt_<env>_<id>_<secret><check>`: the layout of an `mpt_`
//! token (SPEC §2: 12 base62 ID, 32 base62 secret, 6 base62 CRC-32 of everything before it)
//! behind its own prefix, so a scanner tells the two apart and a refresh token is never taken
//! for an access token. Generation, parsing, digests; the plaintext lives only in
//! [`RefreshSecret`], whose `Debug` and `Display` redact.

use std::fmt;

use super::token::{LAYOUT_LEN, TokenDigest, TokenEnv, TokenFormatError, TokenId, compose, parse_layout};

pub const REFRESH_PREFIX: &str = "mprt_";
/// `mprt_` + env (4) + `_` + id + `_` + secret + check: 61 characters.
pub const REFRESH_TOKEN_LEN: usize = REFRESH_PREFIX.len() + LAYOUT_LEN;

/// A whole plaintext refresh token. Its `Debug` and `Display` never show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshSecret {
    plaintext: String,
    env: TokenEnv,
    id: TokenId,
}

impl RefreshSecret {
    /// A fresh refresh token: random ID and secret from the OS CSPRNG, checksum appended.
    pub fn generate(env: TokenEnv) -> Self {
        let id = TokenId::generate();
        let plaintext = compose(REFRESH_PREFIX, env, &id);
        RefreshSecret { plaintext, env, id }
    }

    /// Parses format and checksum; no database is consulted.
    pub fn parse(s: &str) -> Result<Self, TokenFormatError> {
        let (env, id) = parse_layout(s, REFRESH_PREFIX)?;
        Ok(RefreshSecret {
            plaintext: s.to_owned(),
            env,
            id,
        })
    }

    pub fn env(&self) -> TokenEnv {
        self.env
    }

    /// The public ID: what the database row, the audit entries and support see.
    pub fn id(&self) -> &TokenId {
        &self.id
    }

    /// SHA-256 of the whole token, hex: the only form it is stored in.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.plaintext)
    }

    /// The plaintext, for the one token response that issues it.
    pub fn expose_secret(&self) -> &str {
        &self.plaintext
    }
}

impl fmt::Debug for RefreshSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefreshSecret({REFRESH_PREFIX}{}_{}_[REDACTED])", self.env, self.id)
    }
}

impl fmt::Display for RefreshSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{REFRESH_PREFIX}{}_{}_[REDACTED]", self.env, self.id)
    }
}

/// Whether a text holds a well-formed refresh token (checksum and all) anywhere in it.
pub fn contains_refresh_token(text: &str) -> bool {
    text.match_indices(REFRESH_PREFIX).any(|(at, _)| {
        text.get(at..at + REFRESH_TOKEN_LEN)
            .is_some_and(|candidate| RefreshSecret::parse(candidate).is_ok())
    })
}

/// Either kind of plaintext MemberPass secret (what `scan` finds and what revoke by possession
/// is handed): an access token `mpt_…` or a refresh token `mprt_…`. Redacting, like both.
#[derive(Clone, PartialEq, Eq)]
pub enum AnyToken {
    Access(super::token::TokenSecret),
    Refresh(RefreshSecret),
}

impl AnyToken {
    /// Parses either format (and its checksum).
    pub fn parse(s: &str) -> Result<Self, TokenFormatError> {
        if s.starts_with(REFRESH_PREFIX) {
            RefreshSecret::parse(s).map(AnyToken::Refresh)
        } else {
            super::token::TokenSecret::parse(s).map(AnyToken::Access)
        }
    }

    /// `mpt_` or `mprt_`.
    pub fn prefix(&self) -> &'static str {
        match self {
            AnyToken::Access(_) => super::token::PREFIX,
            AnyToken::Refresh(_) => REFRESH_PREFIX,
        }
    }

    /// `access_token` or `refresh_token`.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyToken::Access(_) => "access_token",
            AnyToken::Refresh(_) => "refresh_token",
        }
    }

    /// Length of the whole token: 60 for `mpt_`, 61 for `mprt_`.
    pub fn len(&self) -> usize {
        self.expose_secret().len()
    }

    /// Never: a token has a fixed, non-zero length (for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn env(&self) -> TokenEnv {
        match self {
            AnyToken::Access(t) => t.env(),
            AnyToken::Refresh(t) => t.env(),
        }
    }

    pub fn id(&self) -> &TokenId {
        match self {
            AnyToken::Access(t) => t.id(),
            AnyToken::Refresh(t) => t.id(),
        }
    }

    pub fn digest(&self) -> TokenDigest {
        match self {
            AnyToken::Access(t) => t.digest(),
            AnyToken::Refresh(t) => t.digest(),
        }
    }

    pub fn expose_secret(&self) -> &str {
        match self {
            AnyToken::Access(t) => t.expose_secret(),
            AnyToken::Refresh(t) => t.expose_secret(),
        }
    }
}

impl From<super::token::TokenSecret> for AnyToken {
    fn from(t: super::token::TokenSecret) -> Self {
        AnyToken::Access(t)
    }
}

impl From<RefreshSecret> for AnyToken {
    fn from(t: RefreshSecret) -> Self {
        AnyToken::Refresh(t)
    }
}

impl fmt::Debug for AnyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyToken::Access(t) => fmt::Debug::fmt(t, f),
            AnyToken::Refresh(t) => fmt::Debug::fmt(t, f),
        }
    }
}

impl fmt::Display for AnyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyToken::Access(t) => fmt::Display::fmt(t, f),
            AnyToken::Refresh(t) => fmt::Display::fmt(t, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::{TokenSecret, checksum};
    use proptest::prelude::*;

    #[test]
    fn a_refresh_token_has_the_documented_shape() {
        let t = RefreshSecret::generate(TokenEnv::Live);
        let s = t.expose_secret();
        assert_eq!(s.len(), 61);
        assert!(s.starts_with("mprt_live_"));
        assert_eq!(&s[9..10], "_");
        assert_eq!(&s[10..22], t.id().as_str());
        assert_eq!(&s[22..23], "_");
        let re = regex::Regex::new(r"\Amprt_(live|test)_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}\z").unwrap();
        assert!(re.is_match(s), "{s}");
        assert_eq!(checksum(&s[..55]), &s[55..]);
        assert_eq!(RefreshSecret::parse(s).unwrap(), t);
    }

    #[test]
    fn access_and_refresh_tokens_are_never_taken_for_each_other() {
        let refresh = RefreshSecret::generate(TokenEnv::Test);
        let access = TokenSecret::generate(TokenEnv::Test);
        assert!(TokenSecret::parse(refresh.expose_secret()).is_err());
        assert!(RefreshSecret::parse(access.expose_secret()).is_err());
        // The same body behind the other prefix fails the checksum, which covers the prefix.
        let swapped = refresh.expose_secret().replacen("mprt_", "mpt_", 1);
        assert!(TokenSecret::parse(&swapped).is_err());
        assert!(!crate::domain::token::contains_token(refresh.expose_secret()));
    }

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let t = RefreshSecret::generate(TokenEnv::Test);
        let secret_part = &t.expose_secret()[23..];
        for shown in [format!("{t:?}"), format!("{t}")] {
            assert!(!shown.contains(secret_part), "{shown}");
            assert!(shown.contains(t.id().as_str()));
            assert!(shown.contains("[REDACTED]"));
        }
    }

    #[test]
    fn look_alikes_are_rejected() {
        let t = RefreshSecret::generate(TokenEnv::Test);
        let s = t.expose_secret();
        assert!(RefreshSecret::parse(&s.replace("mprt_test", "mprt_prod")).is_err());
        assert!(RefreshSecret::parse(&s.replace("mprt_", "MPRT_")).is_err());
        assert!(RefreshSecret::parse(&s[..60]).is_err());
        assert!(RefreshSecret::parse(&format!("{s}0")).is_err());
        assert!(RefreshSecret::parse("").is_err());
        let (body, check) = s.split_at(55);
        let wrong = if check == "000000" { "000001" } else { "000000" };
        assert_eq!(
            RefreshSecret::parse(&format!("{body}{wrong}")),
            Err(TokenFormatError::BadChecksum)
        );
    }

    #[test]
    fn a_refresh_token_is_found_inside_text() {
        let t = RefreshSecret::generate(TokenEnv::Live);
        assert!(contains_refresh_token(&format!(
            "refresh_token={} x",
            t.expose_secret()
        )));
        assert!(!contains_refresh_token(&format!("{}", t)));
    }

    #[test]
    fn either_kind_parses_into_any_token_and_stays_redacted() {
        let refresh = RefreshSecret::generate(TokenEnv::Test);
        let access = TokenSecret::generate(TokenEnv::Live);
        let r = AnyToken::parse(refresh.expose_secret()).unwrap();
        let a = AnyToken::parse(access.expose_secret()).unwrap();
        assert_eq!((r.prefix(), r.len(), r.kind()), ("mprt_", 61, "refresh_token"));
        assert_eq!((a.prefix(), a.len(), a.kind()), ("mpt_", 60, "access_token"));
        assert_eq!(r.id(), refresh.id());
        assert_eq!(a.env(), TokenEnv::Live);
        assert!(!format!("{r:?}{r}{a:?}{a}").contains(&refresh.expose_secret()[23..]));
        assert!(AnyToken::parse("mprt_nope").is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(live in any::<bool>()) {
            let env = if live { TokenEnv::Live } else { TokenEnv::Test };
            let t = RefreshSecret::generate(env);
            let parsed = RefreshSecret::parse(t.expose_secret()).unwrap();
            prop_assert_eq!(parsed.env(), env);
            prop_assert_eq!(parsed.id(), t.id());
            prop_assert!(parsed.digest().ct_eq(&t.digest()));
        }

        #[test]
        fn any_single_character_change_is_rejected(pos in 0usize..REFRESH_TOKEN_LEN, c in "[0-9A-Za-z_]") {
            let t = RefreshSecret::generate(TokenEnv::Test);
            let mut chars: Vec<char> = t.expose_secret().chars().collect();
            let new = c.chars().next().unwrap();
            prop_assume!(chars[pos] != new);
            chars[pos] = new;
            let changed: String = chars.into_iter().collect();
            prop_assert!(RefreshSecret::parse(&changed).is_err(), "accepted {}", changed);
        }
    }
}
