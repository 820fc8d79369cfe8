//! Reading a blob from the registry through a tar [`Visitor`], frame by frame.
//!
//! Two halves joined by a bounded channel: an async reader takes the registry's frames
//! (with the idle timeout) and a blocking thread decompresses them into the tar scanner.
//! Decompression is CPU work, tens of milliseconds per MiB on a small machine: on the
//! blocking thread it cannot hold up the runtime's workers, which keep serving pages and
//! downloads. The channel carries the registry's own `Bytes` (no copy) and holds at most
//! [`FRAMES_IN_FLIGHT`] of them, so a slow consumer slows the registry read.
//!
//! Stopping is by dropping: when the visitor stops (or the archive ends) the thread
//! drops its receiver, the reader's next send fails and it drops the registry's body,
//! closing that connection; when the caller drops the scan (client gone), the reader is
//! dropped with it and the thread sees its channel close.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::decompress::{Compression, DecompressError, Decompressor, Recorded, ResumePoint, Spacing};
use super::tar::{Outcome, Scanner, Visitor};
use crate::digest::{Digest, Hasher};
use crate::error::BoxError;
use crate::metrics::flow::{Flow, FlowSink};

/// Registry frames queued for the decompressing thread at most.
pub const FRAMES_IN_FLIGHT: usize = 8;

/// Compressed bytes decompressed between checks for a stop, so that little work is
/// wasted on a frame after the visitor has what it wants.
const STEP: usize = 32 * 1024;

/// The slowest a registry may send, averaged over `window` of waiting on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinRate {
    /// Bytes a second; 0 checks nothing.
    pub bytes_per_sec: u64,
    /// The span averaged over. Only time spent waiting for the registry counts: time
    /// blocked on a slow consumer (a client saving a file slowly) is backpressure.
    pub window: Duration,
}

impl MinRate {
    /// No minimum.
    pub const NONE: MinRate = MinRate { bytes_per_sec: 0, window: Duration::from_secs(60) };
}

/// How a blob is read.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Give up when the registry sends nothing for this long.
    pub idle_timeout: Duration,
    /// Give up when the registry trickles: a slot is not held for ever one byte a minute.
    pub min_rate: MinRate,
    /// Hash the whole blob and compare with this digest. The blob is then read to its
    /// end even after the archive stops, so that what was read is known to be the blob.
    pub verify: Option<Digest>,
    /// Note resume points and marks as this says ([`Scanned::recorded`]).
    pub record: Option<Spacing>,
    /// Start inside the blob rather than at its first byte.
    pub resume: Option<Resume>,
    /// Counters to keep up to date as the blob is read, for a page showing progress.
    pub progress: Option<Arc<ScanProgress>>,
    /// Where the blob's bytes are counted as they arrive (`/metrics`), if anywhere.
    pub counted: Option<FlowSink>,
}

/// How far a read has come, updated as frames are decompressed.
#[derive(Debug, Default)]
pub struct ScanProgress {
    /// Blob bytes read.
    pub bytes: AtomicU64,
    /// The blob's size, when the registry said (0 when not known).
    pub total: AtomicU64,
    /// Tar entries seen.
    pub entries: AtomicU64,
}

impl ScanProgress {
    /// (bytes read, size or 0, entries seen).
    pub fn get(&self) -> (u64, u64, u64) {
        (self.bytes.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed), self.entries.load(Ordering::Relaxed))
    }
}

impl ScanOptions {
    /// A plain read from the blob's start: nothing verified, recorded or resumed.
    pub fn plain(idle_timeout: Duration, min_rate: MinRate) -> ScanOptions {
        ScanOptions { idle_timeout, min_rate, verify: None, record: None, resume: None, progress: None, counted: None }
    }
}

/// Where a resumed read starts, from a layer index.
#[derive(Clone, Debug)]
pub struct Resume {
    /// The blob's compression.
    pub compression: Compression,
    /// The point decompression resumes at; the body's first byte is the point's
    /// `fetch_from()`, once `discard` bytes are dropped.
    pub point: ResumePoint,
    /// Body bytes to drop first: a registry that ignored `Range` sends the blob from
    /// its start.
    pub discard: u64,
    /// Decompressed bytes to drop between the point and the tar reader's start.
    pub skip: u64,
}

/// What reading a blob found.
pub struct Scanned<V> {
    /// The visitor, with whatever it gathered.
    pub visitor: V,
    /// How the archive ended.
    pub outcome: Outcome,
    /// The compressed stream's failure, when it failed (the archive then ends there).
    pub decompress_error: Option<DecompressError>,
    /// The compression found in the blob's first bytes.
    pub compression: Option<Compression>,
    /// Bytes of blob read.
    pub compressed_bytes: u64,
    /// Bytes of tar stream read.
    pub tar_bytes: u64,
    /// With [`ScanOptions::verify`]: what the whole blob hashed to.
    pub digest: Option<Digest>,
    /// With [`ScanOptions::record`]: the resume points and marks noted.
    pub recorded: Recorded,
}

impl<V> Scanned<V> {
    /// The same result with the visitor changed by `f`.
    pub fn map<W>(self, f: impl FnOnce(V) -> W) -> Scanned<W> {
        Scanned {
            visitor: f(self.visitor),
            outcome: self.outcome,
            decompress_error: self.decompress_error,
            compression: self.compression,
            compressed_bytes: self.compressed_bytes,
            tar_bytes: self.tar_bytes,
            digest: self.digest,
            recorded: self.recorded,
        }
    }

    /// Why the archive could not be read to its end, in a sentence, or `None` when it
    /// was (or the visitor stopped it).
    pub fn problem(&self) -> Option<String> {
        if let Some(e) = &self.decompress_error {
            return Some(format!("Reading stopped: {e}."));
        }
        match &self.outcome {
            Outcome::End | Outcome::Eof | Outcome::Stopped => None,
            Outcome::Truncated(inside) => Some(format!("Reading stopped: the archive ends inside {inside}.")),
            Outcome::Failed(e) => Some(format!("Reading stopped: the archive is damaged: {e}.")),
        }
    }
}

/// Why a blob could not be read.
#[derive(Debug)]
pub enum ScanError {
    /// The registry's stream broke (one connection's, or a range's that could not be had).
    Upstream(BoxError),
    /// The registry sent nothing for too long.
    Stalled(Duration),
    /// The registry sent fewer bytes than the minimum rate over its window.
    TooSlow(MinRate),
    /// The decompressing thread panicked (a bug).
    Worker(String),
}

/// What the reader hands the decompressing thread.
enum Chunk {
    Data(Bytes),
    /// The blob ended cleanly. A channel closed without it means the read failed.
    End,
}

/// Reads `body` through `visitor`; see the module docs.
pub async fn scan<B, V>(body: B, visitor: V, options: ScanOptions) -> Result<Scanned<V>, ScanError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
    V: Visitor + Send + 'static,
{
    let (tx, rx) = mpsc::channel(FRAMES_IN_FLIGHT);
    let (verify, record, resume) = (options.verify.clone(), options.record, options.resume.clone());
    let progress = options.progress.clone();
    let worker = tokio::task::spawn_blocking(move || decompress(rx, visitor, verify, record, resume, progress));
    let flow = options.counted.as_ref().map(FlowSink::flow);
    let (read, worked) = tokio::join!(read(body, tx, options.idle_timeout, options.min_rate, flow), worker);
    match (worked, read) {
        // A thread that finished had all it needed, whatever became of the rest.
        (Ok(Some(scanned)), _) => Ok(scanned),
        (_, Err(e)) => Err(e),
        // The reader succeeded, so it either sent `End` or saw the thread finish.
        (Ok(None), Ok(())) => Err(ScanError::Worker("the decompressing thread lost its input".into())),
        (Err(e), Ok(())) => Err(ScanError::Worker(e.to_string())),
    }
}

/// Moves the registry's frames into `tx` until the body ends, fails, stalls, trickles,
/// or the thread stops listening.
async fn read<B>(
    mut body: B,
    tx: mpsc::Sender<Chunk>,
    idle: Duration,
    min: MinRate,
    mut flow: Option<Flow>,
) -> Result<(), ScanError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let (mut waited, mut got) = (Duration::ZERO, 0u64);
    loop {
        // Only the registry's silence counts: time spent waiting on a full channel is
        // the consumer's backpressure.
        let asked = tokio::time::Instant::now();
        let frame = tokio::time::timeout(idle, body.frame()).await;
        waited += asked.elapsed();
        if min.bytes_per_sec > 0 && waited >= min.window {
            if (got as f64) < min.bytes_per_sec as f64 * waited.as_secs_f64() {
                return Err(ScanError::TooSlow(min));
            }
            (waited, got) = (Duration::ZERO, 0);
        }
        let frame = match frame {
            Err(_) => return Err(ScanError::Stalled(idle)),
            Ok(None) => {
                let _ = tx.send(Chunk::End).await;
                return Ok(());
            }
            Ok(Some(Err(e))) => return Err(ScanError::Upstream(e.into())),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        got += data.len() as u64;
        if let Some(flow) = &mut flow {
            flow.add(data.len() as u64);
        }
        if tx.send(Chunk::Data(data)).await.is_err() {
            return Ok(());
        }
    }
}

/// The blocking half: decompresses frames into the scanner. `None` when the reader
/// gave up (its error is the answer).
fn decompress<V: Visitor>(
    mut rx: mpsc::Receiver<Chunk>,
    visitor: V,
    verify: Option<Digest>,
    record: Option<Spacing>,
    resume: Option<Resume>,
    progress: Option<Arc<ScanProgress>>,
) -> Option<Scanned<V>> {
    let start = resume.as_ref().map_or(0, |r| r.point.tar + r.skip);
    let mut scanner = Scanner::at(visitor, start);
    let mut hasher = verify.as_ref().map(|d| Hasher::new(d.algorithm()));
    let mut decompress_error = None;
    let mut discard = resume.as_ref().map_or(0, |r| r.discard);
    let mut decompressor = match (&resume, record) {
        (Some(r), _) => match Decompressor::resume(&mut scanner, r.compression, &r.point, r.skip) {
            Ok(d) => d,
            Err(e) => {
                let (visitor, outcome) = scanner.finish();
                return Some(Scanned {
                    visitor,
                    outcome,
                    decompress_error: Some(e),
                    compression: Some(r.compression),
                    compressed_bytes: 0,
                    tar_bytes: 0,
                    digest: None,
                    recorded: Recorded::default(),
                });
            }
        },
        (None, Some(spacing)) => Decompressor::recording(&mut scanner, spacing),
        (None, None) => Decompressor::new(&mut scanner),
    };
    let mut decoding = true;
    let mut whole = false;
    let mut read = 0u64;
    while let Some(chunk) = rx.blocking_recv() {
        let mut data = match chunk {
            Chunk::Data(data) => data,
            Chunk::End => {
                whole = true;
                if decoding {
                    decompress_error = decompressor.finish().err();
                }
                break;
            }
        };
        read += data.len() as u64;
        if let Some(hasher) = &mut hasher {
            hasher.update(&data);
        }
        if discard > 0 {
            let n = usize::try_from(discard).unwrap_or(usize::MAX).min(data.len());
            discard -= n as u64;
            let _ = data.split_to(n);
        }
        for step in data.chunks(STEP) {
            if !decoding {
                break;
            }
            if let Err(e) = decompressor.write(step) {
                decompress_error = Some(e);
            }
            decoding = decompress_error.is_none() && !decompressor.sink().is_done();
        }
        if let Some(progress) = &progress {
            progress.bytes.store(read, Ordering::Relaxed);
            progress.entries.store(decompressor.sink().entries(), Ordering::Relaxed);
        }
        if !decoding && hasher.is_none() {
            break;
        }
    }
    if !whole && (decoding || hasher.is_some()) {
        return None;
    }
    let compression = decompressor.compression();
    let recorded = decompressor.recorded();
    drop(decompressor);
    let tar_bytes = scanner.position();
    let (visitor, outcome) = scanner.finish();
    Some(Scanned {
        visitor,
        outcome,
        decompress_error,
        compression,
        compressed_bytes: read,
        tar_bytes,
        digest: hasher.filter(|_| whole).map(Hasher::finish),
        recorded,
    })
}
