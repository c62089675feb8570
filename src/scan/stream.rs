//! The grammar over a text that arrives in chunks (a file read 1 MiB at a time, a gzip stream):
//! between chunks it keeps only the bytes a token or its boundary may still need.

use memchr::memmem::Finder;

use super::grammar::{Found, LOOKBEHIND, LineCounter, NEEDLE, Verdict, token_at};

/// The grammar over a text that arrives in chunks: the same tokens, offsets and lines as
/// [`find_tokens`](super::grammar::find_tokens) over the whole, whatever the chunk sizes.
pub struct StreamScanner {
    finder: Finder<'static>,
    /// Bytes kept from earlier chunks, then the current chunk.
    window: Vec<u8>,
    /// Absolute position of `window[0]`.
    window_start: u64,
    /// Index in `window` where the search for `mp` (the start of `mpt_` and `mprt_`) resumes.
    search_from: usize,
    lines: LineCounter,
}

impl Default for StreamScanner {
    fn default() -> Self {
        StreamScanner {
            finder: Finder::new(NEEDLE),
            window: Vec::new(),
            window_start: 0,
            search_from: 0,
            lines: LineCounter::default(),
        }
    }
}

impl StreamScanner {
    /// Scans the next chunk, pushing the tokens that are complete (boundary after included).
    pub fn feed(&mut self, chunk: &[u8], found: &mut Vec<Found>) {
        self.window.extend_from_slice(chunk);
        let resume = self.search(true, found);
        self.keep_from(resume);
    }

    /// Ends the input: the tokens still waiting for the byte after them.
    pub fn finish(mut self, found: &mut Vec<Found>) {
        self.search(false, found);
    }

    /// Searches the window; returns where the next search must resume.
    fn search(&mut self, more: bool, found: &mut Vec<Found>) -> usize {
        let window = &self.window;
        let mut resume = window.len().saturating_sub(NEEDLE.len() - 1).max(self.search_from);
        for hit in self.finder.find_iter(&window[self.search_from..]) {
            let at = self.search_from + hit;
            match token_at(window, at, more) {
                Verdict::Token(token) => {
                    let offset = self.window_start + at as u64;
                    let line = self.lines.line_at(window, self.window_start, offset);
                    resume = resume.max(at + token.len());
                    found.push(Found { offset, line, token });
                }
                Verdict::NotToken => {}
                Verdict::NeedMore => {
                    resume = at;
                    break;
                }
            }
        }
        resume
    }

    /// Drops the window before `resume` but the bytes the boundary rule looks back at,
    /// counting its newlines first.
    fn keep_from(&mut self, resume: usize) {
        let keep = resume.saturating_sub(LOOKBEHIND);
        let keep_abs = self.window_start + keep as u64;
        if keep_abs > self.lines.counted {
            self.lines.line_at(&self.window, self.window_start, keep_abs);
        }
        self.window.drain(..keep);
        self.window_start = keep_abs;
        self.search_from = resume - keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::grammar::find_tokens;
    use crate::scan::grammar::tests::{filler, separator, token};
    use proptest::prelude::*;

    #[test]
    fn a_token_split_across_chunks_is_found_with_its_offset_and_line() {
        let t = token();
        let text = format!("line one\nline two %3D{t}\n");
        for split in 0..=text.len() {
            let (head, tail) = text.as_bytes().split_at(split);
            let mut scanner = StreamScanner::default();
            let mut found = Vec::new();
            scanner.feed(head, &mut found);
            scanner.feed(tail, &mut found);
            scanner.finish(&mut found);
            assert_eq!(
                found,
                find_tokens(text.as_bytes()).collect::<Vec<_>>(),
                "split at {split}"
            );
            assert_eq!((found[0].offset, found[0].line), (21, 2));
        }
    }

    #[test]
    fn one_byte_at_a_time_finds_the_same_as_the_whole() {
        let (a, b) = (token(), token());
        let text = format!("{a}\r\nmpt_x %3d{b}\\n{a}x mpt_test_ \\t{b}");
        let mut scanner = StreamScanner::default();
        let mut found = Vec::new();
        for byte in text.as_bytes() {
            scanner.feed(std::slice::from_ref(byte), &mut found);
        }
        scanner.finish(&mut found);
        let whole: Vec<Found> = find_tokens(text.as_bytes()).collect();
        assert_eq!(whole.len(), 3);
        assert_eq!(found, whole);
    }

    #[test]
    fn a_glued_byte_in_the_next_chunk_still_refuses_the_token() {
        let t = token();
        let mut scanner = StreamScanner::default();
        let mut found = Vec::new();
        scanner.feed(t.as_bytes(), &mut found);
        assert!(found.is_empty(), "must wait for the byte after the token");
        scanner.feed(b"x", &mut found);
        scanner.finish(&mut found);
        assert!(found.is_empty());
    }

    proptest! {
        #[test]
        fn chunked_scanning_finds_what_scanning_the_whole_finds(
            parts in prop::collection::vec((filler(), separator()), 1..6),
            cuts in prop::collection::vec(0usize..400, 0..8),
        ) {
            let mut text = String::new();
            for (fill, sep) in &parts {
                text.push_str(fill);
                text.push_str(sep);
                text.push_str(&token());
            }
            let bytes = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut scanner = StreamScanner::default();
            let mut found = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                scanner.feed(&bytes[from..cut], &mut found);
                from = cut;
            }
            scanner.finish(&mut found);
            prop_assert_eq!(found, find_tokens(bytes).collect::<Vec<_>>());
        }
    }
}
