//! Where `memberpass scan` looks when no path is named: the places AI clients keep logs,
//! transcripts and settings (MCP configurations hold tokens), and shell histories, on Linux and
//! macOS. Paths are relative to `$HOME`; those that do not exist are skipped.

use std::fs;
use std::path::{Path, PathBuf};

/// One entry of [`PLACES`].
#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub client: &'static str,
    /// Relative to `$HOME`.
    pub path: &'static str,
    pub pick: Pick,
}

/// What to scan at a place.
#[derive(Debug, Clone, Copy)]
pub enum Pick {
    /// The file, or the directory and everything under it.
    Whole,
    /// Only the entries directly inside the directory whose lower-cased name contains one of
    /// these (a downloads folder holds much more than exports).
    NamesContaining(&'static [&'static str]),
}

/// The one list of default places (the README lists the same).
pub const PLACES: &[Place] = &[
    place("Claude Desktop", ".config/Claude"),
    place("Claude Desktop", "Library/Application Support/Claude"),
    place("Claude Desktop", "Library/Logs/Claude"),
    place("Claude Code", ".claude"),
    place("Claude Code", ".claude.json"),
    place("Cursor", ".cursor"),
    place("Cursor", ".config/Cursor"),
    place("Cursor", "Library/Application Support/Cursor"),
    place("VS Code", ".vscode"),
    place("VS Code", ".config/Code"),
    place("VS Code", "Library/Application Support/Code"),
    place("Codex CLI", ".codex"),
    place("Gemini CLI", ".gemini"),
    place("ChatGPT desktop", "Library/Application Support/com.openai.chat"),
    Place {
        client: "ChatGPT exports",
        path: "Downloads",
        pick: Pick::NamesContaining(&["chatgpt", "conversations.json"]),
    },
    place("bash", ".bash_history"),
    place("zsh", ".zsh_history"),
    place("fish", ".local/share/fish/fish_history"),
    place("Python REPL", ".python_history"),
    place("Node.js REPL", ".node_repl_history"),
];

const fn place(client: &'static str, path: &'static str) -> Place {
    Place {
        client,
        path,
        pick: Pick::Whole,
    }
}

/// The default paths under `home` that exist, in the order of [`PLACES`]. A place that is a
/// symlink is returned too, so the walk can say it does not follow it.
pub fn default_roots(home: &Path) -> Vec<PathBuf> {
    PLACES.iter().flat_map(|place| place.roots(home)).collect()
}

impl Place {
    fn roots(&self, home: &Path) -> Vec<PathBuf> {
        let at = home.join(self.path);
        match self.pick {
            Pick::Whole => vec![at].into_iter().filter(|p| exists(p)).collect(),
            Pick::NamesContaining(needles) => {
                let Ok(entries) = fs::read_dir(&at) else {
                    return Vec::new();
                };
                let mut picked: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .filter(|e| {
                        let name = e.file_name().to_string_lossy().to_lowercase();
                        needles.iter().any(|n| name.contains(n))
                    })
                    .map(|e| e.path())
                    .collect();
                picked.sort();
                picked
            }
        }
    }
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_existing_places_under_home_are_returned_in_table_order() {
        let home = std::env::temp_dir().join(format!("memberpass-places-{}", uuid::Uuid::now_v7().simple()));
        fs::create_dir_all(home.join(".claude/projects")).unwrap();
        fs::create_dir_all(home.join("Downloads/ChatGPT-export-2024")).unwrap();
        fs::write(home.join("Downloads/conversations.json"), "[]").unwrap();
        fs::write(home.join("Downloads/holiday.jpg"), "").unwrap();
        fs::write(home.join(".bash_history"), "ls\n").unwrap();

        let roots = default_roots(&home);

        let relative: Vec<String> = roots
            .iter()
            .map(|p| p.strip_prefix(&home).unwrap().display().to_string())
            .collect();
        assert_eq!(
            relative,
            [
                ".claude",
                "Downloads/ChatGPT-export-2024",
                "Downloads/conversations.json",
                ".bash_history"
            ]
        );
        fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn every_place_is_relative_and_named() {
        for place in PLACES {
            assert!(!place.client.is_empty());
            assert!(Path::new(place.path).is_relative(), "{}", place.path);
        }
    }
}
