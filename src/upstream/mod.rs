//! The transport to registries: two HTTP clients (one for listed registries, one that
//! reaches public addresses only), connect and TLS deadlines, the response-headers
//! timeout, retries with backoff, and the classification of failures.
//!
//! Small requests (ping, token, manifest) share a pool of keep-alive connections. A blob
//! gets an HTTP/1.1 connection of its own that its body drives ([`dedicated`]), so that
//! reading the registry and writing to the client happen in one task; over https it
//! is not even hyper's, but rustls's unbuffered API under our own HTTP/1.1 reader, so
//! that TLS is decrypted in buffers the body frames are cut from.
//!
//! [`crate::registry`] speaks the registry protocol on top of [`Upstream::send`].

pub mod dedicated;
pub mod multipart;

use std::collections::HashMap;
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
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

use self::dedicated::{DedicatedBody, ReadBufferPool};
use crate::config::{Config, Retries};
use crate::egress::{find_refused, PublicOnly, PublicResolver};
use crate::error::{BoxError, Error};
use crate::metrics::{Metrics, UpstreamError};
use crate::tls;

const USER_AGENT: &str = concat!("layerpipe/", env!("CARGO_PKG_VERSION"));

type Connector<C> = Deadline<HttpsConnector<C>>;

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
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            UpstreamBody::Pooled(incoming) => {
                Pin::new(incoming).poll_frame(cx).map(|frame| frame.map(|f| f.map_err(BodyError::from)))
            }
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

/// Why a registry response's body broke off: hyper's word, or a TLS blob connection's
/// own ([`dedicated`]).
#[derive(Debug)]
pub struct BodyError(BoxError);

impl BodyError {
    fn own(e: impl Into<BoxError>) -> BodyError {
        BodyError(e.into())
    }
}

impl From<hyper::Error> for BodyError {
    fn from(e: hyper::Error) -> BodyError {
        BodyError(Box::new(e))
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// One request to send: a body only for a form POST over the pool.
struct Outgoing<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: Bytes,
}

impl Outgoing<'_> {
    fn request<B>(&self, body: B) -> Request<B> {
        let mut request =
            Request::builder().method(self.method.clone()).uri(self.uri.clone()).body(body).expect("a parsed URL");
        *request.headers_mut() = self.headers.clone();
        request.headers_mut().insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        request
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
    /// Listed registries without a `ca_file`.
    trusted: Clients<HttpConnector>,
    /// Listed registries with a `ca_file`, by host: each trusts its own CA besides the
    /// common roots, and no other registry does.
    trusted_with_ca: HashMap<String, Clients<HttpConnector>>,
    public: Clients<PublicOnly<HttpConnector<PublicResolver>>>,
    read_buffers: ReadBufferPool,
    response_headers: Duration,
    retries: Retries,
    metrics: Arc<Metrics>,
}

/// A pooled client and what dedicated connections (HTTP/1.1 only) are made with, with
/// the same TCP rules and TLS roots: TCP for http ([`dedicated::send`]), and TCP with
/// the TLS config for https ([`dedicated::send_tls`]).
struct Clients<C> {
    pooled: Client<Connector<C>, Full<Bytes>>,
    tcp: C,
    tls: Arc<rustls::ClientConfig>,
    deadline: Duration,
}

impl<C: Clone> Clients<C>
where
    Connector<C>: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    fn new(tcp: C, tls: &rustls::ClientConfig, deadline: Duration) -> Clients<C> {
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_idle_timeout(Duration::from_secs(60)).pool_max_idle_per_host(32);
        Clients {
            pooled: builder.build(Deadline { inner: https(tcp.clone(), tls.clone()), limit: deadline }),
            tcp,
            tls: Arc::new(tls.clone()),
            deadline,
        }
    }
}

impl Upstream {
    /// Clients with `config`'s timeouts, retries and TLS roots ([`crate::tls`]).
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Upstream {
        let t = &config.timeouts;
        let deadline = t.connect() + t.tls_handshake();
        let mut trusted = HttpConnector::new();
        let mut public = HttpConnector::new_with_resolver(PublicResolver);
        configure(&mut trusted, t.connect());
        configure(&mut public, t.connect());
        let roots = tls::base_roots();
        let common = tls::client_config(&roots, None);
        let trusted_with_ca = config
            .registries
            .iter()
            .filter_map(|(host, registry)| {
                let tls = tls::client_config(&roots, Some(registry.ca.as_ref()?));
                Some((host.clone(), Clients::new(trusted.clone(), &tls, deadline)))
            })
            .collect();
        Upstream {
            trusted: Clients::new(trusted, &common, deadline),
            trusted_with_ca,
            public: Clients::new(PublicOnly(public), &common, deadline),
            read_buffers: ReadBufferPool::default(),
            response_headers: t.response_headers(),
            retries: config.retries.clone(),
            metrics,
        }
    }

    /// The metrics failures are counted in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Sends a bodiless request for `registry` (the host references name it by: its
    /// TLS roots, and the config key a certificate failure names) and returns the
    /// response once its headers are in, retrying connection errors, 502, 503, 504 and
    /// short 429s with backoff. Nothing has reached the client while this runs, so a
    /// retry can never duplicate bytes.
    pub async fn send(
        &self,
        registry: &str,
        trust: Trust,
        transport: Transport,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Response<UpstreamBody>, Error> {
        let outgoing = Outgoing { method, uri, headers, body: Bytes::new() };
        self.send_retrying(registry, trust, transport, &outgoing).await
    }

    /// POSTs `form` (`application/x-www-form-urlencoded`) over the pool, as
    /// [`Upstream::send`] does a GET: an OAuth2 token request to a registry's realm.
    pub async fn post_form(
        &self,
        registry: &str,
        trust: Trust,
        uri: &Uri,
        headers: &HeaderMap,
        form: String,
    ) -> Result<Response<UpstreamBody>, Error> {
        let mut headers = headers.clone();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        let outgoing = Outgoing { method: &Method::POST, uri, headers: &headers, body: Bytes::from(form) };
        self.send_retrying(registry, trust, Transport::Pooled, &outgoing).await
    }

    async fn send_retrying(
        &self,
        registry: &str,
        trust: Trust,
        transport: Transport,
        outgoing: &Outgoing<'_>,
    ) -> Result<Response<UpstreamBody>, Error> {
        let uri = outgoing.uri;
        let mut attempt = 1;
        loop {
            let result = self.send_once(registry, trust, transport, outgoing).await;
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
        registry: &str,
        trust: Trust,
        transport: Transport,
        outgoing: &Outgoing<'_>,
    ) -> Result<Response<UpstreamBody>, (UpstreamError, Error)> {
        let uri = outgoing.uri;
        let host = uri.host().unwrap_or_default();
        let fail = |kind: UpstreamError, e: Error| {
            self.metrics.upstream_error(registry, kind);
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
        let pooled_request = || outgoing.request(Full::new(outgoing.body.clone()));
        // Blobs are only ever asked for, never sent: a dedicated request has no body.
        let dedicated_request = || outgoing.request(Empty::new());
        let https = uri.scheme_str() == Some("https");
        let sending = async {
            let pooled = |r: Response<Incoming>| r.map(UpstreamBody::Pooled);
            let own = |r: Response<DedicatedBody>| r.map(UpstreamBody::Dedicated);
            let loan = || self.read_buffers.lend();
            let trusted = self.trusted_with_ca.get(registry).unwrap_or(&self.trusted);
            match (transport, trust) {
                (Transport::Pooled, Trust::Listed) => Ok(pooled(trusted.pooled.request(pooled_request()).await?)),
                (Transport::Pooled, Trust::PublicOnly) => {
                    Ok(pooled(self.public.pooled.request(pooled_request()).await?))
                }
                (Transport::Dedicated, Trust::Listed) if https => Ok(own(dedicated::send_tls(
                    trusted.tcp.clone(),
                    trusted.tls.clone(),
                    trusted.deadline,
                    dedicated_request(),
                    loan(),
                )
                .await?)),
                (Transport::Dedicated, Trust::PublicOnly) if https => Ok(own(dedicated::send_tls(
                    self.public.tcp.clone(),
                    self.public.tls.clone(),
                    self.public.deadline,
                    dedicated_request(),
                    loan(),
                )
                .await?)),
                (Transport::Dedicated, Trust::Listed) => {
                    Ok(own(dedicated::send(trusted.tcp.clone(), trusted.deadline, dedicated_request(), loan()).await?))
                }
                (Transport::Dedicated, Trust::PublicOnly) => {
                    Ok(own(dedicated::send(self.public.tcp.clone(), self.public.deadline, dedicated_request(), loan())
                        .await?))
                }
            }
        };
        match tokio::time::timeout(self.response_headers, sending).await {
            Ok(Ok(response)) => {
                match response.status() {
                    StatusCode::TOO_MANY_REQUESTS => self.metrics.upstream_error(registry, UpstreamError::RateLimited),
                    s if s.is_server_error() => self.metrics.upstream_error(registry, UpstreamError::ServerError),
                    _ => {}
                }
                Ok(response)
            }
            Ok(Err(e)) => {
                let (kind, error) = classify(registry, uri, &e);
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

fn https<C>(inner: C, tls: rustls::ClientConfig) -> HttpsConnector<C> {
    HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_all_versions().wrap_connector(inner)
}

/// The kind and the user's error for a request to `uri`, on behalf of `registry`, that
/// got no response at all.
fn classify(registry: &str, uri: &Uri, e: &SendError) -> (UpstreamError, Error) {
    let host = uri.host().unwrap_or_default();
    if let Some(why) = tls::certificate_failure(e.source.as_ref()) {
        let at = uri.authority().map_or(host, |a| a.as_str());
        let message = format!(
            "certificate for {at} is not trusted: {why}; to trust a private CA, set registries.\"{registry}\".ca_file to its PEM file"
        );
        return (UpstreamError::Certificate, Error::bad_gateway(message));
    }
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
