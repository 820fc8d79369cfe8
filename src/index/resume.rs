//! Checking, on a resumed read, that the entry met is the one the index promised.
//!
//! An index may be stale or wrong (a bug, a damaged store that still checksummed, a
//! blob that is not what was indexed): it must never make layerpipe serve the wrong
//! bytes. The tar reader starts at the entry's first header block; [`Expect`] compares
//! that header with the listing's entry (clean path, kind, size, offsets) before
//! passing anything on, and stops the read on any difference. A read from the blob's
//! start ([`Expect::at`]) checks the entry the same way when it reaches it.
//!
//! A difference discredits the whole listing, the entry's number included: whoever
//! falls back must look the file up by its path again in a fresh read of the blob
//! (see [`crate::layer::inspect`]), never read "entry N" of the blob instead.

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
    /// Set when the entry's header was not the promised one.
    pub mismatch: bool,
    /// Headers to pass on unchecked before the promised entry's.
    before: usize,
    seen: usize,
    verdict: Option<oneshot::Sender<bool>>,
}

impl<V> Expect<V> {
    /// Wraps `inner` to see only the `expected` entry, the first a resumed read meets.
    pub fn new(expected: Expected, inner: V) -> Expect<V> {
        Expect::at(0, expected, inner)
    }

    /// Wraps `inner` for a read from the blob's start: the `index` headers before the
    /// `expected` entry reach `inner` as they are (it skips them), that entry only once
    /// it checked out, and nothing after it.
    pub fn at(index: usize, expected: Expected, inner: V) -> Expect<V> {
        Expect { expected, inner, mismatch: false, before: index, seen: 0, verdict: None }
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
        let n = self.seen;
        self.seen += 1;
        if n < self.before {
            return self.inner.entry(header);
        }
        if n > self.before {
            // The entry wanted is behind us; its data ended the read already unless
            // the inner visitor wanted none.
            return Want::Stop;
        }
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

    #[test]
    fn from_the_start_the_promised_entry_is_checked_where_the_listing_put_it() {
        let mut b = ListingBuilder::default();
        b.entry(header("./one", 5, 0));
        b.entry(header("./two", 5, 1024));
        let listing = b.finish(Summary::default());

        let mut good = Expect::at(1, Expected::entry(&listing, 1), PreviewVisitor::new(1));
        assert_eq!(good.entry(header("one", 5, 0)), Want::Skip, "passed to the inner visitor");
        assert_eq!(good.entry(header("two", 5, 1024)), Want::Data);
        assert!(good.data(b"TWO!!", true).is_break());
        assert_eq!((good.inner.bytes.as_slice(), good.mismatch), (&b"TWO!!"[..], false));
        assert_eq!(good.entry(header("three", 5, 2048)), Want::Stop);

        // The same listing over a blob with the files the other way round: entry 1 is
        // `one` there, and is refused rather than shown as `two`.
        let mut bad = Expect::at(1, Expected::entry(&listing, 1), PreviewVisitor::new(1));
        assert_eq!(bad.entry(header("two", 5, 0)), Want::Skip);
        assert_eq!(bad.entry(header("one", 5, 1024)), Want::Stop);
        assert!(bad.mismatch);
        assert!(bad.inner.bytes.is_empty());
    }
}
