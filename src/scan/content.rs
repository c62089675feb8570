//! What a file holds, and how its bytes become text the grammar reads.
//!
//! Tokens are ASCII, so every ASCII-compatible encoding (UTF-8, Latin-1, Windows-1252 …) is read
//! as its bytes, unchanged. UTF-16 is "narrowed": each code unit becomes one byte (itself when
//! ASCII, `0x80` otherwise, which like any non-ASCII character is a boundary), so positions in
//! the narrowed text are code-unit positions in the file and a redaction maps straight back.

use std::borrow::Cow;

/// How much of a file (after gunzip) [`sniff`] looks at, as git and ripgrep do.
pub const HEAD_LEN: usize = 8192;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const UTF16LE_BOM: &[u8] = b"\xFF\xFE";
const UTF16BE_BOM: &[u8] = b"\xFE\xFF";
const GZIP_MAGIC: &[u8] = b"\x1F\x8B";
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";
const SQLITE_WAL_MAGICS: [&[u8]; 2] = [b"\x37\x7F\x06\x82", b"\x37\x7F\x06\x83"];

/// A text encoding the grammar can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 or any other encoding where ASCII is one byte per character.
    Ascii,
    Utf16Le,
    Utf16Be,
}

/// What a file holds, as far as scanning goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    Text(Encoding),
    /// A SQLite database or write-ahead log (where Cursor and VS Code keep chat history): binary,
    /// but its records store text as is, so it is scanned; it is never rewritten, since changing
    /// a record's length would corrupt the database.
    Database,
    /// Skipped: nothing in it reads as text.
    Binary,
}

/// Whether the bytes start a gzip stream.
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(GZIP_MAGIC)
}

/// Classifies a file from its first [`HEAD_LEN`] bytes (after gunzip):
///
/// 1. a byte-order mark decides: UTF-8, UTF-16LE (`FF FE`) or UTF-16BE (`FE FF`);
/// 2. the SQLite database and WAL magic numbers mean [`Content::Database`];
/// 3. no NUL byte means text in an ASCII-compatible encoding (git's and ripgrep's rule);
/// 4. NULs that sit (almost) only at odd offsets while covering at least half of the code units
///    mean UTF-16LE without a BOM, mostly ASCII (`a\0b\0…`); only at even offsets, UTF-16BE.
///    Anything else with a NUL is binary: random or structured data has NULs at both parities.
///
/// UTF-16 text without a BOM that is mostly non-Latin (e.g. CJK) does not meet rule 4 and is
/// skipped; Windows tools write UTF-16 with a BOM.
pub fn sniff(head: &[u8]) -> Content {
    let head = &head[..head.len().min(HEAD_LEN)];
    if head.starts_with(UTF8_BOM) {
        Content::Text(Encoding::Ascii)
    } else if head.starts_with(UTF16LE_BOM) {
        Content::Text(Encoding::Utf16Le)
    } else if head.starts_with(UTF16BE_BOM) {
        Content::Text(Encoding::Utf16Be)
    } else if head.starts_with(SQLITE_MAGIC) || SQLITE_WAL_MAGICS.iter().any(|m| head.starts_with(m)) {
        Content::Database
    } else if memchr::memchr(0, head).is_none() {
        Content::Text(Encoding::Ascii)
    } else {
        utf16_by_nul_pattern(head).map_or(Content::Binary, Content::Text)
    }
}

/// Rule 4 of [`sniff`].
fn utf16_by_nul_pattern(head: &[u8]) -> Option<Encoding> {
    let units = head.len() / 2;
    let nuls_at = |parity: usize| head.iter().skip(parity).step_by(2).filter(|&&b| b == 0).count();
    let (even, odd) = (nuls_at(0), nuls_at(1));
    let mostly_one_side = |many: usize, few: usize| many * 2 >= units && few * 16 <= many;
    if mostly_one_side(odd, even) {
        Some(Encoding::Utf16Le)
    } else if mostly_one_side(even, odd) {
        Some(Encoding::Utf16Be)
    } else {
        None
    }
}

impl Encoding {
    /// Bytes per code unit: a position in the narrowed text times this is a position in the file.
    pub fn unit_len(self) -> usize {
        match self {
            Encoding::Ascii => 1,
            Encoding::Utf16Le | Encoding::Utf16Be => 2,
        }
    }

    /// `ascii` in this encoding (no BOM).
    pub fn encode(self, ascii: &str) -> Vec<u8> {
        let units = ascii.encode_utf16();
        match self {
            Encoding::Ascii => ascii.as_bytes().to_vec(),
            Encoding::Utf16Le => units.flat_map(u16::to_le_bytes).collect(),
            Encoding::Utf16Be => units.flat_map(u16::to_be_bytes).collect(),
        }
    }

    /// The narrowed text of a whole input (see the module comment); a trailing odd byte of
    /// UTF-16 is dropped.
    pub fn narrow_all(self, bytes: &[u8]) -> Cow<'_, [u8]> {
        match self {
            Encoding::Ascii => Cow::Borrowed(bytes),
            _ => {
                let mut out = Vec::with_capacity(bytes.len() / 2);
                Narrower::new(self).push(bytes, &mut out);
                Cow::Owned(out)
            }
        }
    }
}

/// Narrows UTF-16 that arrives in chunks of any length (a code unit may straddle two).
pub struct Narrower {
    encoding: Encoding,
    /// The first byte of a code unit whose second byte is in the next chunk.
    pending: Option<u8>,
}

impl Narrower {
    pub fn new(encoding: Encoding) -> Self {
        Narrower {
            encoding,
            pending: None,
        }
    }

    /// Appends the narrowed form of `chunk` to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        if self.encoding == Encoding::Ascii {
            out.extend_from_slice(chunk);
            return;
        }
        if let Some(first) = self.pending.take() {
            let Some((&second, rest)) = chunk.split_first() else {
                self.pending = Some(first);
                return;
            };
            out.push(self.narrow_unit([first, second]));
            chunk = rest;
        }
        let pairs = chunk.chunks_exact(2);
        self.pending = pairs.remainder().first().copied();
        out.extend(pairs.map(|p| self.narrow_unit([p[0], p[1]])));
    }

    fn narrow_unit(&self, pair: [u8; 2]) -> u8 {
        let unit = match self.encoding {
            Encoding::Utf16Be => u16::from_be_bytes(pair),
            _ => u16::from_le_bytes(pair),
        };
        u8::try_from(unit).ok().filter(u8::is_ascii).unwrap_or(0x80)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str) -> Vec<u8> {
        Encoding::Utf16Le.encode(s)
    }

    #[test]
    fn byte_order_marks_decide_the_encoding() {
        assert_eq!(sniff(b"\xEF\xBB\xBFhello"), Content::Text(Encoding::Ascii));
        assert_eq!(
            sniff(&[UTF16LE_BOM, &utf16le("hi")].concat()),
            Content::Text(Encoding::Utf16Le)
        );
        assert_eq!(
            sniff(&[UTF16BE_BOM, &Encoding::Utf16Be.encode("hi")].concat()),
            Content::Text(Encoding::Utf16Be)
        );
    }

    #[test]
    fn text_without_nul_is_read_as_is_whatever_its_8_bit_encoding() {
        assert_eq!(sniff(b""), Content::Text(Encoding::Ascii));
        assert_eq!(
            sniff("caf\u{e9} \u{1F600}\r\n".as_bytes()),
            Content::Text(Encoding::Ascii)
        );
        assert_eq!(sniff(b"caf\xE9 latin-1"), Content::Text(Encoding::Ascii));
    }

    #[test]
    fn utf16_without_bom_is_recognised_by_where_its_nuls_sit() {
        let text = "2024-05-01 INFO pasted token, line with a caf\u{e9} and \u{4E2D}\u{6587}\n".repeat(20);
        assert_eq!(sniff(&utf16le(&text)), Content::Text(Encoding::Utf16Le));
        assert_eq!(
            sniff(&Encoding::Utf16Be.encode(&text)),
            Content::Text(Encoding::Utf16Be)
        );
    }

    #[test]
    fn data_with_nuls_at_both_parities_is_binary() {
        let mut random = vec![0u8; 4096];
        getrandom::fill(&mut random).unwrap();
        random[100] = 0;
        random[101] = 0;
        assert_eq!(sniff(&random), Content::Binary);
        let structured: Vec<u8> = (0u32..1000).flat_map(u32::to_le_bytes).collect();
        assert_eq!(sniff(&structured), Content::Binary);
        assert_eq!(sniff(b"ELF\0\0\0\0\x02\x01"), Content::Binary);
    }

    #[test]
    fn sqlite_databases_and_their_wal_are_scanned_as_databases() {
        assert_eq!(sniff(b"SQLite format 3\0\x10\0\x01\x01"), Content::Database);
        assert_eq!(sniff(b"\x37\x7F\x06\x82\0\x2D\xE2\x18"), Content::Database);
    }

    #[test]
    fn narrowing_keeps_one_byte_per_code_unit_whatever_the_chunks() {
        let text = "a\u{e9}\u{4E2D}\u{1F600}b\r\n";
        let bytes = utf16le(text);
        let expected: Vec<u8> = vec![b'a', 0x80, 0x80, 0x80, 0x80, b'b', b'\r', b'\n'];
        assert_eq!(Encoding::Utf16Le.narrow_all(&bytes).as_ref(), expected.as_slice());
        for split in 0..=bytes.len() {
            let mut n = Narrower::new(Encoding::Utf16Le);
            let mut out = Vec::new();
            n.push(&bytes[..split], &mut out);
            n.push(&[], &mut out);
            n.push(&bytes[split..], &mut out);
            assert_eq!(out, expected, "split at {split}");
        }
    }

    #[test]
    fn ascii_is_encoded_back_in_the_file_encoding() {
        assert_eq!(Encoding::Ascii.encode("ab"), b"ab");
        assert_eq!(Encoding::Utf16Le.encode("ab"), b"a\0b\0");
        assert_eq!(Encoding::Utf16Be.encode("ab"), b"\0a\0b");
    }
}
