//! The `mpt_<env>_<id>_<secret><check>` token format (SPEC §2): generation, parsing, digests.
//!
//! Plaintext lives only in [`TokenSecret`], whose `Debug`/`Display` redact; everything that is
//! stored or logged is the public [`TokenId`] or the SHA-256 [`TokenDigest`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const PREFIX: &str = "mpt_";
pub const ID_LEN: usize = 12;
pub const SECRET_LEN: usize = 32;
pub const CHECK_LEN: usize = 6;
/// `mpt_` + env (4) + `_` + id + `_` + secret + check.
pub const TOKEN_LEN: usize = 4 + 4 + 1 + ID_LEN + 1 + SECRET_LEN + CHECK_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The environment a server runs in; a token of the other environment never authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenEnv {
    Live,
    Test,
}

impl TokenEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenEnv::Live => "live",
            TokenEnv::Test => "test",
        }
    }
}

impl FromStr for TokenEnv {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "live" => Ok(TokenEnv::Live),
            "test" => Ok(TokenEnv::Test),
            other => Err(format!("unknown environment `{other}` (expected live or test)")),
        }
    }
}

impl fmt::Display for TokenEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The public token ID: 12 base62 characters. Never authenticates.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TokenId(String);

impl TokenId {
    pub fn parse(s: &str) -> Result<Self, TokenFormatError> {
        if s.len() == ID_LEN && s.bytes().all(is_base62) {
            Ok(TokenId(s.to_owned()))
        } else {
            Err(TokenFormatError::Malformed)
        }
    }

    pub fn generate() -> Self {
        TokenId(random_base62(ID_LEN))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TokenId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TokenId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    #[error("not a MemberPass token")]
    Malformed,
    #[error("token checksum does not match")]
    BadChecksum,
}

/// A whole plaintext token. Its `Debug` and `Display` never show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret {
    plaintext: String,
    env: TokenEnv,
    id: TokenId,
}

impl TokenSecret {
    /// Mints a fresh token: random ID and secret from the OS CSPRNG, checksum appended.
    pub fn generate(env: TokenEnv) -> Self {
        Self::with_id(env, TokenId::generate())
    }

    pub fn with_id(env: TokenEnv, id: TokenId) -> Self {
        let body = format!("{PREFIX}{}_{}_{}", env.as_str(), id, random_base62(SECRET_LEN));
        let plaintext = format!("{body}{}", checksum(&body));
        TokenSecret { plaintext, env, id }
    }

    /// Parses format and checksum; no database is consulted.
    pub fn parse(s: &str) -> Result<Self, TokenFormatError> {
        if s.len() != TOKEN_LEN || !s.is_ascii() {
            return Err(TokenFormatError::Malformed);
        }
        let rest = s.strip_prefix(PREFIX).ok_or(TokenFormatError::Malformed)?;
        let (env, rest) = rest.split_at(4);
        let env = TokenEnv::from_str(env).map_err(|_| TokenFormatError::Malformed)?;
        let rest = rest.strip_prefix('_').ok_or(TokenFormatError::Malformed)?;
        let (id, rest) = rest.split_at(ID_LEN);
        let id = TokenId::parse(id)?;
        let rest = rest.strip_prefix('_').ok_or(TokenFormatError::Malformed)?;
        if !rest.bytes().all(is_base62) {
            return Err(TokenFormatError::Malformed);
        }
        let (body, check) = s.split_at(s.len() - CHECK_LEN);
        if checksum(body) != check {
            return Err(TokenFormatError::BadChecksum);
        }
        Ok(TokenSecret {
            plaintext: s.to_owned(),
            env,
            id,
        })
    }

    pub fn env(&self) -> TokenEnv {
        self.env
    }

    pub fn id(&self) -> &TokenId {
        &self.id
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.plaintext)
    }

    /// The plaintext, for the one response that mints the token. Named so it is easy to audit.
    pub fn expose_secret(&self) -> &str {
        &self.plaintext
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSecret(mpt_{}_{}_[REDACTED])", self.env, self.id)
    }
}

impl fmt::Display for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mpt_{}_{}_[REDACTED]", self.env, self.id)
    }
}

/// SHA-256 of the whole token, hex-encoded; the only form a token is stored in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenDigest(String);

impl TokenDigest {
    pub fn of(plaintext: &str) -> Self {
        TokenDigest(hex::encode(Sha256::digest(plaintext.as_bytes())))
    }

    pub fn from_stored(hex: String) -> Self {
        TokenDigest(hex)
    }

    /// A digest no token has; compared against when the ID is unknown so both paths cost the same.
    pub fn decoy() -> Self {
        TokenDigest("0".repeat(64))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn ct_eq(&self, other: &TokenDigest) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

/// CRC-32 (IEEE) of `body`, in base62, most significant digit first, padded to 6.
pub fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut digits = [b'0'; CHECK_LEN];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 is ASCII")
}

/// Whether a text holds a well-formed token (checksum and all) anywhere in it.
pub fn contains_token(text: &str) -> bool {
    text.match_indices(PREFIX).any(|(at, _)| {
        text.get(at..at + TOKEN_LEN)
            .is_some_and(|candidate| TokenSecret::parse(candidate).is_ok())
    })
}

fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Uniform base62 characters from the OS CSPRNG (rejection sampling avoids modulo bias).
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).expect("the OS CSPRNG is available");
        for &b in &buf {
            // 248 = 62 * 4: bytes at or above it would favour the first digits.
            if b < 248 && out.len() < len {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_minted_token_has_the_documented_shape() {
        let t = TokenSecret::generate(TokenEnv::Test);
        let s = t.expose_secret();
        assert_eq!(s.len(), 60);
        assert!(s.starts_with("mpt_test_"));
        assert_eq!(&s[8..9], "_");
        assert_eq!(&s[21..22], "_");
        assert_eq!(TokenSecret::parse(s).unwrap(), t);
    }

    #[test]
    fn the_checksum_matches_crc32_in_base62() {
        let body = "mpt_test_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
        let crc = crc32fast::hash(body.as_bytes());
        let mut n = u64::from(crc);
        let mut expected = String::new();
        for _ in 0..6 {
            expected.insert(0, BASE62[(n % 62) as usize] as char);
            n /= 62;
        }
        assert_eq!(checksum(body), expected);
        assert_eq!(checksum(""), "000000");
    }

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let t = TokenSecret::generate(TokenEnv::Live);
        let secret_part = &t.expose_secret()[22..];
        for shown in [format!("{t:?}"), format!("{t}")] {
            assert!(!shown.contains(secret_part), "{shown}");
            assert!(shown.contains(t.id().as_str()));
        }
    }

    #[test]
    fn look_alikes_are_rejected() {
        let t = TokenSecret::generate(TokenEnv::Test);
        let s = t.expose_secret();
        assert!(TokenSecret::parse(&s.replace("mpt_test", "mpt_prod")).is_err());
        assert!(TokenSecret::parse(&s[..59]).is_err());
        assert!(TokenSecret::parse(&format!("{s}0")).is_err());
        assert!(TokenSecret::parse(&s.replacen('_', "-", 1)).is_err());
        assert!(TokenSecret::parse("").is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(live in any::<bool>()) {
            let env = if live { TokenEnv::Live } else { TokenEnv::Test };
            let t = TokenSecret::generate(env);
            let parsed = TokenSecret::parse(t.expose_secret()).unwrap();
            prop_assert_eq!(parsed.env(), env);
            prop_assert_eq!(parsed.id(), t.id());
            prop_assert!(parsed.digest().ct_eq(&t.digest()));
        }

        #[test]
        fn any_single_character_change_is_rejected(pos in 0usize..TOKEN_LEN, replacement in 0usize..62) {
            let t = TokenSecret::generate(TokenEnv::Test);
            let mut bytes = t.expose_secret().as_bytes().to_vec();
            let new = BASE62[replacement];
            prop_assume!(bytes[pos] != new);
            bytes[pos] = new;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(TokenSecret::parse(&changed).is_err(), "accepted {}", changed);
        }
    }
}
