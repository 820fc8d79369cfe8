//! Reading layers for the pages: a layer's listing, the first bytes of one of its
//! files, one file streamed to the client, and the first bytes of a blob that is not a
//! layer. (About 570 lines, with how bytes are asked for in `layers/reads.rs`: the four
//! reads share one admission and index cache.)
//!
//! The first listing of a layer reads the whole blob and builds its [`LayerIndex`]
//! (kept in memory by digest and, with `index.dir`, on disk). After that, a listing
//! costs no blob request, and a file's preview or bytes cost one `Range` read from the
//! index's nearest resume point ([`crate::index`]).
//!
//! An entry whose header does not check out discredits the whole index: its listing,
//! and with it the entry's number, may be another layer's. The index is dropped and
//! the caller told so ([`ByIndex::Stale`]); it looks the file up by its path in a
//! fresh read of the blob, never reads "entry N" of the blob in its place, which could
//! be another file. The file's kind and size then come from that fresh read too.
//!
//! An index serves another repository (or registry) only once that repository is seen
//! to have the blob (a HEAD with its own token), so one repository's contents never
//! answer for another's. Listings and the rest are admitted separately, each up to a fixed
//! number at once with 503 beyond, like downloads: a listing holds up to ~120 MiB and
//! a CPU, a preview or a saved file holds a thread and a connection.

mod reads;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderMap;
use http::Method;
use http_body::Body as _;
use tokio::sync::{mpsc, oneshot};

use super::read_log::{LayerRead, Reading};
use crate::admission::{Slot, Slots};
use crate::config::Config;
use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::error::Error;
use crate::index::resume::{Expect, Expected};
use crate::index::store::IndexStore;
use crate::index::{LayerIndex, DEFAULT_SPACING};
use crate::layer::decompress::Spacing;
use crate::layer::listing::{Listing, ListingBuilder, Summary};
use crate::layer::preview::{PreviewVisitor, PREVIEW_BYTES};
use crate::layer::save::{EntryBody, Piece, SaveVisitor, PIECES_IN_FLIGHT};
use crate::layer::scan::{scan, MinRate, ScanError, ScanOptions, ScanProgress};
use crate::layer::tar::Visitor;
use crate::metrics::{Metrics, UpstreamError};
use crate::registry::RegistryClient;
use crate::upstream::multipart::{Fetch, Multipart};

/// Memory the cached indexes (listings and resume points) may hold in all, by
/// [`LayerIndex::weight`].
pub const MAX_CACHED_LISTING_BYTES: u64 = 256 * 1024 * 1024;
/// Layers being listed at once at most.
pub const MAX_CONCURRENT_LISTINGS: usize = 4;
/// Previews and saved files being read at once at most.
pub const MAX_CONCURRENT_EXTRACTS: usize = 32;
/// Of those, the slots saves may never take: a save holds its slot while its client
/// reads, so stalled ones (until `timeouts.client_idle_secs`) must not starve previews.
pub const EXTRACTS_KEPT_FOR_PREVIEWS: usize = 8;
/// How long a repository, once seen to have a blob, may be served from its index
/// without asking the registry again.
const ACCESS_TTL: Duration = Duration::from_secs(600);

/// The first bytes of a file.
pub struct Preview {
    /// Up to [`PREVIEW_BYTES`] bytes.
    pub bytes: Vec<u8>,
    /// Whether that is the whole file.
    pub complete: bool,
}

/// The first bytes of a blob.
pub struct BlobHead {
    /// Up to [`PREVIEW_BYTES`] bytes.
    pub bytes: Bytes,
    /// Whether that is the whole blob.
    pub complete: bool,
}

/// Which file to save.
pub struct FileToSave {
    /// The entry whose bytes are saved (archive order, from 0), in the listing of the
    /// index it is saved by.
    pub index: usize,
    /// Its size, from its tar header: the response's `Content-Length`.
    pub length: u64,
}

/// What a read by a layer's index found.
#[derive(Debug)]
pub enum ByIndex<T> {
    /// The entry, where the index said it is.
    Read(T),
    /// The blob does not have the entry where the index said: the index is dropped,
    /// its listing discredited, entry numbers and all. Look the file up by its path
    /// again, in the index the next request reads afresh.
    Stale,
}

/// Reads layers; one per process, shared. See the module docs.
pub struct Inspector {
    indexes: moka::future::Cache<Digest, Arc<LayerIndex>>,
    /// `registry/repository@digest` seen to exist (by reading or a HEAD).
    access: moka::future::Cache<String, ()>,
    store: Option<Arc<IndexStore>>,
    /// Layers being read for their index now, and how far each has come.
    reading: std::sync::Mutex<std::collections::HashMap<Digest, Arc<ScanProgress>>>,
    spacing: Spacing,
    listing_slots: Slots,
    extract_slots: Slots,
    /// Taken by a save besides its extract slot: all but the previews' own.
    save_slots: Slots,
    idle_timeout: Duration,
    min_rate: MinRate,
    verify: bool,
    metrics: Arc<Metrics>,
    registry: Arc<RegistryClient>,
    /// The first read of a big layer splits as a download does, within the same budget.
    multipart: Multipart,
    /// Told of every layer an index answers for (the catalog, src/catalog/).
    observer: Option<Arc<dyn IndexObserver>>,
}

/// Told of every layer an index answers for, and which repository asked. The catalog is
/// one; it is a trait so that this service (below the catalog) never names it.
pub trait IndexObserver: Send + Sync {
    /// `link`'s repository was seen to serve the layer `index` lists. Must not block.
    fn layer_indexed(&self, link: &DownloadLink, index: &LayerIndex);
}

impl Inspector {
    /// An inspector reading through `registry`, with `config`'s idle timeout, digest
    /// verification and index store, splitting whole reads as `multipart` allows,
    /// counting registry failures into `metrics`. A store that cannot be opened is
    /// logged, and indexes are then kept in memory only.
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
        registry: Arc<RegistryClient>,
        multipart: Multipart,
    ) -> Inspector {
        let store = config.index.store_dir().and_then(|dir| match IndexStore::open(dir, config.index.max_bytes) {
            Ok(store) => Some(Arc::new(store)),
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot open the index store; indexes stay in memory");
                None
            }
        });
        Inspector {
            indexes: index_cache(MAX_CACHED_LISTING_BYTES),
            access: moka::future::Cache::builder().max_capacity(100_000).time_to_live(ACCESS_TTL).build(),
            store,
            reading: Default::default(),
            spacing: DEFAULT_SPACING,
            listing_slots: Slots::new(MAX_CONCURRENT_LISTINGS, "listings", busy("layer listings")),
            extract_slots: Slots::new(MAX_CONCURRENT_EXTRACTS, "previews", busy("file previews and saves")),
            save_slots: Slots::new(MAX_CONCURRENT_EXTRACTS - EXTRACTS_KEPT_FOR_PREVIEWS, "saves", busy("file saves")),
            idle_timeout: config.timeouts.idle_read(),
            min_rate: MinRate {
                bytes_per_sec: config.limits.explorer_min_bytes_per_sec as u64,
                window: config.timeouts.explorer_rate_window(),
            },
            verify: config.verify_digests,
            metrics,
            registry,
            multipart,
            observer: None,
        }
    }

    /// The same, telling `observer` of every layer it lists.
    pub fn observed_by(self, observer: Arc<dyn IndexObserver>) -> Inspector {
        Inspector { observer: Some(observer), ..self }
    }

    fn tell(&self, link: &DownloadLink, index: &LayerIndex) {
        if let Some(observer) = &self.observer {
            observer.layer_indexed(link, index);
        }
    }

    /// Whether the index of `digest` is in memory, so that its pages come at once.
    pub fn is_indexed(&self, digest: &Digest) -> bool {
        self.indexes.contains_key(digest)
    }

    /// How far the reading of `digest` for its index has come, while it runs.
    pub fn progress(&self, digest: &Digest) -> Option<Arc<ScanProgress>> {
        self.reading.lock().unwrap_or_else(|e| e.into_inner()).get(digest).cloned()
    }

    /// The listing of the layer `link` names; see [`Inspector::index`].
    pub async fn listing(&self, link: &DownloadLink) -> Result<Arc<Listing>, Error> {
        Ok(self.index(link).await?.listing.clone())
    }

    /// The index of the layer `link` names: from memory, from the store, or read now.
    /// Requests for a layer being read wait for that reading rather than start another.
    pub async fn index(&self, link: &DownloadLink) -> Result<Arc<LayerIndex>, Error> {
        let index = self
            .indexes
            .try_get_with(link.digest.clone(), self.load_or_build(link))
            .await
            .map_err(|e| Error::clone(&e))?;
        if !index.serves(&origin(link)) {
            // Unverified, and read from another repository: read this one's own blob.
            let own = self.build(link).await?;
            self.indexes.insert(link.digest.clone(), own.clone()).await;
            self.tell(link, &own);
            return Ok(own);
        }
        self.check_access(link).await?;
        self.tell(link, &index);
        Ok(index)
    }

    async fn load_or_build(&self, link: &DownloadLink) -> Result<Arc<LayerIndex>, Error> {
        if let Some(store) = self.store.clone() {
            let digest = link.digest.clone();
            if let Ok(Some(index)) = tokio::task::spawn_blocking(move || store.load(&digest)).await {
                return Ok(Arc::new(index));
            }
        }
        self.build(link).await
    }

    /// Reads the whole blob once: its listing, resume points and (with
    /// `verify_digests`) its digest checked. The result is stored before it is used.
    async fn build(&self, link: &DownloadLink) -> Result<Arc<LayerIndex>, Error> {
        let _slot = self.listing_slots.try_take()?;
        let body = self.blob(link).await?;
        let progress = Arc::new(ScanProgress::default());
        progress.total.store(body.size_hint().exact().unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
        let _reading = Reading::start(&self.reading, &link.digest, progress.clone());
        let read = LayerRead::start(&self.metrics, link, body.size_hint().exact());
        let options = ScanOptions {
            verify: self.verify.then(|| link.digest.clone()),
            record: Some(self.spacing),
            progress: Some(progress.clone()),
            ..self.plain(link)
        };
        let scanned = match scan(body, ListingBuilder::default(), options).await {
            Ok(scanned) => scanned,
            Err(e) => return Err(read.failed(&progress, self.scan_error(link, e))),
        };
        self.check_digest(link, &scanned)?;
        let summary = Summary {
            compression: scanned.compression,
            compressed_bytes: scanned.compressed_bytes,
            tar_bytes: scanned.tar_bytes,
            stopped: scanned.problem(),
        };
        let index = Arc::new(LayerIndex {
            digest: link.digest.clone(),
            verified: scanned.digest.is_some(),
            points: scanned.recorded.points,
            marks: scanned.recorded.marks,
            listing: Arc::new(scanned.visitor.finish(summary)),
            origin: origin(link),
        });
        self.access.insert(access_key(link), ()).await;
        let mut index_written = false;
        if let Some(store) = self.store.clone() {
            let saved = index.clone();
            match tokio::task::spawn_blocking(move || store.save(&saved)).await {
                Ok(Ok(())) => index_written = true,
                Ok(Err(e)) => tracing::warn!(digest = %link.digest, error = %e, "cannot store a layer index"),
                Err(e) => tracing::warn!(digest = %link.digest, error = %e, "storing a layer index failed"),
            }
        }
        read.ended(&index, index_written);
        Ok(index)
    }

    /// Makes sure `link`'s repository has the blob before its index answers for it: a
    /// HEAD, with that repository's token, unless seen lately.
    async fn check_access(&self, link: &DownloadLink) -> Result<(), Error> {
        let key = access_key(link);
        if self.access.contains_key(&key) {
            return Ok(());
        }
        let response = self.registry.blob(&link.image, &link.digest, &Method::HEAD, HeaderMap::new()).await?;
        if !response.status().is_success() {
            return Err(Error::bad_gateway(format!(
                "the registry answered {} when asked whether {} has blob {}",
                response.status(),
                link.image.repository(),
                link.digest
            )));
        }
        self.access.insert(key, ()).await;
        Ok(())
    }

    /// Forgets `stale`, an index that promised an entry the blob does not have there;
    /// the next request for the layer reads it afresh. An index that already took its
    /// place (another request found it stale first) is kept.
    async fn drop_index(&self, stale: &Arc<LayerIndex>) {
        let digest = &stale.digest;
        tracing::warn!(%digest, "a layer index did not match its blob; dropping it to read the layer afresh");
        if self.indexes.get(digest).await.is_some_and(|cached| !Arc::ptr_eq(&cached, stale)) {
            return;
        }
        self.indexes.invalidate(digest).await;
        if let Some(store) = self.store.clone() {
            let digest = digest.clone();
            let _ = tokio::task::spawn_blocking(move || store.remove(&digest)).await;
        }
    }

    /// The first [`PREVIEW_BYTES`] of entry `index` of `layer` (the index the caller
    /// found the file in): by a `Range` read from the index's nearest resume point, or,
    /// when the index has no plan for it, from the blob's start, the entry's header
    /// checked either way. [`ByIndex::Stale`] when the blob does not have that entry
    /// there. A read of the whole blob (see `Inspector::whole_read_check`) is checked
    /// against the digest before anything of it is shown: a mismatch is
    /// [`Error::digest_mismatch`].
    pub async fn preview(
        &self,
        link: &DownloadLink,
        layer: &Arc<LayerIndex>,
        index: usize,
    ) -> Result<ByIndex<Preview>, Error> {
        let _slot = self.extract_slots.try_take()?;
        let expected = Expected::entry(&layer.listing, index);
        let plan = layer.plan(index, PREVIEW_BYTES as u64);
        let (body, visitor, options) = match &plan {
            Some(plan) => {
                let (body, options) = self.range_read(link, layer, plan).await?;
                (body, Expect::new(expected, PreviewVisitor::new(0)), options)
            }
            None => {
                let (body, options) = self.whole_read(link).await?;
                (body, Expect::at(index, expected, PreviewVisitor::new(index)), options)
            }
        };
        let scanned = scan(body, visitor, options).await.map_err(|e| self.scan_error(link, e))?;
        self.check_digest(link, &scanned)?;
        if scanned.visitor.mismatch {
            self.drop_index(layer).await;
            return Ok(ByIndex::Stale);
        }
        if plan.is_some() {
            self.metrics.index_read();
        }
        let found = &scanned.visitor.inner;
        if !found.complete && found.bytes.len() < PREVIEW_BYTES {
            return Err(Error::bad_gateway(
                scanned.problem().unwrap_or_else(|| "the layer ended before the file did".to_owned()),
            ));
        }
        let found = scanned.visitor.inner;
        Ok(ByIndex::Read(Preview { bytes: found.bytes, complete: found.complete }))
    }

    /// The body saving `file` of `layer` (the index the caller found it in): it comes
    /// once the file's header in the blob checks out against the index, its bytes as
    /// the blob is read. [`ByIndex::Stale`] when the blob does not have that entry
    /// there; an empty file is an empty body at once. The response around it (headers,
    /// HEAD) is the caller's.
    pub async fn save(
        &self,
        link: &DownloadLink,
        layer: &Arc<LayerIndex>,
        file: FileToSave,
    ) -> Result<ByIndex<EntryBody>, Error> {
        let FileToSave { index, length } = file;
        if length == 0 {
            // Nothing to read: no slot, no request.
            return Ok(ByIndex::Read(EntryBody::new(mpsc::channel(1).1, 0)));
        }
        let save_slot = self.save_slots.try_take()?;
        let slot = (save_slot, self.extract_slots.try_take()?);
        let expected = Expected::entry(&layer.listing, index);
        let (tx, rx) = mpsc::channel(PIECES_IN_FLIGHT);
        let (verdict, checked) = oneshot::channel();
        let plan = layer.plan(index, length);
        let (body, options, at) = match &plan {
            Some(plan) => {
                let (body, options) = self.range_read(link, layer, plan).await?;
                (body, options, None)
            }
            None => {
                let (body, options) = self.whole_read(link).await?;
                (body, options, Some(index))
            }
        };
        let saver = SaveVisitor::new(at.unwrap_or(0), tx.clone());
        let saver = if options.verify.is_some() { saver.holding_last() } else { saver };
        let visitor = Expect::at(at.unwrap_or(0), expected, saver).telling(verdict);
        self.spawn_save(link, body, visitor, options, tx, slot);
        match checked.await {
            Ok(true) => {
                if plan.is_some() {
                    self.metrics.index_read();
                }
                Ok(ByIndex::Read(EntryBody::new(rx, length)))
            }
            Ok(false) => {
                self.drop_index(layer).await;
                Ok(ByIndex::Stale)
            }
            // The read failed before the entry's header: nothing is promised yet, so
            // the failure can still be the answer.
            Err(_) => {
                let mut rx = rx;
                let reason = match rx.recv().await {
                    Some(Err(e)) => e.to_string(),
                    _ => "the layer ended before the file did".to_owned(),
                };
                Err(Error::bad_gateway(reason))
            }
        }
    }

    /// Streams a file to `tx` on a task of its own; a failure ends the body in an error.
    /// With `options.verify`, the read goes on to the blob's end and the file's last
    /// piece (held back by the visitor) is sent only once the digest checks out; a
    /// mismatch ends the body in an error instead, so the client never has the whole file.
    fn spawn_save<V: Visitor + Saving + Send + 'static>(
        &self,
        link: &DownloadLink,
        body: Fetch,
        visitor: V,
        options: ScanOptions,
        tx: mpsc::Sender<Piece>,
        slot: (Slot, Slot),
    ) {
        let (metrics, registry) = (self.metrics.clone(), link.image.registry().to_owned());
        let expected = options.verify.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let read = tokio::select! {
                read = scan(body, visitor, options) => read,
                // A checked read goes on past the file; a client gone makes that moot.
                () = tx.closed(), if expected.is_some() => return,
            };
            let failure = match read {
                Ok(mut scanned) => {
                    if tx.is_closed() || scanned.visitor.mismatched() {
                        // The client went away (nobody to tell), or another read takes over.
                        return;
                    }
                    match (&expected, &scanned.digest) {
                        (Some(expected), Some(actual)) if actual != expected => {
                            metrics.digest_mismatch();
                            Error::digest_mismatch(expected, actual).message().to_owned()
                        }
                        // A checked scan has a digest whenever it read the blob whole.
                        (Some(_), None) if scanned.visitor.finished() => {
                            "the layer could not be read to its end to check the file against its digest".to_owned()
                        }
                        _ if scanned.visitor.finished() => {
                            if let Some(last) = scanned.visitor.take_last() {
                                let _ = tx.send(Ok(last)).await;
                            }
                            return;
                        }
                        _ => scanned.problem().unwrap_or_else(|| "the layer ended before the file did".to_owned()),
                    }
                }
                Err(e) => {
                    count(&metrics, &registry, &e);
                    scan_error_message(&e)
                }
            };
            tracing::warn!(error = %failure, "saving a file from a layer failed");
            let _ = tx.send(Err(failure.into())).await;
        });
    }
}

/// What a save's visitor reports when its read ends.
trait Saving {
    /// The whole file was read (all of it sent but a piece held back).
    fn finished(&self) -> bool;
    /// The piece held back until the blob is checked ([`SaveVisitor::holding_last`]).
    fn take_last(&mut self) -> Option<Bytes>;
    /// The read met another entry than the index promised (another read takes over).
    fn mismatched(&self) -> bool {
        false
    }
}

impl Saving for SaveVisitor {
    fn finished(&self) -> bool {
        self.finished
    }
    fn take_last(&mut self) -> Option<Bytes> {
        SaveVisitor::take_last(self)
    }
}

impl Saving for Expect<SaveVisitor> {
    fn finished(&self) -> bool {
        self.inner.finished
    }
    fn take_last(&mut self) -> Option<Bytes> {
        self.inner.take_last()
    }
    fn mismatched(&self) -> bool {
        self.mismatch
    }
}

/// The memory cache of indexes: at most `max_bytes` of them by [`LayerIndex::weight`]
/// (entries, names, resume points), the least recently used going first.
fn index_cache(max_bytes: u64) -> moka::future::Cache<Digest, Arc<LayerIndex>> {
    moka::future::Cache::builder()
        .max_capacity(max_bytes)
        .weigher(|_, index: &Arc<LayerIndex>| u32::try_from(index.weight()).unwrap_or(u32::MAX))
        .build()
}

/// `registry/repository`, the origin of an index.
fn origin(link: &DownloadLink) -> String {
    format!("{}/{}", link.image.registry(), link.image.repository())
}

/// The key of `link`'s repository having its blob.
fn access_key(link: &DownloadLink) -> String {
    format!("{}@{}", origin(link), link.digest)
}

/// What a request beyond the slots of `what` is told.
fn busy(what: &str) -> String {
    format!("layerpipe is busy with its limit of {what}; try again shortly")
}

fn scan_error_message(e: &ScanError) -> String {
    match e {
        ScanError::Upstream(e) => format!("the registry's stream broke while reading the layer: {e}"),
        ScanError::Stalled(idle) => format!("the registry sent nothing for {} s", idle.as_secs_f64()),
        ScanError::TooSlow(min) => format!(
            "the registry sent the layer slower than {} KiB/s over {} s (limits.explorer_min_bytes_per_sec)",
            min.bytes_per_sec / 1024,
            min.window.as_secs_f64()
        ),
        ScanError::Worker(e) => format!("reading the layer failed: {e}"),
    }
}

/// Counts a scan's registry failure (also after the request is gone, for saves).
fn count(metrics: &Metrics, registry: &str, e: &ScanError) {
    match e {
        ScanError::Upstream(_) => metrics.upstream_error(registry, UpstreamError::StreamBroken),
        ScanError::Stalled(_) | ScanError::TooSlow(_) => metrics.upstream_error(registry, UpstreamError::Timeout),
        ScanError::Worker(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::listing::Summary;
    use crate::layer::tar::{Header, TypeFlag};

    /// An index of blob `n` listing `entries` files.
    fn index(n: u8, entries: usize) -> Arc<LayerIndex> {
        let mut builder = ListingBuilder::default();
        for i in 0..entries {
            builder.entry(Header::sample(&format!("dir/file-{i:07}"), TypeFlag::File, 1, "", i as u64 * 1024));
        }
        let digest: Digest = format!("sha256:{}", format!("{n:02x}").repeat(32)).parse().unwrap();
        Arc::new(LayerIndex {
            digest,
            listing: Arc::new(builder.finish(Summary::default())),
            points: Vec::new(),
            marks: Vec::new(),
            verified: true,
            origin: "r/x".to_owned(),
        })
    }

    #[test]
    fn an_index_weighs_at_least_its_entries() {
        let (small, large) = (index(1, 1_000), index(2, 100_000));
        // An entry, its offsets, its place by size and its name: 56 + 16 + 4 + 16 bytes.
        assert!(large.weight() >= 100_000 * 92, "{}", large.weight());
        assert!(large.weight() > 90 * small.weight(), "{} vs {}", large.weight(), small.weight());
    }

    /// The cache holds at most its bound by weight: indexes of 100,000 entries (~9 MiB
    /// each) in a cache of 20 MiB, where a bound counting indexes (not their entries)
    /// would keep them all.
    #[tokio::test]
    async fn the_cache_is_bounded_by_the_weight_of_its_indexes() {
        let bound = 20 << 20;
        let cache = index_cache(bound);
        let indexes: Vec<_> = (1..=4).map(|n| index(n, 100_000)).collect();
        let weight = indexes[0].weight() as u64;
        assert!(weight > bound / 3 && weight < bound / 2, "{weight}");
        for index in &indexes {
            cache.insert(index.digest.clone(), index.clone()).await;
            cache.run_pending_tasks().await;
        }
        assert!(cache.weighted_size() <= bound, "{} > {bound}", cache.weighted_size());
        assert_eq!(cache.entry_count(), 2, "two of ~{} MiB fit in 20 MiB", weight >> 20);
        // The bound in use is 256 MiB: about 2.8 million entries' worth.
        assert_eq!(MAX_CACHED_LISTING_BYTES, 256 << 20);
    }
}
