//! The catalog as the rest of layerpipe uses it: a handle that records what pages saw
//! without waiting, and answers searches from threads of its own.
//!
//! Danger first: a page must never wait for the database. Recording is a `try_send` to
//! one writer thread through a bounded queue; when the queue is full the sighting is
//! dropped (counted, logged at debug) and forgotten, so the next page that sees the
//! layer or image offers it again. Each sighting is offered once per process: a set of
//! what was offered keeps repeated page views from queueing the same write.
//!
//! Reads (searches) go to [`READERS`] threads, each with its own connection, through a
//! bounded queue too; a full queue is a 503, like the other slots. Connections are
//! opened on these threads, never on a request runtime's: the PostgreSQL client runs
//! its own small runtime, which cannot start inside another.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::held::{HeldListing, ListingBudget};
use super::{open_store, EntryRow, ImageLayer, ImageSeen, LayerSecrets, LayerSeen, Store, StoreError};
use crate::config::{CatalogUrl, Config};
use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::error::Error;
use crate::explore::layers::IndexObserver;
use crate::index::LayerIndex;
use crate::manifest::config::ImageConfig;
use crate::manifest::ImageManifest;
use crate::reference::{ImageReference, DEFAULT_TAG};

/// Sightings waiting for the writer at most. A layer's sighting holds its listing
/// (shared with the index cache), so this bounds how many listings the queue keeps alive.
const WRITE_QUEUE: usize = 256;
/// Threads answering searches, each with a connection.
pub const READERS: usize = 2;
/// Searches waiting for a reader at most; more are told to come back.
const READ_QUEUE: usize = 64;
/// Sightings remembered as offered; past it the set starts over (offering again is
/// harmless, only wasted work).
const MAX_REMEMBERED: usize = 100_000;

/// One write for the writer thread.
enum Write {
    /// A layer and its listing, counted against the queue's listing budget.
    Layer(LayerSeen, HeldListing, String),
    /// An image.
    Image(ImageSeen, String),
    /// A layer's secrets scan, by digest.
    Secrets(String, LayerSecrets, String),
    /// Answers once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// A search's work, run on a reader thread with its connection.
type Job = Box<dyn FnOnce(&mut dyn Store) + Send>;

/// The catalog, shared by every request; off when `catalog.url` says so. Cheap to clone.
#[derive(Clone, Default)]
pub struct Catalog {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    writes: mpsc::Sender<Write>,
    reads: std_mpsc::SyncSender<Job>,
    offered: Arc<Mutex<HashSet<String>>>,
    dropped: AtomicU64,
    /// Listing bytes the queue keeps alive (`held.rs`).
    listings: ListingBudget,
}

impl Catalog {
    /// The catalog `config` asks for, opened and migrated; off when it says so. A
    /// catalog that cannot be opened is an error for start-up to report.
    pub fn open(config: &Config) -> Result<Catalog, String> {
        let url = config.catalog.resolve(&config.index);
        if url == CatalogUrl::Off {
            return Ok(Catalog::off());
        }
        let offered = Arc::new(Mutex::new(HashSet::new()));
        let (writes, queued) = mpsc::channel(WRITE_QUEUE);
        // The writer migrates the schema; the readers connect once it has.
        start_thread("layerpipe-catalog-writer", url.clone(), {
            let offered = offered.clone();
            move |store| write_loop(store, queued, offered)
        })?;
        let (reads, jobs) = std_mpsc::sync_channel::<Job>(READ_QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..READERS {
            let jobs = jobs.clone();
            start_thread(&format!("layerpipe-catalog-reader-{n}"), url.clone(), move |store| read_loop(store, jobs))?;
        }
        tracing::info!(catalog = ?url, "catalog open");
        Ok(Catalog {
            inner: Some(Arc::new(Inner {
                writes,
                reads,
                offered,
                dropped: AtomicU64::new(0),
                listings: ListingBudget::default(),
            })),
        })
    }

    /// No catalog: nothing is recorded, and searches say the catalog is off.
    pub fn off() -> Catalog {
        Catalog { inner: None }
    }

    /// Whether there is a catalog.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Sightings dropped because the writer's queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.dropped.load(Ordering::Relaxed))
    }

    /// Records that `link`'s repository serves the layer `index` lists (its entries the
    /// first time the catalog sees its digest). Never waits; see the module docs.
    pub fn record_layer(&self, link: &DownloadLink, index: &LayerIndex) {
        let Some(inner) = &self.inner else { return };
        let (registry, repository) = (link.image.registry(), link.image.repository());
        let key = format!("{} {registry}/{repository}", link.digest);
        if !inner.first_offer(&key) {
            return;
        }
        let Some(listing) = inner.listings.hold(index.listing.clone()) else {
            inner.dropped(&key, "the catalog's write queue holds its budget of listings");
            return;
        };
        let seen = LayerSeen {
            digest: link.digest.to_string(),
            size: listing.summary.compressed_bytes,
            media_type: link.media_type.clone(),
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            image: link.image.to_string(),
            layer: link.layer,
            complete: listing.summary.stopped.is_none(),
        };
        inner.offer(Write::Layer(seen, listing, key.clone()), &key);
    }

    /// Records the image manifest `digest`, reached as `reference`: its layers in order,
    /// its tag, and (with `config`) its platform and when it was made. Never waits.
    pub fn record_image(
        &self,
        reference: &ImageReference,
        digest: &Digest,
        manifest: &ImageManifest,
        config: Option<&ImageConfig>,
    ) {
        let Some(inner) = &self.inner else { return };
        let tag = match (reference.tag(), reference.digest()) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        let (registry, repository) = (reference.registry(), reference.repository());
        let key = format!("image {registry}/{repository}@{digest} {tag:?} {}", config.is_some());
        if !inner.first_offer(&key) {
            return;
        }
        let platform = config.and_then(|c| match (&c.os, &c.architecture) {
            (Some(os), Some(arch)) => Some(format!("{os}/{arch}")),
            (Some(one), None) | (None, Some(one)) => Some(one.clone()),
            (None, None) => None,
        });
        let seen = ImageSeen {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            manifest_digest: digest.to_string(),
            tag,
            platform,
            config_digest: manifest.config.digest.to_string(),
            created: config.and_then(|c| c.created.clone()),
            layers: manifest
                .layers
                .iter()
                .map(|l| ImageLayer { digest: l.digest.to_string(), size: l.size, media_type: l.media_type.clone() })
                .collect(),
        };
        inner.offer(Write::Image(seen, key.clone()), &key);
    }

    /// Records the secrets scan of the layer `digest` (once per digest: the store keeps
    /// the first). Never waits; masked values only, so nothing here can leak one.
    pub fn record_secrets(&self, digest: &Digest, secrets: LayerSecrets) {
        let Some(inner) = &self.inner else { return };
        let key = format!("secrets {digest}");
        if !inner.first_offer(&key) {
            return;
        }
        inner.offer(Write::Secrets(digest.to_string(), secrets, key.clone()), &key);
    }

    /// Waits until everything recorded before this call is written (tests, benches).
    pub async fn flush(&self) {
        let Some(inner) = &self.inner else { return };
        let (done, written) = oneshot::channel();
        if inner.writes.send(Write::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// Runs `work` on a reader thread with its connection: 404 when the catalog is off,
    /// 503 when every reader is busy and the queue is full.
    pub async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, Error> {
        let Some(inner) = &self.inner else {
            return Err(Error::not_found(
                "the catalog is off (catalog.url is \"\", or index.dir is empty and catalog.url unset)",
            ));
        };
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |store| {
            let _ = answer.send(work(store));
        });
        inner
            .reads
            .try_send(job)
            .map_err(|_| Error::busy("catalog", "the catalog is busy with other searches; try again shortly"))?;
        match answered.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "a catalog read failed");
                Err(Error::busy("catalog", format!("the catalog could not be read: {e}")))
            }
            Err(_) => Err(Error::busy("catalog", "the catalog's reader stopped")),
        }
    }
}

impl IndexObserver for Catalog {
    fn layer_indexed(&self, link: &DownloadLink, index: &LayerIndex) {
        self.record_layer(link, index);
    }
}

impl Inner {
    /// Marks `key` offered; false when it already was.
    fn first_offer(&self, key: &str) -> bool {
        let mut offered = self.offered.lock().unwrap_or_else(|e| e.into_inner());
        if offered.len() >= MAX_REMEMBERED {
            offered.clear();
        }
        offered.insert(key.to_owned())
    }

    /// Queues `write`, or drops and forgets it when the queue is full.
    fn offer(&self, write: Write, key: &str) {
        if self.writes.try_send(write).is_err() {
            self.dropped(key, "the catalog's write queue is full");
        }
    }

    /// A sighting not queued: counted, and forgotten so that the next one is offered.
    fn dropped(&self, key: &str, why: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        forget(&self.offered, key);
        tracing::debug!(key, why, "this sighting is left for the next one");
    }
}

fn forget(offered: &Mutex<HashSet<String>>, key: &str) {
    offered.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
}

/// Starts a thread that opens its own connection to `url` and then runs `body` with it;
/// returns once the connection is open, or with why it could not be.
fn start_thread(name: &str, url: CatalogUrl, body: impl FnOnce(Box<dyn Store>) + Send + 'static) -> Result<(), String> {
    let (opened, result) = std_mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || match open_store(&url) {
            Ok(Some(store)) => {
                let _ = opened.send(Ok(()));
                body(store);
            }
            Ok(None) => {
                let _ = opened.send(Ok(()));
            }
            Err(e) => {
                let _ = opened.send(Err(e));
            }
        })
        .map_err(|e| format!("cannot start the catalog's thread: {e}"))?;
    result.recv().map_err(|_| "the catalog's thread stopped while opening it".to_owned())?
}

/// The writer: one sighting at a time, each in its own transaction, until every
/// [`Catalog`] is gone.
fn write_loop(mut store: Box<dyn Store>, mut queued: mpsc::Receiver<Write>, offered: Arc<Mutex<HashSet<String>>>) {
    while let Some(write) = queued.blocking_recv() {
        match write {
            Write::Layer(seen, listing, key) => {
                let started = Instant::now();
                let mut rows = listing.entries().map(|e| EntryRow {
                    index: e.index as u32,
                    path: e.path(),
                    link: e.link(),
                    size: e.entry.size,
                    mode: e.entry.mode,
                    kind: e.entry.kind,
                });
                match store.record_layer(&seen, &mut rows) {
                    Ok(true) => {
                        let secs = started.elapsed().as_secs_f64();
                        tracing::info!(
                            digest = %seen.digest,
                            entries = listing.len(),
                            secs,
                            entries_per_sec = (listing.len() as f64 / secs.max(1e-9)) as u64,
                            "catalogued a layer"
                        );
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(digest = %seen.digest, error = %e, "cannot catalogue a layer");
                        forget(&offered, &key);
                    }
                }
            }
            Write::Image(seen, key) => {
                if let Err(e) = store.record_image(&seen) {
                    tracing::warn!(image = %seen.manifest_digest, error = %e, "cannot catalogue an image");
                    forget(&offered, &key);
                }
            }
            Write::Secrets(digest, secrets, key) => {
                if let Err(e) = store.record_secrets(&digest, &secrets) {
                    tracing::warn!(%digest, error = %e, "cannot catalogue a layer's secrets scan");
                    forget(&offered, &key);
                }
            }
            Write::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// A reader: runs searches until every [`Catalog`] is gone.
fn read_loop(mut store: Box<dyn Store>, jobs: Arc<Mutex<std_mpsc::Receiver<Job>>>) {
    loop {
        // One reader waits on the queue at a time; the lock is let go before the work.
        let job = match jobs.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        job(store.as_mut());
    }
}
