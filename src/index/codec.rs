//! A layer index as bytes, for the store: a versioned header, the fields in a fixed
//! little-endian layout, and a SHA-256 of everything before it at the end, so that a
//! truncated or damaged file is found out and never trusted.
//!
//! A file is decoded as it is read, never whole in memory: a million-entry index is
//! ~60 MB of file, and several merges load indexes at once. The checksum covers every
//! byte but its own 32, so `Checked` hashes what passes through it and holds back the
//! last 32 bytes seen; a damaged file's listing is built and then thrown away.
//!
//! Entries are stored as the tar reader saw them (raw name where cleaning changed it,
//! type flag, size, offsets…) and replayed through [`ListingBuilder`] on load, so a
//! loaded listing is built by the same code, to the same limits, as a fresh one.

use std::io::{BufReader, Read};
use std::sync::Arc;

use crate::digest::{Algorithm, Digest, Hasher};
use crate::layer::decompress::{Compression, ResumePoint};
use crate::layer::entry::Kind;
use crate::layer::listing::{Listing, ListingBuilder, Summary};
use crate::layer::tar::{Header, TypeFlag, Visitor};

use super::LayerIndex;

/// The first bytes of an index file; the digit is the format's version.
const MAGIC: &[u8; 8] = b"LPINDEX1";
/// The checksum's length.
const SUM: usize = 32;

/// The index as bytes.
pub fn encode(index: &LayerIndex) -> Vec<u8> {
    let listing = &index.listing;
    let mut w = Writer(Vec::with_capacity(index.weight() / 2 + 1024));
    w.0.extend_from_slice(MAGIC);
    w.bytes(index.digest.as_str().as_bytes());
    w.bytes(index.origin.as_bytes());
    w.u8(u8::from(index.verified));
    let s = &listing.summary;
    w.u8(match s.compression {
        None => 0,
        Some(Compression::None) => 1,
        Some(Compression::Gzip) => 2,
        Some(Compression::Zstd) => 3,
    });
    w.u64(s.compressed_bytes);
    w.u64(s.tar_bytes);
    w.bytes(s.stopped.as_deref().unwrap_or("").as_bytes());
    w.u64(listing.len() as u64);
    for e in listing.entries() {
        w.bytes(e.raw_name().unwrap_or(e.path()));
        w.bytes(e.link());
        w.u8(flag(e.entry.kind));
        w.u64(e.entry.size);
        w.u32(e.entry.mode);
        w.u32(e.entry.uid);
        w.u32(e.entry.gid);
        w.u64(e.entry.mtime as u64);
        w.u32(e.entry.device.0);
        w.u32(e.entry.device.1);
        let (offset, data_offset) = listing.offsets(e.index);
        w.u64(offset);
        w.u64(data_offset);
    }
    w.u64(index.points.len() as u64);
    for p in &index.points {
        w.u64(p.compressed);
        w.u8(p.bits);
        w.u64(p.tar);
        w.bytes(&p.window);
    }
    w.u64(index.marks.len() as u64);
    for &(compressed, tar) in &index.marks {
        w.u64(compressed);
        w.u64(tar);
    }
    let sum = Digest::of(Algorithm::Sha256, &w.0);
    let sum = hex_bytes(sum.hex());
    w.0.extend_from_slice(&sum);
    w.0
}

/// The index `input` holds (a file, or bytes), or why it cannot be trusted.
pub fn decode(input: impl Read) -> Result<LayerIndex, String> {
    let mut r = Reader { input: BufReader::with_capacity(64 << 10, Checked::new(input)), buf: Vec::new() };
    if r.take(MAGIC.len()).map_err(|_| "not a layerpipe index of this version")? != MAGIC {
        return Err("not a layerpipe index of this version".into());
    }
    let index = decode_body(&mut r)?;
    let checked = r.finish()?;
    if !checked {
        return Err("its checksum does not match (truncated or damaged)".into());
    }
    Ok(index)
}

/// Everything between the magic and the checksum.
fn decode_body<R: Read>(r: &mut Reader<R>) -> Result<LayerIndex, String> {
    let digest: Digest = text(r.bytes()?)?.parse().map_err(|e| format!("bad digest: {e}"))?;
    let origin = text(r.bytes()?)?.to_owned();

    let verified = r.u8()? != 0;
    let compression = match r.u8()? {
        0 => None,
        1 => Some(Compression::None),
        2 => Some(Compression::Gzip),
        3 => Some(Compression::Zstd),
        other => return Err(format!("unknown compression {other}")),
    };
    let compressed_bytes = r.u64()?;
    let tar_bytes = r.u64()?;
    let stopped = Some(text(r.bytes()?)?.to_owned()).filter(|s| !s.is_empty());
    let mut builder = ListingBuilder::default();
    for _ in 0..r.u64()? {
        let header = Header {
            path: r.bytes()?.to_vec(),
            link: r.bytes()?.to_vec(),
            kind: TypeFlag::from_byte(r.u8()?),
            size: r.u64()?,
            mode: r.u32()?,
            uid: u64::from(r.u32()?),
            gid: u64::from(r.u32()?),
            mtime: r.u64()? as i64,
            dev_major: r.u32()?,
            dev_minor: r.u32()?,
            offset: r.u64()?,
            data_offset: r.u64()?,
        };
        builder.entry(header);
    }
    let count = r.u64()?;
    let mut points = Vec::with_capacity(usize::try_from(count.min(1 << 20)).unwrap_or(0));
    for _ in 0..count {
        let (compressed, bits, tar) = (r.u64()?, r.u8()?, r.u64()?);
        points.push(ResumePoint { compressed, bits, tar, window: r.bytes()?.to_vec() });
    }
    let count = r.u64()?;
    let mut marks = Vec::with_capacity(usize::try_from(count.min(1 << 20)).unwrap_or(0));
    for _ in 0..count {
        marks.push((r.u64()?, r.u64()?));
    }
    let summary = Summary { compression, compressed_bytes, tar_bytes, stopped };
    let listing: Listing = builder.finish(summary);
    Ok(LayerIndex { digest, listing: Arc::new(listing), points, marks, verified, origin })
}

/// The tar type flag that gives `kind` back when replayed.
fn flag(kind: Kind) -> u8 {
    match kind {
        // Whiteouts and opaque markers are told by their names, whatever their flag.
        Kind::File | Kind::Whiteout | Kind::Opaque => b'0',
        Kind::HardLink => b'1',
        Kind::Symlink => b'2',
        Kind::CharDevice => b'3',
        Kind::BlockDevice => b'4',
        Kind::Dir => b'5',
        Kind::Fifo => b'6',
        Kind::Sparse => b'S',
        Kind::Other(b) => b,
    }
}

fn text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| "text that is not UTF-8".to_owned())
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect()
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(&b[..b.len().min(u32::MAX as usize)]);
    }
}

/// Reads the fields of an index as they come.
struct Reader<R> {
    input: BufReader<Checked<R>>,
    /// The last field read.
    buf: Vec<u8>,
}

impl<R: Read> Reader<R> {
    /// The next `n` bytes. Read through `take`, so that a damaged length allocates no
    /// more than the file holds.
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        self.buf.clear();
        let got = (&mut self.input).take(n as u64).read_to_end(&mut self.buf).map_err(|e| e.to_string())?;
        if got < n {
            return Err("the index ends early".into());
        }
        Ok(&self.buf)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        self.input.read_exact(&mut out).map_err(|_| "the index ends early".to_owned())?;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<&[u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// After the last field: whether what follows is exactly the checksum of everything
    /// before it. Bytes left over after the index are an error.
    fn finish(mut self) -> Result<bool, String> {
        let mut rest = Vec::with_capacity(SUM);
        self.input.read_to_end(&mut rest).map_err(|e| e.to_string())?;
        match rest.len() {
            n if n < SUM => Err("the index ends early".into()),
            n if n > SUM => Err("bytes left over after the index".into()),
            _ => Ok(self.input.into_inner().sum() == rest),
        }
    }
}

/// A reader that hashes every byte through it but the last [`SUM`], which it holds
/// back: at the end, they are the checksum, and the hash is of everything before them.
struct Checked<R> {
    inner: R,
    hasher: Hasher,
    /// The last bytes seen, not yet hashed; at most `SUM`.
    held: Vec<u8>,
}

impl<R> Checked<R> {
    fn new(inner: R) -> Checked<R> {
        Checked { inner, hasher: Hasher::new(Algorithm::Sha256), held: Vec::with_capacity(2 * SUM) }
    }

    /// Once the input has ended: the hash of all but its last `SUM` bytes, as bytes.
    fn sum(self) -> Vec<u8> {
        hex_bytes(self.hasher.finish().hex())
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        let hasher = &mut self.hasher;
        let seen = &out[..n];
        // Of held + seen, all but the last SUM bytes are hashed now.
        let total = self.held.len() + n;
        let hash_now = total.saturating_sub(SUM);
        let from_held = hash_now.min(self.held.len());
        hasher.update(&self.held[..from_held]);
        hasher.update(&seen[..hash_now - from_held]);
        self.held.drain(..from_held);
        self.held.extend_from_slice(&seen[hash_now - from_held..]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::listing::Lookup;

    /// Owner, mode and time away from the defaults, to see them round-trip.
    fn header(path: &str, kind: TypeFlag, size: u64, link: &str, offset: u64) -> Header {
        Header {
            mode: 0o755,
            uid: 1000,
            gid: 1000,
            mtime: 1_700_000_000,
            ..Header::sample(path, kind, size, link, offset)
        }
    }

    fn sample() -> LayerIndex {
        let mut b = ListingBuilder::default();
        let headers = [
            header("./etc/", TypeFlag::Dir, 0, "", 0),
            header("./etc/motd", TypeFlag::File, 10, "", 512),
            header("./etc/.wh.issue", TypeFlag::File, 0, "", 1536),
            header("./bin/sh", TypeFlag::Symlink, 0, "dash", 2048),
            header("/abs", TypeFlag::File, 5, "", 2560),
            header("./var/.wh..wh..opq", TypeFlag::File, 0, "", 3584),
        ];
        for h in headers {
            b.entry(h);
        }
        let summary = Summary {
            compression: Some(Compression::Gzip),
            compressed_bytes: 999,
            tar_bytes: 10240,
            stopped: Some("Reading stopped: test.".into()),
        };
        LayerIndex {
            digest: Digest::of(Algorithm::Sha256, b"blob"),
            listing: Arc::new(b.finish(summary)),
            points: vec![
                ResumePoint { compressed: 10, bits: 0, tar: 0, window: vec![] },
                ResumePoint { compressed: 500, bits: 3, tar: 2048, window: vec![1, 2, 3] },
            ],
            marks: vec![(10, 0), (300, 1000), (500, 2048)],
            verified: true,
            origin: "127.0.0.1:5000/team/app".into(),
        }
    }

    #[test]
    fn an_index_round_trips() {
        let index = sample();
        let back = decode(&encode(&index)[..]).unwrap();
        assert_eq!(back.digest, index.digest);
        assert_eq!(back.points, index.points);
        assert_eq!(back.marks, index.marks);
        assert_eq!((back.verified, &back.origin), (true, &index.origin));
        let (a, b) = (&index.listing, &back.listing);
        assert_eq!(a.len(), b.len());
        for (x, y) in a.entries().zip(b.entries()) {
            assert_eq!((x.path(), x.link(), x.raw_name()), (y.path(), y.link(), y.raw_name()));
            assert_eq!(format!("{:?}", x.entry), format!("{:?}", y.entry));
            assert_eq!(a.offsets(x.index), b.offsets(y.index));
        }
        assert_eq!(format!("{:?}", a.summary), format!("{:?}", b.summary));
        assert!(matches!(b.lookup(b"etc/.wh.issue"), Lookup::Entry(e) if e.entry.kind == Kind::Whiteout));
        assert!(b.is_opaque(b"var"));
    }

    #[test]
    fn damaged_or_truncated_bytes_are_refused() {
        let bytes = encode(&sample());
        for cut in [0, 7, 8, 40, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in [0, 9, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad[..]).is_err(), "flipped byte {at}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer[..]).is_err(), "a byte after the checksum");
    }

    /// Reads of every size from 1 to 70 bytes, so that fields and the checksum straddle
    /// reads wherever they can.
    struct Dribble<'a>(&'a [u8], usize);

    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            self.1 = self.1 % 70 + 1;
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn an_index_read_in_pieces_is_checked_as_one_read_whole() {
        let bytes = encode(&sample());
        for start in 0..70 {
            let back = decode(Dribble(&bytes, start)).unwrap();
            assert_eq!(back.listing.len(), sample().listing.len());
        }
        for at in [9, bytes.len() / 2, bytes.len() - SUM - 1, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            assert!(decode(Dribble(&bad, 3)).is_err(), "flipped byte {at}");
        }
    }
}
