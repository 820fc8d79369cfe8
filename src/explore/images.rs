//! Fetching what the whole-image views are made of, and keeping it: configs by digest,
//! and merged filesystems by manifest digest. Both are immutable for their digest, so
//! they are cached by bytes, not by time.
//!
//! Both are reached only through a manifest the registry client has seen the name's
//! repository serve, so a digest shared by names is only shown under names that serve
//! it. Their keys are the registry client's [`ContentKey`]s: with `verify_digests` off,
//! what one name's registry sent is kept for that name alone.

use std::sync::Arc;

use bytes::Bytes;

use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::error::Error;
use crate::explore::layers::Inspector;
use crate::image::merged::MergedFs;
use crate::layer::listing::Listing;
use crate::manifest::config::{self, ImageConfig};
use crate::manifest::{Descriptor, ImageManifest};
use crate::reference::ImageReference;
use crate::registry::{ContentKey, RegistryClient};

/// Memory the cached configs may hold in all.
const MAX_CACHED_CONFIG_BYTES: u64 = 32 * 1024 * 1024;
/// Memory the cached merged views may hold in all, counting the listings they keep
/// alive (which the layer cache may also hold: this errs on the side of less).
pub const MAX_CACHED_MERGED_BYTES: u64 = 256 * 1024 * 1024;
/// Layers read at once for one merged view: half the inspector's listing slots, so
/// that one image cannot take them all from other visitors.
pub const LISTINGS_AT_ONCE: usize = 2;

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
                .weigher(|_, m: &Arc<MergedFs>| {
                    let listings: usize = m.layers().iter().map(|l| l.weight()).sum();
                    u32::try_from(m.weight() + listings).unwrap_or(u32::MAX)
                })
                .build(),
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

    /// The merged filesystem of the image manifest `manifest_digest` names: every
    /// layer's listing (from its index where there is one), read a few at a time. The
    /// manifest must be one fetched for `image`.
    pub async fn merged(
        &self,
        registry: &Arc<RegistryClient>,
        inspector: &Arc<Inspector>,
        image: &ImageReference,
        manifest_digest: &Digest,
        manifest: &ImageManifest,
    ) -> Result<Arc<MergedFs>, Error> {
        let build = async {
            let listings = listings(registry, inspector, image, manifest).await?;
            let merged = tokio::task::spawn_blocking(move || MergedFs::new(listings))
                .await
                .map_err(|_| Error::bad_gateway("merging the layers failed"))?;
            merged.map(Arc::new).map_err(Error::bad_gateway)
        };
        let key = registry.content_key(image, manifest_digest);
        self.merged.try_get_with(key, build).await.map_err(|e| Error::clone(&e))
    }
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

/// Every layer's listing, in order, at most [`LISTINGS_AT_ONCE`] read at a time.
async fn listings(
    registry: &Arc<RegistryClient>,
    inspector: &Arc<Inspector>,
    image: &ImageReference,
    manifest: &ImageManifest,
) -> Result<Vec<Arc<Listing>>, Error> {
    let links = layer_links(image, manifest);
    let mut out: Vec<Option<Arc<Listing>>> = vec![None; links.len()];
    let mut pending = links.into_iter().enumerate();
    // Dropping the set (a failed layer, a client gone) aborts the other reads.
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < LISTINGS_AT_ONCE {
            let Some((i, link)) = pending.next() else { break };
            let (registry, inspector) = (registry.clone(), inspector.clone());
            running.spawn(async move { (i, inspector.listing(&registry, &link).await) });
        }
        let Some(joined) = running.join_next().await else { break };
        let (i, listing) = joined.map_err(|_| Error::bad_gateway("reading a layer's listing failed"))?;
        out[i] = Some(listing?);
    }
    Ok(out.into_iter().flatten().collect())
}
