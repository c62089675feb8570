//! Scanning one file: sniff it, gunzip it if need be, stream it through the grammar in chunks.
//!
//! A gzip stream that ends in an error (bytes after the last member, a truncated or damaged
//! member) is scanned up to the error, as `gzip -d` recovers it, and the error is a warning.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::content::{Content, HEAD_LEN, Narrower, is_gzip, sniff};
use super::grammar::Found;
use super::stream::StreamScanner;

/// Most bytes read out of one gzip file: a gzip bomb expands a few kilobytes into gigabytes.
pub const GZIP_CAP: u64 = 256 * 1024 * 1024;
/// Bytes read at a time.
const CHUNK: usize = 1024 * 1024;

/// What scanning one file found.
#[derive(Debug)]
pub struct FileScan {
    pub content: Content,
    pub gzip: bool,
    pub found: Vec<Found>,
    /// Bytes of content read, after gunzip (0 for a skipped binary file).
    pub bytes: u64,
    /// Why reading stopped before the end (a read error part-way, the gzip cap); the tokens
    /// found until then are in `found`.
    pub stopped: Option<String>,
}

/// Scans one regular file. An error here means nothing of it could be read.
pub fn scan_file(path: &Path) -> io::Result<FileScan> {
    scan_file_capped(path, GZIP_CAP)
}

/// [`scan_file`] reading at most `cap` decompressed bytes out of a gzip file.
fn scan_file_capped(path: &Path, cap: u64) -> io::Result<FileScan> {
    let mut file = File::open(path)?;
    let head = read_head(&mut file)?;
    if !is_gzip(&head) {
        return scan_content(Cursor::new(head).chain(file), false);
    }
    let mut inflated = UntilError::new(MultiGzDecoder::new(Cursor::new(head).chain(file))).take(cap);
    let mut scan = scan_content(&mut inflated, true)?;
    if let Some(e) = &inflated.get_ref().error {
        scan.stopped = Some(format!(
            "the gzip data ends in an error after {} decompressed bytes ({e}); what came before it was scanned",
            scan.bytes
        ));
    } else if scan.stopped.is_none() && inflated.limit() == 0 && has_more(inflated.into_inner()) {
        scan.stopped = Some(format!(
            "stopped after {} MiB of decompressed data (the cap against gzip bombs)",
            cap >> 20
        ));
    }
    Ok(scan)
}

/// A reader that ends at the first error of `inner` instead of returning it, and keeps it: what
/// a gzip stream gave before trailing bytes or a damaged member is still scanned.
struct UntilError<R> {
    inner: R,
    error: Option<io::Error>,
}

impl<R> UntilError<R> {
    fn new(inner: R) -> Self {
        UntilError { inner, error: None }
    }
}

impl<R: Read> Read for UntilError<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Ok(0);
        }
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    return Ok(0);
                }
                read => return read,
            }
        }
    }
}

/// Sniffs and scans a content stream (a file, or a gzip file's decompressed content).
pub(super) fn scan_content(mut reader: impl Read, gzip: bool) -> io::Result<FileScan> {
    let head = read_head(&mut reader)?;
    // A gzip inside a gzip is not followed: one level is what log rotation makes.
    let content = if gzip && is_gzip(&head) {
        Content::Binary
    } else {
        sniff(&head)
    };
    let mut scan = FileScan {
        content,
        gzip,
        found: Vec::new(),
        bytes: 0,
        stopped: None,
    };
    let encoding = match content {
        Content::Text(encoding) => encoding,
        Content::Database => super::content::Encoding::Ascii,
        Content::Binary => return Ok(scan),
    };
    let mut narrower = Narrower::new(encoding);
    let mut scanner = StreamScanner::default();
    let mut narrowed = Vec::with_capacity(CHUNK);
    let mut feed = |bytes: &[u8], found: &mut Vec<Found>| {
        narrowed.clear();
        narrower.push(bytes, &mut narrowed);
        scanner.feed(&narrowed, found);
    };
    feed(&head, &mut scan.found);
    scan.bytes = head.len() as u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                feed(&buf[..n], &mut scan.found);
                scan.bytes += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                scan.stopped = Some(format!("read error after {} bytes: {e}", scan.bytes));
                break;
            }
        }
    }
    scanner.finish(&mut scan.found);
    Ok(scan)
}

/// Up to [`HEAD_LEN`] bytes from the start of `reader` (fewer only at its end).
fn read_head(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD_LEN);
    reader.take(HEAD_LEN as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Whether a stream that hit the cap had more to give.
fn has_more(mut reader: impl Read) -> bool {
    !matches!(reader.read(&mut [0u8; 1]), Ok(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::{TokenEnv, TokenSecret};
    use crate::scan::content::Encoding;
    use std::io::Write;

    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn with(bytes: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!("memberpass-scan-file-{}", uuid::Uuid::now_v7().simple()));
            std::fs::write(&path, bytes).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn a_gzip_file_is_read_up_to_the_cap_and_says_where_it_stopped() {
        let t = TokenSecret::generate(TokenEnv::Test);
        let text = format!("a\n{}\n{}", t.expose_secret(), "x".repeat(2 << 20));
        let file = TempFile::with(&gzip(text.as_bytes()));

        let capped = scan_file_capped(&file.0, 1 << 20).unwrap();
        assert_eq!(capped.found.len(), 1);
        assert_eq!(capped.bytes, 1 << 20);
        assert!(capped.stopped.unwrap().contains("gzip bombs"));

        let whole = scan_file(&file.0).unwrap();
        assert_eq!(
            (whole.found.len(), whole.bytes, whole.stopped),
            (1, text.len() as u64, None)
        );
        assert!(whole.gzip);
    }

    #[test]
    fn a_gzip_stream_ending_in_an_error_is_scanned_up_to_it() {
        let t = TokenSecret::generate(TokenEnv::Test);
        let text = format!("a\n{}\n", t.expose_secret());
        let mut noise = vec![0u8; 64 << 10];
        getrandom::fill(&mut noise).unwrap();
        let long = format!("{text}{}", hex::encode(&noise));
        let truncated = gzip(long.as_bytes());
        for bytes in [
            [gzip(text.as_bytes()), b"GARBAGE".to_vec()].concat(),
            [gzip(text.as_bytes()), vec![0; 512]].concat(),
            truncated[..truncated.len() / 2].to_vec(),
        ] {
            let file = TempFile::with(&bytes);

            let scan = scan_file(&file.0).unwrap();

            assert_eq!(scan.found.len(), 1);
            assert_eq!(scan.found[0].line, 2);
            assert!(scan.stopped.unwrap().contains("ends in an error"));
        }
    }

    #[test]
    fn a_token_across_the_read_chunks_of_a_big_utf16_file_is_found_on_its_line() {
        let t = TokenSecret::generate(TokenEnv::Live);
        // The token's 120 bytes straddle the end of the first read after the head.
        let filler = "y".repeat((HEAD_LEN + CHUNK) / 2 - 38);
        let text = format!("one\r\n{filler}\r\n{}\r\nlast", t.expose_secret());
        let bytes = [&b"\xFF\xFE"[..], &Encoding::Utf16Le.encode(&text)].concat();
        let file = TempFile::with(&bytes);

        let scan = scan_file(&file.0).unwrap();

        assert_eq!(scan.content, Content::Text(Encoding::Utf16Le));
        assert_eq!(scan.found.len(), 1);
        assert_eq!(scan.found[0].line, 3);
        assert_eq!(scan.found[0].offset as usize, 1 + "one\r\n".len() + filler.len() + 2);
        assert_eq!(scan.bytes, bytes.len() as u64);
    }

    #[test]
    fn a_binary_file_is_skipped_unread() {
        let t = TokenSecret::generate(TokenEnv::Test);
        let bytes = [&b"\0\0\x01\0\0\x02\0\0 "[..], t.expose_secret().as_bytes()].concat();
        let file = TempFile::with(&bytes);
        let scan = scan_file(&file.0).unwrap();
        assert_eq!((scan.content, scan.found.len(), scan.bytes), (Content::Binary, 0, 0));
    }
}
