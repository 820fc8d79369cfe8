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
//!
//! Over https the connection is not hyper's: TLS goes through rustls's unbuffered API
//! (`unbuffered.rs`), which reads the socket in one large buffer and decrypts records
//! where they lie, and the response is read by our own HTTP/1.1 reader (`h1.rs`), so that
//! body frames are cut straight from the decrypted bytes. hyper-rustls would read
//! ~16 KiB per system call and copy every byte once more (BENCHMARKS.md, "The TLS
//! path"). Plain http stays on hyper's HTTP/1.1 client.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use super::{BodyError, BoxError, SendError};

mod h1;
mod unbuffered;

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
    inner: Inner,
    /// The connection's read buffer, held as long as the body.
    _loan: ReadBufferLoan,
}

enum Inner {
    /// Plain HTTP, read by hyper's HTTP/1.1 client.
    Hyper {
        /// `None` once the connection has finished (its outcome has reached `incoming`).
        connection: Option<Pin<Box<Connection>>>,
        /// The body the connection feeds.
        incoming: Incoming,
    },
    /// TLS, decrypted in our own buffers and read by `h1.rs`.
    Tls(Box<TlsBody>),
}

impl Body for DedicatedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let (connection, incoming) = match &mut self.get_mut().inner {
            Inner::Tls(body) => return body.poll_frame(cx),
            Inner::Hyper { connection, incoming } => (connection, incoming),
        };
        // A frame already read goes out first; only then is the socket read again.
        if let Poll::Ready(frame) = Pin::new(&mut *incoming).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BodyError::from)));
        }
        if let Some(c) = connection {
            if c.as_mut().poll(cx).is_ready() {
                // Done or failed: either way its last word is in `incoming`.
                *connection = None;
            }
        }
        Pin::new(incoming).poll_frame(cx).map(|frame| frame.map(|f| f.map_err(BodyError::from)))
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Hyper { incoming, .. } => incoming.is_end_stream(),
            Inner::Tls(body) => body.reader.is_done(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Hyper { incoming, .. } => incoming.size_hint(),
            Inner::Tls(body) => body.reader.remaining().map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

/// A TLS blob connection's response: the session, the plaintext read so far, and the
/// reader that frames it.
struct TlsBody {
    session: unbuffered::Session,
    reader: h1::Reader,
    /// Decrypted bytes not yet handed out; frames are cut from its front.
    plain: BytesMut,
    read_size: usize,
    /// The server closed TLS with close_notify (not merely TCP).
    closed_cleanly: bool,
}

impl TlsBody {
    /// Decrypts or reads until more plaintext is in `plain`: `Ok(false)` when the
    /// connection has ended instead.
    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, BoxError>> {
        loop {
            if self.plain.capacity() - self.plain.len() < unbuffered::RECORD_PLAIN_MAX {
                // A fresh buffer of the read size, rather than `reserve`, which may grow
                // the old one in place (doubling it) while frames still hold its front.
                let mut fresh = BytesMut::with_capacity(self.read_size.max(self.plain.len() + READ_MIN));
                fresh.extend_from_slice(&self.plain);
                self.plain = fresh;
            }
            let before = self.plain.len();
            let decrypted = self.session.decrypt(&mut self.plain)?;
            if self.plain.len() > before {
                return Poll::Ready(Ok(true));
            }
            if decrypted == unbuffered::Decrypted::Closed {
                self.closed_cleanly = true;
                return Poll::Ready(Ok(false));
            }
            if ready!(self.session.poll_read(cx))? == 0 {
                return Poll::Ready(Ok(false));
            }
        }
    }

    /// The response's head, once it is in.
    fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<Result<h1::Head, BoxError>> {
        loop {
            if let Some((head, len)) = self.reader.head(&self.plain)? {
                self.plain.advance(len);
                return Poll::Ready(Ok(head));
            }
            if !ready!(self.poll_more(cx))? {
                return Poll::Ready(Err(Box::new(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed before a response head",
                ))));
            }
        }
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        loop {
            match self.reader.body(&self.plain).map_err(BodyError::own)? {
                h1::Step::Data { skip, len } => {
                    self.plain.advance(skip);
                    return Poll::Ready(Some(Ok(Frame::data(self.plain.split_to(len).freeze()))));
                }
                h1::Step::End { .. } => return Poll::Ready(None),
                h1::Step::More { skip } => self.plain.advance(skip),
            }
            if !ready!(self.poll_more(cx)).map_err(BodyError::own)? {
                self.reader.finish().map_err(BodyError::own)?;
                // A body delimited by the connection's end is whole only if TLS said so:
                // a TCP close alone may be an attacker's truncation.
                if !self.closed_cleanly {
                    let why = "the connection closed without TLS close_notify before the body's end";
                    return Poll::Ready(Some(Err(BodyError::own(why))));
                }
                return Poll::Ready(None);
            }
        }
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
    let mut response =
        response.map(|incoming| DedicatedBody { inner: Inner::Hyper { connection, incoming }, _loan: loan });
    if let Some(peer) = peer {
        response.extensions_mut().insert(Peer(peer));
    }
    Ok(response)
}

/// Like [`send`], for an https URL: TCP from `connector`, then TLS with `tls` through
/// `unbuffered.rs`, the whole connect within `limit`, and the response read by `h1.rs`.
pub async fn send_tls<C>(
    mut connector: C,
    tls: Arc<rustls::ClientConfig>,
    limit: Duration,
    request: Request<Empty<Bytes>>,
    loan: ReadBufferLoan,
) -> Result<Response<DedicatedBody>, SendError>
where
    C: Service<Uri, Response = TokioIo<TcpStream>>,
    C::Error: Into<BoxError>,
{
    let uri = request.uri().clone();
    let head = request_head(&request).map_err(SendError::sending)?;
    let name = unbuffered::Session::server_name(uri.host().unwrap_or_default()).map_err(SendError::connecting)?;
    let read_size = loan.read_size();
    let connecting = async {
        let tcp = connector.call(uri.clone()).await.map_err(Into::into)?.into_inner();
        unbuffered::Session::connect(tcp, tls, name, read_size, &head).await
    };
    let session = match tokio::time::timeout(limit, connecting).await {
        Ok(session) => session.map_err(SendError::connecting)?,
        Err(_) => {
            let e = io::Error::new(io::ErrorKind::TimedOut, "connect and TLS handshake timed out");
            return Err(SendError::connecting(e));
        }
    };
    let peer = session.tcp().peer_addr().ok();
    let mut body = Box::new(TlsBody {
        session,
        reader: h1::Reader::new(request.method() == Method::HEAD),
        plain: BytesMut::with_capacity(read_size),
        read_size,
        closed_cleanly: false,
    });
    let head = std::future::poll_fn(|cx| body.poll_head(cx)).await.map_err(SendError::sending)?;
    let mut response = Response::new(DedicatedBody { inner: Inner::Tls(body), _loan: loan });
    *response.status_mut() = head.status;
    *response.version_mut() = head.version;
    *response.headers_mut() = head.headers;
    if let Some(peer) = peer {
        response.extensions_mut().insert(Peer(peer));
    }
    Ok(response)
}

/// A bodiless request's bytes on the wire: origin form, HTTP/1.1, its own Host header.
fn request_head(request: &Request<Empty<Bytes>>) -> Result<Vec<u8>, BoxError> {
    let uri = request.uri();
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = format!("{} {target} HTTP/1.1\r\n", request.method()).into_bytes();
    let mut field = |name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    field(b"host", host_header(uri)?.as_bytes());
    for (name, value) in request.headers() {
        if name != header::HOST {
            field(name.as_str().as_bytes(), value.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
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

    mod tls {
        use std::io::{Read as _, Write as _};

        use http_body_util::BodyExt as _;
        use hyper_util::client::legacy::connect::HttpConnector;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

        use super::*;

        /// A CA, and a certificate for `localhost` it signed, with its key.
        fn certificates() -> (CertificateDer<'static>, CertificateDer<'static>, PrivateKeyDer<'static>) {
            let ca_key = rcgen::KeyPair::generate().unwrap();
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca = ca_params.self_signed(&ca_key).unwrap();
            let key = rcgen::KeyPair::generate().unwrap();
            let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
                .unwrap()
                .signed_by(&key, &ca, &ca_key)
                .unwrap();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
            (ca.der().clone(), leaf.der().clone(), key)
        }

        /// How the server sends its response.
        #[derive(Clone, Copy, Debug)]
        struct Sending {
            tls12: bool,
            /// Plaintext bytes per TLS record.
            record: usize,
            /// TLS bytes per TCP write.
            piece: usize,
            close_notify: bool,
        }

        /// Serves one TLS connection on `listener` with rustls's buffered server: reads
        /// a request head and answers `response` as `sending` says.
        fn serve_once(
            listener: std::net::TcpListener,
            leaf: CertificateDer<'static>,
            key: PrivateKeyDer<'static>,
            response: Vec<u8>,
            sending: Sending,
        ) -> std::thread::JoinHandle<Vec<u8>> {
            std::thread::spawn(move || {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let builder = rustls::ServerConfig::builder_with_provider(provider);
                let builder = if sending.tls12 {
                    builder.with_protocol_versions(&[&rustls::version::TLS12]).unwrap()
                } else {
                    builder.with_safe_default_protocol_versions().unwrap()
                };
                let mut config = builder.with_no_client_auth().with_single_cert(vec![leaf], key).unwrap();
                config.max_fragment_size = Some(sending.record + 5);
                let (mut tcp, _) = listener.accept().unwrap();
                tcp.set_nodelay(true).unwrap();
                let mut conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
                conn.set_buffer_limit(None);
                let mut request = Vec::new();
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    if conn.complete_io(&mut tcp).is_err() {
                        return request;
                    }
                    let mut buf = [0; 4096];
                    match conn.reader().read(&mut buf) {
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return request,
                    }
                }
                conn.writer().write_all(&response).unwrap();
                if sending.close_notify {
                    conn.send_close_notify();
                }
                let mut out = Vec::new();
                while conn.wants_write() {
                    conn.write_tls(&mut out).unwrap();
                }
                for piece in out.chunks(sending.piece) {
                    if tcp.write_all(piece).is_err() {
                        break;
                    }
                }
                request
            })
        }

        /// The body `send_tls` reads of `response` sent as `sending`, and the request
        /// the server saw.
        async fn fetch(
            response: Vec<u8>,
            sending: Sending,
            trusted: bool,
        ) -> (Result<(StatusCodeAndBody, usize), String>, Vec<u8>) {
            let (ca, leaf, key) = certificates();
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = serve_once(listener, leaf, key, response, sending);
            let mut roots = rustls::RootCertStore::empty();
            if trusted {
                roots.add(ca).unwrap();
            }
            let tls = Arc::new(crate::tls::client_config(&roots, None));
            let mut tcp = HttpConnector::new();
            tcp.enforce_http(false);
            let request = Request::get(format!("https://localhost:{port}/v2/x/blobs/sha256:ab?sig=1"))
                .header("accept", "*/*")
                .body(Empty::new())
                .unwrap();
            let outcome = async {
                let response = send_tls(tcp, tls, Duration::from_secs(10), request, ReadBufferPool::default().lend())
                    .await
                    .map_err(|e| match crate::tls::certificate_failure(e.source.as_ref()) {
                        Some(why) => format!("certificate: {why}"),
                        None => e.source.to_string(),
                    })?;
                assert!(response.extensions().get::<Peer>().is_some());
                let status = response.status().as_u16();
                let mut body = response.into_body();
                let (mut bytes, mut frames) = (Vec::new(), 0);
                while let Some(frame) = body.frame().await {
                    let data = frame.map_err(|e| e.to_string())?.into_data().unwrap();
                    assert!(!data.is_empty());
                    bytes.extend_from_slice(&data);
                    frames += 1;
                }
                Ok(((status, bytes), frames))
            }
            .await;
            (outcome, server.join().unwrap())
        }

        type StatusCodeAndBody = (u16, Vec<u8>);

        fn random_body(len: usize, seed: u64) -> Vec<u8> {
            let mut x = seed | 1;
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        }

        fn chunked(body: &[u8], size: usize) -> Vec<u8> {
            let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for chunk in body.chunks(size) {
                out.extend_from_slice(format!("{:x};ext=1\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\nx-trailer: 1\r\n\r\n");
            out
        }

        fn with_length(body: &[u8]) -> Vec<u8> {
            [format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(), body].concat()
        }

        #[tokio::test]
        async fn tls_bodies_arrive_whole_over_any_record_size_and_write_split() {
            let body = random_body(300_000, 7);
            let mut cases = 0;
            for tls12 in [false, true] {
                for (record, piece) in [(16_384, 1_000_000), (16_384, 1), (1_000, 7), (37, 4_099), (5_000, 16_389)] {
                    for response in [with_length(&body), chunked(&body, 10_007), chunked(&body, 3)] {
                        let sending = Sending { tls12, record, piece, close_notify: cases % 2 == 0 };
                        // One byte a write is slow; a smaller body says as much.
                        let (response, expected) = if piece == 1 {
                            (with_length(&body[..20_000]), &body[..20_000])
                        } else {
                            (response, &body[..])
                        };
                        let (outcome, request) = fetch(response, sending, true).await;
                        let ((status, got), _) = outcome.unwrap_or_else(|e| panic!("{sending:?}: {e}"));
                        assert_eq!(status, 200, "{sending:?}");
                        assert!(got == expected, "{sending:?}: {} bytes, {} expected", got.len(), expected.len());
                        let request = String::from_utf8(request).unwrap();
                        assert!(request.starts_with("GET /v2/x/blobs/sha256:ab?sig=1 HTTP/1.1\r\n"), "{request}");
                        assert!(request.contains("host: localhost:"), "{request}");
                        assert!(request.contains("accept: */*\r\n"), "{request}");
                        cases += 1;
                    }
                }
            }
            assert_eq!(cases, 30);
        }

        #[tokio::test]
        async fn frames_are_as_large_as_what_one_read_brought() {
            let body = random_body(4 << 20, 3);
            let sending = Sending { tls12: false, record: 16_384, piece: 1 << 30, close_notify: true };
            let (outcome, _) = fetch(with_length(&body), sending, true).await;
            let ((_, got), frames) = outcome.unwrap();
            assert!(got == body);
            // hyper-rustls's reads of ~16 KiB would make 256 frames of 4 MiB.
            assert!(frames < 128, "{frames} frames");
        }

        #[tokio::test]
        async fn truncated_bodies_are_errors() {
            let body = random_body(50_000, 5);
            let sending = Sending { tls12: false, record: 16_384, piece: 1 << 30, close_notify: true };
            let mut short = with_length(&body);
            short.truncate(short.len() - 10);
            let (outcome, _) = fetch(short, sending, true).await;
            assert!(outcome.unwrap_err().contains("closed before the response body ended"));
            // Delimited by the end: whole only with close_notify.
            let until_end = [b"HTTP/1.1 200 OK\r\n\r\n".as_slice(), &body].concat();
            let (outcome, _) = fetch(until_end.clone(), sending, true).await;
            assert!(outcome.unwrap().0 .1 == body);
            let sending = Sending { close_notify: false, ..sending };
            let (outcome, _) = fetch(until_end, sending, true).await;
            assert!(outcome.unwrap_err().contains("close_notify"));
        }

        #[tokio::test]
        async fn untrusted_certificates_are_named_as_such() {
            let sending = Sending { tls12: false, record: 16_384, piece: 1 << 30, close_notify: true };
            let (outcome, _) = fetch(with_length(b"x"), sending, false).await;
            assert_eq!(outcome.unwrap_err(), "certificate: unknown issuer");
        }
    }
}
