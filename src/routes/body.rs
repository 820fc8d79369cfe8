//! The body of every layerpipe response: a small page held whole, a blob streamed
//! from a registry, one file of a layer as it is decompressed, or a page in parts. An enum rather than
//! a boxed trait object keeps the hot path (one call per frame of a multi-GB layer)
//! free of dynamic dispatch and allocation.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::download::BlobBody;
use crate::error::BoxError;
use crate::layer::save::EntryBody;

/// A response body.
pub enum Body {
    /// A page or message, sent in one frame (`None` once sent, or for an empty body).
    Full(Option<Bytes>),
    /// A blob passing through from the registry.
    Blob(BlobBody),
    /// One file of a layer, as it is decompressed.
    Entry(EntryBody),
    /// A page sent in parts as they are ready (a first visit's progress); it ends when
    /// the sender is dropped.
    Parts(tokio::sync::mpsc::Receiver<Bytes>),
}

impl Body {
    /// An empty body.
    pub fn empty() -> Body {
        Body::Full(None)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::Full(Some(Bytes::from(s)))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::Full(Some(Bytes::from_static(s.as_bytes())))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Blob(blob) => Pin::new(blob).poll_frame(cx),
            Body::Entry(entry) => Pin::new(entry).poll_frame(cx),
            Body::Parts(rx) => rx.poll_recv(cx).map(|part| part.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(bytes) => bytes.is_none(),
            Body::Blob(blob) => blob.is_end_stream(),
            Body::Entry(entry) => entry.is_end_stream(),
            Body::Parts(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Blob(blob) => blob.size_hint(),
            Body::Entry(entry) => entry.size_hint(),
            Body::Parts(_) => SizeHint::default(),
        }
    }
}
