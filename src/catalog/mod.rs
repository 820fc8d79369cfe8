//! The catalog: every layer layerpipe has listed (its entries by name) and every image it
//! has shown (its layers in order, its tags), kept across restarts and across images, so
//! that one search can ask all of them which ship a name, and what became of it.
//!
//! One interface, [`Store`], with two backends: SQLite ([`sqlite`], the default, a file
//! beside the layer indexes) and PostgreSQL ([`postgres`], for replicas sharing one
//! catalog). Each keeps its schema versioned ([`schema`]). Names are found through a
//! trigram index (FTS5's trigram tokenizer, pg_trgm), then checked against the search
//! exactly as the per-layer search checks them ([`crate::image::search::Search`]), so
//! both backends answer alike.
//!
//! Requests never wait for the database to write: [`Catalog`] hands what was seen to a
//! writer thread through a bounded queue, and drops it (to be recorded the next time it
//! is seen) when the queue is full. Reads run on a few reader threads of their own.
//! Known gap: nothing is ever evicted; docs/catalog.md says how to size and clear it.

pub mod fate;
mod held;
pub mod postgres;
pub mod schema;
pub mod search;
mod service;
pub mod sqlite;

use std::borrow::Cow;

use crate::config::CatalogUrl;
use crate::layer::entry::Kind;

pub use crate::secrets::{LayerSecrets, SecretRow};
pub use service::Catalog;

/// A backend's failure, as a sentence (never with a password: drivers do not print one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError(format!("SQLite: {e}"))
    }
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> StoreError {
        StoreError(format!("PostgreSQL: {e}"))
    }
}

/// A layer as a page saw it: which blob, in which repository, and how its listing went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSeen {
    /// `sha256:…`.
    pub digest: String,
    /// Its compressed size, as read.
    pub size: u64,
    /// Its media type, as the manifest gave it.
    pub media_type: String,
    /// Where it was read from: the registry host, as references name it.
    pub registry: String,
    /// The repository on that registry.
    pub repository: String,
    /// The image reference the page named it by (its links are made from it).
    pub image: String,
    /// Its number in that image, from 1.
    pub layer: u32,
    /// Whether the listing has every entry (it stops at its limits, with a note).
    pub complete: bool,
}

/// One entry of a layer, borrowed from its listing.
#[derive(Clone, Copy, Debug)]
pub struct EntryRow<'a> {
    /// Its place in the archive, from 0.
    pub index: u32,
    /// Its clean path in the layer.
    pub path: &'a [u8],
    /// A link's target (empty otherwise).
    pub link: &'a [u8],
    /// Its size (files only).
    pub size: u64,
    /// Permission and special bits.
    pub mode: u32,
    /// What it is, whiteouts included.
    pub kind: Kind,
}

/// One layer of an image, as its manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageLayer {
    /// `sha256:…`.
    pub digest: String,
    /// Its size, from the manifest.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
}

/// An image as a page saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSeen {
    /// The registry host, as references name it.
    pub registry: String,
    /// The repository on it.
    pub repository: String,
    /// The image manifest's digest.
    pub manifest_digest: String,
    /// The tag it was reached by, if any.
    pub tag: Option<String>,
    /// `os/architecture`, when the config was read.
    pub platform: Option<String>,
    /// The config's digest.
    pub config_digest: String,
    /// When it was made, as the config says.
    pub created: Option<String>,
    /// Its layers, base first.
    pub layers: Vec<ImageLayer>,
}

/// An image from the catalog, with its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRow {
    /// The registry host.
    pub registry: String,
    /// The repository.
    pub repository: String,
    /// The image manifest's digest.
    pub manifest_digest: String,
    /// The config's digest.
    pub config_digest: String,
    /// `os/architecture`, if known.
    pub platform: Option<String>,
    /// When it was made, if known.
    pub created: Option<String>,
    /// The tags it has been seen under, sorted.
    pub tags: Vec<String>,
    /// Its layers, base first.
    pub layers: Vec<ImageLayer>,
}

impl ImageRow {
    /// The image pinned by its manifest digest, named by its first tag when it has one;
    /// `None` when the stored names do not make a reference.
    pub fn reference(&self) -> Option<crate::reference::ImageReference> {
        let tag = self.tags.first().map_or(String::new(), |t| format!(":{t}"));
        format!("{}/{}{tag}@{}", self.registry, self.repository, self.manifest_digest).parse().ok()
    }

    /// The media type of its layer `n` (from 1), as its manifest lists it.
    pub fn layer_media_type(&self, n: u32) -> Option<&str> {
        (n as usize).checked_sub(1).and_then(|i| self.layers.get(i)).map(|l| l.media_type.as_str())
    }
}

/// An entry found by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameHit {
    /// Its row: results come in this order, and the next page starts after it.
    pub id: i64,
    /// Its layer's digest.
    pub layer: String,
    /// Its layer's media type.
    pub media_type: String,
    /// Its path's bytes.
    pub path: Vec<u8>,
    /// A link's target, as text.
    pub link: String,
    /// Its size.
    pub size: u64,
    /// Its mode bits.
    pub mode: u32,
    /// What it is.
    pub kind: Kind,
}

/// An entry at a given path in a given layer, for working out fates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRow {
    /// The layer's digest.
    pub layer: String,
    /// The path's bytes.
    pub path: Vec<u8>,
    /// What it is.
    pub kind: Kind,
}

/// Where a layer was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The registry host.
    pub registry: String,
    /// The repository.
    pub repository: String,
    /// The image reference it was last read through.
    pub image: String,
    /// Its number in that image.
    pub layer: u32,
}

/// A layer from the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRow {
    /// `sha256:…`.
    pub digest: String,
    /// Its compressed size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// How many entries it has in the catalog.
    pub entries: u64,
    /// Whether its listing was complete.
    pub complete: bool,
    /// Where it was seen.
    pub sources: Vec<Source>,
}

/// How much the catalog holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Layers.
    pub layers: u64,
    /// Their entries.
    pub entries: u64,
    /// Images.
    pub images: u64,
}

/// What a name search asks the database for: paths that contain `needle` in any case
/// (at their start, when `anchored`). The database narrows by trigram; the caller
/// checks each candidate exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameQuery {
    /// Lowercase, at least [`MIN_NEEDLE_CHARS`] characters.
    pub needle: String,
    /// Paths must start with it.
    pub anchored: bool,
}

/// Fewest characters a search may have: a trigram index cannot narrow fewer.
pub const MIN_NEEDLE_CHARS: usize = 3;

/// One catalog database. Implementations are used from one thread at a time (the
/// writer thread, or one reader thread each).
pub trait Store: Send {
    /// Records `layer`: the layer and its `entries` the first time its digest is seen
    /// (all in one transaction), and its source every time. Answers whether the
    /// entries were written now.
    fn record_layer(
        &mut self,
        layer: &LayerSeen,
        entries: &mut dyn Iterator<Item = EntryRow<'_>>,
    ) -> Result<bool, StoreError>;

    /// Records `image`: its layers in order, its platform and config, and its tag.
    fn record_image(&mut self, image: &ImageSeen) -> Result<(), StoreError>;

    /// Up to `limit` candidates for `query` with ids above `after`, in id order.
    fn find_names(&mut self, query: &NameQuery, after: i64, limit: usize) -> Result<Vec<NameHit>, StoreError>;

    /// Up to `limit` images that ship the layer `digest`, most recently seen first, and
    /// how many there are in all.
    fn images_with_layer(&mut self, digest: &str, limit: usize) -> Result<(Vec<ImageRow>, u64), StoreError>;

    /// The entries of the layers `layers` whose path key is one of `keys`.
    fn entries_at(&mut self, layers: &[String], keys: &[i64]) -> Result<Vec<PathRow>, StoreError>;

    /// The layer `digest`, with where it was seen, if it is in the catalog.
    fn layer(&mut self, digest: &str) -> Result<Option<LayerRow>, StoreError>;

    /// Records the secrets scan of the layer `digest`, once: a second scan of the same
    /// digest is ignored. Answers whether it was written now.
    fn record_secrets(&mut self, digest: &str, secrets: &LayerSecrets) -> Result<bool, StoreError>;

    /// The stored secrets scan of the layer `digest`, if it was scanned.
    fn secrets(&mut self, digest: &str) -> Result<Option<LayerSecrets>, StoreError>;

    /// Up to `limit` stored findings after `after` (a layer digest and a finding's
    /// place in it), in that order, for `/search?secrets=1`.
    fn secret_findings(&mut self, after: Option<&FindingKey>, limit: usize) -> Result<Vec<StoredFinding>, StoreError>;

    /// How much the catalog holds.
    fn totals(&mut self) -> Result<Totals, StoreError>;
}

/// Where a stored finding is in the catalog's order: its layer, and its place there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindingKey {
    /// The layer's digest.
    pub layer: String,
    /// The finding's place in the layer's scan, from 0.
    pub idx: i64,
}

/// One stored finding, with its layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFinding {
    /// Where it is in the catalog's order.
    pub key: FindingKey,
    /// The finding, its value masked.
    pub row: SecretRow,
}

/// Opens the catalog at `url` (migrating its schema), or `None` when it is off.
pub fn open_store(url: &CatalogUrl) -> Result<Option<Box<dyn Store>>, String> {
    Ok(match url {
        CatalogUrl::Off => None,
        CatalogUrl::Sqlite(path) => Some(Box::new(sqlite::SqliteStore::open(path)?)),
        CatalogUrl::Postgres(url) => Some(Box::new(postgres::PostgresStore::open(url.expose())?)),
    })
}

/// The key of a path: 64-bit FNV-1a of its bytes, as a signed integer (both databases'
/// 64-bit type). Lookups by key compare the path too, so a collision costs nothing.
pub fn path_key(path: &[u8]) -> i64 {
    let hash = path.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    hash as i64
}

/// A kind as the catalog stores it.
pub fn kind_name(kind: Kind) -> Cow<'static, str> {
    Cow::Borrowed(match kind {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::HardLink => "hardlink",
        Kind::CharDevice => "char",
        Kind::BlockDevice => "block",
        Kind::Fifo => "fifo",
        Kind::Whiteout => "whiteout",
        Kind::Opaque => "opaque",
        Kind::Sparse => "sparse",
        Kind::Other(flag) => return Cow::Owned(format!("other:{flag}")),
    })
}

/// A stored kind read back; anything unknown is `Other(0)`.
pub fn kind_from(name: &str) -> Kind {
    match name {
        "file" => Kind::File,
        "dir" => Kind::Dir,
        "symlink" => Kind::Symlink,
        "hardlink" => Kind::HardLink,
        "char" => Kind::CharDevice,
        "block" => Kind::BlockDevice,
        "fifo" => Kind::Fifo,
        "whiteout" => Kind::Whiteout,
        "opaque" => Kind::Opaque,
        "sparse" => Kind::Sparse,
        other => Kind::Other(other.strip_prefix("other:").and_then(|n| n.parse().ok()).unwrap_or(0)),
    }
}

/// A path as stored: its text (lossy) and, only when that lost something, its bytes.
fn stored_path(path: &[u8]) -> (Cow<'_, str>, Option<&[u8]>) {
    let text = String::from_utf8_lossy(path);
    let raw = matches!(text, Cow::Owned(_)).then_some(path);
    (text, raw)
}

/// A stored path read back: its bytes when they were kept, else its text.
fn path_bytes(text: String, raw: Option<Vec<u8>>) -> Vec<u8> {
    raw.unwrap_or_else(|| text.into_bytes())
}

/// Seconds since 1970, for `seen_at` columns.
fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `value` clamped into a signed 64-bit column.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in [
            Kind::File,
            Kind::Dir,
            Kind::Symlink,
            Kind::HardLink,
            Kind::CharDevice,
            Kind::BlockDevice,
            Kind::Fifo,
            Kind::Whiteout,
            Kind::Opaque,
            Kind::Sparse,
            Kind::Other(b'X'),
        ] {
            assert_eq!(kind_from(&kind_name(kind)), kind);
        }
    }

    #[test]
    fn paths_keep_their_bytes_only_when_text_loses_them() {
        assert_eq!(stored_path(b"etc/passwd"), ("etc/passwd".into(), None));
        let odd = b"etc/\xffname";
        let (text, raw) = stored_path(odd);
        assert_eq!(text, "etc/\u{fffd}name");
        assert_eq!(raw, Some(&odd[..]));
        assert_ne!(path_key(b"etc/passwd"), path_key(b"etc/passwe"));
    }
}
