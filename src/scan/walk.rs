//! Walking the paths to scan: every regular file under them, hidden ones included, `.gitignore`
//! ignored (leaked tokens live in ignored `.env` files and logs), symlinks never followed (a link
//! can lead out of the tree, into a loop, or make `--redact` write somewhere else), special
//! files (FIFOs, sockets, devices) never opened (reading them can block forever).
//!
//! Each file comes with its [`Trail`]: the directories the walk went through and what each was,
//! so that `--redact`, which writes later, can check that the path still leads where the walk
//! went and not through a symlink swapped in since.

use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A regular file to scan.
#[derive(Debug)]
pub struct FileEntry {
    pub path: PathBuf,
    pub meta: Metadata,
    pub trail: Trail,
}

/// `(device, inode)`: what identifies a file or directory whatever path leads to it.
pub type FileKey = (u64, u64);

/// How the walk reached a file: each directory from the root down to the file's parent with
/// the key it had, and the file's own key.
#[derive(Debug, Clone)]
pub struct Trail {
    dirs: Arc<[(PathBuf, Option<FileKey>)]>,
    file: Option<FileKey>,
}

impl Trail {
    /// Whether each directory on the way is still, at its path and without following a
    /// symlink there, the directory walked: not moved, removed or replaced (by a symlink or
    /// anything else).
    pub fn dirs_unchanged(&self) -> bool {
        self.dirs
            .iter()
            .all(|(path, key)| fs::symlink_metadata(path).is_ok_and(|now| now.is_dir() && file_key(&now) == *key))
    }

    /// Whether `meta` (of a handle just opened) is the file walked.
    pub fn is_the_file(&self, meta: &Metadata) -> bool {
        meta.is_file() && file_key(meta) == self.file
    }
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
        pending: vec![Pending {
            path: without_trailing_slash(root),
            is_root: true,
            dirs: Arc::new([]),
        }],
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
    /// Paths still to visit, the next one last.
    pending: Vec<Pending>,
}

/// A path still to visit.
struct Pending {
    path: PathBuf,
    is_root: bool,
    /// The directories on the way to it (its parent last).
    dirs: Arc<[(PathBuf, Option<FileKey>)]>,
}

impl Iterator for Walk {
    type Item = Result<FileEntry, Skipped>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(Pending { path, is_root, dirs }) = self.pending.pop() {
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) => return Some(Err(skipped(path, e))),
            };
            let kind = meta.file_type();
            if kind.is_file() {
                let trail = Trail {
                    dirs,
                    file: file_key(&meta),
                };
                return Some(Ok(FileEntry { path, meta, trail }));
            }
            if kind.is_dir() {
                let dirs = dirs.iter().cloned().chain([(path.clone(), file_key(&meta))]).collect();
                if let Err(e) = self.push_children(&path, dirs) {
                    return Some(Err(skipped(path, e)));
                }
            } else if kind.is_symlink() && is_root {
                let why = match fs::read_link(&path) {
                    Ok(target) => format!(
                        "a symlink (not followed); to scan it, name its target {}",
                        super::shown::shown(&target)
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
    /// Queues the entries of `dir`, reached through `dirs` (`dir` last).
    fn push_children(&mut self, dir: &Path, dirs: Arc<[(PathBuf, Option<FileKey>)]>) -> io::Result<()> {
        let mut children = fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<io::Result<Vec<_>>>()?;
        children.sort_unstable_by(|a, b| b.cmp(a));
        self.pending.extend(children.into_iter().map(|path| Pending {
            path,
            is_root: false,
            dirs: dirs.clone(),
        }));
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
pub fn file_key(meta: &Metadata) -> Option<FileKey> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
pub fn file_key(_meta: &Metadata) -> Option<FileKey> {
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
