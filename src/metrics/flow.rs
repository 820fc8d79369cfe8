//! Byte counters that move while bytes flow, without an atomic per frame.
//!
//! A 1 GiB download or layer read must show on `/metrics` while it runs, not only at its
//! end; but the download path is benchmarked against nginx, so a frame only adds to a
//! plain local count, and the shared counters take it every [`FLUSH_BYTES`] and when
//! the flow ends (dropped).

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::registries::RegistryStats;
use super::Metrics;

/// How many bytes a flow gathers before the shared counters take them.
pub const FLUSH_BYTES: u64 = 4 << 20;

/// Which byte counter a flow adds to, besides its registry's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowKind {
    /// `layerpipe_download_bytes_total`.
    Download,
    /// `layerpipe_layer_blob_bytes_total`.
    LayerRead,
}

/// Where one kind of transfer from one registry is counted; a [`Flow`] is made from it
/// where the bytes are read.
#[derive(Clone)]
pub struct FlowSink {
    metrics: Arc<Metrics>,
    registry: Arc<RegistryStats>,
    kind: FlowKind,
}

impl fmt::Debug for FlowSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlowSink({:?})", self.kind)
    }
}

impl FlowSink {
    /// Bytes of `kind` read from `registry` (a host), counted into `metrics`.
    pub fn new(metrics: &Arc<Metrics>, registry: &str, kind: FlowKind) -> FlowSink {
        FlowSink { registry: metrics.registries.get(registry), metrics: metrics.clone(), kind }
    }

    /// A flow counting into this sink from zero.
    pub fn flow(&self) -> Flow {
        Flow { sink: self.clone(), pending: 0, total: 0 }
    }

    fn take(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        match self.kind {
            FlowKind::Download => self.metrics.download_bytes.fetch_add(bytes, Relaxed),
            FlowKind::LayerRead => self.metrics.layer_blob_bytes.fetch_add(bytes, Relaxed),
        };
        self.registry.add_bytes(bytes);
    }
}

/// One transfer's bytes: counted locally, flushed every [`FLUSH_BYTES`] and when dropped.
pub struct Flow {
    sink: FlowSink,
    pending: u64,
    total: u64,
}

impl Flow {
    /// `bytes` more went by.
    #[inline]
    pub fn add(&mut self, bytes: u64) {
        self.pending += bytes;
        self.total += bytes;
        if self.pending >= FLUSH_BYTES {
            self.flush();
        }
    }

    /// Every byte so far, flushed or not.
    pub fn total(&self) -> u64 {
        self.total
    }

    fn flush(&mut self) {
        self.sink.take(std::mem::take(&mut self.pending));
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_shows_before_it_ends_and_all_of_it_after() {
        let metrics = Arc::new(Metrics::default());
        let sink = FlowSink::new(&metrics, "r.example", FlowKind::Download);
        let mut flow = sink.flow();
        flow.add(FLUSH_BYTES - 1);
        assert_eq!(metrics.download_bytes.load(Relaxed), 0, "no atomic before a flush's worth");
        flow.add(2);
        assert_eq!(metrics.download_bytes.load(Relaxed), FLUSH_BYTES + 1);
        flow.add(5);
        drop(flow);
        assert_eq!(metrics.download_bytes.load(Relaxed), FLUSH_BYTES + 6);
        assert_eq!(metrics.registries.get("r.example").bytes.load(Relaxed), FLUSH_BYTES + 6);
        assert_eq!(metrics.layer_blob_bytes.load(Relaxed), 0);
    }
}
