//! Push-based decompression of a layer: compressed bytes are written in as they arrive
//! and the decompressed bytes are written on into a sink (the tar scanner), so nothing
//! is held but the decompressor's own window and buffer.
//!
//! The compression is read from the blob's first bytes, as Docker and containerd do,
//! rather than believed from the media type: registries hold layers labelled `tar.gzip`
//! that are plain tar. Gzip may have several members (pigz and some builders write
//! them), so it is decoded with multi-member semantics; zstd may have several frames.

use std::fmt;
use std::io::{self, Write};

use flate2::write::MultiGzDecoder;

use crate::download::LayerFormat;

/// The first bytes of a gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How a blob's bytes are compressed, by their magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// gzip (deflate).
    Gzip,
    /// zstd.
    Zstd,
    /// None: a plain tar.
    None,
}

impl Compression {
    /// The compression whose magic number `head` starts with (at least 4 bytes, or all
    /// there are); anything else is taken as a plain tar.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The compression a media type declares, for layer formats.
    pub fn declared(format: LayerFormat) -> Option<Compression> {
        match format {
            LayerFormat::Gzip => Some(Compression::Gzip),
            LayerFormat::Zstd => Some(Compression::Zstd),
            LayerFormat::Tar => Some(Compression::None),
            LayerFormat::Other => None,
        }
    }

    /// Its name, as users know it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "no compression",
        }
    }
}

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

enum Decoder<W: Write> {
    /// Waiting for enough bytes to read the magic number.
    Sniffing {
        head: Vec<u8>,
        sink: W,
    },
    Gzip(Box<MultiGzDecoder<W>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, W>>),
    Plain(W),
    /// Only while switching from sniffing to a decoder.
    Switching,
}

/// Decompresses into a sink; see the module docs.
pub struct Decompressor<W: Write> {
    decoder: Decoder<W>,
    compression: Option<Compression>,
    taken: u64,
}

impl<W: Write> Decompressor<W> {
    /// A decompressor writing into `sink`, choosing its format from the first bytes.
    pub fn new(sink: W) -> Decompressor<W> {
        Decompressor { decoder: Decoder::Sniffing { head: Vec::with_capacity(4), sink }, compression: None, taken: 0 }
    }

    /// The compression found, once the first bytes have been seen.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// Compressed bytes taken in so far.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// The sink.
    pub fn sink(&self) -> &W {
        match &self.decoder {
            Decoder::Sniffing { sink, .. } | Decoder::Plain(sink) => sink,
            Decoder::Gzip(d) => d.get_ref(),
            Decoder::Zstd(d) => d.get_ref(),
            // Only inside `choose`, which never returns in that state.
            Decoder::Switching => unreachable!("a decoder is always chosen"),
        }
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
        // The one fallible step (zstd's context) comes before the sink is moved.
        let mut zstd_context = match compression {
            Compression::Zstd => Some(zstd::stream::raw::Decoder::new().map_err(|reason| DecompressError {
                compression,
                offset: 0,
                reason,
            })?),
            Compression::Gzip | Compression::None => None,
        };
        let mut replay = Vec::new();
        // `Switching` lasts only until the assignment: nothing in between can fail.
        self.decoder = match std::mem::replace(&mut self.decoder, Decoder::Switching) {
            Decoder::Sniffing { head, sink } => {
                replay = head;
                match (compression, zstd_context.take()) {
                    (Compression::Gzip, _) => Decoder::Gzip(Box::new(MultiGzDecoder::new(sink))),
                    (Compression::Zstd, Some(context)) => {
                        Decoder::Zstd(Box::new(zstd::stream::write::Decoder::with_decoder(sink, context)))
                    }
                    (Compression::Zstd | Compression::None, _) => Decoder::Plain(sink),
                }
            }
            chosen => chosen,
        };
        Ok(replay)
    }

    fn decode(&mut self, input: &[u8]) -> Result<(), DecompressError> {
        let result = match &mut self.decoder {
            Decoder::Gzip(d) => d.write_all(input),
            Decoder::Zstd(d) => d.write_all(input),
            Decoder::Plain(sink) => sink.write_all(input),
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
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Zstd(d) => d.do_finish(),
            Decoder::Plain(sink) => sink.flush(),
            // Chosen just above.
            Decoder::Sniffing { .. } | Decoder::Switching => unreachable!("a decoder was chosen"),
        };
        result.map_err(|reason| self.error(reason))
    }

    fn error(&self, reason: io::Error) -> DecompressError {
        DecompressError { compression: self.compression.unwrap_or(Compression::None), offset: self.taken, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(data, 3).unwrap()
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
}
