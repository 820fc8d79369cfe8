//! Hashing a blob on a thread of its own while the download streams it.
//!
//! With verification on, a download's thread used to copy every byte in from the
//! registry, hash it, and copy it out to the client: one core did all three, and one
//! stream ran at about half its unverified speed. Here a few downloads at a time lend
//! their frames (by reference count, no copy) to a hashing thread, so that hashing runs
//! on another core beside the copying, and a verified stream can go at the speed of one
//! core's SHA-256 (BENCHMARKS.md, "Verification on a thread of its own").
//!
//! There are as many hashing threads as cores, started when first needed; a download
//! that finds them all taken hashes inline as before, so many downloads cost what they
//! did. The hashing thread may fall behind the stream by at most [`WINDOW`] bytes: past
//! that the stream waits, so memory stays bounded however slow hashing is.

use std::future::Future as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::digest::{Algorithm, Digest, Hasher};

/// How far hashing may fall behind the stream: one of the largest frames a blob
/// connection reads (`upstream::dedicated`), so the next frame can be read while one is
/// hashed. Windows of 4 to 32 MiB measured alike; every byte of it is memory held.
pub const WINDOW: usize = 4 << 20;

/// The hashing threads, shared by all downloads.
pub struct HashWorkers {
    inner: Arc<Pool>,
}

struct Pool {
    idle: Mutex<Idle>,
    limit: usize,
}

struct Idle {
    workers: Vec<Worker>,
    started: usize,
}

/// One hashing thread, as the pool and a lease see it.
struct Worker {
    jobs: mpsc::Sender<Job>,
    backlog: Arc<Backlog>,
}

/// Bytes handed to a hashing thread and not yet hashed, and who waits for room.
#[derive(Default)]
struct Backlog {
    bytes: AtomicUsize,
    waiting: Mutex<Option<Waker>>,
}

enum Job {
    Start(Algorithm),
    Update(Bytes),
    Finish(oneshot::Sender<Digest>),
    /// The download went away before finishing; forget its hash.
    Abandon,
}

impl HashWorkers {
    /// At most `limit` hashing threads (none: every download hashes inline).
    pub fn new(limit: usize) -> HashWorkers {
        HashWorkers { inner: Arc::new(Pool { idle: Mutex::new(Idle { workers: Vec::new(), started: 0 }), limit }) }
    }

    /// As many threads as the machine has cores.
    pub fn per_core() -> HashWorkers {
        HashWorkers::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// A hashing thread for one blob, or `None` when all are taken (hash inline then).
    pub fn lease(&self, algorithm: Algorithm) -> Option<HashLease> {
        let worker = {
            let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
            match idle.workers.pop() {
                Some(worker) => worker,
                None if idle.started < self.inner.limit => {
                    let worker = spawn(idle.started)?;
                    idle.started += 1;
                    worker
                }
                None => return None,
            }
        };
        // A worker whose thread has died (it cannot, short of a panic in ring) is dropped.
        worker.jobs.send(Job::Start(algorithm)).ok()?;
        Some(HashLease { worker: Some(worker), pool: Arc::downgrade(&self.inner), finishing: None })
    }
}

fn spawn(n: usize) -> Option<Worker> {
    let (jobs, queue) = mpsc::channel();
    let backlog = Arc::new(Backlog::default());
    let shared = backlog.clone();
    std::thread::Builder::new()
        .name(format!("layerpipe-hash-{n}"))
        .spawn(move || work(queue, &shared))
        .map_err(|e| tracing::warn!(error = %e, "cannot start a hashing thread; hashing inline"))
        .ok()?;
    Some(Worker { jobs, backlog })
}

/// A hashing thread: runs until the pool and every lease are gone.
fn work(queue: mpsc::Receiver<Job>, backlog: &Backlog) {
    let mut hasher = None;
    for job in queue {
        match job {
            Job::Start(algorithm) => hasher = Some(Hasher::new(algorithm)),
            Job::Update(data) => {
                if let Some(h) = &mut hasher {
                    h.update(&data);
                }
                backlog.bytes.fetch_sub(data.len(), Ordering::AcqRel);
                drop(data);
                if let Some(waker) = backlog.waiting.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    waker.wake();
                }
            }
            Job::Finish(answer) => {
                if let Some(h) = hasher.take() {
                    let _ = answer.send(h.finish());
                }
            }
            Job::Abandon => hasher = None,
        }
    }
}

/// One blob's hashing thread, given back to the pool when dropped.
pub struct HashLease {
    /// `None` only while being dropped.
    worker: Option<Worker>,
    pool: Weak<Pool>,
    /// Waiting for the digest, once all bytes are in.
    finishing: Option<oneshot::Receiver<Digest>>,
}

/// The hashing thread went away (it panicked); the blob cannot be checked.
#[derive(Debug)]
pub struct HashingFailed;

impl HashLease {
    fn worker(&self) -> &Worker {
        self.worker.as_ref().expect("a lease has its worker until dropped")
    }

    /// Ready when the hashing thread is less than [`WINDOW`] behind, so that another
    /// frame may be taken from the registry.
    pub fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let backlog = &self.worker().backlog;
        if backlog.bytes.load(Ordering::Acquire) < WINDOW {
            return Poll::Ready(());
        }
        *backlog.waiting.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        // The thread may have caught up between the check and the registration.
        if backlog.bytes.load(Ordering::Acquire) < WINDOW {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Hands `data` to the hashing thread (a reference, not a copy).
    pub fn update(&mut self, data: Bytes) -> Result<(), HashingFailed> {
        let worker = self.worker();
        worker.backlog.bytes.fetch_add(data.len(), Ordering::AcqRel);
        worker.jobs.send(Job::Update(data)).map_err(|_| HashingFailed)
    }

    /// The digest of everything handed over, once the thread has hashed it all.
    pub fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<Digest, HashingFailed>> {
        if self.finishing.is_none() {
            let (answer, digest) = oneshot::channel();
            self.worker().jobs.send(Job::Finish(answer)).map_err(|_| HashingFailed)?;
            self.finishing = Some(digest);
        }
        let digest = self.finishing.as_mut().expect("set above");
        std::pin::Pin::new(digest).poll(cx).map(|answer| answer.map_err(|_| HashingFailed))
    }
}

impl Drop for HashLease {
    fn drop(&mut self) {
        let Some(worker) = self.worker.take() else { return };
        // Unfinished: the thread drops the hash once it reaches this point in its queue,
        // before the next lease's Start.
        if worker.jobs.send(Job::Abandon).is_err() {
            return;
        }
        if let Some(pool) = self.pool.upgrade() {
            pool.idle.lock().unwrap_or_else(|e| e.into_inner()).workers.push(worker);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    fn sha256(data: &[u8]) -> Digest {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(data);
        h.finish()
    }

    #[tokio::test]
    async fn a_lease_hashes_what_it_is_handed_in_order() {
        let workers = HashWorkers::new(1);
        let mut lease = workers.lease(Algorithm::Sha256).expect("one thread free");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for piece in data.chunks(100_000) {
            poll_fn(|cx| lease.poll_room(cx)).await;
            lease.update(Bytes::copy_from_slice(piece)).unwrap();
        }
        let digest = poll_fn(|cx| lease.poll_finish(cx)).await.unwrap();
        assert_eq!(digest, sha256(&data));
    }

    #[tokio::test]
    async fn all_threads_taken_means_inline_and_a_dropped_lease_frees_its_thread() {
        let workers = HashWorkers::new(1);
        let mut first = workers.lease(Algorithm::Sha256).unwrap();
        assert!(workers.lease(Algorithm::Sha256).is_none(), "the only thread is taken");
        // Abandoned halfway: the next blob on that thread must not include these bytes.
        first.update(Bytes::from_static(b"half of another blob")).unwrap();
        drop(first);
        let mut second = workers.lease(Algorithm::Sha256).expect("given back on drop");
        second.update(Bytes::from_static(b"abc")).unwrap();
        assert_eq!(poll_fn(|cx| second.poll_finish(cx)).await.unwrap(), sha256(b"abc"));
    }

    #[tokio::test]
    async fn no_threads_means_every_download_hashes_inline() {
        assert!(HashWorkers::new(0).lease(Algorithm::Sha256).is_none());
    }

    #[tokio::test]
    async fn the_stream_waits_when_hashing_is_a_window_behind() {
        let workers = HashWorkers::new(1);
        let mut lease = workers.lease(Algorithm::Sha256).unwrap();
        // Counted as handed over but not hashed yet: as if the thread were slow.
        lease.worker().backlog.bytes.fetch_add(WINDOW, Ordering::AcqRel);
        let waker = std::task::Waker::noop();
        assert!(lease.poll_room(&mut Context::from_waker(waker)).is_pending());
        // The thread catches up: one hashed frame wakes the stream.
        lease.worker().backlog.bytes.fetch_sub(WINDOW, Ordering::AcqRel);
        lease.update(Bytes::from_static(b"x")).unwrap();
        poll_fn(|cx| lease.poll_room(cx)).await;
        assert_eq!(poll_fn(|cx| lease.poll_finish(cx)).await.unwrap(), sha256(b"x"));
    }
}
