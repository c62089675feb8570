//! Walking the paths to scan: every regular file under them, hidden ones included, `.gitignore`
//! ignored (leaked tokens live in ignored `.env` files and logs), symlinks never followed (a link
//! can lead out of the tree, into a loop, or make `--redact` write somewhere else), special
//! files (FIFOs, sockets, devices) never opened (reading them can block forever).

use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};

/// A regular file to scan.
#[derive(Debug)]
pub struct FileEntry {
    pub path: PathBuf,
    pub meta: Metadata,
}

/// Something the walk could not look into, or chose not to, worth telling the user.
#[derive(Debug)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: String,
}

/// Regular files under `root` (or `root` itself), depth first, each directory in name order.
///
/// `root` is judged by its last component: a trailing `/` or `/.` would make the system resolve
/// a symlink there (`link/` is its target), so they are dropped first and `link/` is refused like
/// `link`. Symlinks in the directories above the root are followed (`/tmp` is one on macOS).
pub fn walk(root: &Path) -> Walk {
    Walk {
        pending: vec![(without_trailing_slash(root), true)],
    }
}

/// `root` without trailing slashes and `.` components (`a/b/`, `a/b/.` and `a//b` are `a/b`).
fn without_trailing_slash(root: &Path) -> PathBuf {
    let path: PathBuf = root.components().collect();
    if path.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        path
    }
}

/// The iterator of [`walk`].
pub struct Walk {
    /// Paths still to visit, the next one last; `true` for the root.
    pending: Vec<(PathBuf, bool)>,
}

impl Iterator for Walk {
    type Item = Result<FileEntry, Skipped>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some((path, is_root)) = self.pending.pop() {
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) => return Some(Err(skipped(path, e))),
            };
            let kind = meta.file_type();
            if kind.is_file() {
                return Some(Ok(FileEntry { path, meta }));
            }
            if kind.is_dir() {
                if let Err(e) = self.push_children(&path) {
                    return Some(Err(skipped(path, e)));
                }
            } else if kind.is_symlink() && is_root {
                let why = match fs::read_link(&path) {
                    Ok(target) => format!(
                        "a symlink (not followed); to scan it, name its target {}",
                        super::report::shown(&target)
                    ),
                    Err(_) => "a symlink (not followed)".to_owned(),
                };
                return Some(Err(Skipped { path, why }));
            }
            // Symlinks met inside the tree and special files are passed over without a word.
        }
        None
    }
}

impl Walk {
    fn push_children(&mut self, dir: &Path) -> io::Result<()> {
        let mut children = fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<io::Result<Vec<_>>>()?;
        children.sort_unstable_by(|a, b| b.cmp(a));
        self.pending.extend(children.into_iter().map(|p| (p, false)));
        Ok(())
    }
}

fn skipped(path: PathBuf, e: io::Error) -> Skipped {
    Skipped {
        path,
        why: e.to_string(),
    }
}

/// Identifies a file across paths (hard links, a directory named twice), where the OS can.
#[cfg(unix)]
pub fn file_key(meta: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
pub fn file_key(_meta: &Metadata) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_is_named_by_its_last_component_whatever_slashes_follow() {
        for (named, judged) in [
            ("t1/link_dir/", "t1/link_dir"),
            ("t1/link_dir//", "t1/link_dir"),
            ("t1/link_dir/.", "t1/link_dir"),
            ("t1//link_dir", "t1/link_dir"),
            ("./", "."),
            ("/", "/"),
        ] {
            assert_eq!(without_trailing_slash(Path::new(named)), Path::new(judged), "{named}");
        }
    }
}
