//! Checking, on a resumed read, that the entry met is the one the index promised.
//!
//! An index may be stale or wrong (a bug, a damaged store that still checksummed, a
//! blob that is not what was indexed): it must never make layerpipe serve the wrong
//! bytes. The tar reader starts at the entry's first header block; [`Expect`] compares
//! that header with the listing's entry (clean path, kind, size, offsets) before
//! passing anything on, and stops the read on any difference.

use std::ops::ControlFlow;

use tokio::sync::oneshot;

use crate::layer::entry::{self, Kind};
use crate::layer::listing::Listing;
use crate::layer::tar::{Header, Visitor, Want};

/// What the first header of a resumed read must say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    path: Vec<u8>,
    kind: Kind,
    size: u64,
    offset: u64,
    data_offset: u64,
}

impl Expected {
    /// Entry `index` of `listing`, as its header must read.
    pub fn entry(listing: &Listing, index: usize) -> Expected {
        let e = listing.entry(index);
        let (offset, data_offset) = listing.offsets(index);
        Expected { path: e.path().to_vec(), kind: e.entry.kind, size: e.entry.size, offset, data_offset }
    }

    fn matches(&self, header: &Header) -> bool {
        let (path, _) = entry::clean(&header.path);
        path == self.path
            && Kind::of(header.kind, &path) == self.kind
            && header.size == self.size
            && header.offset == self.offset
            && header.data_offset == self.data_offset
    }
}

/// A visitor for the entry a resumed read starts at: `inner` sees it as entry 0, and
/// only after it checked out.
pub struct Expect<V> {
    expected: Expected,
    /// The inner visitor.
    pub inner: V,
    /// Set when the first header was not the promised entry.
    pub mismatch: bool,
    seen: bool,
    verdict: Option<oneshot::Sender<bool>>,
}

impl<V> Expect<V> {
    /// Wraps `inner` to see only the `expected` entry.
    pub fn new(expected: Expected, inner: V) -> Expect<V> {
        Expect { expected, inner, mismatch: false, seen: false, verdict: None }
    }

    /// Also says on `verdict` whether the entry checked out, as soon as its header is
    /// read: a saved file's response waits for that before promising its bytes.
    pub fn telling(mut self, verdict: oneshot::Sender<bool>) -> Expect<V> {
        self.verdict = Some(verdict);
        self
    }
}

impl<V: Visitor> Visitor for Expect<V> {
    fn entry(&mut self, header: Header) -> Want {
        if self.seen {
            // The entry wanted is behind us; its data ended the read already unless
            // the inner visitor wanted none.
            return Want::Stop;
        }
        self.seen = true;
        self.mismatch = !self.expected.matches(&header);
        if let Some(verdict) = self.verdict.take() {
            let _ = verdict.send(!self.mismatch);
        }
        if self.mismatch {
            return Want::Stop;
        }
        self.inner.entry(header)
    }

    fn data(&mut self, bytes: &[u8], end: bool) -> ControlFlow<()> {
        self.inner.data(bytes, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::listing::{ListingBuilder, Summary};
    use crate::layer::preview::PreviewVisitor;
    use crate::layer::tar::TypeFlag;

    fn header(path: &str, size: u64, offset: u64) -> Header {
        Header::sample(path, TypeFlag::File, size, "", offset)
    }

    #[test]
    fn only_the_promised_entry_gets_through() {
        let mut b = ListingBuilder::default();
        b.entry(header("./a", 3, 0));
        b.entry(header("./b", 5, 1024));
        let listing = b.finish(Summary::default());
        let expected = Expected::entry(&listing, 1);

        let mut good = Expect::new(expected.clone(), PreviewVisitor::new(0));
        assert_eq!(good.entry(header("b", 5, 1024)), Want::Data);
        assert!(good.data(b"hello", true).is_break());
        assert_eq!(good.inner.bytes, b"hello");
        assert!(!good.mismatch);

        for wrong in [header("./a", 5, 1024), header("./b", 6, 1024), header("./b", 5, 1536)] {
            let mut bad = Expect::new(expected.clone(), PreviewVisitor::new(0));
            assert_eq!(bad.entry(wrong), Want::Stop);
            assert!(bad.mismatch);
        }
        let mut dir = header("./b", 5, 1024);
        dir.kind = TypeFlag::Symlink;
        let mut bad = Expect::new(expected, PreviewVisitor::new(0));
        assert_eq!(bad.entry(dir), Want::Stop);
        assert!(bad.mismatch);
    }
}
