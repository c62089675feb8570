//! Free text from outside that is kept or shown: which characters cannot be shown safely, and how
//! a label a caller chose (an MCP client's name, a `User-Agent`) is made safe to store and show.

/// Zero-width and bidirectional formatting characters: they let text read as something else in
/// the dashboard or an agent's transcript.
pub fn is_deceptive(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// A control character (C0 with TAB, CR and LF, DEL, C1) or a deceptive one.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_deceptive(c)
}

/// What stands in for an unsafe character, so that the tampering shows.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Text as it may be stored and shown: every unsafe character replaced by U+FFFD, cut to `max`
/// characters. PostgreSQL cannot store NUL, and SQLite cuts a string at it; a stored label is
/// shown in the dashboard, the CSV export and an agent's transcript.
pub fn storable(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if is_unsafe(c) { REPLACEMENT } else { c })
        .collect()
}

/// [`storable`] for an owned string, which is handed back as it is when it already is storable
/// (the common case: an audit entry's ids and labels, on every call's path).
pub fn into_storable(s: String, max: usize) -> String {
    if s.len() <= max && !s.chars().any(is_unsafe) {
        s
    } else {
        storable(&s, max)
    }
}

/// A label a caller chose: [`storable`], trimmed, `None` when nothing is left.
pub fn label(s: &str, max: usize) -> Option<String> {
    let s = storable(s.trim(), max);
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_characters_are_replaced_and_the_length_capped() {
        assert_eq!(
            storable("a\u{0}b\tc\r\u{202E}d\u{7f}\u{85}", 100),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}\u{FFFD}d\u{FFFD}\u{FFFD}"
        );
        assert_eq!(storable("ééé", 2), "éé");
        assert_eq!(label("  claude-ai/1.0 ", 100).as_deref(), Some("claude-ai/1.0"));
        assert_eq!(label(" a\tb\u{0} ", 100).as_deref(), Some("a\u{FFFD}b\u{FFFD}"));
        assert_eq!(label("   ", 100), None);
        assert_eq!(label("", 100), None);
    }

    #[test]
    fn an_owned_string_is_made_storable_the_same_way() {
        for (s, max) in [
            ("plain", 100),
            ("a\u{0}b", 100),
            ("ééé", 2),
            ("abc", 3),
            ("\u{202E}x", 5),
        ] {
            assert_eq!(into_storable(s.to_owned(), max), storable(s, max), "{s:?}");
        }
    }
}
