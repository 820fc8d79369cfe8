//! Push-based decompression of a layer: compressed bytes are written in as they arrive
//! and the decompressed bytes are written on into a sink (the tar scanner), so nothing
//! is held but the decompressor's own window and buffer.
//!
//! The compression is read from the blob's first bytes, as Docker and containerd do,
//! rather than believed from the media type: registries hold layers labelled `tar.gzip`
//! that are plain tar. Gzip may have several members (pigz and some builders write
//! them), so it is decoded with multi-member semantics; zstd may have several frames.
//!
//! This file holds the [`Decompressor`] that drives them; each concern has its own:
//! - `detect.rs`: which [`Compression`], from the magic number (and the media type's);
//! - `gzip.rs` and `zstd.rs`: the two decoders, stopping where a read could resume;
//! - `resume.rs`: the [`ResumePoint`]s and marks noted there, within their budget.

use std::fmt;
use std::io::{self, Write};

mod detect;
mod gzip;
mod resume;
mod zstd;

pub use self::zstd::MAX_ZSTD_WINDOW_LOG;
use self::zstd::{zstd_decoder, Zstd};
pub use detect::Compression;
use detect::ZSTD_MAGIC;
use gzip::{Gzip, Member};
use resume::Recorder;
pub use resume::{Recorded, ResumePoint, Spacing};

use super::inflate::{Framing, InflateError, Inflater};

/// Compressed bytes that could not be decompressed.
#[derive(Debug)]
pub struct DecompressError {
    /// The compression in use.
    pub compression: Compression,
    /// Compressed bytes taken in before the failure was noticed.
    pub offset: u64,
    /// The decoder's reason.
    pub reason: io::Error,
}

impl fmt::Display for DecompressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.reason.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::WriteZero => "ends early",
            _ => "is corrupt",
        };
        write!(
            f,
            "the {} data {what} (noticed {} bytes into the blob: {})",
            self.compression.name(),
            self.offset,
            self.reason
        )
    }
}

impl std::error::Error for DecompressError {}

/// Output bytes per inflate or zstd call.
pub(super) const OUT_BUFFER: usize = 64 * 1024;

/// The decompressed side: skips what a resumed read does not need, counts the tar
/// offset, and writes on into the sink.
pub(super) struct Output<W> {
    sink: W,
    /// Decompressed bytes still to drop before the sink sees any.
    skip: u64,
    /// Offset in the tar stream of the next byte.
    pub(super) position: u64,
}

impl<W: Write> Output<W> {
    /// Writes `bytes` on into the sink, less what is still to be skipped.
    pub(super) fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        self.position += bytes.len() as u64;
        if self.skip > 0 {
            let n = usize::try_from(self.skip).unwrap_or(usize::MAX).min(bytes.len());
            self.skip -= n as u64;
            bytes = &bytes[n..];
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.sink.write_all(bytes)
    }
}

enum Decoder<W: Write> {
    /// Waiting for enough bytes to read the magic number.
    Sniffing {
        head: Vec<u8>,
        out: Output<W>,
    },
    Gzip(Box<Gzip>, Output<W>),
    Zstd(Box<Zstd>, Output<W>),
    Plain(Output<W>),
    /// Only while switching from sniffing to a decoder.
    Switching,
}

/// Decompresses into a sink; see the module docs.
pub struct Decompressor<W: Write> {
    decoder: Decoder<W>,
    compression: Option<Compression>,
    /// Blob bytes taken in so far (from the blob's start, for a resumed read).
    taken: u64,
    /// Blob bytes decoded so far: `taken` less what sniffing holds.
    decoded: u64,
    recorder: Option<Recorder>,
}

impl<W: Write> Decompressor<W> {
    /// A decompressor writing into `sink`, choosing its format from the first bytes.
    pub fn new(sink: W) -> Decompressor<W> {
        Decompressor {
            decoder: Decoder::Sniffing { head: Vec::with_capacity(4), out: Output { sink, skip: 0, position: 0 } },
            compression: None,
            taken: 0,
            decoded: 0,
            recorder: None,
        }
    }

    /// Like [`Decompressor::new`], also noting resume points and marks as `spacing`
    /// says, for [`Decompressor::recorded`].
    pub fn recording(sink: W, spacing: Spacing) -> Decompressor<W> {
        let mut d = Decompressor::new(sink);
        d.recorder = Some(Recorder::new(spacing));
        d
    }

    /// A decompressor for a blob of known `compression` whose bytes are fed from
    /// `point.fetch_from()` on; the sink gets the tar stream from `point.tar + skip` on.
    pub fn resume(
        sink: W,
        compression: Compression,
        point: &ResumePoint,
        skip: u64,
    ) -> Result<Decompressor<W>, DecompressError> {
        let out = Output { sink, skip, position: point.tar };
        let fail = |reason: io::Error| DecompressError { compression, offset: point.compressed, reason };
        let decoder = match compression {
            Compression::Gzip => {
                let mut window = Vec::new();
                if !point.window.is_empty() {
                    let mut d = flate2::write::DeflateDecoder::new(&mut window);
                    d.write_all(&point.window).and_then(|_| d.try_finish()).map_err(fail)?;
                }
                let invalid = |e: InflateError| fail(io::Error::new(io::ErrorKind::InvalidData, e));
                let mut inflater = Inflater::new(Framing::Raw).map_err(invalid)?;
                inflater.set_window(&window).map_err(invalid)?;
                let member = if point.bits > 0 { Member::Prime(point.bits) } else { Member::Inside };
                Decoder::Gzip(Box::new(Gzip { inflater, member, raw: true, buffer: out_buffer() }), out)
            }
            Compression::Zstd => Decoder::Zstd(Box::new(zstd_decoder().map_err(fail)?), out),
            Compression::None => Decoder::Plain(out),
        };
        let start = point.fetch_from();
        Ok(Decompressor { decoder, compression: Some(compression), taken: start, decoded: start, recorder: None })
    }

    /// The compression found, once the first bytes have been seen.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// Compressed bytes taken in so far.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// The resume points and marks noted so far (none unless
    /// [`Decompressor::recording`]); a plain tar needs none, since any byte is both.
    pub fn recorded(&mut self) -> Recorded {
        self.recorder.as_mut().map(|r| std::mem::take(&mut r.recorded)).unwrap_or_default()
    }

    fn output(&self) -> &Output<W> {
        match &self.decoder {
            Decoder::Sniffing { out, .. } | Decoder::Plain(out) | Decoder::Gzip(_, out) | Decoder::Zstd(_, out) => out,
            // Only inside `choose`, which never returns in that state.
            Decoder::Switching => unreachable!("a decoder is always chosen"),
        }
    }

    /// The sink.
    pub fn sink(&self) -> &W {
        &self.output().sink
    }

    /// Takes in the next compressed bytes, writing what they decompress to into the sink.
    pub fn write(&mut self, input: &[u8]) -> Result<(), DecompressError> {
        self.taken += input.len() as u64;
        if let Decoder::Sniffing { head, .. } = &mut self.decoder {
            let n = (ZSTD_MAGIC.len() - head.len()).min(input.len());
            head.extend_from_slice(&input[..n]);
            if head.len() < ZSTD_MAGIC.len() {
                return Ok(());
            }
            // Replay the sniffed bytes, then the rest of this input.
            let head = self.choose()?;
            self.decode(&head)?;
            return self.decode(&input[n..]);
        }
        self.decode(input)
    }

    /// Picks the decoder for the sniffed bytes and hands them back to be decoded.
    fn choose(&mut self) -> Result<Vec<u8>, DecompressError> {
        let Decoder::Sniffing { head, .. } = &self.decoder else { return Ok(Vec::new()) };
        let compression = Compression::sniff(head);
        self.compression = Some(compression);
        // The fallible steps (the decoders' contexts) come before the sink is moved.
        let fail = |reason| DecompressError { compression, offset: 0, reason };
        let mut zstd = match compression {
            Compression::Zstd => Some(zstd_decoder().map_err(fail)?),
            Compression::Gzip | Compression::None => None,
        };
        let mut gzip = match compression {
            Compression::Gzip => {
                Some(Inflater::new(Framing::Gzip).map_err(|e| fail(io::Error::new(io::ErrorKind::InvalidData, e)))?)
            }
            Compression::Zstd | Compression::None => None,
        };
        if let (Some(r), Compression::Zstd) = (&mut self.recorder, compression) {
            r.boundary(0, 0, 0, None);
        }
        let mut replay = Vec::new();
        // `Switching` lasts only until the assignment: nothing in between can fail.
        self.decoder = match std::mem::replace(&mut self.decoder, Decoder::Switching) {
            Decoder::Sniffing { head, out } => {
                replay = head;
                match (gzip.take(), zstd.take()) {
                    (Some(inflater), _) => Decoder::Gzip(
                        Box::new(Gzip { inflater, member: Member::Inside, raw: false, buffer: out_buffer() }),
                        out,
                    ),
                    (_, Some(context)) => Decoder::Zstd(Box::new(context), out),
                    (None, None) => Decoder::Plain(out),
                }
            }
            chosen => chosen,
        };
        Ok(replay)
    }

    fn decode(&mut self, input: &[u8]) -> Result<(), DecompressError> {
        let offset = &mut self.decoded;
        let result = match &mut self.decoder {
            Decoder::Gzip(d, out) => d.decode(input, offset, out, &mut self.recorder),
            Decoder::Zstd(d, out) => d.decode(input, offset, out, &mut self.recorder),
            Decoder::Plain(out) => {
                *offset += input.len() as u64;
                out.write(input)
            }
            // `write` decodes only once `choose` has run.
            Decoder::Sniffing { .. } | Decoder::Switching => unreachable!("a decoder was chosen"),
        };
        result.map_err(|reason| self.error(reason))
    }

    /// The compressed bytes have ended: flushes what the decoder holds and checks that
    /// the compressed stream was complete.
    pub fn finish(&mut self) -> Result<(), DecompressError> {
        if let Decoder::Sniffing { head, .. } = &self.decoder {
            if head.is_empty() {
                self.compression = Some(Compression::None);
                return Ok(());
            }
            let head = self.choose()?;
            self.decode(&head)?;
        }
        let result = match &mut self.decoder {
            Decoder::Gzip(d, _) => d.finish(),
            Decoder::Zstd(d, _) => d.finish(),
            Decoder::Plain(out) => out.sink.flush(),
            // Chosen just above.
            Decoder::Sniffing { .. } | Decoder::Switching => unreachable!("a decoder was chosen"),
        };
        result.map_err(|reason| self.error(reason))
    }

    fn error(&self, reason: io::Error) -> DecompressError {
        DecompressError { compression: self.compression.unwrap_or(Compression::None), offset: self.taken, reason }
    }
}

/// A decoder's output buffer.
pub(super) fn out_buffer() -> Box<[u8]> {
    vec![0; OUT_BUFFER].into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::resume::MARK_SPACING;
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        ::zstd::stream::encode_all(data, 3).unwrap()
    }

    fn run(blob: &[u8], chunk: usize) -> (Vec<u8>, Option<Compression>, Result<(), DecompressError>) {
        let mut d = Decompressor::new(Vec::new());
        let mut result = Ok(());
        for c in blob.chunks(chunk.max(1)) {
            result = d.write(c);
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = d.finish();
        }
        let compression = d.compression();
        (d.sink().clone(), compression, result)
    }

    #[test]
    fn every_format_in_any_chunking() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for (blob, expected) in
            [(gzip(&data), Compression::Gzip), (zstd(&data), Compression::Zstd), (data.clone(), Compression::None)]
        {
            for chunk in [1, 3, 4, 5, 4096, 1 << 20] {
                if chunk == 1 && blob.len() > 100_000 && expected != Compression::Gzip {
                    continue; // byte-at-a-time through zstd is slow in debug builds
                }
                let (out, compression, result) = run(&blob, chunk);
                result.unwrap();
                assert_eq!(compression, Some(expected));
                assert!(out == data, "{expected:?} in chunks of {chunk}");
            }
        }
    }

    #[test]
    fn multi_member_gzip_and_multi_frame_zstd_decode_whole() {
        let mut blob = gzip(b"first ");
        blob.extend(gzip(b"second"));
        assert_eq!(run(&blob, 7).0, b"first second");
        let mut blob = zstd(b"first ");
        blob.extend(zstd(b"second"));
        assert_eq!(run(&blob, 7).0, b"first second");
    }

    #[test]
    fn truncated_and_corrupt_streams_fail() {
        let data: Vec<u8> = (0..50_000u32).flat_map(|i| format!("{} ", i * 7919 % 10007).into_bytes()).collect();
        for blob in [gzip(&data), zstd(&data)] {
            let (_, _, result) = run(&blob[..blob.len() / 2], 1000);
            assert!(result.unwrap_err().to_string().contains("ends early"));
            let mut bad = blob.clone();
            let at = bad.len() / 2;
            bad[at..at + 8].copy_from_slice(b"garbage!");
            // gzip's CRC catches any corruption; zstd (written without a checksum, as
            // most layers are) catches it as a bad block or lets through other bytes.
            let (out, compression, result) = run(&bad, 1000);
            assert!(result.is_err() || (compression == Some(Compression::Zstd) && out != data));
        }
        // Tiny blobs: fewer bytes than a magic number.
        assert_eq!(run(b"ab", 1).0, b"ab");
        assert_eq!(run(b"", 1).1, Some(Compression::None));
    }

    /// Decompresses `blob` recording every `spacing` bytes, checks the whole output,
    /// then resumes at every point (fed in awkward chunks) and checks that each gives
    /// exactly the rest of the stream.
    fn resume_everywhere(blob: &[u8], data: &[u8], min: u64) -> usize {
        let mut d = Decompressor::recording(Vec::new(), Spacing { min, window_ppm: 1_000_000 });
        for c in blob.chunks(9999) {
            d.write(c).unwrap();
        }
        d.finish().unwrap();
        assert!(d.sink() == data);
        let compression = d.compression().unwrap();
        let Recorded { points, marks } = d.recorded();
        // Marks are in order, and each says truly how much had come out by then.
        assert!(marks.windows(2).all(|m| m[0].0 < m[1].0 && m[0].1 <= m[1].1));
        assert!(marks.iter().all(|&(_, tar)| tar <= data.len() as u64));
        // A mark is true: the blob up to its offset gives at least that much of the stream.
        for &(c, tar) in marks.iter().step_by(7) {
            let mut d = Decompressor::new(Vec::new());
            d.write(&blob[..c as usize]).unwrap();
            assert!(d.sink().len() as u64 >= tar, "mark ({c}, {tar}) gave {}", d.sink().len());
            assert!(d.sink()[..] == data[..d.sink().len()]);
        }
        for (i, p) in points.iter().enumerate() {
            let skip = (i as u64 * 37) % 1000;
            let mut r = Decompressor::resume(Vec::new(), compression, p, skip).unwrap();
            for c in blob[p.fetch_from() as usize..].chunks(4093) {
                r.write(c).unwrap();
            }
            r.finish().unwrap();
            let from = (p.tar + skip).min(data.len() as u64) as usize;
            assert!(r.sink()[..] == data[from..], "{compression:?} point {i} of {}: {p:?}", points.len());
        }
        points.len()
    }

    fn layer_like(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if (i / 4096) % 3 == 0 {
                    (x >> 24) as u8
                } else {
                    b"the quick brown fox "[(x >> 16) as usize % 20]
                }
            })
            .collect()
    }

    #[test]
    fn resuming_at_every_recorded_point_gives_the_rest_of_the_stream() {
        let data = layer_like(1_500_000, 7);
        for level in [1, 6, 9] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            e.write_all(&data).unwrap();
            let blob = e.finish().unwrap();
            // zlib-rs at level 1 writes few, large blocks: fewer points, all good.
            let points = resume_everywhere(&blob, &data, 20_000);
            assert!(points >= if level == 1 { 1 } else { 10 }, "gzip level {level}: {points} points");
        }
        // Several gzip members, as pigz and some builders write them.
        let mut blob = Vec::new();
        for part in data.chunks(300_000) {
            blob.extend(gzip(part));
        }
        assert!(resume_everywhere(&blob, &data, 50_000) > 5);
        // Several zstd frames: each frame start is a point (and so is the blob's end,
        // after the last frame).
        let mut blob = Vec::new();
        for part in data.chunks(200_000) {
            blob.extend(zstd(part));
        }
        assert_eq!(resume_everywhere(&blob, &data, 1), 9);
        // A single zstd frame resumes only at its start (or at its end), but a read from
        // there may stop at any of its marks.
        assert_eq!(resume_everywhere(&zstd(&data), &data, 1), 2);
        let mut d = Decompressor::recording(Vec::new(), Spacing { min: 1, window_ppm: 1_000_000 });
        d.write(&zstd(&data)).unwrap();
        assert!(d.recorded().marks.len() > 3);
        // A plain tar needs no points: it resumes anywhere.
        let mut d = Decompressor::resume(
            Vec::new(),
            Compression::None,
            &ResumePoint { compressed: 5000, bits: 0, tar: 5000, window: vec![] },
            10,
        )
        .unwrap();
        d.write(&data[5000..6000]).unwrap();
        assert!(d.sink()[..] == data[5010..6000]);
    }

    #[test]
    fn a_resumed_read_cut_short_ends_early() {
        let data = layer_like(400_000, 3);
        let blob = gzip(&data);
        let mut d = Decompressor::recording(Vec::new(), Spacing { min: 10_000, window_ppm: 1_000_000 });
        d.write(&blob).unwrap();
        d.finish().unwrap();
        let points = d.recorded().points;
        let p = &points[1];
        let mut r = Decompressor::resume(Vec::new(), Compression::Gzip, p, 0).unwrap();
        r.write(&blob[p.fetch_from() as usize..blob.len() - 100]).unwrap();
        assert!(r.finish().unwrap_err().to_string().contains("ends early"));
    }

    #[test]
    fn the_window_budget_spaces_points_by_how_well_windows_compress() {
        let spacing = Spacing { min: 64 * 1024, window_ppm: 15_000 };
        let count = |data: &[u8]| {
            let mut d = Decompressor::recording(Vec::new(), spacing);
            let blob = gzip(data);
            d.write(&blob).unwrap();
            d.finish().unwrap();
            let recorded = d.recorded();
            let windows: usize = recorded.points.iter().map(|p| p.window.len()).sum();
            assert!(windows as u64 <= blob.len() as u64 * spacing.window_ppm / 1_000_000 + 32 * 1024);
            (recorded.points.len(), recorded.marks.len(), blob.len())
        };
        // Incompressible: each window costs ~32 KiB, so a point every ~2 MiB.
        let random: Vec<u8> = {
            let mut x = 88172645463325252u64;
            (0..12 << 20)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        let (points, marks, blob) = count(&random);
        assert!((4..=9).contains(&points), "{points} points in {blob} incompressible bytes");
        assert!(marks as u64 >= blob as u64 / MARK_SPACING / 2, "{marks} marks");
        // Text: windows deflate well, so points come closer together.
        let words = ["layer ", "index ", "resume ", "point ", "window ", "deflate ", "tar ", "blob\n"];
        let mut x = 7u32;
        let text: Vec<u8> = (0..2_000_000)
            .flat_map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                words[(x >> 16) as usize % words.len()].bytes()
            })
            .collect();
        let (text_points, _, text_blob) = count(&text);
        assert!(
            text_points as f64 / text_blob as f64 > 2.0 * points as f64 / blob as f64,
            "{text_points} in {text_blob}"
        );
    }

    #[test]
    fn a_zstd_window_beyond_the_limit_is_refused_before_it_is_allocated() {
        // A frame whose header declares a 128 MiB window (--long=27) over a few bytes.
        let mut encoder = ::zstd::stream::raw::Encoder::new(3).unwrap();
        use ::zstd::stream::raw::{CParameter, InBuffer, Operation, OutBuffer};
        encoder.set_parameter(CParameter::WindowLog(27)).unwrap();
        encoder.set_parameter(CParameter::EnableLongDistanceMatching(true)).unwrap();
        let data = vec![7u8; 6000];
        let mut out = vec![0u8; 1 << 16];
        let mut dst = OutBuffer::around(&mut out[..]);
        let mut src = InBuffer::around(&data[..]);
        encoder.run(&mut src, &mut dst).unwrap();
        encoder.finish(&mut dst, true).unwrap();
        let n = dst.pos();
        let blob = out[..n].to_vec();
        let (_, compression, result) = run(&blob, 1000);
        assert_eq!(compression, Some(Compression::Zstd));
        let e = result.unwrap_err().to_string();
        assert!(e.contains("window larger than the 8 MiB"), "{e}");
        // An ordinary frame decodes.
        assert_eq!(run(&zstd(&data), 1000).0, data);
    }
}
