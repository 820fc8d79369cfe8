//! Saving one file of a layer: its bytes go to the client as they come out of the
//! decompressor, through a bounded channel into the response body, so a slow client
//! slows the decompressing thread and with it the registry read. The archive stops
//! right after the file's last byte.

use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::mpsc;

use super::tar::{Header, Visitor, Want};
use crate::body::BoxError;

/// Pieces of a file queued for the client at most (each at most the decompressor's
/// output buffer, 32 KiB for gzip, 128 KiB for zstd).
pub const PIECES_IN_FLIGHT: usize = 8;

/// What the body receives: a piece of the file, or why it cannot be finished.
pub type Piece = Result<Bytes, BoxError>;

/// Sends the bytes of the entry at an index into a channel, then stops the archive.
pub struct SaveVisitor {
    index: usize,
    seen: usize,
    tx: mpsc::Sender<Piece>,
    /// Whether the whole file was sent.
    pub finished: bool,
}

impl SaveVisitor {
    /// A visitor sending the entry at `index` (archive order, from 0) into `tx`.
    pub fn new(index: usize, tx: mpsc::Sender<Piece>) -> SaveVisitor {
        SaveVisitor { index, seen: 0, tx, finished: false }
    }
}

impl Visitor for SaveVisitor {
    fn entry(&mut self, _header: Header) -> Want {
        Want::only_entry(self.index, &mut self.seen)
    }

    /// Runs on the decompressing thread, where blocking on the channel is the point.
    fn data(&mut self, bytes: &[u8], end: bool) -> ControlFlow<()> {
        if !bytes.is_empty() && self.tx.blocking_send(Ok(Bytes::copy_from_slice(bytes))).is_err() {
            // The client has gone: nothing more to read.
            return ControlFlow::Break(());
        }
        if end {
            self.finished = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// The response body of a saved file: the pieces from the channel, `length` bytes in
/// all. Fewer, or an error piece, end the body in an error so that hyper aborts the
/// connection and the client sees a failed download, never a short file.
pub struct EntryBody {
    rx: mpsc::Receiver<Piece>,
    remaining: u64,
}

impl EntryBody {
    /// A body of `length` bytes arriving on `rx`.
    pub fn new(rx: mpsc::Receiver<Piece>, length: u64) -> EntryBody {
        EntryBody { rx, remaining: length }
    }

    /// Polls the next piece.
    pub fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        Poll::Ready(match ready!(this.rx.poll_recv(cx)) {
            Some(Ok(data)) => {
                this.remaining = this.remaining.saturating_sub(data.len() as u64);
                Some(Ok(Frame::data(data)))
            }
            Some(Err(e)) => Some(Err(e)),
            None => Some(Err("the layer's stream ended before the file did".into())),
        })
    }

    /// True once every byte has been sent.
    pub fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    /// The bytes still to come.
    pub fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
