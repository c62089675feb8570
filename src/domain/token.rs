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
/// What follows the prefix: env (4) + `_` + id + `_` + secret + check.
pub const LAYOUT_LEN: usize = 4 + 1 + ID_LEN + 1 + SECRET_LEN + CHECK_LEN;
/// `mpt_` + the layout.
pub const TOKEN_LEN: usize = PREFIX.len() + LAYOUT_LEN;

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

/// `<prefix><env>_<id>_<secret><check>`: a fresh random secret, the CRC-32 checksum of
/// everything before it appended. The one layout of `mpt_` and `mprt_` (SPEC §2).
pub(crate) fn compose(prefix: &str, env: TokenEnv, id: &TokenId) -> String {
    let body = format!("{prefix}{}_{}_{}", env.as_str(), id, random_base62(SECRET_LEN));
    let check = checksum(&body);
    body + &check
}

/// Checks a whole token of the one layout behind `prefix` (length, ASCII, env, ID, base62
/// secret, checksum); its env and ID. No database is consulted.
pub(crate) fn parse_layout(s: &str, prefix: &str) -> Result<(TokenEnv, TokenId), TokenFormatError> {
    if s.len() != prefix.len() + LAYOUT_LEN || !s.is_ascii() {
        return Err(TokenFormatError::Malformed);
    }
    let rest = s.strip_prefix(prefix).ok_or(TokenFormatError::Malformed)?;
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
    Ok((env, id))
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
        let plaintext = compose(PREFIX, env, &id);
        TokenSecret { plaintext, env, id }
    }

    /// Parses format and checksum; no database is consulted.
    pub fn parse(s: &str) -> Result<Self, TokenFormatError> {
        let (env, id) = parse_layout(s, PREFIX)?;
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
    digits.iter().map(|&b| char::from(b)).collect()
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

/// Uniform base62 characters from the OS CSPRNG (rejection sampling avoids modulo bias). Without
/// the CSPRNG the process stops: no secret is ever made from anything weaker.
#[allow(clippy::expect_used, reason = "no secret without the OS CSPRNG")]
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

    /// Fuzzing the parser: arbitrary text, very long text, and valid tokens with edits of
    /// every kind, each checked against the grammar written out independently below. Its case
    /// count follows `PROPTEST_CASES` like every property here (see the README, Fuzzing).
    mod fuzz {
        use std::sync::LazyLock;

        use proptest::prelude::*;

        use super::super::*;

        /// SPEC §2 as written: the shape as a regular expression, then CRC-32 in base62 by
        /// plain arithmetic, sharing no code with `parse`.
        fn well_formed(s: &str) -> bool {
            static SHAPE: LazyLock<regex::Regex> =
                LazyLock::new(|| regex::Regex::new(r"\Ampt_(live|test)_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}\z").unwrap());
            if !SHAPE.is_match(s) {
                return false;
            }
            let (body, check) = s.split_at(54);
            let mut n = u64::from(crc32fast::hash(body.as_bytes()));
            let mut digits = Vec::new();
            for _ in 0..6 {
                let d = (n % 62) as u8;
                digits.push(match d {
                    0..=9 => b'0' + d,
                    10..=35 => b'A' + d - 10,
                    _ => b'a' + d - 36,
                });
                n /= 62;
            }
            digits.reverse();
            check.as_bytes() == digits
        }

        /// A valid token built from generated parts, so a failure replays from its seed.
        fn token() -> impl Strategy<Value = String> {
            (any::<bool>(), "[0-9A-Za-z]{12}", "[0-9A-Za-z]{32}").prop_map(|(live, id, secret)| {
                let env = if live { "live" } else { "test" };
                let body = format!("mpt_{env}_{id}_{secret}");
                let check = checksum(&body);
                format!("{body}{check}")
            })
        }

        /// Any character: base62, token punctuation, ASCII, controls and NUL, any Unicode.
        fn any_char() -> impl Strategy<Value = char> {
            prop_oneof![
                prop::sample::select(BASE62.map(char::from).to_vec()),
                prop::sample::select(vec![
                    '_', '-', ' ', '\0', '\n', '\u{7f}', '\u{85}', '\u{202e}', '\u{feff}'
                ]),
                any::<char>(),
            ]
        }

        #[derive(Clone, Debug)]
        enum Edit {
            Replace(usize, char),
            Insert(usize, char),
            Remove(usize),
            SwapWithNext(usize),
            FlipCase(usize),
            Truncate(usize),
            Append(String),
        }

        fn edit() -> impl Strategy<Value = Edit> {
            let at = 0usize..TOKEN_LEN + 2;
            prop_oneof![
                (at.clone(), any_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
                (at.clone(), any_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
                at.clone().prop_map(Edit::Remove),
                at.clone().prop_map(Edit::SwapWithNext),
                at.clone().prop_map(Edit::FlipCase),
                at.prop_map(Edit::Truncate),
                "\\PC{1,4}".prop_map(Edit::Append),
            ]
        }

        fn apply(s: &str, e: &Edit) -> String {
            let mut chars: Vec<char> = s.chars().collect();
            let n = chars.len();
            match e.clone() {
                Edit::Replace(i, c) if i < n => chars[i] = c,
                Edit::Insert(i, c) => chars.insert(i.min(n), c),
                Edit::Remove(i) if i < n => {
                    chars.remove(i);
                }
                Edit::SwapWithNext(i) if i + 1 < n => chars.swap(i, i + 1),
                Edit::FlipCase(i) if i < n => {
                    let c = chars[i];
                    chars[i] = if c.is_ascii_lowercase() {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    };
                }
                Edit::Truncate(i) => chars.truncate(i),
                Edit::Append(tail) => chars.extend(tail.chars()),
                _ => {}
            }
            chars.into_iter().collect()
        }

        /// Whether an edit can never turn one valid token into another: CRC-32 detects every
        /// error within one byte, and any change of length breaks the shape. (A swap across the
        /// body and the checksum changes both, which the CRC does not promise to catch.)
        fn always_detected(e: &Edit) -> bool {
            !matches!(e, Edit::SwapWithNext(_))
        }

        proptest! {
            #[test]
            fn any_text_parses_exactly_when_it_is_well_formed(s in prop_oneof![
                any::<String>(),
                "\\PC{0,80}",
                "mpt_(live|test|prod|)_[0-9A-Za-z_]{0,20}_?[0-9A-Za-z]{0,45}",
                prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
                (0usize..100_000, any_char()).prop_map(|(n, c)| c.to_string().repeat(n)),
            ]) {
                prop_assert_eq!(TokenSecret::parse(&s).is_ok(), well_formed(&s), "{:?}", s);
                let id_ok = s.len() == ID_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric());
                prop_assert_eq!(TokenId::parse(&s).is_ok(), id_ok);
                prop_assert_eq!(contains_token(&s), contains_token_naive(&s));
            }

            #[test]
            fn a_valid_token_parses_to_its_own_parts(t in token()) {
                let parsed = TokenSecret::parse(&t).expect("a built token is valid");
                prop_assert!(well_formed(&t));
                prop_assert_eq!(parsed.env().as_str(), &t[4..8]);
                prop_assert_eq!(parsed.id().as_str(), &t[9..21]);
                prop_assert_eq!(parsed.expose_secret(), t.as_str());
                let shown = format!("{parsed:?} {parsed}");
                prop_assert!(!shown.contains(&t[22..54]), "{}", shown);
            }

            #[test]
            fn one_edit_of_a_valid_token_is_refused(t in token(), e in edit()) {
                let edited = apply(&t, &e);
                if edited == t {
                    // An edit that changed nothing (a digit's case, a cut past the end) proves
                    // nothing; not a rejection, which long runs would exhaust.
                    return Ok(());
                }
                let accepted = TokenSecret::parse(&edited).is_ok();
                prop_assert_eq!(accepted, well_formed(&edited), "{:?} -> {:?}", e, edited);
                if always_detected(&e) {
                    prop_assert!(!accepted, "{:?} -> {:?} was accepted", e, edited);
                }
            }

            #[test]
            fn several_edits_agree_with_the_grammar(t in token(), edits in prop::collection::vec(edit(), 1..6)) {
                let edited = edits.iter().fold(t, |s, e| apply(&s, e));
                prop_assert_eq!(TokenSecret::parse(&edited).is_ok(), well_formed(&edited), "{:?}", edited);
            }

            #[test]
            fn a_token_is_found_inside_any_text(
                parts in prop::collection::vec(prop_oneof![
                    "\\PC{0,12}",
                    token(),
                    (token(), edit()).prop_map(|(t, e)| apply(&t, &e)),
                ], 0..6),
            ) {
                let text: String = parts.concat();
                prop_assert_eq!(contains_token(&text), contains_token_naive(&text), "{:?}", text);
            }
        }

        /// Every character boundary tried in turn, for `contains_token` to agree with.
        fn contains_token_naive(s: &str) -> bool {
            (0..s.len()).any(|i| {
                s.get(i..i + TOKEN_LEN)
                    .is_some_and(|w| w.starts_with(PREFIX) && well_formed(w))
            })
        }
    }
}
