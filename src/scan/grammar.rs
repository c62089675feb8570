//! The token grammar over bytes: where a checksum-valid `mpt_` token (or `mprt_` OAuth refresh
//! token) stands on its own.
//!
//! A token is `mpr?t_(live|test)_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}` whose checksum holds, with no
//! letter, digit or `_` right before it and no letter or digit right after it. An escape right
//! before it (`%3D` in any case, or the two characters `\n`, `\t`, `\r`) is a boundary too: URLs
//! and JSON exports store a pasted token as `token%3Dmpt_…` and `"…\nmpt_…"`. This is the rule
//! of `docs/secret-scanning/gitleaks.toml`, plus the checksum no regular expression can check.
//!
//! The search looks for `mp` (the start both prefixes share) with `memchr`'s SIMD substring
//! finder and checks the 60 or 61 bytes after each hit by hand, so text without tokens costs one pass of the finder; line numbers are
//! counted incrementally, each byte once, with `memchr`'s newline count.

use crate::domain::refresh_token::{AnyToken, REFRESH_PREFIX, REFRESH_TOKEN_LEN};
use crate::domain::token::{ID_LEN, PREFIX, TOKEN_LEN};

/// What the finder looks for: the start of both prefixes (`mpt_`, `mprt_`).
pub(super) const NEEDLE: &[u8] = b"mp";
/// Bytes before a token the boundary rule looks at: `%3D` is the longest escape.
pub(super) const LOOKBEHIND: usize = 3;

/// A token found in a text. `token` is the plaintext in its redacting type: print its ID, never it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Position of the `m` of `mpt_` (`mprt_`) in the scanned text (in code units for UTF-16).
    pub offset: u64,
    /// 1-based; a line ends at `\n`, so a CRLF file counts like an LF one.
    pub line: u64,
    pub token: AnyToken,
}

impl Found {
    /// Length of the token, in code units of the scanned text (60, or 61 for a refresh token).
    pub fn len(&self) -> usize {
        self.token.len()
    }

    /// Never: a token has a fixed length.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Every token in `text`, in order. `text` is taken as the whole input: its start and end are
/// boundaries.
pub fn find_tokens(text: &[u8]) -> impl Iterator<Item = Found> + '_ {
    let mut lines = LineCounter::default();
    let mut next_free = 0;
    memchr::memmem::find_iter(text, NEEDLE).filter_map(move |at| {
        if at < next_free {
            return None;
        }
        let Verdict::Token(token) = token_at(text, at, false) else {
            return None;
        };
        next_free = at + token.len();
        Some(Found {
            offset: at as u64,
            line: lines.line_at(text, 0, at as u64),
            token,
        })
    })
}

/// What the bytes at a hit of `mp` are.
#[derive(Debug)]
pub(super) enum Verdict {
    Token(AnyToken),
    NotToken,
    /// The text ends before the byte after the token, and more may follow.
    NeedMore,
}

/// Judges the hit of `mp` at `at`. `more` says whether bytes may follow `text`; `text` holds
/// the [`LOOKBEHIND`] bytes before `at` unless `at` is that close to the start of the input.
pub(super) fn token_at(text: &[u8], at: usize, more: bool) -> Verdict {
    let rest = &text[at..];
    let (prefix, len) = if rest.starts_with(PREFIX.as_bytes()) {
        (PREFIX.len(), TOKEN_LEN)
    } else if rest.starts_with(REFRESH_PREFIX.as_bytes()) {
        (REFRESH_PREFIX.len(), REFRESH_TOKEN_LEN)
    } else if more && (PREFIX.as_bytes().starts_with(rest) || REFRESH_PREFIX.as_bytes().starts_with(rest)) {
        // The text ends inside what may still become a prefix.
        return Verdict::NeedMore;
    } else {
        return Verdict::NotToken;
    };
    if !boundary_before(&text[at.saturating_sub(LOOKBEHIND)..at]) {
        return Verdict::NotToken;
    }
    let end = at + len;
    let after = match text.get(end) {
        Some(&b) => Some(b),
        None if more => return Verdict::NeedMore,
        None if end > text.len() => return Verdict::NotToken,
        None => None,
    };
    if after.is_some_and(|b| b.is_ascii_alphanumeric()) {
        return Verdict::NotToken;
    }
    let candidate = &text[at..end];
    if !has_token_shape(candidate, prefix) {
        return Verdict::NotToken;
    }
    // The shape is ASCII, so this never fails; the checksum is the part worth calling for.
    match std::str::from_utf8(candidate)
        .ok()
        .and_then(|s| AnyToken::parse(s).ok())
    {
        Some(token) => Verdict::Token(token),
        None => Verdict::NotToken,
    }
}

/// Whether a token may start after `before` (the up to three bytes preceding it).
fn boundary_before(before: &[u8]) -> bool {
    match before {
        [.., b'%', b'3', b'D' | b'd'] | [.., b'\\', b'n' | b't' | b'r'] => true,
        [.., last] => !(last.is_ascii_alphanumeric() || *last == b'_'),
        [] => true,
    }
}

/// `<prefix>(live|test)_<12 base62>_<38 base62>`, given the bytes of one token starting with
/// its prefix of `prefix` bytes (`mpt_` or `mprt_`).
fn has_token_shape(c: &[u8], prefix: usize) -> bool {
    let base62 = |s: &[u8]| s.iter().all(u8::is_ascii_alphanumeric);
    let id_at = prefix + 5;
    let secret_at = id_at + ID_LEN + 1;
    matches!(&c[prefix..id_at - 1], b"live" | b"test")
        && c[id_at - 1] == b'_'
        && base62(&c[id_at..secret_at - 1])
        && c[secret_at - 1] == b'_'
        && base62(&c[secret_at..])
}

/// The 1-based line at a position, counting `\n` only over bytes not yet counted; positions
/// must be asked in increasing order.
#[derive(Debug, Clone, Copy)]
pub(super) struct LineCounter {
    /// Absolute position up to which newlines are counted.
    pub(super) counted: u64,
    line: u64,
}

impl Default for LineCounter {
    fn default() -> Self {
        LineCounter { counted: 0, line: 1 }
    }
}

impl LineCounter {
    /// The line at absolute position `to`, where `text` starts at absolute position `start`.
    pub(super) fn line_at(&mut self, text: &[u8], start: u64, to: u64) -> u64 {
        let from = (self.counted - start) as usize;
        let upto = (to - start) as usize;
        self.line += memchr::memchr_iter(b'\n', &text[from..upto]).count() as u64;
        self.counted = to;
        self.line
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::refresh_token::RefreshSecret;
    use crate::domain::token::{TokenEnv, TokenSecret, checksum};
    use proptest::prelude::*;

    /// Where the ID starts inside an access token.
    const ID_AT: usize = PREFIX.len() + 5;

    pub(in crate::scan) fn token() -> String {
        TokenSecret::generate(TokenEnv::Test).expose_secret().to_owned()
    }

    fn ids(text: &str) -> Vec<String> {
        find_tokens(text.as_bytes()).map(|f| f.token.id().to_string()).collect()
    }

    fn id_of(t: &str) -> String {
        t[ID_AT..ID_AT + ID_LEN].to_owned()
    }

    /// A token with a valid shape and a checksum that is not its own.
    fn bad_checksum(t: &str) -> String {
        let body = &t[..t.len() - 6];
        let good = checksum(body);
        let wrong = if good == "000000" { "000001" } else { "000000" };
        format!("{body}{wrong}")
    }

    #[test]
    fn a_token_alone_is_found_at_offset_zero_on_line_one() {
        let t = token();
        let found: Vec<Found> = find_tokens(t.as_bytes()).collect();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].offset, found[0].line), (0, 1));
        assert_eq!(found[0].token.expose_secret(), t);
    }

    #[test]
    fn live_and_test_tokens_are_both_found() {
        let live = TokenSecret::generate(TokenEnv::Live);
        let test = TokenSecret::generate(TokenEnv::Test);
        let text = format!("{} {}", live.expose_secret(), test.expose_secret());
        let envs: Vec<TokenEnv> = find_tokens(text.as_bytes()).map(|f| f.token.env()).collect();
        assert_eq!(envs, [TokenEnv::Live, TokenEnv::Test]);
    }

    #[test]
    fn a_letter_digit_or_underscore_glued_before_refuses_the_token() {
        let t = token();
        for before in ["x", "Z", "7", "_", "\\x", "%3E", "%2D", "n"] {
            let text = format!("{before}{t}");
            assert!(ids(&text).is_empty(), "{text:?}");
        }
    }

    #[test]
    fn a_letter_or_digit_glued_after_refuses_the_token() {
        let t = token();
        for after in ["x", "Z", "0", "9"] {
            assert!(ids(&format!("{t}{after}")).is_empty(), "{after}");
        }
        // `_` after the token ends it: only letters and digits would make it longer.
        assert_eq!(ids(&format!("{t}_suffix")), [id_of(&t)]);
    }

    #[test]
    fn escapes_and_punctuation_before_are_boundaries() {
        let t = token();
        for before in [
            "\\n", "\\t", "\\r", "%3D", "%3d", " ", "\"", "=", ":", "(", "\n", "\t", "é", "-", "/",
        ] {
            let text = format!("{before}{t}");
            assert_eq!(ids(&text), [id_of(&t)], "{text:?}");
        }
        let json = format!("{{\"text\": \"here is my token:\\n{t}\\r\\n\"}}");
        assert_eq!(ids(&json), [id_of(&t)]);
        assert_eq!(ids(&format!("https://x.test/cb?token%3D{t}&next=1")), [id_of(&t)]);
    }

    #[test]
    fn a_wrong_checksum_or_shape_is_refused() {
        let t = token();
        let mut short_id = t.clone();
        short_id.remove(12);
        for fake in [
            bad_checksum(&t),
            t.replacen("mpt_test_", "mpt_prod_", 1),
            t.replacen("mpt_test_", "MPT_test_", 1),
            t.replacen("mpt_test_", "mpt_test-", 1),
            short_id,
            t[..t.len() - 1].to_owned(),
        ] {
            assert!(ids(&fake).is_empty(), "{fake}");
            assert!(ids(&format!("say {fake} now")).is_empty(), "{fake}");
        }
    }

    #[test]
    fn refresh_tokens_are_found_by_the_same_rules() {
        let r = RefreshSecret::generate(TokenEnv::Live);
        let r = r.expose_secret();
        let a = token();
        let text = format!("{r}\n x={a} %3D{r},\\n{r}");
        let found: Vec<(u64, u64, &str, usize)> = find_tokens(text.as_bytes())
            .map(|f| (f.offset, f.line, f.token.prefix(), f.len()))
            .collect();
        let second = (r.len() + 4) as u64;
        let third = second + a.len() as u64 + 4;
        let fourth = third + r.len() as u64 + 3;
        assert_eq!(
            found,
            [
                (0, 1, "mprt_", 61),
                (second, 2, "mpt_", 60),
                (third, 2, "mprt_", 61),
                (fourth, 2, "mprt_", 61)
            ]
        );
        let (body, check) = r.split_at(55);
        let wrong = if check == "000000" { "000001" } else { "000000" };
        for fake in [
            format!("x{r}"),
            format!("_{r}"),
            format!("{r}x"),
            format!("{body}{wrong}"),
            r.replacen("mprt_live_", "mprt_prod_", 1),
            r.replacen("mprt_", "mpr_", 1),
            r.replacen("mprt_", "MPRT_", 1),
            r[..60].to_owned(),
        ] {
            assert!(ids(&fake).is_empty(), "{fake}");
        }
    }

    #[test]
    fn a_refresh_token_split_across_chunks_is_found() {
        let r = RefreshSecret::generate(TokenEnv::Test);
        let text = format!("mp mpr mprt\nx={} mp", r.expose_secret());
        let whole: Vec<Found> = find_tokens(text.as_bytes()).collect();
        assert_eq!(whole.len(), 1);
        for split in 0..=text.len() {
            let (head, tail) = text.as_bytes().split_at(split);
            let mut scanner = crate::scan::StreamScanner::default();
            let mut found = Vec::new();
            scanner.feed(head, &mut found);
            scanner.feed(tail, &mut found);
            scanner.finish(&mut found);
            assert_eq!(found, whole, "split at {split}");
        }
    }

    #[test]
    fn line_numbers_count_lf_and_crlf_lines_alike() {
        let (a, b) = (token(), token());
        for eol in ["\n", "\r\n"] {
            let text = format!("first{eol}A={a}{eol}{eol}x{eol}  B={b}{eol}");
            let lines: Vec<u64> = find_tokens(text.as_bytes()).map(|f| f.line).collect();
            assert_eq!(lines, [2, 5], "{eol:?}");
        }
    }

    #[test]
    fn tokens_on_consecutive_lines_and_touching_punctuation_are_each_found() {
        let (a, b) = (token(), token());
        let text = format!("{a}\n{b}\n({a}),{b}.");
        assert_eq!(ids(&text), [id_of(&a), id_of(&b), id_of(&a), id_of(&b)]);
    }

    /// Text around tokens: anything, including look-alikes and bits of the grammar.
    pub(in crate::scan) fn filler() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("mpt_".to_owned()),
                Just("mpt_test_".to_owned()),
                Just("\\n".to_owned()),
                Just("%3D".to_owned()),
                Just("\r\n".to_owned()),
                Just("\n".to_owned()),
                "[ -~]{0,8}",
                "[a-z0-9_]{1,4}",
                "[^\u{0}]{0,3}",
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    /// Separators that always end the text before a token and start nothing.
    pub(in crate::scan) fn separator() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            " ", "\n", "\r\n", "\"", "\\n", "\\t", "\\r", "%3D", "%3d", "=", "\t", "'", ",",
        ])
    }

    proptest! {
        #[test]
        fn every_token_between_separators_is_found_on_its_line(
            parts in prop::collection::vec((filler(), separator(), separator()), 1..6),
        ) {
            let mut text = String::new();
            let mut expected = Vec::new();
            for (fill, open, close) in &parts {
                text.push_str(fill);
                text.push(' ');
                text.push_str(open);
                let t = token();
                let line = 1 + text.matches('\n').count() as u64;
                expected.push((text.len() as u64, line, id_of(&t)));
                text.push_str(&t);
                text.push_str(close);
            }
            let found: Vec<(u64, u64, String)> = find_tokens(text.as_bytes())
                .map(|f| (f.offset, f.line, f.token.id().to_string()))
                .collect();
            prop_assert_eq!(found, expected);
        }

        #[test]
        fn a_glued_character_on_either_side_hides_the_token(
            glue in "[0-9A-Za-z]",
            before in any::<bool>(),
            fill in filler(),
        ) {
            let t = token();
            let text = if before { format!("{fill} {glue}{t} ") } else { format!("{fill} {t}{glue} ") };
            let leaked: Vec<Found> = find_tokens(text.as_bytes()).filter(|f| f.token.expose_secret() == t).collect();
            prop_assert!(leaked.is_empty(), "{:?}", text);
        }

        #[test]
        fn a_changed_checksum_is_never_reported(fill in filler(), sep in separator()) {
            let t = token();
            let text = format!("{fill} {sep}{} ", bad_checksum(&t));
            prop_assert!(find_tokens(text.as_bytes()).all(|f| f.token.id().as_str() != id_of(&t)));
        }

    }
}
