//! In-process fakes on loopback for what a real registry cannot be made to do on demand
//! (cut a stream, corrupt a blob, redirect to a second host), plus a client and a way to
//! run layerpipe itself in the test's runtime (the runner tests/real uses too).
#![allow(dead_code)]

// Shared with tests/real: the layerpipe runner, SHA-256 and the page's links.
#[path = "../common/mod.rs"]
pub mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;

use common::layerpipe::Running;
// Each test binary names only some of these.
#[allow(unused_imports)]
pub use common::{digest::sha256_hex, html::download_links};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a fake stream ends early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The stream fails (the connection is aborted).
    Fail,
    /// The stream goes silent and never ends.
    Stall,
    /// The stream goes on one byte every 100 ms: never silent for long, never done.
    Trickle,
}

/// A body for fakes: `data` in 64 KiB frames, optionally cut after so many bytes.
pub struct Chunks {
    data: Bytes,
    cut: Option<(usize, Cut)>,
    /// Yielded once before the cut, so hyper flushes what it has (headers included).
    yielded: bool,
    /// The next trickled byte's time.
    trickle: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Adds the bytes of each frame handed to hyper (see [`Chunks::counting`]).
    sent: Option<Arc<AtomicU64>>,
    /// Bytes per second this body is sent at (see [`Chunks::throttled`]).
    rate: Option<u64>,
    /// The wait before the next throttled frame.
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Chunks {
    pub fn new(data: Bytes) -> Chunks {
        Chunks { data, cut: None, yielded: false, trickle: None, sent: None, rate: None, pause: None }
    }
    pub fn cut(data: Bytes, at: usize, how: Cut) -> Chunks {
        Chunks { cut: Some((at, how)), ..Chunks::new(data) }
    }
    /// Sends at most `rate` bytes a second: a link that caps each connection.
    pub fn throttled(mut self, rate: Option<u64>) -> Chunks {
        self.rate = rate;
        self
    }
    /// Counts the bytes sent into `sent`: what a registry would have served, which for a
    /// body the client stops reading is more than the client used.
    pub fn counting(mut self, sent: Arc<AtomicU64>) -> Chunks {
        self.sent = Some(sent);
        self
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some((0, how)) = self.cut {
            if !self.yielded {
                self.yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            return match how {
                Cut::Fail => Poll::Ready(Some(Err("fake stream cut".into()))),
                Cut::Stall => Poll::Pending,
                Cut::Trickle if self.data.is_empty() => Poll::Ready(None),
                Cut::Trickle => {
                    let next = || Box::pin(tokio::time::sleep(std::time::Duration::from_millis(100)));
                    let sleep = self.trickle.get_or_insert_with(next);
                    std::task::ready!(std::future::Future::poll(sleep.as_mut(), cx));
                    self.trickle = Some(next());
                    let byte = self.data.split_to(1);
                    Poll::Ready(Some(Ok(Frame::data(byte))))
                }
            };
        }
        if self.data.is_empty() {
            return Poll::Ready(None);
        }
        if let Some(pause) = &mut self.pause {
            std::task::ready!(std::future::Future::poll(pause.as_mut(), cx));
            self.pause = None;
        }
        let mut n = (64 * 1024).min(self.data.len());
        if let Some((at, how)) = self.cut {
            n = n.min(at);
            self.cut = Some((at - n, how));
        }
        let frame = self.data.split_to(n);
        if let Some(rate) = self.rate {
            let wait = std::time::Duration::from_secs_f64(n as f64 / rate as f64);
            self.pause = Some(Box::pin(tokio::time::sleep(wait)));
        }
        if let Some(sent) = &self.sent {
            sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }
}

pub type FakeResponse = Response<Chunks>;

pub fn respond(status: StatusCode, body: impl Into<Bytes>) -> FakeResponse {
    let mut r = Response::new(Chunks::new(body.into()));
    *r.status_mut() = status;
    r
}

/// A fake HTTP server on 127.0.0.1 answering with `handler`; counts TCP connections
/// opened and closed.
pub struct FakeServer {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub closed: Arc<AtomicUsize>,
}

impl FakeServer {
    pub async fn start<F>(handler: F) -> FakeServer
    where
        F: Fn(Request<Incoming>) -> FakeResponse + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let closed = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let closed_counter = closed.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                let closed = closed_counter.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler(req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        FakeServer { addr, connections, closed }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// Deterministic pseudo-random bytes (xorshift), fast enough for 100 MiB in a debug build.
pub fn pseudo_random(len: usize, seed: u64) -> Bytes {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out.into()
}

/// One blob the fake registry serves, and how.
#[derive(Clone)]
pub struct FakeBlob {
    pub data: Bytes,
    /// Serve these bytes instead of `data` (a corrupted blob).
    pub served: Option<Bytes>,
    /// Serve these bytes instead, from when the test puts them here (a blob that
    /// changes after it was first read); shared by the clones of this blob.
    pub replaced: Arc<Mutex<Option<Bytes>>>,
    /// Cut the stream after this many bytes.
    pub cut_at: Option<(usize, Cut)>,
    /// Redirect the blob GET to this base URL (a "CDN").
    pub via_cdn: bool,
    /// How a `Range` GET is answered.
    pub ranges: Ranges,
    /// Each response (so each connection) is sent at most this many bytes a second.
    pub throttle: Option<u64>,
    /// (n, after): the nth range GET of this blob (from 1) is cut (failed) after so
    /// many bytes.
    pub range_faults: Arc<Mutex<Vec<(usize, usize)>>>,
    /// Range GETs of this blob so far, registry and CDN together.
    pub range_gets: Arc<AtomicUsize>,
    /// n: the nth range GET of this blob (from 1) is answered 200 with the whole blob,
    /// as if `Range` were not there (a CDN node that ignores it behind others that
    /// honour it).
    pub range_ignored: Arc<Mutex<Vec<usize>>>,
    /// With `via_cdn`: each redirect signs the CDN URL anew, and the CDN answers 403 to a
    /// signature that has already served this many GETs (an expired signed URL).
    pub signature_uses: Option<usize>,
}

/// How a fake blob answers `Range: bytes=a-b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranges {
    /// 206 with those bytes.
    Honoured,
    /// 200 with the whole blob, as if `Range` were not there.
    Ignored,
    /// 206 whose body is cut so (from its first byte).
    Cut(Cut),
}

impl FakeBlob {
    pub fn new(data: impl Into<Bytes>) -> FakeBlob {
        FakeBlob {
            data: data.into(),
            served: None,
            replaced: Default::default(),
            cut_at: None,
            via_cdn: false,
            ranges: Ranges::Honoured,
            throttle: None,
            range_faults: Arc::default(),
            range_gets: Arc::default(),
            range_ignored: Arc::default(),
            signature_uses: None,
        }
    }
}

/// What the fakes saw, for assertions.
#[derive(Default)]
pub struct Seen {
    pub token_requests: AtomicUsize,
    /// Query strings of the token requests.
    pub token_queries: Mutex<Vec<String>>,
    /// Authorization headers of the token requests.
    pub token_authorizations: Mutex<Vec<Option<String>>>,
    /// (path, authorization header) of every request to the registry.
    pub registry_requests: Mutex<Vec<(String, Option<String>)>>,
    /// Path and `Range` header of each GET that reached the registry.
    pub registry_gets: Mutex<Vec<(String, Option<String>)>>,
    /// Woken at each GET added to `registry_gets` (see [`Seen::blob_gets`]).
    pub got: tokio::sync::Notify,
    /// Authorization headers that reached the CDN.
    pub cdn_authorizations: Mutex<Vec<Option<String>>>,
    /// Tokens the registry refuses from now on (to act out expiry).
    pub revoked: Mutex<Vec<String>>,
    /// Blob body bytes the registry and the CDN have sent, ranges included.
    pub blob_bytes_sent: Arc<AtomicU64>,
    /// Query string and `Range` header of every GET that reached the CDN.
    pub cdn_gets: Mutex<Vec<(String, Option<String>)>>,
    /// Redirects to the CDN so far (each signs a new URL).
    pub redirects: AtomicUsize,
    /// GETs served per CDN signature.
    pub signature_uses: Mutex<HashMap<String, usize>>,
    /// CDN answers of 403 to an expired signature.
    pub expired: AtomicUsize,
}

impl Seen {
    /// The `Range` header of each authorised GET of blob `digest`, in order.
    pub fn blob_ranges(&self, digest: &str) -> Vec<Option<String>> {
        let gets = self.registry_gets.lock().unwrap();
        gets.iter().filter(|(path, _)| path.ends_with(digest)).map(|(_, range)| range.clone()).collect()
    }

    /// Returns once the registry has had `n` authorised GETs of blob `digest`: a
    /// request for a blob is known to be under way without guessing how long it takes.
    pub async fn blob_gets(&self, digest: &str, n: usize) {
        loop {
            // Made before the check, so that a GET in between still wakes it.
            let next = self.got.notified();
            if self.blob_ranges(digest).len() >= n {
                return;
            }
            next.await;
        }
    }
}

/// A fake registry demanding Bearer tokens from a separate token server, with an
/// optional CDN on a third port for redirected blobs.
pub struct FakeRegistry {
    pub registry: FakeServer,
    pub token_server: FakeServer,
    pub cdn: FakeServer,
    pub seen: Arc<Seen>,
}

pub const REPO: &str = "team/app";

impl FakeRegistry {
    /// `manifests` maps tag or digest to (media type, JSON); `blobs` maps digest to blob.
    pub async fn start(manifests: HashMap<String, (String, Bytes)>, blobs: HashMap<String, FakeBlob>) -> FakeRegistry {
        FakeRegistry::start_with_realm_host(manifests, blobs, "127.0.0.1").await
    }

    /// Like [`FakeRegistry::start`], with the challenge naming the token server by
    /// `realm_host` (`localhost` makes it another host than the registry's 127.0.0.1).
    pub async fn start_with_realm_host(
        manifests: HashMap<String, (String, Bytes)>,
        blobs: HashMap<String, FakeBlob>,
        realm_host: &str,
    ) -> FakeRegistry {
        let seen = Arc::new(Seen::default());
        let token_seen = seen.clone();
        let token_server = FakeServer::start(move |req| {
            let n = token_seen.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
            token_seen.token_queries.lock().unwrap().push(req.uri().query().unwrap_or("").to_owned());
            token_seen.token_authorizations.lock().unwrap().push(header(req.headers(), "authorization"));
            respond(StatusCode::OK, format!(r#"{{"token":"token-{n}","expires_in":300}}"#))
        })
        .await;
        let blobs = Arc::new(blobs);
        let cdn_blobs = blobs.clone();
        let cdn_seen = seen.clone();
        let cdn = FakeServer::start(move |req| {
            cdn_seen.cdn_authorizations.lock().unwrap().push(header(req.headers(), "authorization"));
            let query = req.uri().query().unwrap_or("").to_owned();
            cdn_seen.cdn_gets.lock().unwrap().push((query.clone(), header(req.headers(), "range")));
            let digest = req.uri().path().trim_start_matches("/cdn/").to_owned();
            if let Some(limit) = cdn_blobs.get(&digest).and_then(|b| b.signature_uses) {
                let mut uses = cdn_seen.signature_uses.lock().unwrap();
                let used = uses.entry(query).or_default();
                *used += 1;
                if *used > limit {
                    cdn_seen.expired.fetch_add(1, Ordering::SeqCst);
                    return respond(
                        StatusCode::FORBIDDEN,
                        "<Error><Code>AccessDenied</Code>Request has expired</Error>",
                    );
                }
            }
            match cdn_blobs.get(&digest) {
                Some(blob) => serve_blob(blob, req.headers()).map(|b| b.counting(cdn_seen.blob_bytes_sent.clone())),
                None => respond(StatusCode::NOT_FOUND, ""),
            }
        })
        .await;
        let realm = format!("http://{realm_host}:{}/token", token_server.addr.port());
        let cdn_url = cdn.url();
        let registry_seen = seen.clone();
        let registry = FakeServer::start(move |req| {
            let path = req.uri().path().to_owned();
            let auth = header(req.headers(), "authorization");
            registry_seen.registry_requests.lock().unwrap().push((path.clone(), auth.clone()));
            if req.method() == http::Method::GET && auth.is_some() {
                registry_seen.registry_gets.lock().unwrap().push((path.clone(), header(req.headers(), "range")));
                registry_seen.got.notify_waiters();
            }
            let authorized = auth.as_deref().is_some_and(|a| {
                a.starts_with("Bearer token-")
                    && !registry_seen.revoked.lock().unwrap().iter().any(|r| a.ends_with(r.as_str()))
            });
            if !authorized {
                let mut r = respond(StatusCode::UNAUTHORIZED, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#);
                let challenge = format!(r#"Bearer realm="{realm}",service="fake-registry""#);
                r.headers_mut().insert("www-authenticate", HeaderValue::try_from(challenge).unwrap());
                return r;
            }
            if path == "/v2/" {
                return respond(StatusCode::OK, "{}");
            }
            let prefix = format!("/v2/{REPO}/");
            let Some(rest) = path.strip_prefix(&prefix) else {
                return respond(StatusCode::NOT_FOUND, "");
            };
            if let Some(reference) = rest.strip_prefix("manifests/") {
                return match manifests.get(reference) {
                    Some((media_type, json)) => {
                        let mut r = respond(StatusCode::OK, json.clone());
                        r.headers_mut().insert("content-type", HeaderValue::try_from(media_type.as_str()).unwrap());
                        r
                    }
                    None => respond(StatusCode::NOT_FOUND, r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#),
                };
            }
            if let Some(digest) = rest.strip_prefix("blobs/") {
                return match blobs.get(digest) {
                    Some(FakeBlob { via_cdn: true, .. }) => {
                        let mut r = respond(StatusCode::TEMPORARY_REDIRECT, "");
                        let n = registry_seen.redirects.fetch_add(1, Ordering::SeqCst) + 1;
                        let location = format!("{cdn_url}/cdn/{digest}?sig={n}");
                        r.headers_mut().insert("location", HeaderValue::try_from(location).unwrap());
                        r
                    }
                    Some(blob) => {
                        serve_blob(blob, req.headers()).map(|b| b.counting(registry_seen.blob_bytes_sent.clone()))
                    }
                    None => respond(StatusCode::NOT_FOUND, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#),
                };
            }
            respond(StatusCode::NOT_FOUND, "")
        })
        .await;
        FakeRegistry { registry, token_server, cdn, seen }
    }

    pub fn host(&self) -> String {
        self.registry.addr.to_string()
    }

    pub fn token_requests(&self) -> usize {
        self.seen.token_requests.load(Ordering::SeqCst)
    }

    /// Blob bytes sent so far (registry and CDN), ranges included.
    pub fn blob_bytes_sent(&self) -> u64 {
        self.seen.blob_bytes_sent.load(Ordering::Relaxed)
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.to_str().unwrap().to_owned())
}

/// Serves a blob with Content-Length and `Range: bytes=a-b` support.
fn serve_blob(blob: &FakeBlob, headers: &HeaderMap) -> FakeResponse {
    let replaced = blob.replaced.lock().unwrap().clone();
    let data = replaced.or_else(|| blob.served.clone()).unwrap_or_else(|| blob.data.clone());
    let total = data.len();
    if let Some(range) = header(headers, "range").filter(|_| blob.ranges != Ranges::Ignored) {
        let (a, b) = range.trim_start_matches("bytes=").split_once('-').unwrap();
        let a: usize = a.parse().unwrap();
        let b: usize = if b.is_empty() { total - 1 } else { b.parse::<usize>().unwrap().min(total - 1) };
        if a >= total {
            let mut r = respond(StatusCode::RANGE_NOT_SATISFIABLE, "");
            r.headers_mut().insert("content-range", HeaderValue::try_from(format!("bytes */{total}")).unwrap());
            return r;
        }
        let nth = blob.range_gets.fetch_add(1, Ordering::SeqCst) + 1;
        if blob.range_ignored.lock().unwrap().contains(&nth) {
            let mut r = Response::new(Chunks::new(data).throttled(blob.throttle));
            r.headers_mut().insert("content-length", HeaderValue::from(total));
            return r;
        }
        let fault = blob.range_faults.lock().unwrap().iter().find(|&&(n, _)| n == nth).map(|&(_, after)| after);
        let r = if let Ranges::Cut(how) = blob.ranges {
            let mut r = Response::new(Chunks::cut(data.slice(a..=b), 0, how));
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            r
        } else if let Some(after) = fault {
            let mut r = Response::new(Chunks::cut(data.slice(a..=b), after, Cut::Fail));
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            r
        } else {
            respond(StatusCode::PARTIAL_CONTENT, data.slice(a..=b))
        };
        let mut r = r.map(|body| body.throttled(blob.throttle));
        r.headers_mut().insert("content-range", HeaderValue::try_from(format!("bytes {a}-{b}/{total}")).unwrap());
        r.headers_mut().insert("content-length", HeaderValue::from(b - a + 1));
        return r;
    }
    let mut r = match blob.cut_at {
        Some((at, how)) => Response::new(Chunks::cut(data, at, how)),
        None => Response::new(Chunks::new(data)),
    }
    .map(|body| body.throttled(blob.throttle));
    r.headers_mut().insert("content-length", HeaderValue::from(total));
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/octet-stream"));
    r.headers_mut().insert("accept-ranges", HeaderValue::from_static("bytes"));
    r
}

/// An OCI image manifest with `layers` (media type, bytes) and a tiny config.
pub fn oci_manifest(config: &[u8], layers: &[(&str, &[u8])]) -> Bytes {
    let layers: Vec<String> = layers
        .iter()
        .map(|(mt, data)| format!(r#"{{"mediaType":"{mt}","digest":"{}","size":{}}}"#, digest(data), data.len()))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        digest(config),
        config.len(),
        layers.join(",")
    )
    .into()
}

pub const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// layerpipe running in this test's runtime.
pub struct Layerpipe {
    pub addr: SocketAddr,
    /// Serving until this is dropped.
    running: Running,
}

impl Layerpipe {
    /// layerpipe with `config_json`; unless it says otherwise, its layer indexes stay in
    /// memory, so that no test sees another's (or an earlier run's) indexes on disk.
    pub async fn start(config_json: &str) -> Layerpipe {
        let mut config = layerpipe::config::Config::parse(config_json).unwrap();
        if !config_json.contains("\"index\"") {
            config.index.dir = Default::default();
        }
        let running = Running::start(config).await;
        Layerpipe { addr: running.addr, running }
    }

    /// layerpipe configured with `fake` as a listed registry.
    pub async fn for_fake(fake: &FakeRegistry, verify_digests: bool) -> Layerpipe {
        Layerpipe::start(&format!(
            r#"{{"verify_digests":{verify_digests},"registries":{{"{host}":{{"endpoint":"http://{host}"}}}}}}"#,
            host = fake.host()
        ))
        .await
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }
}

/// A plain HTTP client for tests.
pub fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// A whole response, or the error that cut its body off.
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Result<Bytes, String>,
}

impl Fetched {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone().expect("body arrived whole").to_vec()).unwrap()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

pub async fn fetch(url: &str, headers: &[(&str, &str)]) -> Fetched {
    fetch_method("GET", url, headers).await
}

pub async fn fetch_method(method: &str, url: &str, headers: &[(&str, &str)]) -> Fetched {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client().request(request.body(Empty::new()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).map_err(|e| e.to_string());
    Fetched { status: parts.status, headers: parts.headers, body }
}

/// Downloads without keeping the body: (status, headers, sha256 hex, length) or the error.
pub async fn fetch_hashed(url: &str) -> Result<(StatusCode, HeaderMap, String, u64), String> {
    let response = client().request(Request::get(url).body(Empty::new()).unwrap()).await.map_err(|e| e.to_string())?;
    let (parts, mut body) = response.into_parts();
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Some(data) = frame.data_ref() {
            hasher.update(data);
            len += data.len() as u64;
        }
    }
    Ok((parts.status, parts.headers, format!("{:x}", hasher.finalize()), len))
}
