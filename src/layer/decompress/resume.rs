//! Resume points: places in a blob where decompression can start again without what
//! came before, noted while a layer is first read so that one file later costs one
//! `Range` read ([`crate::index`]). A deflate point carries its 32 KiB window (deflated,
//! within a budget per compressed byte); a zstd point is a frame's start and needs none.
//! Marks, which cost nothing, say where a resumed read may stop.

use std::io::Write;

use crate::layer::inflate::Inflater;

/// A place in a blob where decompression can start again without what came before:
/// a deflate block boundary (with the window it refers back into), a zstd frame's
/// start, or, for a plain tar, any byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumePoint {
    /// Offset in the blob of the first whole byte after the point.
    pub compressed: u64,
    /// For deflate, how many bits of the byte before `compressed` already belong to
    /// the block that starts here (0 to 7).
    pub bits: u8,
    /// Offset in the decompressed tar stream.
    pub tar: u64,
    /// For deflate, the (up to) 32 KiB of output before the point, deflated to keep
    /// indexes small; empty at a member's start and for zstd.
    pub window: Vec<u8>,
}

impl ResumePoint {
    /// The first blob byte a resumed read needs: the shared byte when the block
    /// starts inside one.
    pub fn fetch_from(&self) -> u64 {
        self.compressed - u64::from(self.bits > 0)
    }
}

/// How densely resume points are noted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spacing {
    /// Fewest compressed bytes between two points.
    pub min: u64,
    /// Most the points' windows may take, in millionths of the compressed bytes read so
    /// far. A point is noted only where its deflated window fits: incompressible
    /// layers, whose windows do not shrink, get fewer points, compressible ones more.
    pub window_ppm: u64,
}

/// Compressed bytes between two marks: where a resumed read may stop.
pub(super) const MARK_SPACING: u64 = 64 * 1024;

/// What recording noted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Where decompression can resume, in blob order.
    pub points: Vec<ResumePoint>,
    /// `(compressed, tar)`: by blob offset `compressed` (exclusive), the tar stream's
    /// first `tar` bytes have come out. A resumed read may stop at a mark; marks cost
    /// no window, so there are many more of them than points.
    pub marks: Vec<(u64, u64)>,
}

/// Collects resume points and marks at the block (or frame) boundaries met.
pub(super) struct Recorder {
    spacing: Spacing,
    pub(super) recorded: Recorded,
    /// Window bytes spent so far.
    spent: u64,
    /// Where a point was last considered.
    last_try: u64,
    /// The deflated size of the last window kept: what the next one is guessed to
    /// cost, so that a window is deflated only when the budget can likely take it.
    /// Deflating every candidate cost a gzip listing twice its CPU (BENCHMARKS.md).
    guess: u64,
    scratch: Vec<u8>,
    deflater: flate2::write::DeflateEncoder<Vec<u8>>,
}

impl Recorder {
    /// A recorder noting points as `spacing` says.
    pub(super) fn new(spacing: Spacing) -> Recorder {
        Recorder {
            spacing,
            recorded: Recorded::default(),
            spent: 0,
            last_try: 0,
            guess: 0,
            scratch: Vec::new(),
            deflater: flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast()),
        }
    }

    /// A boundary at blob offset `compressed` (`bits` into the byte before it) and tar
    /// offset `tar`; `inflater` holds the window, for deflate.
    pub(super) fn boundary(&mut self, compressed: u64, bits: u8, tar: u64, inflater: Option<&Inflater>) {
        self.mark(compressed, tar);
        let budget = u128::from(compressed) * u128::from(self.spacing.window_ppm) / 1_000_000;
        if let Some(last) = self.recorded.points.last() {
            let min = self.spacing.min;
            if compressed < last.compressed + min
                || compressed < self.last_try + min / 4
                || u128::from(self.spent + self.guess) > budget
            {
                return;
            }
        }
        self.last_try = compressed;
        let window = match inflater {
            Some(inflater) => self.deflate_window(inflater),
            None => Vec::new(),
        };
        let spent = self.spent + window.len() as u64;
        if !self.recorded.points.is_empty() && u128::from(spent) > budget {
            self.guess = window.len() as u64;
            return;
        }
        self.spent = spent;
        self.guess = window.len() as u64;
        self.recorded.points.push(ResumePoint { compressed, bits, tar, window });
    }

    /// By blob offset `compressed`, `tar` bytes have come out: where a resumed read may
    /// stop. True anywhere in a zstd stream, so marks there need no frame boundary.
    pub(super) fn mark(&mut self, compressed: u64, tar: u64) {
        let marks = &mut self.recorded.marks;
        if marks.last().is_none_or(|&(c, _)| compressed >= c + MARK_SPACING) {
            marks.push((compressed, tar));
        }
    }

    /// The inflater's window, deflated (raw deflate, fast).
    fn deflate_window(&mut self, inflater: &Inflater) -> Vec<u8> {
        inflater.window(&mut self.scratch);
        if self.scratch.is_empty() {
            return Vec::new();
        }
        // Writing into a Vec cannot fail; a failure would only mean no point here.
        let deflated = self.deflater.write_all(&self.scratch).and_then(|_| self.deflater.try_finish());
        let out = self.deflater.reset(Vec::new()).unwrap_or_default();
        if deflated.is_ok() {
            out
        } else {
            Vec::new()
        }
    }
}
