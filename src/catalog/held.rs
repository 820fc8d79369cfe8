//! How much listing memory the catalog's write queue may keep alive.
//!
//! Danger first: a layer's sighting holds its listing until the writer has inserted
//! every entry, seconds for a big layer. Counted by sightings alone, a burst of big
//! layers kept every listing alive in the queue long after the caches had let them go:
//! eight images of two 1 M-entry layers merged at once held all sixteen (~1.4 GB, the
//! concurrent-merges budget of issue 22). So the queued listings together weigh at most
//! [`MAX_QUEUED_LISTING_BYTES`] ([`Listing::weight`]); past it a sighting is dropped like
//! one that finds the queue full, and the next page that sees the layer offers it again.
//!
//! - One listing is always admitted when none is queued, so a listing heavier than the
//!   budget is still catalogued.
//! - A listing also held by the index cache is counted anyway: this errs on the side of
//!   less memory.

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use crate::layer::listing::Listing;

/// The most listing bytes the write queue keeps alive, by [`Listing::weight`]: about
/// 800,000 entries, so a 1 M-entry listing waits alone. Measured on the concurrent-merges
/// budget (8 images of 2 M entries at once): 1,268 MiB peak with 64 MiB here, 1,427 with
/// 256, 1,506-1,634 with no byte limit.
pub const MAX_QUEUED_LISTING_BYTES: usize = 64 << 20;

/// The bytes of listings queued now, and the most there may be; clones share them.
#[derive(Clone, Debug)]
pub struct ListingBudget {
    held: Arc<AtomicUsize>,
    limit: usize,
}

impl Default for ListingBudget {
    /// [`MAX_QUEUED_LISTING_BYTES`].
    fn default() -> ListingBudget {
        ListingBudget::new(MAX_QUEUED_LISTING_BYTES)
    }
}

impl ListingBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> ListingBudget {
        ListingBudget { held: Arc::default(), limit }
    }

    /// `listing`, counted against the budget until dropped; `None` when it does not fit.
    pub fn hold(&self, listing: Arc<Listing>) -> Option<HeldListing> {
        let weight = listing.weight();
        let admit = |held: usize| held == 0 || held.saturating_add(weight) <= self.limit;
        self.held.fetch_update(Relaxed, Relaxed, |held| admit(held).then_some(held.saturating_add(weight))).ok()?;
        Some(HeldListing { listing, weight, budget: self.held.clone() })
    }
}

/// A listing on its way to the writer, given back to the budget when dropped.
pub struct HeldListing {
    listing: Arc<Listing>,
    weight: usize,
    budget: Arc<AtomicUsize>,
}

impl Deref for HeldListing {
    type Target = Listing;

    fn deref(&self) -> &Listing {
        &self.listing
    }
}

impl Drop for HeldListing {
    fn drop(&mut self) {
        self.budget.fetch_sub(self.weight, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::listing::tests::listing_of;
    use crate::layer::tar::TypeFlag::File;

    fn listing(entries: usize) -> Arc<Listing> {
        Arc::new(listing_of(&vec![("f", File, 1, ""); entries]))
    }

    #[test]
    fn listings_are_held_within_the_budget_and_given_back() {
        let one = listing(1_000);
        let budget = ListingBudget::new(3 * one.weight());
        let held: Vec<_> = (0..3).map(|_| budget.hold(one.clone()).expect("within the budget")).collect();
        assert!(budget.hold(one.clone()).is_none(), "past the budget");
        drop(held);
        assert_eq!(budget.held.load(Relaxed), 0);
        assert!(budget.hold(one).is_some(), "given back when dropped");
    }

    #[test]
    fn a_listing_heavier_than_the_budget_is_admitted_alone() {
        let heavy = listing(1_000);
        let budget = ListingBudget::new(heavy.weight() / 2);
        let alone = budget.hold(heavy.clone()).expect("nothing else is queued");
        assert!(budget.hold(listing(1)).is_none(), "nothing joins it past the budget");
        drop(alone);
        assert!(budget.hold(heavy).is_some());
    }
}
