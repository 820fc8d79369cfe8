//! The first bytes of one file of a layer, and how to show them: as text when they are
//! text, as a hex dump otherwise.

use std::fmt::Write as _;
use std::ops::ControlFlow;

use super::tar::{Header, Visitor, Want};

/// How much of a file its page shows.
pub const PREVIEW_BYTES: usize = 64 * 1024;

/// Collects the first [`PREVIEW_BYTES`] of the entry at an index, then stops the archive.
pub struct PreviewVisitor {
    index: usize,
    seen: usize,
    /// The bytes collected.
    pub bytes: Vec<u8>,
    /// Whether the whole file was collected (it is no longer than the preview).
    pub complete: bool,
}

impl PreviewVisitor {
    /// A visitor for the entry at `index` (archive order, from 0).
    pub fn new(index: usize) -> PreviewVisitor {
        PreviewVisitor { index, seen: 0, bytes: Vec::new(), complete: false }
    }
}

impl Visitor for PreviewVisitor {
    fn entry(&mut self, _header: Header) -> Want {
        Want::only_entry(self.index, &mut self.seen)
    }

    fn data(&mut self, bytes: &[u8], end: bool) -> ControlFlow<()> {
        let n = bytes.len().min(PREVIEW_BYTES.saturating_sub(self.bytes.len()));
        self.bytes.extend_from_slice(&bytes[..n]);
        self.complete = end && n == bytes.len();
        if end || self.bytes.len() == PREVIEW_BYTES {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// The bytes as text, when they are: UTF-8 (a character cut at the end of a partial
/// preview aside) without control characters other than whitespace and escape.
pub fn as_text(bytes: &[u8], complete: bool) -> Option<&str> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        // A multi-byte character cut off by the preview's end.
        Err(e) if !complete && e.error_len().is_none() => std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    let binary = text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c' | '\x1b'));
    (!binary).then_some(text)
}

/// A hex dump like `hexdump -C`: offset, 16 bytes in two groups, and their ASCII.
pub fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() / 16 * 79 + 79);
    for (line, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:08x} ", line * 16);
        for i in 0..16 {
            if i % 8 == 0 {
                out.push(' ');
            }
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
        }
        out.push_str(" |");
        out.extend(chunk.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }));
        out.push_str("|\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_or_binary() {
        assert_eq!(as_text(b"hello\n\tworld", true), Some("hello\n\tworld"));
        assert_eq!(as_text(b"\x7fELF\x02\x01\x01\0", true), None);
        assert_eq!(as_text(b"caf\xc3", true), None);
        // A character cut by the end of a partial preview is dropped, not fatal.
        assert_eq!(as_text(b"caf\xc3", false), Some("caf"));
        assert_eq!(as_text(b"a\xffb", false), None);
    }

    #[test]
    fn hex_dump_lines() {
        let dump = hex_dump(b"\x7fELF0123456789abcdefXYZ");
        assert_eq!(
            dump,
            "00000000  7f 45 4c 46 30 31 32 33  34 35 36 37 38 39 61 62  |.ELF0123456789ab|\n\
             00000010  63 64 65 66 58 59 5a                              |cdefXYZ|\n"
        );
    }

    #[test]
    fn the_visitor_takes_the_first_bytes_of_its_entry_and_stops() {
        let mut v = PreviewVisitor::new(1);
        let header = |name: &str| Header::sample(name, super::super::tar::TypeFlag::File, 0, "", 0);
        assert_eq!(v.entry(header("a")), Want::Skip);
        assert_eq!(v.entry(header("b")), Want::Data);
        assert!(v.data(&[1; 40_000], false).is_continue());
        assert!(v.data(&[2; 40_000], false).is_break());
        assert_eq!(v.bytes.len(), PREVIEW_BYTES);
        assert!(!v.complete);

        let mut v = PreviewVisitor::new(0);
        v.entry(header("a"));
        assert!(v.data(b"small", true).is_break());
        assert!(v.complete);
    }
}
