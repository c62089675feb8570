//! A path as a person reads it: nothing in a file name can forge a line of the report or drive
//! the terminal.

use std::path::Path;

use crate::domain::text::is_deceptive;

/// A path as printed for a person: control characters (C0, DEL, C1) and the invisible ones that
/// reorder or hide text (bidi controls, zero-width characters) become escapes (`\n`, `\u{1b}`),
/// so a file name cannot start a line of its own, move the cursor or read as another name.
/// Bytes that are not UTF-8 show as U+FFFD. (JSON needs none of this: serde escapes them.)
pub fn shown(path: &Path) -> String {
    let lossy = path.to_string_lossy();
    let mut out = String::with_capacity(lossy.len());
    for c in lossy.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_deceptive(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_paths_escape_what_a_terminal_would_act_on() {
        let name = "a\nb\rc\td\x1b[2K\u{7f}\u{9b}\u{202e}\u{200b}é 中.log";
        assert_eq!(
            shown(Path::new(name)),
            "a\\nb\\rc\\td\\u{1b}[2K\\u{7f}\\u{9b}\\u{202e}\\u{200b}é 中.log"
        );
        assert_eq!(shown(Path::new("/home/me/logs/app.log")), "/home/me/logs/app.log");
    }
}
