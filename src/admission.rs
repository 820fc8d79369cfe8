//! Admission to work that layerpipe does only so many of at once: downloads, layer
//! listings, file previews and saves, page renders. Each is a burst any client can ask
//! for as fast as it likes, and each holds memory, file descriptors or a core while it
//! runs, so each has its slots; a request that finds them all taken is a 503 with
//! `Retry-After` ([`Error::busy`]), never a queue that would hold connections open
//! with nothing to show.
//!
//! The rule lives here once, so every limit answers the same way:
//! - a slot is held for as long as its [`Slot`] lives, and freed when it is dropped,
//!   whichever way the work ends (done, failed, or its client gone);
//! - beyond the limit the answer is [`Error::busy`]: status 503, `Retry-After`
//!   [`crate::error::BUSY_RETRY_AFTER_SECS`], the limit's word for
//!   `layerpipe_limited_total`, and a message naming the limit to the user;
//! - work that is short (a render) may wait a moment for a slot ([`Slots::take_within`]);
//!   work that is long (a download) is refused at once ([`Slots::try_take`]).
//!
//! What a slot also counts (a download's duration, renders in flight) stays with the
//! caller's own wrapper around [`Slot`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::Error;

/// The slots of one limit, shared by every request; clones share them.
#[derive(Clone, Debug)]
pub struct Slots {
    permits: Arc<Semaphore>,
    /// The `limit` label of `layerpipe_limited_total`: `downloads`, `renders`, ….
    limit: &'static str,
    /// What the user is told when all slots are taken.
    busy: Arc<str>,
}

impl Slots {
    /// `count` slots of the limit named `limit` (a fixed word for the metrics); a
    /// request beyond them is told `busy`.
    pub fn new(count: usize, limit: &'static str, busy: impl Into<String>) -> Slots {
        Slots { permits: Arc::new(Semaphore::new(count)), limit, busy: busy.into().into() }
    }

    /// A slot now, or [`Error::busy`] when all are taken.
    pub fn try_take(&self) -> Result<Slot, Error> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok(Slot { _permit: permit }),
            Err(_) => Err(self.busy()),
        }
    }

    /// A slot, waiting up to `wait` for one to free up; then [`Error::busy`].
    pub async fn take_within(&self, wait: Duration) -> Result<Slot, Error> {
        match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
            Ok(permit) => Ok(Slot { _permit: permit.expect("admission semaphores are never closed") }),
            Err(_) => Err(self.busy()),
        }
    }

    fn busy(&self) -> Error {
        Error::busy(self.limit, self.busy.to_string())
    }
}

/// One slot, held until dropped.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn busy_as_expected(e: Error) {
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after().unwrap(), "5");
        assert_eq!(e.limit(), Some("tests"));
        assert_eq!(e.message(), "busy with tests");
    }

    /// With every slot held, the next request is a 503 at once; dropping a slot frees it.
    #[test]
    fn beyond_the_limit_is_a_503_until_a_slot_is_dropped() {
        let slots = Slots::new(2, "tests", "busy with tests");
        let first = slots.try_take().unwrap();
        let _second = slots.clone().try_take().unwrap();
        busy_as_expected(slots.try_take().unwrap_err());
        drop(first);
        assert!(slots.try_take().is_ok());
    }

    /// A wait for a slot ends with the slot when one frees in time, and in a 503 when not.
    #[tokio::test]
    async fn a_wait_gets_a_freed_slot_or_a_503() {
        let slots = Slots::new(1, "tests", "busy with tests");
        let held = slots.try_take().unwrap();
        busy_as_expected(slots.take_within(Duration::from_millis(20)).await.unwrap_err());
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.take_within(Duration::from_secs(60)).await }
        });
        tokio::task::yield_now().await;
        drop(held);
        assert!(waiting.await.unwrap().is_ok());
    }
}
