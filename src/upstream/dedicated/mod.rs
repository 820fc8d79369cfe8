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
//! The connection is not hyper's: the response is read by our own HTTP/1.1 reader
//! (`h1.rs`), so that body frames are cut straight from the bytes read, into buffers
//! the connection reuses once their frames are gone (`buffers.rs`): hyper's client
//! would leave every old buffer to malloc (BENCHMARKS.md, "One download in a few MiB").
//! Over https, TLS goes through rustls's unbuffered API (`unbuffered.rs`), which reads
//! the socket in one large buffer and decrypts records where they lie; hyper-rustls would
//! read ~16 KiB per system call and copy every byte once more (BENCHMARKS.md, "The TLS
//! path").

use std::io;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tower_service::Service;

use super::{BodyError, BoxError, SendError};
use buffers::{ReadBuffers, Spares};

mod buffers;
mod h1;
mod unbuffered;

/// The address a blob connection reached, in its response's extensions: a registry on
/// loopback or a private network is a local link, which multipart never splits
/// ([`crate::upstream::multipart`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer(pub std::net::SocketAddr);

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
/// `READ_MAX`, the rest `READ_MIN` until a loan is returned. It also keeps the large
/// buffers that ended connections give back (`buffers.rs`).
#[derive(Clone)]
pub struct ReadBufferPool {
    left: Arc<AtomicUsize>,
    spares: Spares,
}

impl Default for ReadBufferPool {
    /// A full pool.
    fn default() -> ReadBufferPool {
        ReadBufferPool { left: Arc::new(AtomicUsize::new(POOL_SIZE)), spares: Spares::default() }
    }
}

impl ReadBufferPool {
    /// As much of the pool as one connection may have, possibly nothing.
    pub fn lend(&self) -> ReadBufferLoan {
        let want = READ_MAX - READ_MIN;
        let left = self.left.fetch_update(Relaxed, Relaxed, |left| Some(left - left.min(want))).unwrap_or(0);
        ReadBufferLoan { pool: self.left.clone(), extra: left.min(want), spares: self.spares.clone() }
    }
}

/// A connection's loan from the [`ReadBufferPool`], returned when it is dropped.
pub struct ReadBufferLoan {
    pool: Arc<AtomicUsize>,
    extra: usize,
    spares: Spares,
}

impl ReadBufferLoan {
    /// How much the connection reads at a time.
    fn read_size(&self) -> usize {
        READ_MIN + self.extra
    }

    /// The connection's read buffers: large ones, shared with later connections, with a
    /// loan; small ones without.
    fn buffers(&self) -> ReadBuffers {
        match self.extra {
            0 => ReadBuffers::small(self.read_size()),
            _ => ReadBuffers::large(self.read_size(), self.spares.clone()),
        }
    }
}

impl Drop for ReadBufferLoan {
    fn drop(&mut self) {
        self.pool.fetch_add(self.extra, Relaxed);
    }
}

/// A response body whose connection is driven by polling the body.
pub struct DedicatedBody {
    inner: Box<OwnBody>,
    /// The connection's read buffer, held as long as the body.
    _loan: ReadBufferLoan,
}

impl Body for DedicatedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.get_mut().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.reader.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.reader.remaining().map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// Where a blob connection's response bytes come from.
enum Source {
    /// Plain http: the socket is read straight into the frame buffers.
    Plain(TcpStream),
    /// https: read into the session's ciphertext buffer and decrypted onto the frame
    /// buffers (boxed: the session is a kilobyte, the socket a few words).
    Tls(Box<unbuffered::Session>),
}

/// A blob connection's response: where its bytes come from, the bytes read so far, and
/// the reader that frames them.
struct OwnBody {
    source: Source,
    reader: h1::Reader,
    /// Response bytes not yet handed out; frames are cut from their front.
    buffers: ReadBuffers,
    /// The connection ended as its protocol says it may: TLS with close_notify (not
    /// merely TCP), or plain TCP.
    closed_cleanly: bool,
}

impl OwnBody {
    /// Reads (and decrypts) until more response bytes are in the buffers: `Ok(false)`
    /// when the connection has ended instead.
    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, BoxError>> {
        loop {
            match &mut self.source {
                Source::Plain(tcp) => {
                    // Half a buffer at least, so that a read is never a sliver.
                    let buffer = self.buffers.with_room(READ_MIN / 2);
                    ready!(tcp.poll_read_ready(cx))?;
                    match tcp.try_read_buf(buffer) {
                        Ok(0) => {
                            self.closed_cleanly = true;
                            return Poll::Ready(Ok(false));
                        }
                        Ok(_) => return Poll::Ready(Ok(true)),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Poll::Ready(Err(e.into())),
                    }
                }
                Source::Tls(session) => {
                    let buffer = self.buffers.with_room(unbuffered::RECORD_PLAIN_MAX);
                    let before = buffer.len();
                    let decrypted = session.decrypt(buffer)?;
                    if buffer.len() > before {
                        return Poll::Ready(Ok(true));
                    }
                    if decrypted == unbuffered::Decrypted::Closed {
                        self.closed_cleanly = true;
                        return Poll::Ready(Ok(false));
                    }
                    if ready!(session.poll_read(cx))? == 0 {
                        return Poll::Ready(Ok(false));
                    }
                }
            }
        }
    }

    /// The response's head, once it is in.
    fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<Result<h1::Head, BoxError>> {
        loop {
            if let Some((head, len)) = self.reader.head(self.buffers.unread())? {
                self.buffers.unread().advance(len);
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
            let unread = self.buffers.unread();
            match self.reader.body(unread).map_err(BodyError::own)? {
                h1::Step::Data { skip, len } => {
                    unread.advance(skip);
                    return Poll::Ready(Some(Ok(Frame::data(unread.split_to(len).freeze()))));
                }
                h1::Step::End { .. } => return Poll::Ready(None),
                h1::Step::More { skip } => unread.advance(skip),
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

/// Sends `request` to an http URL on a new connection from `connector`, within `limit`,
/// and answers once the response head is in; the body reads the rest.
pub async fn send<C>(
    mut connector: C,
    limit: Duration,
    request: Request<Empty<Bytes>>,
    loan: ReadBufferLoan,
) -> Result<Response<DedicatedBody>, SendError>
where
    C: Service<Uri, Response = TokioIo<TcpStream>>,
    C::Error: Into<BoxError>,
{
    let head = request_head(&request).map_err(SendError::sending)?;
    let mut tcp = match tokio::time::timeout(limit, connector.call(request.uri().clone())).await {
        Ok(tcp) => tcp.map_err(|e| SendError::connecting(e.into()))?.into_inner(),
        Err(_) => return Err(SendError::connecting(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))),
    };
    tcp.write_all(&head).await.map_err(SendError::sending)?;
    respond(Source::Plain(tcp), &request, loan).await
}

/// Like [`send`], for an https URL: TCP from `connector`, then TLS with `tls` through
/// `unbuffered.rs`, the whole connect within `limit`.
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
    respond(Source::Tls(Box::new(session)), &request, loan).await
}

/// Reads the response head of `request` from `source`, the request having been sent.
async fn respond(
    source: Source,
    request: &Request<Empty<Bytes>>,
    loan: ReadBufferLoan,
) -> Result<Response<DedicatedBody>, SendError> {
    let peer = match &source {
        Source::Plain(tcp) => tcp.peer_addr().ok(),
        Source::Tls(session) => session.tcp().peer_addr().ok(),
    };
    let mut body = Box::new(OwnBody {
        source,
        reader: h1::Reader::new(request.method() == Method::HEAD),
        buffers: loan.buffers(),
        closed_cleanly: false,
    });
    let head = std::future::poll_fn(|cx| body.poll_head(cx)).await.map_err(SendError::sending)?;
    let mut response = Response::new(DedicatedBody { inner: body, _loan: loan });
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
