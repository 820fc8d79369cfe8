//! The transport to registries: two HTTP clients (one for listed registries, one that
//! reaches public addresses only), connect and TLS deadlines, the response-headers
//! timeout, retries with backoff, and the classification of failures.
//!
//! Small requests (ping, token, manifest) share a pool of keep-alive connections. A blob
//! gets an HTTP/1.1 connection of its own that its body drives ([`dedicated`]), so that
//! reading the registry and writing to the client happen in one task.
//!
//! [`crate::registry`] speaks the registry protocol on top of [`Upstream::send`].

pub mod dedicated;
pub mod multipart;

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

use self::dedicated::{DedicatedBody, ReadBufferPool};
use crate::config::{Config, Retries};
use crate::egress::{find_refused, PublicOnly, PublicResolver};
use crate::error::Error;
use crate::metrics::{Metrics, UpstreamError};

const USER_AGENT: &str = concat!("layerpipe/", env!("CARGO_PKG_VERSION"));

type Connector<C> = Deadline<HttpsConnector<C>>;
type TrustedConnector = Connector<HttpConnector>;
type PublicConnector = Connector<PublicOnly<HttpConnector<PublicResolver>>>;
type TrustedClient = Client<TrustedConnector, Empty<Bytes>>;
type PublicClient = Client<PublicConnector, Empty<Bytes>>;

/// Whom a request is for: a listed registry is trusted with http and private addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Listed in the config.
    Listed,
    /// Anything else: https to public addresses only.
    PublicOnly,
}

/// How a request travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The shared pool of keep-alive connections (HTTP/1.1, or HTTP/2 where TLS offers
    /// it), for small requests.
    Pooled,
    /// A new HTTP/1.1 connection that the response body drives each time it is polled,
    /// for blobs; see [`dedicated`].
    Dedicated,
}

/// A registry response's body.
pub enum UpstreamBody {
    /// From a pooled connection, read by the pool's task.
    Pooled(Incoming),
    /// From a dedicated connection, which polling the body drives.
    Dedicated(DedicatedBody),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Pooled(incoming) => Pin::new(incoming).poll_frame(cx),
            UpstreamBody::Dedicated(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Pooled(incoming) => incoming.is_end_stream(),
            UpstreamBody::Dedicated(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Pooled(incoming) => incoming.size_hint(),
            UpstreamBody::Dedicated(body) => body.size_hint(),
        }
    }
}

/// A request that got no response, and whether it failed while connecting.
pub struct SendError {
    connecting: bool,
    source: BoxError,
}

impl SendError {
    fn connecting(e: impl Into<BoxError>) -> SendError {
        SendError { connecting: true, source: e.into() }
    }

    fn sending(e: impl Into<BoxError>) -> SendError {
        SendError { connecting: false, source: e.into() }
    }
}

impl From<hyper_util::client::legacy::Error> for SendError {
    fn from(e: hyper_util::client::legacy::Error) -> SendError {
        SendError { connecting: e.is_connect(), source: e.into() }
    }
}

/// HTTP clients to registries; one per process.
pub struct Upstream {
    trusted: TrustedClient,
    public: PublicClient,
    /// Connectors for dedicated connections: the same rules, HTTP/1.1 only.
    trusted_h1: TrustedConnector,
    public_h1: PublicConnector,
    read_buffers: ReadBufferPool,
    response_headers: Duration,
    retries: Retries,
    metrics: Arc<Metrics>,
}

impl Upstream {
    /// Clients with `config`'s timeouts and retries.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Upstream {
        let t = &config.timeouts;
        let deadline = t.connect() + t.tls_handshake();
        let mut trusted = HttpConnector::new();
        let mut public = HttpConnector::new_with_resolver(PublicResolver);
        configure(&mut trusted, t.connect());
        configure(&mut public, t.connect());
        let builder = || {
            let mut b = Client::builder(TokioExecutor::new());
            b.pool_idle_timeout(Duration::from_secs(60)).pool_max_idle_per_host(32);
            b
        };
        Upstream {
            trusted: builder().build(Deadline { inner: https(trusted.clone()), limit: deadline }),
            public: builder().build(Deadline { inner: https(PublicOnly(public.clone())), limit: deadline }),
            trusted_h1: Deadline { inner: https_h1(trusted), limit: deadline },
            public_h1: Deadline { inner: https_h1(PublicOnly(public)), limit: deadline },
            read_buffers: ReadBufferPool::default(),
            response_headers: t.response_headers(),
            retries: config.retries.clone(),
            metrics,
        }
    }

    /// The metrics failures are counted in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Sends a bodiless request and returns the response once its headers are in,
    /// retrying connection errors, 502, 503, 504 and short 429s with backoff. Nothing has
    /// reached the client while this runs, so a retry can never duplicate bytes.
    pub async fn send(
        &self,
        trust: Trust,
        transport: Transport,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Response<UpstreamBody>, Error> {
        let mut attempt = 1;
        loop {
            let result = self.send_once(trust, transport, method, uri, headers).await;
            let wait = match &result {
                Ok(response) => self.retry_wait(response, attempt),
                Err((kind, _)) if *kind == UpstreamError::Connect => Some(self.backoff(attempt)),
                Err(_) => None,
            };
            match wait {
                Some(wait) if attempt < self.retries.attempts => {
                    tracing::debug!(uri = %Redacted(uri), attempt, ?wait, "retrying registry request");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => return result.map_err(|(_, e)| e),
            }
        }
    }

    async fn send_once(
        &self,
        trust: Trust,
        transport: Transport,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Response<UpstreamBody>, (UpstreamError, Error)> {
        let host = uri.host().unwrap_or_default();
        let fail = |kind: UpstreamError, e: Error| {
            self.metrics.upstream_error(kind);
            Err((kind, e))
        };
        if trust == Trust::PublicOnly && uri.scheme_str() != Some("https") {
            return fail(
                UpstreamError::Refused,
                Error::forbidden(format!(
                    "layerpipe reaches {host} only over https: only registries listed in its config may use http"
                )),
            );
        }
        let mut request =
            Request::builder().method(method.clone()).uri(uri.clone()).body(Empty::new()).expect("a parsed URL");
        *request.headers_mut() = headers.clone();
        request.headers_mut().insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        let sending = async {
            let pooled = |r: Response<Incoming>| r.map(UpstreamBody::Pooled);
            let own = |r: Response<DedicatedBody>| r.map(UpstreamBody::Dedicated);
            let loan = || self.read_buffers.lend();
            match (transport, trust) {
                (Transport::Pooled, Trust::Listed) => Ok(pooled(self.trusted.request(request).await?)),
                (Transport::Pooled, Trust::PublicOnly) => Ok(pooled(self.public.request(request).await?)),
                (Transport::Dedicated, Trust::Listed) => {
                    Ok(own(dedicated::send(self.trusted_h1.clone(), request, loan()).await?))
                }
                (Transport::Dedicated, Trust::PublicOnly) => {
                    Ok(own(dedicated::send(self.public_h1.clone(), request, loan()).await?))
                }
            }
        };
        match tokio::time::timeout(self.response_headers, sending).await {
            Ok(Ok(response)) => {
                match response.status() {
                    StatusCode::TOO_MANY_REQUESTS => self.metrics.upstream_error(UpstreamError::RateLimited),
                    s if s.is_server_error() => self.metrics.upstream_error(UpstreamError::ServerError),
                    _ => {}
                }
                Ok(response)
            }
            Ok(Err(e)) => {
                let (kind, error) = classify(host, &e);
                fail(kind, error)
            }
            Err(_) => fail(
                UpstreamError::Timeout,
                Error::gateway_timeout(format!(
                    "{host} did not answer within {} s",
                    self.response_headers.as_secs_f64()
                )),
            ),
        }
    }

    /// How long to wait before retrying after `response`, if it is worth retrying.
    fn retry_wait<B>(&self, response: &Response<B>, attempt: u32) -> Option<Duration> {
        match response.status() {
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
                Some(self.backoff(attempt))
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let secs: u64 = response.headers().get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
                (secs <= self.retries.max_retry_after_secs).then(|| Duration::from_secs(secs))
            }
            _ => None,
        }
    }

    /// Exponential backoff with full jitter: a random wait up to `initial × 2^(attempt-1)`.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.retries.initial_backoff_ms.saturating_mul(1 << (attempt - 1).min(16));
        // RandomState is seeded randomly per instance: enough randomness for jitter.
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        Duration::from_millis(random % ceiling.saturating_add(1))
    }
}

/// A URL as it may be logged: scheme, host, port and path. The query is left out (a
/// CDN's redirect carries a pre-signed signature there, as good as a password until it
/// expires), and so is any user info.
pub struct Redacted<'a>(pub &'a Uri);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.0;
        write!(f, "{}://{}", uri.scheme_str().unwrap_or("?"), uri.host().unwrap_or(""))?;
        if let Some(port) = uri.port_u16() {
            write!(f, ":{port}")?;
        }
        f.write_str(uri.path())
    }
}

/// Connector settings shared by both clients.
fn configure<R>(http: &mut HttpConnector<R>, connect_timeout: Duration) {
    // https is allowed too: the TLS layer above decides.
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
}

fn https<C>(inner: C) -> HttpsConnector<C> {
    HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_all_versions().wrap_connector(inner)
}

/// Like [`https`], offering only HTTP/1.1 in TLS's ALPN.
fn https_h1<C>(inner: C) -> HttpsConnector<C> {
    HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().wrap_connector(inner)
}

/// The kind and the user's error for a request that got no response at all.
fn classify(host: &str, e: &SendError) -> (UpstreamError, Error) {
    if let Some(refused) = find_refused(e.source.as_ref()) {
        let message = format!(
            "layerpipe does not connect to {}: it is not a public address, and only registries listed in the config may be private",
            refused.host
        );
        return (UpstreamError::Refused, Error::forbidden(message));
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e.source.as_ref());
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) {
            return (UpstreamError::Timeout, Error::gateway_timeout(format!("connecting to {host} timed out")));
        }
        source = s.source();
    }
    if e.connecting {
        (UpstreamError::Connect, Error::bad_gateway(format!("cannot connect to {host}")))
    } else {
        (UpstreamError::StreamBroken, Error::bad_gateway(format!("the connection to {host} failed")))
    }
}

/// A connector whose whole connect (TCP and TLS) must finish within `limit`.
#[derive(Clone, Debug)]
pub struct Deadline<C> {
    inner: C,
    limit: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<C> Service<Uri> for Deadline<C>
where
    C: Service<Uri>,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let limit = self.limit;
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect and TLS handshake timed out",
                )) as BoxError),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_urls_keep_scheme_host_port_and_path_only() {
        let u = |s: &str| s.parse::<Uri>().unwrap();
        let cdn = u("https://user:pw@cdn.example:8443/blobs/sha256:ab?X-Amz-Signature=abc&X-Amz-Credential=def");
        assert_eq!(Redacted(&cdn).to_string(), "https://cdn.example:8443/blobs/sha256:ab");
        assert_eq!(Redacted(&u("http://127.0.0.1:5000/v2/?a=b")).to_string(), "http://127.0.0.1:5000/v2/");
        assert_eq!(Redacted(&u("https://[::1]/token?scope=x")).to_string(), "https://[::1]/token");
        assert_eq!(Redacted(&u("https://r.io")).to_string(), "https://r.io/");
    }

    #[tokio::test]
    async fn backoff_stays_within_its_ceiling_whatever_the_numbers() {
        // Config validation keeps initial_backoff_ms small; the arithmetic must hold
        // without it too (u64::MAX once made `ceiling + 1` wrap to a division by zero).
        for initial_backoff_ms in [0, 1, 100, u64::MAX] {
            let mut config = Config::default();
            config.retries.initial_backoff_ms = initial_backoff_ms;
            let upstream = Upstream::new(&config, Arc::new(Metrics::default()));
            for attempt in 1..=20 {
                let ceiling = initial_backoff_ms.saturating_mul(1 << (attempt - 1).min(16));
                assert!(
                    upstream.backoff(attempt) <= Duration::from_millis(ceiling),
                    "{initial_backoff_ms} ms, {attempt}"
                );
            }
        }
    }
}
