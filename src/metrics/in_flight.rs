//! Gauges of long work in flight: each is a guard that counts itself in when made and
//! out when dropped, so an early return or a panic cannot leave a gauge off by one.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::Metrics;

/// Kinds of long work, the `layerpipe_*_in_flight` gauges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// A layer read from its start for its listing and index.
    Listing = 0,
    /// An image's layers merged into one filesystem.
    Merge = 1,
    /// A page rendered (or a merge read) in a render slot.
    Render = 2,
}

impl Work {
    /// Every kind, in gauge order.
    pub(super) const ALL: [Work; 3] = [Work::Listing, Work::Merge, Work::Render];

    /// The gauge's name.
    pub(super) fn gauge(self) -> (&'static str, &'static str) {
        match self {
            Work::Listing => ("layerpipe_listings_in_flight", "Layers being read from their start for a listing now."),
            Work::Merge => ("layerpipe_merges_in_flight", "Images whose layers are being merged now."),
            Work::Render => ("layerpipe_renders_in_flight", "Render slots held now (pages rendering, merges reading)."),
        }
    }
}

/// One piece of work counted in its gauge until dropped.
pub struct InFlight {
    metrics: Arc<Metrics>,
    work: Work,
}

impl InFlight {
    pub(super) fn start(metrics: &Arc<Metrics>, work: Work) -> InFlight {
        metrics.in_flight[work as usize].fetch_add(1, Relaxed);
        InFlight { metrics: metrics.clone(), work }
    }
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InFlight({:?})", self.work)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.in_flight[self.work as usize].fetch_sub(1, Relaxed);
    }
}
