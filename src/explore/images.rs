//! Fetching what the whole-image views are made of, and keeping it: configs by digest,
//! and merged filesystems by manifest digest. Both are immutable for their digest, so
//! they are cached by bytes, not by time.
//!
//! Both are reached only through a manifest the registry client has seen the name's
//! repository serve, so a digest shared by names is only shown under names that serve
//! it. Their keys are the registry client's [`ContentKey`]s: with `verify_digests` off,
//! what one name's registry sent is kept for that name alone.
//!
//! A merge stays within budget: it counts entries as each layer's listing arrives and
//! stops at [`merged::MAX_ENTRIES`], dropping what it read, and that refusal is kept by
//! the manifest's content key, so asking again is refused at once. A view too heavy for its cache
//! (over [`MAX_CACHED_MERGED_BYTES`]) is not offered to it, where it would only evict
//! the rest and then itself: the one most recent such view is kept apart instead, so
//! browsing a huge image merges it once, not on every page. Memory for merged views is
//! thus the cache, plus that one view (at most the entry cap's worth of listings).

use std::sync::Arc;

use bytes::Bytes;

use crate::admission::Slots;
use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::error::Error;
use crate::explore::layers::Inspector;
use crate::image::merged::{self, MergedFs};
use crate::layer::listing::Listing;
use crate::manifest::config::{self, ImageConfig};
use crate::manifest::{Descriptor, ImageManifest};
use crate::metrics::in_flight::Work;
use crate::reference::ImageReference;
use crate::registry::{ContentKey, RegistryClient};

/// Memory the cached configs may hold in all.
const MAX_CACHED_CONFIG_BYTES: u64 = 32 * 1024 * 1024;
/// Memory the cached merged views may hold in all, counting the listings they keep
/// alive (which the layer cache may also hold: this errs on the side of less).
pub const MAX_CACHED_MERGED_BYTES: u64 = 256 * 1024 * 1024;
/// Refused merges remembered, by manifest digest: each is an error message.
const MAX_REMEMBERED_REFUSALS: u64 = 4096;
/// Merged views built at once, at most. Each holds its listings and, while they load
/// from the index store, their decoding: a 2 M-entry image peaks near 400 MB, so four
/// render slots merging at once reached 1.6 GiB. Half the default render slots.
pub const MERGES_AT_ONCE: usize = 2;
/// How long a merge waits for its turn before it is a 503.
const MERGE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Layers read at once for one merged view: half the inspector's listing slots, so
/// that one image cannot take them all from other visitors.
pub const LISTINGS_AT_ONCE: usize = 2;

/// One layer's listing arrived during a merge: which layer (numbered from 1, as the
/// image page numbers them), its compressed bytes and its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerRead {
    /// The layer's number, from 1.
    pub layer: u32,
    /// Its blob's bytes, as read (compressed).
    pub bytes: u64,
    /// Its entries.
    pub entries: u64,
}

/// How far a merge under way has come: the layers whose listings have arrived, in the
/// order they arrived. A first visit's page streams a line for each (see
/// `routes::first_merge`).
#[derive(Debug, Default)]
pub struct MergeProgress {
    read: std::sync::Mutex<Vec<LayerRead>>,
}

impl MergeProgress {
    /// The layers read so far, from the `from`th arrival on (arrivals are never taken
    /// back, so a reader keeps its place by counting what it has seen).
    pub fn read_since(&self, from: usize) -> Vec<LayerRead> {
        let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        read.get(from..).unwrap_or_default().to_vec()
    }

    fn arrived(&self, layer: LayerRead) {
        self.read.lock().unwrap_or_else(|e| e.into_inner()).push(layer);
    }
}

/// An image config as fetched: its bytes (for the raw view) and what they say.
pub struct FetchedConfig {
    /// The blob's bytes.
    pub raw: Bytes,
    /// Parsed.
    pub config: ImageConfig,
}

/// Loads and caches the whole-image views' inputs; one per process.
pub struct ImageLoader {
    configs: moka::future::Cache<ContentKey, Arc<FetchedConfig>>,
    merged: moka::future::Cache<ContentKey, Arc<MergedFs>>,
    /// The most recent merged view too heavy for `merged`; see the module docs.
    oversize: std::sync::Mutex<Option<(ContentKey, Arc<MergedFs>)>>,
    /// Merges refused for being beyond a limit, by the manifest's content key.
    refused: moka::future::Cache<ContentKey, Error>,
    /// Turns to build a merged view; see [`MERGES_AT_ONCE`].
    merging: Slots,
    /// The merges under way, by the manifest's content key, with how far each has come.
    progress: std::sync::Mutex<std::collections::HashMap<ContentKey, Arc<MergeProgress>>>,
}

impl Default for ImageLoader {
    fn default() -> Self {
        ImageLoader {
            configs: moka::future::Cache::builder()
                .max_capacity(MAX_CACHED_CONFIG_BYTES)
                .weigher(|_, c: &Arc<FetchedConfig>| u32::try_from(c.raw.len() * 3).unwrap_or(u32::MAX))
                .build(),
            merged: moka::future::Cache::builder()
                .max_capacity(MAX_CACHED_MERGED_BYTES)
                .weigher(|_, m: &Arc<MergedFs>| u32::try_from(view_weight(m)).unwrap_or(u32::MAX))
                .build(),
            oversize: std::sync::Mutex::new(None),
            refused: moka::future::Cache::builder().max_capacity(MAX_REMEMBERED_REFUSALS).build(),
            merging: Slots::new(
                MERGES_AT_ONCE,
                "merges",
                format!("layerpipe is merging its limit of {MERGES_AT_ONCE} images at once; try again shortly"),
            ),
            progress: std::sync::Mutex::default(),
        }
    }
}

impl ImageLoader {
    /// The config `descriptor` names, in `image`'s repository; from the descriptor itself
    /// when it carries it (schema 1, whose config is made from the manifest). The
    /// descriptor must come from a manifest fetched for `image`.
    pub async fn config(
        &self,
        registry: &RegistryClient,
        image: &ImageReference,
        descriptor: &Descriptor,
    ) -> Result<Arc<FetchedConfig>, Error> {
        let fetch = async {
            let raw = match &descriptor.data {
                Some(data) => data.clone(),
                None => {
                    registry.small_blob(image, &descriptor.digest, config::MAX_SIZE as usize, "image config").await?
                }
            };
            let config = config::parse(&raw).map_err(Error::bad_gateway)?;
            Ok::<_, Error>(Arc::new(FetchedConfig { raw, config }))
        };
        let key = registry.content_key(image, &descriptor.digest);
        self.configs.try_get_with(key, fetch).await.map_err(|e| Error::clone(&e))
    }

    /// Why the merged view of the manifest `key` names was refused, when it was: cheap,
    /// so a page can ask before it takes a slot. The key is the registry client's
    /// [`RegistryClient::content_key`] for the manifest.
    pub async fn refusal(&self, key: &ContentKey) -> Option<Error> {
        self.refused.get(key).await
    }

    /// Whether the merged view of the manifest `key` names is at hand (no layer to read):
    /// a page asks before it decides to stream progress.
    pub fn is_merged(&self, key: &ContentKey) -> bool {
        self.merged.contains_key(key) || self.oversize_view(key).is_some()
    }

    /// How far the merge of the manifest `key` names has come, while one is under way.
    pub fn progress(&self, key: &ContentKey) -> Option<Arc<MergeProgress>> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    /// The merged filesystem of the image manifest `manifest_digest` names: every
    /// layer's listing (from its index where there is one), read a few at a time, and
    /// refused past [`merged::MAX_ENTRIES`] entries. The manifest must be one fetched
    /// for `image`.
    pub async fn merged(
        &self,
        registry: &Arc<RegistryClient>,
        inspector: &Arc<Inspector>,
        image: &ImageReference,
        manifest_digest: &Digest,
        manifest: &ImageManifest,
    ) -> Result<Arc<MergedFs>, Error> {
        let key = registry.content_key(image, manifest_digest);
        if let Some(refused) = self.refusal(&key).await {
            return Err(refused);
        }
        if let Some(view) = self.oversize_view(&key) {
            return Ok(view);
        }
        let build = async {
            // Requests for the same view wait on this one build, not for turns of their own.
            let _turn = self.merging.take_within(MERGE_WAIT).await?;
            let _merging = registry.metrics().in_flight(Work::Merge);
            let progress = Arc::new(MergeProgress::default());
            let _shown = Shown::new(&self.progress, key.clone(), progress.clone());
            let listings = match listings(inspector, image, manifest, &progress).await {
                Err(Listings::Refused(e)) => {
                    self.refused.insert(key.clone(), e.clone()).await;
                    return Err(e);
                }
                Err(Listings::Failed(e)) => return Err(e),
                Ok(listings) => listings,
            };
            let merged = tokio::task::spawn_blocking(move || MergedFs::new(listings))
                .await
                .map_err(|_| Error::bad_gateway("merging the layers failed"))??;
            let merged = Arc::new(merged);
            if view_weight(&merged) > MAX_CACHED_MERGED_BYTES {
                let mut oversize = self.oversize.lock().unwrap_or_else(|e| e.into_inner());
                *oversize = Some((key.clone(), merged.clone()));
            }
            Ok(merged)
        };
        // The cache never admits a view heavier than itself; `oversize` keeps that one.
        self.merged.try_get_with(key.clone(), build).await.map_err(|e| Error::clone(&e))
    }

    fn oversize_view(&self, key: &ContentKey) -> Option<Arc<MergedFs>> {
        let oversize = self.oversize.lock().unwrap_or_else(|e| e.into_inner());
        oversize.as_ref().filter(|(k, _)| k == key).map(|(_, view)| view.clone())
    }
}

/// A merge's progress, shown under its key while the merge runs: taken away when the
/// merge ends however it ends (done, failed, or dropped with a client gone).
struct Shown<'a> {
    map: &'a std::sync::Mutex<std::collections::HashMap<ContentKey, Arc<MergeProgress>>>,
    key: ContentKey,
}

impl<'a> Shown<'a> {
    fn new(
        map: &'a std::sync::Mutex<std::collections::HashMap<ContentKey, Arc<MergeProgress>>>,
        key: ContentKey,
        progress: Arc<MergeProgress>,
    ) -> Shown<'a> {
        map.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone(), progress);
        Shown { map, key }
    }
}

impl Drop for Shown<'_> {
    fn drop(&mut self) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
    }
}

/// Bytes a merged view holds, counting the listings it keeps alive (which the layer
/// cache may also hold: this errs on the side of less).
fn view_weight(view: &MergedFs) -> u64 {
    let listings = view.layers().iter().map(|l| l.weight() as u64).fold(0, u64::saturating_add);
    listings.saturating_add(view.weight() as u64)
}

/// Each layer's link, as the image page numbers them (from 1).
pub fn layer_links(image: &ImageReference, manifest: &ImageManifest) -> Vec<DownloadLink> {
    manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| DownloadLink {
            image: image.clone(),
            digest: layer.digest.clone(),
            layer: i as u32 + 1,
            media_type: layer.media_type.clone(),
        })
        .collect()
}

/// Why the listings of a merge were not all read.
enum Listings {
    /// The layers hold more entries than a merged view takes: remembered.
    Refused(Error),
    /// A layer could not be read: not remembered, it may work next time.
    Failed(Error),
}

/// Every layer's listing, in order, at most [`LISTINGS_AT_ONCE`] read at a time;
/// refused as soon as those read hold more than [`merged::MAX_ENTRIES`] entries.
async fn listings(
    inspector: &Arc<Inspector>,
    image: &ImageReference,
    manifest: &ImageManifest,
    progress: &MergeProgress,
) -> Result<Vec<Arc<Listing>>, Listings> {
    let links = layer_links(image, manifest);
    let mut out: Vec<Option<Arc<Listing>>> = vec![None; links.len()];
    let mut pending = links.into_iter().enumerate();
    let (mut entries, mut read) = (0usize, 0usize);
    // Dropping the set (a failed layer, a refusal, a client gone) aborts the other reads.
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < LISTINGS_AT_ONCE {
            let Some((i, link)) = pending.next() else { break };
            let inspector = inspector.clone();
            running.spawn(async move { (i, inspector.listing(&link).await) });
        }
        let Some(joined) = running.join_next().await else { break };
        let (i, listing) =
            joined.map_err(|_| Listings::Failed(Error::bad_gateway("reading a layer's listing failed")))?;
        let listing = listing.map_err(Listings::Failed)?;
        entries = entries.saturating_add(listing.len());
        read += 1;
        if entries > merged::MAX_ENTRIES {
            return Err(Listings::Refused(merged::too_many_entries(entries, read)));
        }
        let (layer, bytes) = (i as u32 + 1, listing.summary.compressed_bytes);
        progress.arrived(LayerRead { layer, bytes, entries: listing.len() as u64 });
        out[i] = Some(listing);
    }
    Ok(out.into_iter().flatten().collect())
}
