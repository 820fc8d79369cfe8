//! One blob over several connections, in order, within a budget. (About 700 lines in one
//! file: the judge, the parts and the reassembly share one budget and one state machine.)
//!
//! A download starts as it always has: one dedicated connection, its frames passed on as
//! they come. Only a large blob (or client range) from a registry that is not on a local
//! link is watched: once its first connection has streamed for `multipart.probe_ms`,
//! [`judge`] decides whether the link is what holds the download back. A link that gives
//! one TCP connection a fraction of the pipe (a CDN's per-connection shaping, long round
//! trips) shows as a rate below `multipart.capped_below_bytes_per_sec` while the download
//! waits on it; a slow client, a busy CPU and a local link never split: no extra
//! connection, no copy, no buffer.
//!
//! A capped download reserves its window from the process-wide budget (`connections ×
//! chunk_bytes`; none left means it stays on one connection), lets its first connection
//! run on to a split point one chunk ahead, and asks for the rest in consecutive ranges
//! of `chunk_bytes`, each over a connection of its own, at most `connections` at once.
//! Chunks are held until the client has taken the ones before them, so no chunk is
//! fetched more than the window ahead of the client: memory per download is the window,
//! and in all the budget. Nothing goes to disk.
//!
//! The first chunk's answer is the proof that ranges are honoured: a 206 whose
//! `Content-Range` names the range and the blob's total. Until it arrives the first
//! connection is kept; an answer of 200 (the registry ignores `Range`), or a first chunk
//! that cannot be had, leaves the download on its first connection as if nothing had
//! been tried. After that, a chunk that breaks (or, once any chunk's 206 has shown
//! that ranges work, is answered 200 after all: a CDN node that ignores `Range` behind
//! one that honoured it) is asked for again from where
//! it broke, up to `retries.attempts` times: blobs are content-addressed, and the
//! digest is still checked over the whole stream by [`crate::download`], so a retried
//! range cannot slip wrong bytes through. A chunk that cannot be had within its tries
//! does not end the download while the registry still serves the blob: the chunks are
//! dropped and the rest comes over one connection from where the client is (a range
//! from there, or the whole blob read past the bytes the client has), as if the
//! download had never split.
//!
//! Which URL a chunk comes from (the CDN's, again after a signed URL expires) and with
//! which credentials is the registry's business: see [`RangeSource`].

pub mod judge;

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header;
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::dedicated::Peer;
use super::{BodyError, UpstreamBody};
use crate::config::Config;
use crate::error::Error;
use crate::range::ByteRange;
use judge::{Probe, Verdict};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the ranges of one blob come from. The registry implements it: it alone knows
/// the blob's URL (the CDN's, when it redirected there), which origin may see
/// credentials, and how to get a fresh URL when a signed one expires.
pub trait RangeSource: Send + Sync + 'static {
    /// A `GET` of bytes `first..=last` of the blob, answered as the server answers;
    /// [`Fetch`] judges the answer.
    fn fetch(&self, first: u64, last: u64) -> BoxFuture<'_, Result<Response<UpstreamBody>, Error>>;
}

/// The budget is counted in KiB, so that tokio's `u32` permit counts cover any window.
const PERMIT_BYTES: u64 = 1024;

/// Multipart settings and the process-wide budget; one per process, its clones sharing
/// the budget (downloads and the explorer's first reads).
#[derive(Clone)]
pub struct Multipart {
    settings: Arc<Settings>,
    budget: Arc<Semaphore>,
}

/// `multipart.*` and what else a fetch needs from the config.
#[derive(Debug)]
struct Settings {
    connections: usize,
    chunk: u64,
    min_size: u64,
    probe: Duration,
    capped_below: u64,
    /// Whether a registry on a loopback or private address may be split ([`judge`]).
    split_local: bool,
    /// Tries per chunk, the first included.
    attempts: u32,
    /// A chunk's connection silent this long is dropped and the chunk asked for again.
    /// Half the download's idle timeout, so that the retry has the other half.
    idle: Duration,
}

impl Multipart {
    /// Settings and budget from `config`.
    pub fn new(config: &Config) -> Multipart {
        let m = &config.multipart;
        let settings = Settings {
            connections: m.connections,
            chunk: m.chunk_bytes as u64,
            min_size: m.min_blob_bytes,
            probe: Duration::from_millis(m.probe_ms),
            capped_below: m.capped_below_bytes_per_sec,
            split_local: m.split_local_links,
            attempts: config.retries.attempts,
            idle: config.timeouts.idle_read() / 2,
        };
        let permits = (m.budget_bytes as u64 / PERMIT_BYTES) as usize;
        Multipart { settings: Arc::new(settings), budget: Arc::new(Semaphore::new(permits)) }
    }

    /// What is left of the budget, in bytes (for tests and metrics).
    pub fn budget_left(&self) -> u64 {
        self.budget.available_permits() as u64 * PERMIT_BYTES
    }

    /// The plan for a blob response, when it may be fetched in parts: a GET answered 200
    /// with a `Content-Length`, or 206 with a `Content-Range` carrying the total, at
    /// least `min_blob_bytes` long, from a registry that is not on a local link
    /// ([`judge::may_split`]). `source` is asked only then.
    pub fn plan(
        &self,
        response: &Response<UpstreamBody>,
        source: impl FnOnce() -> Option<Arc<dyn RangeSource>>,
    ) -> Option<Plan> {
        if self.settings.connections < 2 || self.settings.capped_below == 0 {
            return None;
        }
        let peer = response.extensions().get::<Peer>().map(|Peer(addr)| *addr);
        if !judge::may_split(peer, self.settings.split_local) {
            return None;
        }
        let headers = response.headers();
        let (start, end, total) = match response.status() {
            StatusCode::OK => {
                let length = crate::range::content_length(headers)?;
                (0, length, length)
            }
            StatusCode::PARTIAL_CONTENT => {
                let range = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
                let (first, last, total) = content_range(range)?;
                (first, last + 1, total)
            }
            _ => return None,
        };
        if end - start < self.settings.min_size.max(2 * self.settings.chunk) {
            return None;
        }
        Some(Plan {
            settings: self.settings.clone(),
            budget: self.budget.clone(),
            source: source()?,
            start,
            end,
            total,
        })
    }
}

/// How one response may continue in parts.
pub struct Plan {
    settings: Arc<Settings>,
    budget: Arc<Semaphore>,
    source: Arc<dyn RangeSource>,
    /// The first byte the response carries, and the end (exclusive), as offsets in the blob.
    start: u64,
    end: u64,
    /// The blob's size, which every chunk's `Content-Range` must name.
    total: u64,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plan({}..{} of {})", self.start, self.end, self.total)
    }
}

/// `bytes first-last/total` with a known total.
fn content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse::<u64>().ok()).flatten();
    let (first, last, total) = (digits(first)?, digits(last)?, digits(total)?);
    (first <= last && last < total).then_some((first, last, total))
}

/// Why a download's stream failed.
#[derive(Debug)]
pub enum FetchError {
    /// The first connection broke.
    Stream(BodyError),
    /// A chunk could not be had within its retries.
    Chunk(ChunkError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Stream(e) => e.fmt(f),
            FetchError::Chunk(e) => write!(f, "a range of the blob failed: {e}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// Why one try at a chunk failed. Messages carry no URL: a CDN's holds its signature.
#[derive(Debug)]
pub enum ChunkError {
    /// The server answered 200 to a range: it ignores `Range`.
    Ignored,
    /// No response (connect, timeout, refusal), as the user would see it.
    Request(Error),
    /// An answer that is neither 206 nor 200.
    Status(StatusCode),
    /// A 206 for other bytes than those asked for, or of a blob of another size.
    OtherBytes,
    /// The connection broke mid-chunk.
    Broken(BodyError),
    /// The connection went silent.
    Stalled,
    /// The body ended before the range did.
    Short,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::Ignored => f.write_str("the server ignores Range"),
            ChunkError::Request(e) => write!(f, "{e}"),
            ChunkError::Status(s) => write!(f, "the server answered {s} to a range"),
            ChunkError::OtherBytes => f.write_str("the server answered a range with other bytes"),
            ChunkError::Broken(e) => write!(f, "the connection broke: {e}"),
            ChunkError::Stalled => f.write_str("the connection went silent"),
            ChunkError::Short => f.write_str("the range ended early"),
        }
    }
}

/// The stream of a download's bytes, from its first connection and, once that turns out
/// capped, from chunks; see the module docs.
pub struct Fetch {
    /// The response's own connection; `None` once the chunks have taken over.
    first: Option<UpstreamBody>,
    /// Bytes of the first connection's last frame beyond the split point, kept in case
    /// the chunks fail to start and the first connection carries on.
    first_rest: Option<Bytes>,
    /// The offset in the blob of the next byte out.
    pos: u64,
    /// Bytes of `first` to drop before any is passed on: a connection resumed from
    /// `pos` that was answered with the whole blob.
    skip: u64,
    /// Where a resumed connection's bytes end (the response's end), when it may carry
    /// more (the whole blob).
    stop: Option<u64>,
    mode: Mode,
}

enum Mode {
    /// One connection, as always.
    Single,
    /// One connection, timed until its rate is judged.
    Watching { plan: Box<Plan>, probe: Probe },
    /// The rest comes in chunks.
    Split(Box<Chunked>),
    /// A chunk could not be had: the rest is being asked for over one connection.
    Resuming(Box<Resuming>),
}

/// The request that takes a download back to one connection, from where the client is.
struct Resuming {
    connecting: BoxFuture<'static, Result<Response<UpstreamBody>, Error>>,
    /// The response's end (exclusive) and the blob's size.
    end: u64,
    total: u64,
}

/// A download in parts.
struct Chunked {
    plan: Plan,
    /// Where the first connection stops and the first chunk starts.
    split: u64,
    /// Chunks held or in flight at most; the first connection counts as one while it runs.
    window: usize,
    /// The window's share of the budget, returned when the download ends.
    _reserved: OwnedSemaphorePermit,
    /// The first byte of the next chunk to ask for.
    next: u64,
    /// Chunks asked for, in order.
    pending: VecDeque<ChunkTask>,
    /// The frames of the chunk being sent.
    current: VecDeque<Bytes>,
    /// Set by the first 206 of exactly the range asked for, shared by the chunks' tasks.
    ranges_work: Arc<AtomicBool>,
}

/// One chunk on its way, fetched by a task of its own; aborted if the download ends first.
struct ChunkTask {
    done: oneshot::Receiver<Result<Bytes, ChunkError>>,
    task: JoinHandle<()>,
}

impl Drop for ChunkTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fetch {
    /// The stream of `first`, continued in parts when `plan` allows and the link needs it.
    pub fn new(first: UpstreamBody, plan: Option<Plan>) -> Fetch {
        let (pos, mode) = match plan {
            Some(plan) => {
                let probe = Probe::new(plan.settings.probe, plan.settings.capped_below);
                (plan.start, Mode::Watching { plan: Box::new(plan), probe })
            }
            None => (0, Mode::Single),
        };
        Fetch { first: Some(first), first_rest: None, pos, skip: 0, stop: None, mode }
    }

    /// Whether the download has gone over to chunks (for tests and logs).
    pub fn is_split(&self) -> bool {
        matches!(self.mode, Mode::Split(_))
    }

    /// After a frame of `len` bytes from a watched first connection: time to split?
    /// ([`judge`]).
    fn judge(&mut self, len: u64) {
        let Mode::Watching { probe, .. } = &mut self.mode else { return };
        let Some(verdict) = probe.frame(len, Instant::now()) else { return };
        let Mode::Watching { plan, .. } = std::mem::replace(&mut self.mode, Mode::Single) else { return };
        let Verdict::Capped { rate } = verdict else {
            tracing::debug!(?verdict, "download stays on one connection");
            return;
        };
        if let Some(chunked) = Chunked::start(*plan, self.pos) {
            tracing::debug!(rate, split = chunked.split, window = chunked.window, "download split into ranges");
            self.mode = Mode::Split(Box::new(chunked));
        }
    }

    /// The next frame of the first connection, cut at `limit` (the rest kept), once the
    /// bytes to `skip` are dropped.
    fn poll_first(
        &mut self,
        cx: &mut Context<'_>,
        limit: Option<u64>,
    ) -> Poll<Option<Result<Frame<Bytes>, FetchError>>> {
        loop {
            let Some(first) = &mut self.first else { return Poll::Ready(None) };
            let frame = match self.first_rest.take() {
                Some(rest) => Frame::data(rest),
                None => match ready!(Pin::new(first).poll_frame(cx)) {
                    Some(Ok(frame)) => frame,
                    Some(Err(e)) => return Poll::Ready(Some(Err(FetchError::Stream(e)))),
                    None => return Poll::Ready(None),
                },
            };
            let Some(mut data) = frame.data_ref().cloned() else { return Poll::Ready(Some(Ok(frame))) };
            if self.skip > 0 {
                let n = self.skip.min(data.len() as u64);
                self.skip -= n;
                let _ = data.split_to(n as usize);
                if data.is_empty() {
                    continue;
                }
            }
            if let Some(limit) = limit {
                let room = limit.saturating_sub(self.pos);
                if (data.len() as u64) > room {
                    self.first_rest = Some(data.split_off(room as usize));
                }
            }
            self.pos += data.len() as u64;
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
    }

    /// The one connection's next frame, up to where a resumed one stops.
    fn poll_single(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, FetchError>>> {
        if self.stop.is_some_and(|stop| self.pos >= stop) {
            return Poll::Ready(None);
        }
        self.poll_first(cx, self.stop)
    }

    /// Leaves the chunks for one connection from `pos`, after `failed` (a chunk that
    /// could not be had within its tries).
    fn resume(&mut self, failed: ChunkError) {
        let Mode::Split(c) = &self.mode else { unreachable!("only called when split") };
        tracing::debug!(error = %failed, pos = self.pos, "a range failed: the download goes on over one connection");
        let (source, pos, end, total) = (c.plan.source.clone(), self.pos, c.plan.end, c.plan.total);
        let connecting = Box::pin(async move { source.fetch(pos, end - 1).await });
        // Dropping the chunks aborts those in flight and returns the window to the budget.
        self.mode = Mode::Resuming(Box::new(Resuming { connecting, end, total }));
    }

    fn poll_resuming(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, FetchError>>> {
        let Mode::Resuming(r) = &mut self.mode else { unreachable!("only called when resuming") };
        let answer = ready!(r.connecting.as_mut().poll(cx));
        let (end, total) = (r.end, r.total);
        self.mode = Mode::Single;
        match answer.map_err(ChunkError::Request).and_then(|response| resumed(response, self.pos, end, total)) {
            Ok((body, skip)) => {
                (self.first, self.first_rest, self.skip, self.stop) = (Some(body), None, skip, Some(end));
                self.poll_single(cx)
            }
            Err(e) => Poll::Ready(Some(Err(FetchError::Chunk(e)))),
        }
    }

    fn poll_split(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, FetchError>>> {
        loop {
            let Mode::Split(c) = &mut self.mode else { unreachable!("only called when split") };
            if let Some(data) = c.current.pop_front() {
                self.pos += data.len() as u64;
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if self.pos >= c.plan.end {
                return Poll::Ready(None);
            }
            c.top_up(self.first.is_some());
            if self.first.is_some() && self.pos < c.split {
                let split = c.split;
                return self.poll_first(cx, Some(split));
            }
            let Some(head) = c.pending.front_mut() else {
                // Nothing pending past the end cannot happen: top_up asks while bytes remain.
                return Poll::Ready(None);
            };
            let outcome = ready!(Pin::new(&mut head.done).poll(cx)).unwrap_or(Err(ChunkError::Stalled));
            c.pending.pop_front();
            match outcome {
                Ok(bytes) => {
                    c.current = frames_of(bytes);
                    // The first chunk arrived whole: ranges work, the first connection can go.
                    self.first = None;
                    self.first_rest = None;
                }
                Err(e) if self.first.is_some() => {
                    tracing::debug!(error = %e, "ranges unusable: the download stays on one connection");
                    self.mode = Mode::Single;
                    return self.poll_first(cx, None);
                }
                Err(e) => {
                    self.resume(e);
                    return self.poll_resuming(cx);
                }
            }
        }
    }
}

/// The body of a connection resumed from `pos` to `end` (exclusive) of a blob of
/// `total` bytes, and how many of its bytes come before `pos`: a 206 must carry exactly
/// that range; a 200 is the whole blob, read past the bytes the client has.
fn resumed(
    response: Response<UpstreamBody>,
    pos: u64,
    end: u64,
    total: u64,
) -> Result<(UpstreamBody, u64), ChunkError> {
    let length = crate::range::content_length(response.headers());
    match response.status() {
        StatusCode::PARTIAL_CONTENT => {
            let range = response.headers().get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok());
            let answered = range.is_some_and(|v| {
                content_range(v) == Some((pos, end - 1, total))
                    && ByteRange::From { first: pos, last: Some(end - 1) }.answered_by(v, length)
            });
            if !answered {
                return Err(ChunkError::OtherBytes);
            }
            Ok((response.into_body(), 0))
        }
        StatusCode::OK if length.is_none_or(|length| length == total) => Ok((response.into_body(), pos)),
        StatusCode::OK => Err(ChunkError::OtherBytes),
        status => Err(ChunkError::Status(status)),
    }
}

impl Chunked {
    /// Reserves the window from the budget and sets the split one chunk past `pos`; `None`
    /// when the budget has no room for two chunks or too little of the blob is left.
    fn start(plan: Plan, pos: u64) -> Option<Chunked> {
        let chunk = plan.settings.chunk;
        let split = pos.checked_add(chunk)?;
        if split >= plan.end {
            return None;
        }
        let chunks_left = (plan.end - split).div_ceil(chunk);
        // The first connection counts as one while it runs.
        let wanted = (plan.settings.connections as u64).min(chunks_left + 1);
        let per_chunk = chunk.div_ceil(PERMIT_BYTES);
        let mut window = wanted;
        let reserved = loop {
            if window < 2 {
                return None;
            }
            let permits = u32::try_from(window * per_chunk).ok()?;
            match plan.budget.clone().try_acquire_many_owned(permits) {
                Ok(permit) => break permit,
                Err(_) => window -= 1,
            }
        };
        Some(Chunked {
            split,
            window: window as usize,
            _reserved: reserved,
            next: split,
            pending: VecDeque::new(),
            current: VecDeque::new(),
            ranges_work: Arc::default(),
            plan,
        })
    }

    /// Asks for chunks while the window has room.
    fn top_up(&mut self, first_running: bool) {
        let held = usize::from(!self.current.is_empty()) + usize::from(first_running);
        while self.next < self.plan.end && self.pending.len() + held < self.window {
            let last = (self.next + self.plan.settings.chunk).min(self.plan.end) - 1;
            self.pending.push_back(self.spawn(self.next, last));
            self.next = last + 1;
        }
    }

    fn spawn(&self, first: u64, last: u64) -> ChunkTask {
        let (send, done) = oneshot::channel();
        let source = self.plan.source.clone();
        let settings = self.plan.settings.clone();
        let total = self.plan.total;
        let ranges_work = self.ranges_work.clone();
        let task = tokio::spawn(async move {
            let _ = send.send(fetch_chunk(&*source, &settings, &ranges_work, first, last, total).await);
        });
        ChunkTask { done, task }
    }
}

/// How large the frames are that a chunk is handed on in: small enough that hashing and
/// writing to the client interleave.
const FRAME: usize = 256 << 10;

/// A chunk as frames, slices of it without copies.
fn frames_of(mut bytes: Bytes) -> VecDeque<Bytes> {
    let mut frames = VecDeque::with_capacity(bytes.len().div_ceil(FRAME));
    while !bytes.is_empty() {
        frames.push_back(bytes.split_to(FRAME.min(bytes.len())));
    }
    frames
}

/// Bytes `first..=last` whole, asked for again from where a try broke off. A 200 is
/// asked for again only once some chunk's 206 has shown that ranges work (`ranges_work`):
/// before that it is the server's answer that it ignores `Range`.
///
/// They are copied into one buffer of the chunk's size: each frame hyper reads is a
/// slice of a read buffer (128 KiB or more) that stays allocated as long as any slice
/// of it lives, so holding small frames would hold several times their size.
async fn fetch_chunk(
    source: &dyn RangeSource,
    settings: &Settings,
    ranges_work: &AtomicBool,
    first: u64,
    last: u64,
    total: u64,
) -> Result<Bytes, ChunkError> {
    let mut buffer = BytesMut::with_capacity((last + 1 - first) as usize);
    let mut next = first;
    let mut tries = 0;
    loop {
        tries += 1;
        match fetch_once(source, settings.idle, ranges_work, next, last, total, &mut buffer).await {
            Ok(()) => return Ok(buffer.freeze()),
            // Before any 206, a 200 says the server ignores `Range`; after one, it is a
            // server (a CDN node) that honoured it a moment ago: ask again.
            Err(e @ ChunkError::Ignored) if !ranges_work.load(Ordering::Relaxed) => return Err(e),
            Err(e) if tries >= settings.attempts => return Err(e),
            Err(e) => {
                next = first + buffer.len() as u64;
                tracing::debug!(error = %e, first, next, last, tries, "asking for a range again");
            }
        }
    }
}

/// One try at bytes `next..=last`, appending what arrives to `buffer`; a 206 of exactly
/// those bytes sets `ranges_work`.
async fn fetch_once(
    source: &dyn RangeSource,
    idle: Duration,
    ranges_work: &AtomicBool,
    next: u64,
    last: u64,
    total: u64,
    buffer: &mut BytesMut,
) -> Result<(), ChunkError> {
    let response = source.fetch(next, last).await.map_err(ChunkError::Request)?;
    match response.status() {
        StatusCode::PARTIAL_CONTENT => {}
        StatusCode::OK => return Err(ChunkError::Ignored),
        status => return Err(ChunkError::Status(status)),
    }
    let answered = response.headers().get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        content_range(v) == Some((next, last, total))
            && ByteRange::From { first: next, last: Some(last) }
                .answered_by(v, crate::range::content_length(response.headers()))
    });
    if !answered {
        return Err(ChunkError::OtherBytes);
    }
    ranges_work.store(true, Ordering::Relaxed);
    let mut body = response.into_body();
    let mut left = last + 1 - next;
    while left > 0 {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(ChunkError::Stalled),
            Ok(None) => return Err(ChunkError::Short),
            Ok(Some(Err(e))) => return Err(ChunkError::Broken(e)),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if data.len() as u64 > left {
                return Err(ChunkError::OtherBytes);
            }
            left -= data.len() as u64;
            buffer.extend_from_slice(&data);
        }
    }
    Ok(())
}

impl Body for Fetch {
    type Data = Bytes;
    type Error = FetchError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, FetchError>>> {
        let this = self.get_mut();
        match this.mode {
            Mode::Single => this.poll_single(cx),
            Mode::Watching { .. } => {
                let Poll::Ready(frame) = this.poll_first(cx, None) else {
                    if let Mode::Watching { probe, .. } = &mut this.mode {
                        probe.waiting(Instant::now());
                    }
                    return Poll::Pending;
                };
                if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
                    this.judge(data.map_or(0, |d| d.len() as u64));
                }
                Poll::Ready(frame)
            }
            Mode::Split(_) => this.poll_split(cx),
            Mode::Resuming(_) => this.poll_resuming(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.mode {
            Mode::Split(c) => self.pos >= c.plan.end,
            Mode::Resuming(_) => false,
            _ if self.stop.is_some_and(|stop| self.pos >= stop) => true,
            _ => self.first_rest.is_none() && self.first.as_ref().is_none_or(UpstreamBody::is_end_stream),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.mode, &self.first) {
            (Mode::Split(c), _) => SizeHint::with_exact(c.plan.end - self.pos),
            (Mode::Resuming(r), _) => SizeHint::with_exact(r.end - self.pos),
            (_, _) if self.stop.is_some() => SizeHint::with_exact(self.stop.unwrap_or(0).saturating_sub(self.pos)),
            (_, Some(first)) if self.first_rest.is_none() => first.size_hint(),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_need_the_total() {
        assert_eq!(content_range("bytes 0-99/1000"), Some((0, 99, 1000)));
        assert_eq!(content_range("bytes 900-999/1000"), Some((900, 999, 1000)));
        for bad in ["bytes 0-99/*", "bytes 0-1000/1000", "bytes 9-1/10", "bytes +1-2/10", "items 0-1/2", ""] {
            assert_eq!(content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_budget_is_counted_in_kib() {
        let mut config = Config::default();
        config.multipart.budget_bytes = 8 << 20;
        assert_eq!(Multipart::new(&config).budget_left(), 8 << 20);
    }
}
