//! The blobs every profile downloads: one pseudo-random pattern, repeated, and every blob
//! a prefix of the repetition. The pattern is made once and kept in memory, so the origin
//! serves any size without copying, and each blob's digest is known before a download
//! starts (one hashing pass over the longest blob gives all of them).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

/// The small blob time-to-first-byte is measured on (and every path warms up with).
pub(super) const TTFB_BLOB_BYTES: u64 = 4096;
/// The pattern the blobs repeat; larger than any buffer on the path, so nothing can
/// tell it is a repetition.
const PATTERN_BYTES: usize = 16 * 1024 * 1024;

/// The blobs the origin serves, by digest.
pub(super) struct Blobs {
    pub(super) pattern: Bytes,
    /// size → `sha256:…`
    pub(super) digests: HashMap<u64, String>,
    /// `sha256:…` → size
    pub(super) sizes: HashMap<String, u64>,
}

impl Blobs {
    pub(super) fn new(sizes: &[u64]) -> Blobs {
        let pattern = pseudo_random(PATTERN_BYTES, 0x6c61_7965_7270_6970);
        let mut sorted = sizes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        // One pass over the longest blob, with the hash of each shorter one taken on the
        // way (they are its prefixes).
        let mut hasher = Sha256::new();
        let mut position = 0u64;
        let mut digests = HashMap::new();
        for &size in &sorted {
            while position < size {
                let (offset, n) = pattern_span(pattern.len(), position, size, usize::MAX);
                hasher.update(&pattern[offset..offset + n]);
                position += n as u64;
            }
            digests.insert(size, format!("sha256:{}", hex(&hasher.clone().finalize())));
        }
        let sizes = digests.iter().map(|(s, d)| (d.clone(), *s)).collect();
        Blobs { pattern, digests, sizes }
    }

    pub(super) fn digest(&self, size: u64) -> &str {
        &self.digests[&size]
    }

    /// Writes the blob of `size` bytes to `path`.
    pub(super) fn write(&self, size: u64, path: &Path) -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut position = 0;
        while position < size {
            let (offset, n) = pattern_span(self.pattern.len(), position, size, usize::MAX);
            std::io::Write::write_all(&mut file, &self.pattern[offset..offset + n])?;
            position += n as u64;
        }
        std::io::Write::flush(&mut file)
    }
}

/// Where in the pattern the bytes at `position` are, and how many to take at once.
pub(super) fn pattern_span(pattern_len: usize, position: u64, size: u64, max: usize) -> (usize, usize) {
    let offset = (position % pattern_len as u64) as usize;
    let left = usize::try_from(size - position).unwrap_or(usize::MAX);
    (offset, (pattern_len - offset).min(left).min(max))
}

pub(super) fn pseudo_random(len: usize, seed: u64) -> Bytes {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
