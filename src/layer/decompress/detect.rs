//! Which compression a blob uses, read from its first bytes, as Docker and containerd
//! do, rather than believed from its media type: registries hold layers labelled
//! `tar.gzip` that are plain tar. What the media type declares is kept beside it, so a
//! page can say when the two differ.

use crate::manifest::LayerFormat;

/// The first bytes of a gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The first bytes of a zstd frame.
pub(super) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

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
