//! Reading layers for the pages: a layer's listing (cached by blob), the first bytes of
//! one of its files, one file streamed to the client, and the first bytes of a blob
//! that is not a layer.
//!
//! Each reads the blob from the registry with a plain GET (no range: a layer can only
//! be decompressed from its start). Listings and the rest are admitted separately, each
//! up to a fixed number at once with 503 beyond, like downloads: a listing holds up to
//! ~120 MiB and a CPU, a preview or a saved file holds a thread and a connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::listing::{Listing, ListingBuilder, Summary};
use super::preview::{PreviewVisitor, PREVIEW_BYTES};
use super::save::{EntryBody, SaveVisitor, PIECES_IN_FLIGHT};
use super::scan::{scan, ScanError, ScanOptions, Scanned};
use super::tar::Visitor;
use crate::body::Body;
use crate::config::Config;
use crate::download::{content_disposition, DownloadLink};
use crate::error::Error;
use crate::metrics::{Metrics, UpstreamError};
use crate::registry::RegistryClient;
use crate::upstream::UpstreamBody;

/// Memory the cached listings may hold in all, by [`Listing::weight`].
pub const MAX_CACHED_LISTING_BYTES: u64 = 256 * 1024 * 1024;
/// Layers being listed at once at most.
pub const MAX_CONCURRENT_LISTINGS: usize = 4;
/// Previews and saved files being read at once at most.
pub const MAX_CONCURRENT_EXTRACTS: usize = 32;
/// What a client is told to wait when all slots are taken.
const BUSY_RETRY_AFTER_SECS: u32 = 5;

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

/// Which file to save, and as what.
pub struct FileToSave<'a> {
    /// The entry whose bytes are saved (archive order, from 0).
    pub index: usize,
    /// Its size, from its tar header: the response's `Content-Length`.
    pub length: u64,
    /// The name it is saved under (sanitised into `Content-Disposition`).
    pub name: &'a str,
}

/// Reads layers; one per process, shared. See the module docs.
pub struct Inspector {
    listings: moka::future::Cache<String, Arc<Listing>>,
    listing_slots: Arc<Semaphore>,
    extract_slots: Arc<Semaphore>,
    idle_timeout: Duration,
    verify: bool,
    metrics: Arc<Metrics>,
}

impl Inspector {
    /// An inspector with `config`'s idle timeout and digest verification, counting
    /// registry failures into `metrics`.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Inspector {
        Inspector {
            listings: moka::future::Cache::builder()
                .max_capacity(MAX_CACHED_LISTING_BYTES)
                .weigher(|_, listing: &Arc<Listing>| u32::try_from(listing.weight()).unwrap_or(u32::MAX))
                .build(),
            listing_slots: Arc::new(Semaphore::new(MAX_CONCURRENT_LISTINGS)),
            extract_slots: Arc::new(Semaphore::new(MAX_CONCURRENT_EXTRACTS)),
            idle_timeout: config.timeouts.idle_read(),
            verify: config.verify_digests,
            metrics,
        }
    }

    /// The listing of the layer `link` names, from the cache or read now. Requests for a
    /// layer being read wait for that reading rather than start another.
    pub async fn listing(&self, registry: &RegistryClient, link: &DownloadLink) -> Result<Arc<Listing>, Error> {
        // The repository is part of the key: a registry answers for a blob only in a
        // repository that holds it (and, unverified, only for what it sent there).
        let key = format!("{}/{}@{}", link.image.registry(), link.image.repository(), link.digest);
        self.listings.try_get_with(key, self.read_listing(registry, link)).await.map_err(|e| Error::clone(&e))
    }

    async fn read_listing(&self, registry: &RegistryClient, link: &DownloadLink) -> Result<Arc<Listing>, Error> {
        let _slot = take(&self.listing_slots, "layer listings")?;
        let body = self.blob(registry, link).await?;
        let options = ScanOptions { idle_timeout: self.idle_timeout, verify: self.verify.then(|| link.digest.clone()) };
        let scanned = scan(body, ListingBuilder::default(), options).await.map_err(|e| self.scan_error(e))?;
        if let Some(actual) = &scanned.digest {
            if *actual != link.digest {
                self.metrics.digest_mismatch();
                return Err(Error::bad_gateway(format!(
                    "the registry sent a blob whose digest is {actual}, not {}",
                    link.digest
                )));
            }
        }
        let summary = Summary {
            compression: scanned.compression,
            compressed_bytes: scanned.compressed_bytes,
            tar_bytes: scanned.tar_bytes,
            stopped: scanned.problem(),
        };
        Ok(Arc::new(scanned.visitor.finish(summary)))
    }

    /// The first [`PREVIEW_BYTES`] of the entry at `index`; reading stops once it has them.
    pub async fn preview(
        &self,
        registry: &RegistryClient,
        link: &DownloadLink,
        index: usize,
    ) -> Result<Preview, Error> {
        let _slot = take(&self.extract_slots, "file previews and saves")?;
        let scanned = self.scan_for(registry, link, PreviewVisitor::new(index)).await?;
        if !scanned.visitor.complete && scanned.visitor.bytes.len() < PREVIEW_BYTES {
            return Err(Error::bad_gateway(
                scanned.problem().unwrap_or_else(|| "the layer ended before the file did".to_owned()),
            ));
        }
        Ok(Preview { bytes: scanned.visitor.bytes, complete: scanned.visitor.complete })
    }

    /// The response saving `file`: headers now, the bytes as the blob is read. For HEAD,
    /// the headers alone.
    pub async fn save(
        &self,
        registry: &RegistryClient,
        link: &DownloadLink,
        method: &Method,
        file: FileToSave<'_>,
    ) -> Result<Response<Body>, Error> {
        let FileToSave { index, length, name } = file;
        let mut response = Response::new(Body::empty());
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        headers.insert(header::CONTENT_DISPOSITION, content_disposition(name));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if *method == Method::HEAD || length == 0 {
            return Ok(response);
        }
        let slot = take(&self.extract_slots, "file previews and saves")?;
        let body = self.blob(registry, link).await?;
        let (tx, rx) = mpsc::channel(PIECES_IN_FLIGHT);
        let options = ScanOptions { idle_timeout: self.idle_timeout, verify: None };
        let visitor = SaveVisitor::new(index, tx.clone());
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let failure = match scan(body, visitor, options).await {
                Ok(scanned) if scanned.visitor.finished => return,
                // The client went away: nobody to tell.
                Ok(_) if tx.is_closed() => return,
                Ok(scanned) => scanned.problem().unwrap_or_else(|| "the layer ended before the file did".to_owned()),
                Err(e) => {
                    count(&metrics, &e);
                    scan_error_message(&e)
                }
            };
            tracing::warn!(error = %failure, "saving a file from a layer failed");
            let _ = tx.send(Err(failure.into())).await;
        });
        *response.body_mut() = Body::Entry(EntryBody::new(rx, length));
        Ok(response)
    }

    /// The first [`PREVIEW_BYTES`] of a blob, as the registry sends it.
    pub async fn blob_head(&self, registry: &RegistryClient, link: &DownloadLink) -> Result<BlobHead, Error> {
        let _slot = take(&self.extract_slots, "file previews and saves")?;
        let mut body = self.blob(registry, link).await?;
        let mut head = BytesMut::new();
        while head.len() < PREVIEW_BYTES {
            let frame = match tokio::time::timeout(self.idle_timeout, body.frame()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None) => return Ok(BlobHead { bytes: head.freeze(), complete: true }),
                Ok(Some(Err(e))) => return Err(self.scan_error(ScanError::Upstream(e))),
                Err(_) => return Err(self.scan_error(ScanError::Stalled(self.idle_timeout))),
            };
            if let Ok(data) = frame.into_data() {
                head.extend_from_slice(&data[..data.len().min(PREVIEW_BYTES - head.len())]);
            }
        }
        // Exactly PREVIEW_BYTES: whole only if nothing follows.
        let complete = body.is_end_stream();
        Ok(BlobHead { bytes: head.freeze(), complete })
    }

    async fn scan_for<V: Visitor + Send + 'static>(
        &self,
        registry: &RegistryClient,
        link: &DownloadLink,
        visitor: V,
    ) -> Result<Scanned<V>, Error> {
        let body = self.blob(registry, link).await?;
        let options = ScanOptions { idle_timeout: self.idle_timeout, verify: None };
        scan(body, visitor, options).await.map_err(|e| self.scan_error(e))
    }

    /// A registry failure while reading, counted and made the user's error.
    fn scan_error(&self, e: ScanError) -> Error {
        count(&self.metrics, &e);
        match e {
            ScanError::Stalled(_) => Error::gateway_timeout(scan_error_message(&e)),
            ScanError::Upstream(_) | ScanError::Worker(_) => Error::bad_gateway(scan_error_message(&e)),
        }
    }

    /// The whole blob's body.
    async fn blob(&self, registry: &RegistryClient, link: &DownloadLink) -> Result<UpstreamBody, Error> {
        let response = registry.blob(&link.image, &link.digest, &Method::GET, HeaderMap::new()).await?;
        if response.status() != StatusCode::OK {
            return Err(Error::bad_gateway(format!(
                "the registry answered {} to a whole-blob request",
                response.status()
            )));
        }
        Ok(response.into_body())
    }
}

/// A slot from `slots`, or 503 when all are taken.
fn take(slots: &Arc<Semaphore>, what: &str) -> Result<OwnedSemaphorePermit, Error> {
    slots.clone().try_acquire_owned().map_err(|_| {
        Error::service_unavailable(
            format!("layerpipe is busy with its limit of {what}; try again shortly"),
            BUSY_RETRY_AFTER_SECS,
        )
    })
}

fn scan_error_message(e: &ScanError) -> String {
    match e {
        ScanError::Upstream(e) => format!("the registry's stream broke while reading the layer: {e}"),
        ScanError::Stalled(idle) => format!("the registry sent nothing for {} s", idle.as_secs_f64()),
        ScanError::Worker(e) => format!("reading the layer failed: {e}"),
    }
}

/// Counts a scan's registry failure (also after the request is gone, for saves).
fn count(metrics: &Metrics, e: &ScanError) {
    match e {
        ScanError::Upstream(_) => metrics.upstream_error(UpstreamError::StreamBroken),
        ScanError::Stalled(_) => metrics.upstream_error(UpstreamError::Timeout),
        ScanError::Worker(_) => {}
    }
}
