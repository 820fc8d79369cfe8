//! Routing: which handler answers a request, and how its result becomes a response.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the form |
//! | `GET /?image=REF` | the image's layers (or, for an index, its platforms) |
//! | `GET /download?image=REF&digest=D&layer=N&mt=MT` | the layer, as a file |
//! | `GET /healthz` | `ok` |
//! | `GET /metrics` | Prometheus metrics |
//!
//! HEAD is answered like GET without a body; other methods get 405.

use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::body::Body;
use crate::config::Config;
use crate::download::{self, DownloadLink, DownloadSlots, StreamOptions};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::page;
use crate::query;
use crate::reference::ImageReference;
use crate::registry::{RegistryClient, PASSED_ON_REQUEST_HEADERS};

/// The application: shared by every connection.
pub struct App {
    registry: RegistryClient,
    downloads: DownloadSlots,
    stream: StreamOptions,
    metrics: Arc<Metrics>,
}

/// Pages may load nothing from anywhere and submit forms only to layerpipe.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'";

impl App {
    /// An application serving with `config`.
    pub fn new(config: Arc<Config>) -> App {
        let metrics = Arc::new(Metrics::default());
        App {
            downloads: DownloadSlots::new(config.limits.max_concurrent_downloads, metrics.clone()),
            stream: StreamOptions { verify: config.verify_digests, idle_timeout: config.timeouts.idle_read() },
            registry: RegistryClient::new(config, metrics.clone()),
            metrics,
        }
    }

    /// The metrics this application counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        self.registry.config()
    }

    /// Answers one request. Never fails: errors become error pages.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Body> {
        let pairs = match query::parse(request.uri().query().unwrap_or("")) {
            Ok(pairs) => pairs,
            Err(e) => return error_response(&Error::bad_request(e), ""),
        };
        let image_input = query::get(&pairs, "image").unwrap_or("").to_owned();
        let result = if !matches!(*request.method(), Method::GET | Method::HEAD) {
            Err(Error::method_not_allowed())
        } else {
            match request.uri().path() {
                "/" => self.image_page(&pairs).await,
                "/download" => self.download(request.method().clone(), request.headers(), &pairs).await,
                "/healthz" => Ok(text_response("ok\n".into())),
                "/metrics" => Ok(text_response(self.metrics.render().into())),
                _ => Err(Error::not_found("no such page")),
            }
        };
        result.unwrap_or_else(|e| error_response(&e, &image_input))
    }

    async fn image_page(&self, pairs: &[(String, String)]) -> Result<Response<Body>, Error> {
        let Some(image) = query::get(pairs, "image").map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(html_response(StatusCode::OK, page::home()));
        };
        let reference: ImageReference = image.parse()?;
        let fetched = self.registry.manifest(&reference).await?;
        Ok(html_response(StatusCode::OK, page::image(&reference, &fetched)))
    }

    async fn download(
        &self,
        method: Method,
        headers: &HeaderMap,
        pairs: &[(String, String)],
    ) -> Result<Response<Body>, Error> {
        let link = DownloadLink::from_query(pairs)?;
        let slot = self.downloads.take()?;
        let mut pass_on = HeaderMap::new();
        for name in PASSED_ON_REQUEST_HEADERS {
            if let Some(value) = headers.get(&name) {
                pass_on.insert(name, value.clone());
            }
        }
        let upstream = self.registry.blob(&link.image, &link.digest, &method, pass_on).await?;
        Ok(download::respond(upstream, &link.digest, &link.file_name(), &self.stream, slot))
    }
}

fn text_response(text: Body) -> Response<Body> {
    let mut response = Response::new(text);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn html_response(status: StatusCode, html: String) -> Response<Body> {
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The error page for `e`, with `Retry-After` (429) or `Allow` (405) where they belong.
pub fn error_response(e: &Error, image_input: &str) -> Response<Body> {
    let mut response = html_response(e.status(), page::error(e, image_input));
    if let Some(retry_after) = e.retry_after() {
        // 429 and 503: tell the client when to come back.
        response.headers_mut().insert(header::RETRY_AFTER, retry_after.clone());
    }
    if e.status() == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

/// The route label of a path, for metrics.
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/" => "page",
        "/download" => "download",
        "/healthz" => "healthz",
        "/metrics" => "metrics",
        _ => "other",
    }
}
