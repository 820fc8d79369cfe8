//! A client that takes nothing. Danger: a download, preview or save holds a slot (and
//! an upstream connection) for as long as its response is being written; a client that
//! asks and then never reads would hold them forever, and 32 such clients take every
//! preview and save slot. Waiting on a client is rightly not counted as a registry's
//! slowness (`timeouts.idle_read_secs`), so this bounds it separately:
//!
//! - [`Watched`] wraps a connection's socket and notes when a write is refused (the
//!   client's window is full) and when one goes through again;
//! - [`ended_when_idle`] ends a connection whose writes have been refused for
//!   `timeouts.client_idle_secs` in a row: its response body is dropped, which frees its
//!   slot and closes its upstream fetch, and `layerpipe_client_idle_closed_total{route}`
//!   counts it.
//!
//! A client that reads slowly but steadily is never ended: each write that goes through
//! starts the count again. Known gap: a client that reads one byte a minute keeps its
//! connection; the download's own timeouts do not cover that either.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a connection's writes have done lately, shared with its watchdog.
#[derive(Debug)]
pub struct Progress {
    /// When this connection started: the clock the other fields count on.
    start: Instant,
    /// Milliseconds after `start` when a write was first refused since the last one
    /// that went through; 0 while writes go through.
    refused_since_ms: AtomicU64,
    /// The route of the request being answered, for the metric.
    route: Mutex<&'static str>,
}

impl Progress {
    /// A fresh record for a new connection.
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress { start: Instant::now(), refused_since_ms: AtomicU64::new(0), route: Mutex::new("other") })
    }

    /// The request now answered on this connection is for `route`.
    pub fn answering(&self, route: &'static str) {
        *self.route.lock().unwrap_or_else(|e| e.into_inner()) = route;
    }

    /// The route of the request last answered.
    pub fn route(&self) -> &'static str {
        *self.route.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        // Never 0, which means "not refused".
        (self.start.elapsed().as_millis() as u64).max(1)
    }

    fn wrote(&self, refused: bool) {
        if !refused {
            self.refused_since_ms.store(0, Relaxed);
        } else if self.refused_since_ms.load(Relaxed) == 0 {
            self.refused_since_ms.store(self.now_ms(), Relaxed);
        }
    }

    /// How long writes have been refused in a row, if they are.
    fn refused_for(&self) -> Option<Duration> {
        match self.refused_since_ms.load(Relaxed) {
            0 => None,
            since => Some(Duration::from_millis(self.now_ms().saturating_sub(since))),
        }
    }
}

/// A socket whose writes report to a [`Progress`].
pub struct Watched<S> {
    inner: S,
    progress: Arc<Progress>,
}

impl<S> Watched<S> {
    /// `inner`, reporting to `progress`.
    pub fn new(inner: S, progress: Arc<Progress>) -> Watched<S> {
        Watched { inner, progress }
    }

    fn noted<T>(&self, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.progress.wrote(polled.is_pending());
        polled
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.noted(polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.noted(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Runs `connection` until it ends, or until its writes have been refused for `idle`
/// in a row; then drops it and answers the route it was answering.
pub async fn ended_when_idle<F: Future>(
    connection: F,
    progress: &Progress,
    idle: Duration,
) -> Result<F::Output, &'static str> {
    // Checked a few times within `idle`: a connection ends at most a quarter late.
    let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let watchdog = async {
        loop {
            tokio::time::sleep(every).await;
            if progress.refused_for().is_some_and(|d| d >= idle) {
                return progress.route();
            }
        }
    };
    tokio::select! {
        output = connection => Ok(output),
        route = watchdog => Err(route),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    #[tokio::test]
    async fn a_client_that_reads_nothing_is_ended_and_one_that_reads_is_not() {
        let idle = Duration::from_millis(300);
        // A pipe with a small buffer whose far end never reads: writes are soon refused.
        let (near, _far) = tokio::io::duplex(1024);
        let progress = Progress::new();
        progress.answering("save");
        let mut stuck = Watched::new(near, progress.clone());
        let writing = async move {
            loop {
                stuck.write_all(&[0u8; 4096]).await.unwrap();
            }
        };
        let started = Instant::now();
        let ended = ended_when_idle(writing, &progress, idle).await;
        assert_eq!(ended.err(), Some("save"));
        assert!(started.elapsed() >= idle, "ended before its time");

        // The same pipe read steadily: never ended.
        let (near, mut far) = tokio::io::duplex(1024);
        let progress = Progress::new();
        let mut read = Watched::new(near, progress.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if tokio::io::AsyncReadExt::read(&mut far, &mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
            }
        });
        let writing = async move {
            for _ in 0..100 {
                read.write_all(&[0u8; 256]).await.unwrap();
            }
        };
        assert!(ended_when_idle(writing, &progress, idle).await.is_ok());
    }
}
