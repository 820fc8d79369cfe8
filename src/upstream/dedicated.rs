//! A blob's own HTTP/1.1 connection, driven by polling the blob's body.
//!
//! hyper-util's pooled client reads each connection in a task of its own and hands every
//! chunk over to the task that writes to the client, often on the other core: at 1 GiB/s
//! that is thousands of cross-thread wake-ups a second (BENCHMARKS.md). Here nothing is
//! spawned: the download's own task reads the registry when, and only when, it can write
//! on, as nginx does.
//!
//! Because the connection is the blob's alone, its read size can be chosen per blob: a
//! few downloads borrow large read buffers from a fixed [`ReadBufferPool`] (fewer system
//! calls per GiB), and the rest read `READ_MIN` at a time, so that memory stays bounded
//! however many downloads run.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use super::{BoxError, SendError};

/// What the connectors yield: TCP, with TLS for https.
pub type Stream = MaybeHttpsStream<TokioIo<TcpStream>>;

/// The address a blob connection reached, in its response's extensions: a registry on
/// loopback or a private network is a local link, which multipart never splits
/// ([`crate::upstream::multipart`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer(pub std::net::SocketAddr);

/// The remote address under TLS or not.
fn peer_of(stream: &Stream) -> Option<std::net::SocketAddr> {
    match stream {
        MaybeHttpsStream::Http(tcp) => tcp.inner().peer_addr().ok(),
        MaybeHttpsStream::Https(tls) => tls.inner().get_ref().0.inner().inner().peer_addr().ok(),
    }
}

type Connection = hyper::client::conn::http1::Connection<Stream, Empty<Bytes>>;

/// How much a blob connection reads at a time without a loan.
const READ_MIN: usize = 128 << 10;

/// How much a blob connection reads at a time with the largest loan. Measured against
/// 2 MiB in paired rounds (BENCHMARKS.md, "Page faults, read buffers and hashing
/// threads"): 1.04-1.16x the speed at 0.92-0.94x the CPU per GiB, for more peak RSS,
/// since every frame in flight keeps a buffer of this size alive.
const READ_MAX: usize = 4 << 20;

/// Read buffer beyond [`READ_MIN`] that all blob connections may borrow together.
const POOL_SIZE: usize = 8 << 20;

/// Read buffer beyond `READ_MIN`, lent to blob connections: the first downloads get
/// `READ_MAX`, the rest `READ_MIN` until a loan is returned.
#[derive(Clone)]
pub struct ReadBufferPool(Arc<AtomicUsize>);

impl Default for ReadBufferPool {
    /// A full pool.
    fn default() -> ReadBufferPool {
        ReadBufferPool(Arc::new(AtomicUsize::new(POOL_SIZE)))
    }
}

impl ReadBufferPool {
    /// As much of the pool as one connection may have, possibly nothing.
    pub fn lend(&self) -> ReadBufferLoan {
        let want = READ_MAX - READ_MIN;
        let left = self.0.fetch_update(Relaxed, Relaxed, |left| Some(left - left.min(want))).unwrap_or(0);
        ReadBufferLoan { pool: self.0.clone(), extra: left.min(want) }
    }
}

/// A connection's loan from the [`ReadBufferPool`], returned when it is dropped.
pub struct ReadBufferLoan {
    pool: Arc<AtomicUsize>,
    extra: usize,
}

impl ReadBufferLoan {
    /// How much the connection reads at a time.
    fn read_size(&self) -> usize {
        READ_MIN + self.extra
    }
}

impl Drop for ReadBufferLoan {
    fn drop(&mut self) {
        self.pool.fetch_add(self.extra, Relaxed);
    }
}

/// A response body whose connection is driven by polling the body.
pub struct DedicatedBody {
    /// `None` once the connection has finished (its outcome has reached `incoming`).
    connection: Option<Pin<Box<Connection>>>,
    /// The body the connection feeds.
    incoming: Incoming,
    /// The connection's read buffer, held as long as the body.
    _loan: ReadBufferLoan,
}

impl Body for DedicatedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        // A frame already read goes out first; only then is the socket read again.
        if let Poll::Ready(frame) = Pin::new(&mut this.incoming).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if let Some(connection) = &mut this.connection {
            if connection.as_mut().poll(cx).is_ready() {
                // Done or failed: either way its last word is in `incoming`.
                this.connection = None;
            }
        }
        Pin::new(&mut this.incoming).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

/// Sends `request` on a new HTTP/1.1 connection from `connector` and answers once the
/// response headers are in, handing the connection to the body.
pub async fn send<C>(
    mut connector: C,
    mut request: Request<Empty<Bytes>>,
    loan: ReadBufferLoan,
) -> Result<Response<DedicatedBody>, SendError>
where
    C: Service<Uri, Response = Stream, Error = BoxError>,
{
    let uri = request.uri().clone();
    let io = connector.call(uri.clone()).await.map_err(SendError::connecting)?;
    let peer = peer_of(&io);
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .read_buf_exact_size(Some(loan.read_size()))
        .handshake(io)
        .await
        .map_err(SendError::connecting)?;
    // HTTP/1.1 wants the origin form and a Host header, as the pooled client sends.
    request.headers_mut().insert(header::HOST, host_header(&uri).map_err(SendError::sending)?);
    *request.uri_mut() = uri.path_and_query().map_or("/", |p| p.as_str()).parse().map_err(SendError::sending)?;
    let mut connection = Some(Box::pin(connection));
    let mut responding = std::pin::pin!(sender.send_request(request));
    // The connection must be driven for the response to arrive; nothing else drives it.
    let response = std::future::poll_fn(|cx| {
        if let Some(c) = &mut connection {
            if c.as_mut().poll(cx).is_ready() {
                connection = None;
            }
        }
        responding.as_mut().poll(cx)
    })
    .await
    .map_err(SendError::sending)?;
    let mut response = response.map(|incoming| DedicatedBody { connection, incoming, _loan: loan });
    if let Some(peer) = peer {
        response.extensions_mut().insert(Peer(peer));
    }
    Ok(response)
}

/// `host[:port]` of `uri`, with the port only when it is not the scheme's default.
fn host_header(uri: &Uri) -> Result<HeaderValue, header::InvalidHeaderValue> {
    let host = uri.host().unwrap_or_default();
    let default_port = if uri.scheme_str() == Some("https") { 443 } else { 80 };
    match uri.port_u16() {
        Some(port) if port != default_port => HeaderValue::try_from(format!("{host}:{port}")),
        _ => HeaderValue::try_from(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loans_come_from_a_fixed_pool_and_go_back_to_it() {
        let pool = ReadBufferPool::default();
        let full = POOL_SIZE / (READ_MAX - READ_MIN);
        let loans: Vec<_> = (0..full + 2).map(|_| pool.lend()).collect();
        let sizes: Vec<_> = loans.iter().map(ReadBufferLoan::read_size).collect();
        assert!(sizes[..full].iter().all(|&s| s == READ_MAX), "{sizes:?}");
        assert!(sizes.iter().all(|&s| (READ_MIN..=READ_MAX).contains(&s)), "{sizes:?}");
        assert_eq!(sizes.iter().map(|s| s - READ_MIN).sum::<usize>(), POOL_SIZE);
        assert_eq!(sizes[full + 1], READ_MIN, "the pool is empty by then");
        drop(loans);
        assert_eq!(pool.lend().read_size(), READ_MAX);
    }

    #[test]
    fn host_headers_leave_out_default_ports() {
        let host = |s: &str| host_header(&s.parse().unwrap()).unwrap();
        assert_eq!(host("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(host("http://r.example:80/v2/"), "r.example");
        assert_eq!(host("https://r.example/v2/"), "r.example");
        assert_eq!(host("https://r.example:80/v2/"), "r.example:80");
        assert_eq!(host("http://[::1]:5000/"), "[::1]:5000");
    }
}
