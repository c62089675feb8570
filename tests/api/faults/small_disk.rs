//! A small tmpfs of the test's own, to fill up or remount read-only under a SQLite database.
//! Unmounted and removed when dropped, also when the test fails.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

pub(crate) struct SmallDisk {
    dir: PathBuf,
}

/// `ENOSPC`.
const NO_SPACE: i32 = 28;

impl SmallDisk {
    /// A tmpfs of `mib` MiB on a fresh directory. Mounting needs root (CAP_SYS_ADMIN): without it
    /// the test fails and says so, rather than pass without having filled anything.
    pub(crate) fn mount(mib: u32) -> SmallDisk {
        let dir = std::env::temp_dir().join(format!("memberpass-disk-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0755"),
                "memberpass-test",
            ])
            .arg(&dir)
            .output();
        match out {
            Ok(out) if out.status.success() => SmallDisk { dir },
            other => {
                let _ = std::fs::remove_dir(&dir);
                panic!(
                    "this test fills a small tmpfs of its own and needs to mount one (root, or \
                     CAP_SYS_ADMIN): `mount -t tmpfs` said {other:?}"
                )
            }
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A `sqlite://` URL of a database file on this disk.
    pub(crate) fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.path("memberpass.db").display())
    }

    /// Writes a filler file until the disk is full (`ENOSPC`); returns its path.
    pub(crate) fn fill(&self) -> PathBuf {
        let path = self.path("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        for chunk in [1 << 20, 4096, 1] {
            let bytes = vec![0u8; chunk];
            loop {
                match file.write(&bytes) {
                    Ok(n) if n == bytes.len() => continue,
                    // A short write: this size no longer fits; try the next.
                    Ok(_) => break,
                    Err(e) if e.raw_os_error() == Some(NO_SPACE) => break,
                    Err(e) => panic!("filling {}: {e}", path.display()),
                }
            }
        }
        let _ = file.sync_all();
        path
    }

    /// Remounts read-only (`true`) or read-write. Fails while a file of it is open for writing.
    pub(crate) fn remount(&self, read_only: bool) -> Result<(), String> {
        let mode = if read_only { "remount,ro" } else { "remount,rw" };
        let out = Command::new("mount")
            .args(["-o", mode])
            .arg(&self.dir)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a process of the failed test): detach it now, it goes when they do.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}
