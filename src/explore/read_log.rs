//! What an operator sees of a layer read from its start (a first listing, an index
//! build): a log line when it starts and one when it ends, with the layer, its
//! registry, bytes, entries, time and whether its index was written; and the
//! listings-in-flight gauge while it runs. A 1 GiB first read takes minutes: without
//! these, nothing shows it until it ends. Also its entry in the map of reads in
//! progress, for the page that shows how far a read has come.

use std::sync::Arc;
use std::time::Instant;

use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::error::Error;
use crate::index::LayerIndex;
use crate::layer::scan::ScanProgress;
use crate::metrics::in_flight::{InFlight, Work};
use crate::metrics::Metrics;

/// One layer read, logged at its start (when made) and its end.
pub struct LayerRead<'a> {
    link: &'a DownloadLink,
    started: Instant,
    _counted: InFlight,
}

impl<'a> LayerRead<'a> {
    /// Logs that `link`'s layer is read from its start, `size` bytes when the registry
    /// said, and counts it in flight until this is dropped.
    pub fn start(metrics: &Arc<Metrics>, link: &'a DownloadLink, size: Option<u64>) -> LayerRead<'a> {
        tracing::info!(
            digest = %link.digest,
            registry = link.image.registry(),
            size,
            "reading a layer for its listing and index"
        );
        LayerRead { link, started: Instant::now(), _counted: metrics.in_flight(Work::Listing) }
    }

    /// Logs that the read failed with `e` after what `progress` counted; returns `e`.
    pub fn failed(self, progress: &ScanProgress, e: Error) -> Error {
        let (bytes, _, entries) = progress.get();
        tracing::warn!(
            digest = %self.link.digest,
            registry = self.link.image.registry(),
            bytes,
            entries,
            secs = self.started.elapsed().as_secs_f64(),
            reason = e.message(),
            "reading a layer failed"
        );
        e
    }

    /// Logs that the read made `index`, stored on disk or not (`index_written`).
    pub fn ended(self, index: &LayerIndex, index_written: bool) {
        tracing::info!(
            digest = %self.link.digest,
            registry = self.link.image.registry(),
            bytes = index.listing.summary.compressed_bytes,
            tar_bytes = index.listing.summary.tar_bytes,
            entries = index.listing.len(),
            secs = self.started.elapsed().as_secs_f64(),
            index_written,
            "read a layer for its listing and index"
        );
    }
}

/// A layer's entry in the inspector's map of reads in progress (what a page shows of
/// a read under way) for as long as its reading runs.
pub struct Reading<'a> {
    map: &'a std::sync::Mutex<std::collections::HashMap<Digest, Arc<ScanProgress>>>,
    digest: Digest,
}

impl<'a> Reading<'a> {
    /// Puts `progress` in `map` under `digest` until dropped.
    pub fn start(
        map: &'a std::sync::Mutex<std::collections::HashMap<Digest, Arc<ScanProgress>>>,
        digest: &Digest,
        progress: Arc<ScanProgress>,
    ) -> Reading<'a> {
        map.lock().unwrap_or_else(|e| e.into_inner()).insert(digest.clone(), progress);
        Reading { map, digest: digest.clone() }
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.digest);
    }
}
