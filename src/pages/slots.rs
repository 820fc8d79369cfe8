//! Rendering inside a limit. A page about a big layer is up to [`PAGE_BUDGET`] bytes of
//! HTML built from a listing, tens of milliseconds of one core; any client can ask for
//! such pages as fast as it likes. So pages are rendered on tokio's blocking pool (the
//! runtime's threads keep streaming downloads meanwhile), at most
//! `limits.max_concurrent_renders` at once. A request waits a moment for a slot, since
//! a render is short; past [`WAIT`] it gets a 503 with `Retry-After`, like a download
//! beyond its limit ([`crate::admission`]).
//!
//! Whole-image pages take their slot before they merge the layers, not only to render:
//! a merge reads every layer's listing and holds them (up to ~1 GiB at its entry cap),
//! so merges at once are bounded by the same slots, and a page that finds them all
//! taken is a 503 before it reads anything.
//!
//! [`PAGE_BUDGET`]: super::PAGE_BUDGET

use std::sync::Arc;
use std::time::Duration;

use crate::admission::{Slot, Slots};
use crate::error::Error;
use crate::metrics::in_flight::{InFlight, Work};
use crate::metrics::Metrics;

/// How long a page waits for a render slot before it is a 503.
pub const WAIT: Duration = Duration::from_secs(5);

/// The render slots shared by every request.
#[derive(Clone, Debug)]
pub struct RenderSlots {
    slots: Slots,
    wait: Duration,
    /// Where slots held are counted (`layerpipe_renders_in_flight`), if anywhere.
    metrics: Option<Arc<Metrics>>,
}

impl RenderSlots {
    /// Slots for `limit` renders at once.
    pub fn new(limit: usize) -> RenderSlots {
        let busy = format!("layerpipe is rendering its limit of {limit} pages at once; try again shortly");
        RenderSlots { slots: Slots::new(limit, "renders", busy), wait: WAIT, metrics: None }
    }

    /// The same slots, each held counted in `metrics`' renders in flight.
    pub fn counted_in(self, metrics: Arc<Metrics>) -> RenderSlots {
        RenderSlots { metrics: Some(metrics), ..self }
    }

    /// A slot, for work that reads before it renders (a merge); a 503 when no slot
    /// frees up within `WAIT`.
    pub async fn take(&self) -> Result<RenderSlot, Error> {
        Ok(RenderSlot {
            _slot: self.slots.take_within(self.wait).await?,
            _counted: self.metrics.as_ref().map(|m| m.in_flight(Work::Render)),
        })
    }

    /// The page `render` makes, made in a slot off the runtime's threads; a 503 when no
    /// slot frees up within `WAIT`.
    pub async fn render<T, F>(&self, render: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        Ok(self.take().await?.render(render).await)
    }
}

/// One render slot, held until dropped or used by [`RenderSlot::render`].
#[derive(Debug)]
pub struct RenderSlot {
    _slot: Slot,
    _counted: Option<InFlight>,
}

impl RenderSlot {
    /// The page `render` makes, off the runtime's threads; the slot frees when it ends.
    pub async fn render<T, F>(self, render: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let rendered = tokio::task::spawn_blocking(move || {
            let _slot = self;
            render()
        })
        .await;
        // A render that panicked is a bug: let it unwind as it would have inline.
        rendered.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    /// With every slot held by a render that has not finished, the next page waits
    /// and is a 503 with `Retry-After`; once the slot frees, pages render again.
    #[tokio::test]
    async fn a_page_beyond_the_limit_waits_then_is_a_503() {
        // A short wait keeps the test quick; the first render cannot end before it.
        let slots = RenderSlots { wait: Duration::from_millis(50), ..RenderSlots::new(1) };
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let first = tokio::spawn({
            let slots = slots.clone();
            async move {
                slots
                    .render(move || {
                        started_tx.send(()).unwrap();
                        held.recv().unwrap();
                        "first".to_owned()
                    })
                    .await
            }
        });
        started.await.unwrap();
        let busy = slots.render(|| "second".to_owned()).await.unwrap_err();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.retry_after().unwrap(), "5");
        assert!(busy.message().contains("limit of 1 pages"), "{}", busy.message());
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), "first");
        assert_eq!(slots.render(|| "third".to_owned()).await.unwrap(), "third");
    }

    /// A slot taken for a merge counts until it is dropped: meanwhile a page is a 503.
    #[tokio::test]
    async fn a_slot_taken_before_reading_holds_its_place() {
        let slots = RenderSlots { wait: Duration::from_millis(50), ..RenderSlots::new(1) };
        let merging = slots.take().await.unwrap();
        assert_eq!(slots.render(|| ()).await.unwrap_err().status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(merging.render(|| "merged").await, "merged");
        assert_eq!(slots.render(|| "next").await.unwrap(), "next");
    }

    /// Slots are taken and given back: many pages in a row through one slot all render.
    #[tokio::test]
    async fn slots_are_given_back() {
        let slots = RenderSlots::new(1);
        for i in 0..20 {
            assert_eq!(slots.render(move || i.to_string()).await.unwrap(), i.to_string());
        }
    }
}
