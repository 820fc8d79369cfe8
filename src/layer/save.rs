//! Saving one file of a layer: its bytes go to the client as they come out of the
//! decompressor, through a bounded channel into the response body, so a slow client
//! slows the decompressing thread and with it the registry read. The archive stops
//! right after the file's last byte.
//!
//! A read that is checked against the blob's digest ([`SaveVisitor::holding_last`])
//! keeps the file's last piece back: the digest is known only at the blob's end, and a
//! client given every byte of the file has a complete-looking file whatever follows.

use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::mpsc;

use super::tar::{Header, Visitor, Want};
use crate::error::BoxError;

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
    /// Whether the whole file was read (all of it sent, but the held piece).
    pub finished: bool,
    /// With [`SaveVisitor::holding_last`]: whether to keep the latest piece back.
    hold: bool,
    /// The piece kept back: the latest non-empty one.
    held: Option<Bytes>,
}

impl SaveVisitor {
    /// A visitor sending the entry at `index` (archive order, from 0) into `tx`.
    pub fn new(index: usize, tx: mpsc::Sender<Piece>) -> SaveVisitor {
        SaveVisitor { index, seen: 0, tx, finished: false, hold: false, held: None }
    }

    /// The same visitor, sending each piece only once the next one has come, so that
    /// the file's last piece stays here until [`SaveVisitor::take_last`]: it goes out
    /// only when the caller has checked the blob.
    pub fn holding_last(mut self) -> SaveVisitor {
        self.hold = true;
        self
    }

    /// The piece kept back (the file's last, once [`SaveVisitor::finished`]).
    pub fn take_last(&mut self) -> Option<Bytes> {
        self.held.take()
    }

    /// Passes `piece` on; `false` when the client has gone.
    fn send(&mut self, piece: Bytes) -> bool {
        let piece = if self.hold {
            match self.held.replace(piece) {
                Some(previous) => previous,
                None => return true,
            }
        } else {
            piece
        };
        self.tx.blocking_send(Ok(piece)).is_ok()
    }
}

impl Visitor for SaveVisitor {
    fn entry(&mut self, _header: Header) -> Want {
        Want::only_entry(self.index, &mut self.seen)
    }

    /// Runs on the decompressing thread, where blocking on the channel is the point.
    fn data(&mut self, bytes: &[u8], end: bool) -> ControlFlow<()> {
        if !bytes.is_empty() && !self.send(Bytes::copy_from_slice(bytes)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tar::TypeFlag;

    fn header() -> Header {
        Header::sample("a", TypeFlag::File, 6, "", 0)
    }

    fn drain(rx: &mut mpsc::Receiver<Piece>) -> Vec<Bytes> {
        std::iter::from_fn(|| rx.try_recv().ok()).map(Result::unwrap).collect()
    }

    #[test]
    fn a_holding_visitor_keeps_the_last_non_empty_piece_back() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut v = SaveVisitor::new(0, tx).holding_last();
        assert_eq!(v.entry(header()), Want::Data);
        assert!(v.data(b"ab", false).is_continue());
        assert!(drain(&mut rx).is_empty(), "the first piece could be the last");
        assert!(v.data(b"cd", false).is_continue());
        assert!(v.data(b"", false).is_continue());
        assert!(v.data(b"ef", true).is_break());
        assert_eq!(drain(&mut rx), [Bytes::from_static(b"ab"), Bytes::from_static(b"cd")]);
        assert!(v.finished);
        assert_eq!(v.take_last().as_deref(), Some(&b"ef"[..]));

        // An empty last part: the piece before it is the one kept.
        let (tx, mut rx) = mpsc::channel(8);
        let mut v = SaveVisitor::new(0, tx).holding_last();
        v.entry(header());
        assert!(v.data(b"abcdef", false).is_continue());
        assert!(v.data(b"", true).is_break());
        assert!(drain(&mut rx).is_empty());
        assert_eq!(v.take_last().as_deref(), Some(&b"abcdef"[..]));
    }

    #[test]
    fn a_plain_visitor_sends_every_piece_at_once() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut v = SaveVisitor::new(0, tx);
        v.entry(header());
        assert!(v.data(b"abc", false).is_continue());
        assert!(v.data(b"def", true).is_break());
        assert_eq!(drain(&mut rx), [Bytes::from_static(b"abc"), Bytes::from_static(b"def")]);
        assert!(v.take_last().is_none());
    }
}
