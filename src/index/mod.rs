//! A layer's index: its listing (every entry with where it lies in the tar stream) and
//! the resume points recorded while it was first read, so that one file later costs
//! one small `Range` read instead of the whole blob.
//!
//! The first read of a layer records both ([`crate::layer::decompress`] notes resume
//! points, the tar reader the entries' offsets). To read entry N afterwards,
//! [`LayerIndex::plan`] picks the last resume point at or before the entry's first
//! header block and the first one after the bytes wanted; the blob's bytes between
//! them are fetched, decompression resumes there, and the tar reader starts at the
//! entry, which [`resume::Expect`] checks is the one promised before any byte of it is
//! used. Indexes are kept by blob digest ([`store`]): blobs are content-addressed, so an
//! index is as good for every repository that has the blob.

pub mod codec;
pub mod resume;
pub mod store;

use std::sync::Arc;

use crate::digest::Digest;
use crate::layer::decompress::{Compression, ResumePoint, Spacing};
use crate::layer::listing::Listing;
use crate::range::ByteRange;

/// How densely resume points are recorded, chosen by measurement (BENCHMARKS.md,
/// "Random access inside layers"): windows may take 1.5% of the blob, which puts a
/// point every ~2 MiB in an incompressible layer (each window ~32 KiB) and closer in
/// compressible ones, and no closer than 256 KiB. A file then costs the blob bytes
/// from the point before it to the mark after it: at most about one spacing more
/// than the file itself.
pub const DEFAULT_SPACING: Spacing = Spacing { min: 256 * 1024, window_ppm: 15_000 };

/// One layer's index; see the module docs.
pub struct LayerIndex {
    /// The blob it indexes.
    pub digest: Digest,
    /// Every entry, with offsets, and how reading went.
    pub listing: Arc<Listing>,
    /// Where decompression can resume, in blob order, the blob's first point first.
    pub points: Vec<ResumePoint>,
    /// Where a resumed read may stop: `(blob offset, tar bytes out by then)`.
    pub marks: Vec<(u64, u64)>,
    /// Whether the blob read was checked against its digest. Only a verified index may
    /// serve a repository other than `origin`: an unverified one says only what one
    /// registry sent for that digest.
    pub verified: bool,
    /// `registry/repository` it was read from.
    pub origin: String,
}

/// How to read part of one entry from the blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The layer's compression.
    pub compression: Compression,
    /// Where decompression resumes.
    pub point: ResumePoint,
    /// The blob bytes to fetch: from `start`, to `end` (exclusive) or the blob's end.
    pub start: u64,
    /// See `start`.
    pub end: Option<u64>,
    /// Decompressed bytes to drop between the point and the entry's first header block.
    pub skip: u64,
    /// The entry's first header block, in the tar stream.
    pub entry_offset: u64,
}

impl Plan {
    /// The range asking for these bytes.
    pub fn range(&self) -> ByteRange {
        ByteRange::From { first: self.start, last: self.end.map(|end| end - 1) }
    }

    /// How many blob bytes the plan fetches, when its end is known.
    pub fn fetch_bytes(&self) -> Option<u64> {
        self.end.map(|end| end - self.start)
    }
}

impl LayerIndex {
    /// Whether this index may answer for `origin` (`registry/repository`) once that
    /// repository is known to have the blob.
    pub fn serves(&self, origin: &str) -> bool {
        self.verified || self.origin == origin
    }

    /// The read that yields entry `index`'s header and its first `want` data bytes (all
    /// of them when `want` is at least its size). `None` when the layer's compression is
    /// not known (it was never read far enough).
    pub fn plan(&self, index: usize, want: u64) -> Option<Plan> {
        let compression = self.listing.summary.compression?;
        let (entry_offset, data_offset) = self.listing.offsets(index);
        let size = self.listing.entry(index).entry.size;
        let through = data_offset.saturating_add(want.min(size));
        if compression == Compression::None {
            // Any byte of a plain tar is a resume point.
            let point = ResumePoint { compressed: entry_offset, bits: 0, tar: entry_offset, window: Vec::new() };
            let end = through.max(data_offset).max(entry_offset + 1);
            return Some(Plan { compression, point, start: entry_offset, end: Some(end), skip: 0, entry_offset });
        }
        // Points are in order of both offsets; the first is at the tar stream's start
        // (for gzip, just past the first member's header). Without one, no plan.
        let before = self.points.partition_point(|p| p.tar <= entry_offset);
        let point = self.points.get(before.checked_sub(1)?)?.clone();
        // The read may stop at the first mark (or point) past the bytes wanted.
        let mark = self.marks.iter().find(|&&(c, tar)| tar >= through && c > point.compressed).map(|m| m.0);
        let next = self.points[before..].iter().find(|p| p.tar >= through && p.compressed > point.compressed);
        let end = match (mark, next.map(|p| p.compressed)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Some(Plan { compression, start: point.fetch_from(), end, skip: entry_offset - point.tar, point, entry_offset })
    }

    /// Whether `plan` reads from the layer's first resume point (or its first byte) to
    /// the blob's end: the whole blob but for the few bytes before that point (a gzip
    /// member's header), so that asking for those too makes it a read of the whole
    /// blob, which can be checked against the digest. The blob's end is where this
    /// index's first read ended.
    pub fn spans_blob(&self, plan: &Plan) -> bool {
        let from_first = plan.start == 0 || self.points.first().is_some_and(|p| p.compressed == plan.point.compressed);
        let size = self.listing.summary.compressed_bytes;
        from_first && plan.end.is_none_or(|end| end >= size)
    }

    /// Memory the index holds, for the cache's weigher.
    pub fn weight(&self) -> usize {
        self.listing.weight()
            + self.points.iter().map(|p| std::mem::size_of::<ResumePoint>() + p.window.capacity()).sum::<usize>()
            + self.marks.capacity() * std::mem::size_of::<(u64, u64)>()
            + self.origin.len()
    }

    /// Bytes of the points' windows: the bulk of an index beyond its listing.
    pub fn window_bytes(&self) -> usize {
        self.points.iter().map(|p| p.window.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::listing::{ListingBuilder, Summary};

    fn point(compressed: u64) -> ResumePoint {
        ResumePoint { compressed, bits: 0, tar: compressed * 2, window: Vec::new() }
    }

    fn plan(point: ResumePoint, start: u64, end: Option<u64>) -> Plan {
        Plan { compression: Compression::Gzip, point, start, end, skip: 0, entry_offset: 0 }
    }

    #[test]
    fn a_plan_spans_the_blob_from_its_first_point_or_byte_to_its_end() {
        let summary = Summary { compression: Some(Compression::Gzip), compressed_bytes: 1000, ..Summary::default() };
        let index = LayerIndex {
            digest: crate::digest::Digest::of(crate::digest::Algorithm::Sha256, b""),
            listing: Arc::new(ListingBuilder::default().finish(summary)),
            points: vec![point(10), point(500)],
            marks: Vec::new(),
            verified: true,
            origin: "r/x".to_owned(),
        };
        assert!(index.spans_blob(&plan(point(10), 10, None)));
        assert!(index.spans_blob(&plan(point(10), 10, Some(1000))));
        assert!(!index.spans_blob(&plan(point(10), 10, Some(999))), "it stops at a mark");
        assert!(!index.spans_blob(&plan(point(500), 500, None)), "it starts at a later point");
        // A plain tar's entry at the blob's first byte.
        assert!(index.spans_blob(&plan(point(0), 0, None)));
    }
}
