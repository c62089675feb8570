//! `--redact`: every token in a file replaced by `mpt_<env>_<id>_[REDACTED]` padded with `X` to
//! the token's length, every other byte kept, in the file's own encoding (UTF-16 stays UTF-16
//! with its BOM and byte order).
//!
//! A text file is edited in place: the file is searched again through a handle opened for
//! writing, and each token, read again just before, is overwritten by its redacted form of the
//! same length. Nothing shifts, the inode stays, so a process appending to the file (a log,
//! whether it holds it open with `O_APPEND` or reopens it per line) loses nothing.
//!
//! What cannot be edited in place is rewritten whole and replaced atomically (a temporary file in
//! the same directory with the old mode, synced, renamed over the original, directory synced), so
//! a crash leaves the old file or the new one: a gzip file (gzipped again with its header's name
//! and time) and a file that is not writable. The rename is refused if the file's size,
//! modification time or inode changed since it was read, checked just before it.
//!
//! Nothing is written through a path that no longer leads where the walk went: the file is
//! opened without following a symlink at its name and must be the file walked (device and
//! inode), and every directory on the way must still be, at its path and not through a symlink,
//! the directory walked; checked before and after opening, and again before the rename. A
//! directory or file swapped since the walk (for a symlink out of the tree, say) is skipped.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder, GzHeader};

use super::content::{Content, Encoding, is_gzip, sniff};
use super::file::{GZIP_CAP, scan_content};
use super::grammar::{Found, find_tokens};
use super::walk::Trail;
use crate::domain::refresh_token::AnyToken;
use crate::domain::token::random_base62;

/// Largest file (and largest gzip content) rewritten whole: that holds it in memory. Files
/// edited in place have no limit.
pub const REDACT_CAP: u64 = GZIP_CAP;

/// Why a file with tokens was not rewritten. No variant carries file content.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("larger than {} MiB, not rewritten", REDACT_CAP >> 20)]
    TooLarge,
    #[error("a SQLite database, not rewritten (changing a record's length would corrupt it); revoke the token")]
    Database,
    #[error("binary, not rewritten")]
    Binary,
    #[error("changed while being redacted, not rewritten; scan it again")]
    Changed,
    #[error("changed while being redacted; the tokens still in place were redacted, scan it again")]
    PartlyChanged,
    #[error(
        "the path no longer leads to the file scanned (it or a directory on the way was moved, removed or replaced, perhaps by a symlink), not rewritten"
    )]
    Swapped,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// What redacting a file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redacted {
    pub tokens: usize,
    /// Other hard links to the old file, when it was replaced: they still hold the tokens.
    pub other_links: u64,
}

/// What the secret part is replaced with, after `mpt_<env>_<id>_`; `X`s pad it to the secret's
/// length.
const MARKER: &str = "[REDACTED]";

/// The text a token is replaced with: `mpt_<env>_<id>_[REDACTED]XXX…` (`mprt_…` for a refresh
/// token), as long as the token.
pub fn redacted_form(token: &AnyToken) -> String {
    let form = format!("{}{}_{}_{MARKER}", token.prefix(), token.env(), token.id());
    let padding = token.len().saturating_sub(form.len());
    form + &"X".repeat(padding)
}

/// Redacts every token in the file at `path`, reached by the walk along `trail`: in place, or by
/// replacing the file where it cannot be edited in place (see the module comment). A file
/// without tokens is left untouched.
pub fn redact_file(path: &Path, trail: &Trail) -> Result<Redacted, RedactError> {
    if !trail.dirs_unchanged() {
        return Err(RedactError::Swapped);
    }
    let (mut file, writable) = match open_no_follow(path, true) {
        Ok(file) => (file, true),
        Err(RedactError::Io(e)) if e.kind() == io::ErrorKind::PermissionDenied => (open_no_follow(path, false)?, false),
        Err(e) => return Err(e),
    };
    let before = file.metadata()?;
    if !trail.is_the_file(&before) || !trail.dirs_unchanged() {
        return Err(RedactError::Swapped);
    }
    if writable && !starts_as_gzip(&mut file)? {
        let tokens = redact_in_place(&mut file)?;
        return Ok(Redacted { tokens, other_links: 0 });
    }
    replace_redacted(path, &mut file, &before, trail)
}

/// Opens `path` to read (and write) without following a symlink at its name: one there now is
/// [`RedactError::Swapped`].
fn open_no_follow(path: &Path, write: bool) -> Result<File, RedactError> {
    let mut options = OpenOptions::new();
    options.read(true).write(write);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return RedactError::Swapped;
        }
        RedactError::Io(e)
    })
}

/// Whether the file starts a gzip stream; leaves the handle at the start.
fn starts_as_gzip(file: &mut File) -> io::Result<bool> {
    let mut magic = Vec::with_capacity(2);
    (&mut *file).take(2).read_to_end(&mut magic)?;
    file.rewind()?;
    Ok(is_gzip(&magic))
}

/// Searches the file again through `file` and overwrites each token's bytes with its redacted
/// form (same length, same encoding), after reading them again: bytes changed since the search
/// are left alone. Returns how many tokens were overwritten.
fn redact_in_place(file: &mut File) -> Result<usize, RedactError> {
    let scan = scan_content(&mut *file, false)?;
    let encoding = match scan.content {
        Content::Text(encoding) => encoding,
        Content::Database => return Err(RedactError::Database),
        Content::Binary => return Err(RedactError::Binary),
    };
    if let Some(why) = scan.stopped {
        return Err(RedactError::Io(io::Error::other(why)));
    }
    let unit = encoding.unit_len() as u64;
    let mut overwritten = 0;
    for f in &scan.found {
        let at = f.offset * unit;
        if bytes_at(file, at, f.len() * unit as usize)? != encoding.encode(f.token.expose_secret()) {
            continue;
        }
        file.seek(SeekFrom::Start(at))?;
        file.write_all(&encoding.encode(&redacted_form(&f.token)))?;
        overwritten += 1;
    }
    file.sync_data()?;
    if overwritten < scan.found.len() {
        return Err(RedactError::PartlyChanged);
    }
    Ok(overwritten)
}

/// Up to `len` bytes of the file from `at` (fewer at its end).
fn bytes_at(file: &mut File, at: u64, len: usize) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(at))?;
    let mut bytes = Vec::with_capacity(len);
    (&mut *file).take(len as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads the whole file through `file`, redacts it in memory and replaces it atomically.
fn replace_redacted(path: &Path, file: &mut File, before: &Metadata, trail: &Trail) -> Result<Redacted, RedactError> {
    let mut original = Vec::new();
    file.take(REDACT_CAP + 1).read_to_end(&mut original)?;
    if original.len() as u64 > REDACT_CAP {
        return Err(RedactError::TooLarge);
    }
    let Some((rewritten, tokens)) = redact_bytes(&original)? else {
        return Ok(Redacted {
            tokens: 0,
            other_links: 0,
        });
    };
    write_atomically(path, &rewritten, before, trail)?;
    Ok(Redacted {
        tokens,
        other_links: link_count(before).saturating_sub(1),
    })
}

/// A file's bytes with every token redacted and how many there were, or `None` without tokens.
pub fn redact_bytes(original: &[u8]) -> Result<Option<(Vec<u8>, usize)>, RedactError> {
    if !is_gzip(original) {
        return redact_content(original);
    }
    let (content, header, trailing) = gunzip(original)?;
    if is_gzip(&content) {
        return Err(RedactError::Binary);
    }
    match redact_content(&content)? {
        Some((redacted, tokens)) => Ok(Some(([gzip(&redacted, &header)?, trailing.to_vec()].concat(), tokens))),
        None => Ok(None),
    }
}

fn redact_content(content: &[u8]) -> Result<Option<(Vec<u8>, usize)>, RedactError> {
    let encoding = match sniff(content) {
        Content::Text(encoding) => encoding,
        Content::Database => return Err(RedactError::Database),
        Content::Binary => return Err(RedactError::Binary),
    };
    let found: Vec<Found> = find_tokens(&encoding.narrow_all(content)).collect();
    if found.is_empty() {
        return Ok(None);
    }
    Ok(Some((splice(content, &found, encoding), found.len())))
}

/// `content` with each found token (positions in its narrowed text) replaced by its redacted
/// form in `encoding`; every other byte copied as is.
pub fn splice(content: &[u8], found: &[Found], encoding: Encoding) -> Vec<u8> {
    let unit = encoding.unit_len();
    let mut out = Vec::with_capacity(content.len());
    let mut copied = 0;
    for f in found {
        let start = f.offset as usize * unit;
        out.extend_from_slice(&content[copied..start]);
        out.extend(encoding.encode(&redacted_form(&f.token)));
        copied = start + f.len() * unit;
    }
    out.extend_from_slice(&content[copied..]);
    out
}

/// The decompressed content (every member), the first member's header, and the bytes after the
/// last member, which `gzip -d` ignores with a warning and the rewrite keeps as they are. A
/// member that cannot be decompressed to its end is an error: its rest cannot be rewritten.
fn gunzip(original: &[u8]) -> Result<(Vec<u8>, GzHeader, &[u8]), RedactError> {
    let mut content = Vec::new();
    let mut header = None;
    let mut rest = original;
    while is_gzip(rest) {
        // The `bufread` decoder takes from the slice exactly the member's bytes.
        let mut member = flate2::bufread::GzDecoder::new(rest);
        let room = REDACT_CAP + 1 - content.len() as u64;
        (&mut member).take(room).read_to_end(&mut content)?;
        if content.len() as u64 > REDACT_CAP {
            return Err(RedactError::TooLarge);
        }
        header.get_or_insert_with(|| member.header().cloned().unwrap_or_default());
        rest = member.into_inner();
    }
    Ok((content, header.unwrap_or_default(), rest))
}

/// One gzip member with the original header's name, time, comment, extra field and OS.
fn gzip(content: &[u8], header: &GzHeader) -> io::Result<Vec<u8>> {
    let mut builder = GzBuilder::new()
        .mtime(header.mtime())
        .operating_system(header.operating_system());
    if let Some(name) = header.filename() {
        builder = builder.filename(name);
    }
    if let Some(comment) = header.comment() {
        builder = builder.comment(comment);
    }
    if let Some(extra) = header.extra() {
        builder = builder.extra(extra);
    }
    let mut encoder = builder.write(Vec::with_capacity(content.len() / 4), Compression::default());
    encoder.write_all(content)?;
    encoder.finish()
}

/// Refuses to replace a file that grew or was rewritten since it was read (an active log):
/// what was written to it meanwhile would be lost.
fn ensure_unchanged(path: &Path, before: &Metadata) -> Result<(), RedactError> {
    let now = fs::symlink_metadata(path)?;
    let same = now.is_file()
        && now.len() == before.len()
        && now.modified().ok() == before.modified().ok()
        && super::walk::file_key(&now) == super::walk::file_key(before);
    if same { Ok(()) } else { Err(RedactError::Changed) }
}

/// Writes `bytes` to a new file beside `path` with the old file's mode (and owner, when
/// allowed), syncs it, checks that `path` still leads along `trail` to the file read, renames
/// it over `path` and syncs the directory.
fn write_atomically(path: &Path, bytes: &[u8], old: &Metadata, trail: &Trail) -> Result<(), RedactError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.memberpass-redact-{}", random_base62(8)));
    if !trail.dirs_unchanged() {
        return Err(RedactError::Swapped);
    }
    let mut file = create_private(&temp)?;
    let written = (|| {
        file.set_permissions(old.permissions())?;
        keep_owner(&file, old);
        file.write_all(bytes)?;
        file.sync_all()?;
        if !trail.dirs_unchanged() {
            return Err(RedactError::Swapped);
        }
        ensure_unchanged(path, old)?;
        fs::rename(&temp, path)?;
        Ok(sync_dir(&dir)?)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// A new file only its owner can read until it gets the original's mode.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Best effort: only root may give a file away, and a user's own file needs nothing.
#[cfg(unix)]
fn keep_owner(file: &File, old: &Metadata) {
    use std::os::unix::fs::MetadataExt;
    let _ = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()));
}

#[cfg(not(unix))]
fn keep_owner(_file: &File, _old: &Metadata) {}

/// Makes the rename durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn link_count(meta: &Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::nlink(meta)
}

#[cfg(not(unix))]
fn link_count(_meta: &Metadata) -> u64 {
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::{TokenEnv, TokenSecret};

    fn token() -> AnyToken {
        AnyToken::from(TokenSecret::generate(TokenEnv::Live))
    }

    #[test]
    fn only_the_tokens_change_and_the_id_stays_readable() {
        let (a, b) = (token(), token());
        let text = format!("x={}\r\n\\n{} é\n", a.expose_secret(), b.expose_secret());
        let (out, n) = redact_bytes(text.as_bytes()).unwrap().unwrap();
        let expected = format!("x={}\r\n\\n{} é\n", redacted_form(&a), redacted_form(&b));
        assert_eq!(n, 2);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn utf16_stays_utf16_with_its_bom_and_byte_order() {
        let t = token();
        for (encoding, bom) in [
            (Encoding::Utf16Le, &b"\xFF\xFE"[..]),
            (Encoding::Utf16Be, &b"\xFE\xFF"[..]),
        ] {
            let text = |tok: &str| [bom, &encoding.encode(&format!("caf\u{e9}\r\nkey: {tok}\r\n"))].concat();
            let (out, n) = redact_bytes(&text(t.expose_secret())).unwrap().unwrap();
            assert_eq!(n, 1);
            assert_eq!(out, text(&redacted_form(&t)), "{encoding:?}");
        }
    }

    #[test]
    fn gzip_is_gzipped_again_with_its_header_and_the_same_other_bytes() {
        let t = token();
        let plain = format!("a\n{}\nb\n", t.expose_secret());
        let mut enc = GzBuilder::new()
            .filename("app.log")
            .mtime(1_700_000_000)
            .write(Vec::new(), Compression::best());
        enc.write_all(plain.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();

        let (out, n) = redact_bytes(&gz).unwrap().unwrap();

        assert_eq!(n, 1);
        let (content, header, trailing) = gunzip(&out).unwrap();
        assert!(trailing.is_empty());
        assert_eq!(content, format!("a\n{}\nb\n", redacted_form(&t)).as_bytes());
        assert_eq!(header.filename(), Some(&b"app.log"[..]));
        assert_eq!(header.mtime(), 1_700_000_000);
    }

    #[test]
    fn bytes_after_the_last_gzip_member_are_kept_and_a_damaged_member_is_refused() {
        let (a, b) = (token(), token());
        let member = |t: &AnyToken| {
            let mut enc = GzBuilder::new().write(Vec::new(), Compression::fast());
            enc.write_all(format!("x {}\n", t.expose_secret()).as_bytes()).unwrap();
            enc.finish().unwrap()
        };
        let two = [member(&a), member(&b)].concat();

        let (out, n) = redact_bytes(&[&two[..], b"GARBAGE"].concat()).unwrap().unwrap();

        assert_eq!(n, 2);
        let (content, _, trailing) = gunzip(&out).unwrap();
        assert_eq!(
            content,
            format!("x {}\nx {}\n", redacted_form(&a), redacted_form(&b)).as_bytes()
        );
        assert_eq!(trailing, b"GARBAGE");
        assert!(matches!(redact_bytes(&two[..two.len() - 3]), Err(RedactError::Io(_))));
    }

    #[test]
    fn files_without_tokens_databases_and_binaries_are_left_alone() {
        assert!(redact_bytes(b"nothing here\n").unwrap().is_none());
        let t = token();
        let db = [&b"SQLite format 3\0"[..], t.expose_secret().as_bytes()].concat();
        assert!(matches!(redact_bytes(&db), Err(RedactError::Database)));
        let bin = [&b"\0\x01\0\x02\x03\0"[..], b" ", t.expose_secret().as_bytes()].concat();
        assert!(matches!(redact_bytes(&bin), Err(RedactError::Binary)));
    }

    #[test]
    fn the_redacted_form_is_as_long_as_the_token_and_no_token() {
        let t = token();
        let form = redacted_form(&t);
        assert_eq!(form.len(), t.expose_secret().len());
        assert_eq!(&form[..22], &t.expose_secret()[..22]);
        assert!(form[22..].starts_with("[REDACTED]XXX"), "{form}");
        assert_eq!(find_tokens(form.as_bytes()).count(), 0);
    }

    #[test]
    fn redacting_twice_changes_nothing_more() {
        let text = format!("{}\n", token().expose_secret());
        let (once, _) = redact_bytes(text.as_bytes()).unwrap().unwrap();
        assert!(redact_bytes(&once).unwrap().is_none());
    }

    #[test]
    fn error_messages_never_carry_content() {
        for e in [
            RedactError::TooLarge,
            RedactError::Database,
            RedactError::Binary,
            RedactError::Changed,
            RedactError::PartlyChanged,
            RedactError::Swapped,
        ] {
            assert!(!e.to_string().contains("mpt_"), "{e}");
        }
    }
}
