//! Routing: which handler answers a request, and how its result becomes a response.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the form |
//! | `GET /?image=REF` | the image's layers (or, for an index, its platforms) |
//! | `GET /download?image=REF&digest=D&layer=N&mt=MT` | the layer, as a file |
//! | `GET /files?image=REF&digest=D&layer=N&mt=MT[&page=P]` | the layer's entries, largest first |
//! | `GET /fs/PATH/?image=…` | one directory of the layer (`/fs/?…` is its root) |
//! | `GET /fs/PATH?image=…` | one entry of the layer; a file's first 64 KiB |
//! | `GET /save/PATH?image=…` | one file of the layer, as a file |
//! | `GET /healthz` | `ok` |
//! | `GET /metrics` | Prometheus metrics |
//!
//! HEAD is answered like GET without a body; other methods get 405.

use std::sync::Arc;

use bytes::Bytes;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::body::Body;
use crate::config::Config;
use crate::download::{self, DownloadLink, DownloadSlots, LayerFormat, StreamOptions};
use crate::error::Error;
use crate::layer::entry::Kind;
use crate::layer::inspect::{FileToSave, Inspector};
use crate::layer::link::{Here, LayerPath};
use crate::layer::listing::{Listing, Lookup};
use crate::metrics::Metrics;
use crate::pages;
use crate::query;
use crate::reference::ImageReference;
use crate::registry::{RegistryClient, PASSED_ON_REQUEST_HEADERS};
use crate::upstream::multipart::Multipart;

/// The application: shared by every connection.
pub struct App {
    registry: Arc<RegistryClient>,
    downloads: DownloadSlots,
    stream: StreamOptions,
    multipart: Multipart,
    layers: Arc<Inspector>,
    metrics: Arc<Metrics>,
}

/// How long a first visit waits for a layer's index before it streams the page.
const STREAM_AFTER: std::time::Duration = std::time::Duration::from_millis(500);
/// How often a first visit's page gets a line of progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// `Cache-Control` for pages addressed by digest.
const IMMUTABLE: &str = "max-age=31536000, immutable";

/// Pages may load nothing from anywhere and submit forms only to layerpipe.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'";

impl App {
    /// An application serving with `config`.
    pub fn new(config: Arc<Config>) -> App {
        let metrics = Arc::new(Metrics::default());
        App {
            downloads: DownloadSlots::new(config.limits.max_concurrent_downloads, metrics.clone()),
            stream: StreamOptions { verify: config.verify_digests, idle_timeout: config.timeouts.idle_read() },
            multipart: Multipart::new(&config),
            layers: Arc::new(Inspector::new(&config, metrics.clone())),
            registry: Arc::new(RegistryClient::new(config, metrics.clone())),
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
            let method = request.method();
            match request.uri().path() {
                "/" => self.image_page(&pairs).await,
                "/download" => self.download(method.clone(), request.headers(), &pairs).await,
                "/files" => self.files(method, &pairs).await,
                "/fs" => DownloadLink::from_query(&pairs)
                    .map(|link| redirect(&Here::root().fs(&link, &LayerPath::root(), true))),
                path if path.starts_with("/fs/") => self.browse(method, &path["/fs/".len()..], &pairs).await,
                path if path.starts_with("/save/") => self.save(method, &path["/save/".len()..], &pairs).await,
                "/healthz" => Ok(text_response("ok\n".into())),
                "/metrics" => Ok(text_response(self.metrics.render().into())),
                _ => Err(Error::not_found("no such page")),
            }
        };
        result.unwrap_or_else(|e| error_response(&e, &image_input))
    }

    async fn image_page(&self, pairs: &[(String, String)]) -> Result<Response<Body>, Error> {
        let Some(image) = query::get(pairs, "image").map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(html_response(StatusCode::OK, pages::home()));
        };
        let reference: ImageReference = image.parse()?;
        let fetched = self.registry.manifest(&reference).await?;
        let mut response = html_response(StatusCode::OK, pages::image(&reference, &fetched));
        if reference.digest().is_some() {
            // A manifest never changes for its digest, and neither does its page: let
            // browsers and proxies keep it rather than spend a registry pull on a reload.
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
        }
        Ok(response)
    }

    async fn download(
        &self,
        method: Method,
        headers: &HeaderMap,
        pairs: &[(String, String)],
    ) -> Result<Response<Body>, Error> {
        let link = DownloadLink::from_query(pairs)?;
        // A HEAD streams nothing: no slot, and not counted as a download.
        let slot = if method == Method::HEAD { None } else { Some(self.downloads.take()?) };
        let mut pass_on = HeaderMap::new();
        for name in PASSED_ON_REQUEST_HEADERS {
            if let Some(value) = headers.get(&name) {
                pass_on.insert(name, value.clone());
            }
        }
        let upstream = self.registry.blob(&link.image, &link.digest, &method, pass_on).await?;
        Ok(match slot {
            Some(slot) => {
                let plan =
                    self.multipart.plan(&upstream, || self.registry.blob_ranges(&link.image, &link.digest, &upstream));
                download::respond(upstream, plan, &link.digest, &link.file_name(), &self.stream, slot)
            }
            None => download::respond_to_head(upstream, &link.file_name()),
        })
    }

    /// `files`: the layer's entries, largest first.
    async fn files(&self, method: &Method, pairs: &[(String, String)]) -> Result<Response<Body>, Error> {
        let link = DownloadLink::from_query(pairs)?;
        let page = page_number(pairs)?;
        if LayerFormat::from_media_type(&link.media_type) == LayerFormat::Other {
            return self.not_a_layer(&link, Here::root()).await;
        }
        if page == 1 && *method == Method::GET && !self.layers.is_indexed(&link.digest) {
            return self.first_visit(link, |link, listing| pages::layer_files(link, listing, 1)).await;
        }
        let listing = self.layers.listing(&self.registry, &link).await?;
        if page > pages::file_pages(&link, &listing) {
            return Err(Error::not_found(format!("the list of files has no page {page}")));
        }
        Ok(html_response(StatusCode::OK, pages::layer_files(&link, &listing, page)))
    }

    /// `fs/PATH/` and `fs/PATH`: a directory of the layer, or one entry. A directory asked
    /// for without its `/` (or a file with one) is redirected, so that relative links
    /// resolve from the right place.
    async fn browse(
        &self,
        method: &Method,
        encoded: &str,
        pairs: &[(String, String)],
    ) -> Result<Response<Body>, Error> {
        let link = DownloadLink::from_query(pairs)?;
        let (path, wants_dir) = LayerPath::from_url(encoded)?;
        if LayerFormat::from_media_type(&link.media_type) == LayerFormat::Other {
            let here = if wants_dir { Here::dir(&path) } else { Here::file(&path) };
            return self.not_a_layer(&link, here).await;
        }
        if path.depth() == 0 && wants_dir && *method == Method::GET && !self.layers.is_indexed(&link.digest) {
            let root = LayerPath::root();
            return self.first_visit(link, move |link, listing| pages::layer_dir(link, listing, &root, 1)).await;
        }
        let listing = self.layers.listing(&self.registry, &link).await?;
        let entry = match listing.lookup(path.as_bytes()) {
            Lookup::Missing => return Err(missing(&listing, &path)),
            Lookup::ImpliedDir => None,
            Lookup::Entry(e) if e.entry.kind == Kind::Dir => None,
            Lookup::Entry(e) => Some(e),
        };
        let html = match (entry, wants_dir) {
            (None, true) => {
                let page = page_number(pairs)?;
                if page > pages::dir_pages(&link, &listing, &path) {
                    return Err(Error::not_found(format!("{} has no page {page}", path.display())));
                }
                pages::layer_dir(&link, &listing, &path, page)
            }
            (None, false) => return Ok(redirect(&Here::file(&path).fs(&link, &path, true))),
            (Some(_), true) => return Ok(redirect(&Here::dir(&path).fs(&link, &path, false))),
            (Some(e), false) => {
                let content = listing.content_of(e.index).filter(|c| c.entry.size > 0 && *method != Method::HEAD);
                let preview = match content {
                    Some(c) => match self.layers.preview(&self.registry, &link, c.index).await {
                        // Busy is the whole answer: 503 with Retry-After, as for downloads;
                        // so is a blob that is not what its digest says.
                        Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE || e.is_digest_mismatch() => {
                            return Err(e)
                        }
                        read => Some(read),
                    },
                    None => None,
                };
                pages::layer_file(&link, &listing, e, &path, preview)
            }
        };
        Ok(html_response(StatusCode::OK, html))
    }

    /// `save/PATH`: one file of the layer, as an attachment under its own name.
    async fn save(&self, method: &Method, encoded: &str, pairs: &[(String, String)]) -> Result<Response<Body>, Error> {
        let link = DownloadLink::from_query(pairs)?;
        let (path, wants_dir) = LayerPath::from_url(encoded)?;
        if wants_dir {
            return Err(Error::bad_request("only files can be saved, not directories"));
        }
        if LayerFormat::from_media_type(&link.media_type) == LayerFormat::Other {
            return Err(Error::bad_request("this blob is not a filesystem layer; download it whole instead"));
        }
        let listing = self.layers.listing(&self.registry, &link).await?;
        let Lookup::Entry(e) = listing.lookup(path.as_bytes()) else {
            return Err(missing(&listing, &path));
        };
        let content = listing.content_of(e.index).ok_or_else(|| {
            Error::bad_request(format!(
                "{} is not a file: only files (and hard links to them) can be saved",
                path.display()
            ))
        })?;
        let name = String::from_utf8_lossy(path.name()).into_owned();
        let file = FileToSave { index: content.index, length: content.entry.size, name: &name };
        self.layers.save(&self.registry, &link, method, file).await
    }

    /// A layer's page on the first visit. When the layer's index comes within
    /// [`STREAM_AFTER`] (or reading fails by then), the page is sent whole, with its
    /// status. Otherwise the page streams: its frame at once, a line of progress as the
    /// bytes come (about four a second), then the page `render` makes of the listing,
    /// or the reason reading failed. Proxies are asked not to buffer it
    /// (`X-Accel-Buffering: no`), so the progress reaches the browser live.
    async fn first_visit(
        &self,
        link: DownloadLink,
        render: impl FnOnce(&DownloadLink, &Listing) -> String + Send + 'static,
    ) -> Result<Response<Body>, Error> {
        let (registry, layers) = (self.registry.clone(), self.layers.clone());
        let reading = (layers.clone(), link.clone());
        let mut index = Box::pin(async move { reading.0.index(&registry, &reading.1).await });
        tokio::select! {
            result = &mut index => return Ok(html_response(StatusCode::OK, render(&link, &result?.listing))),
            _ = tokio::time::sleep(STREAM_AFTER) => {}
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        tokio::spawn(async move {
            let start = pages::streamed_start(&pages::reading_title(&link), &link.image.to_string());
            if tx.send(start.into()).await.is_err() {
                return;
            }
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            let result = loop {
                tokio::select! {
                    result = &mut index => break result,
                    _ = tick.tick() => {
                        let Some((bytes, total, entries)) = layers.progress(&link.digest).map(|p| p.get()) else {
                            continue;
                        };
                        // A client gone stops the reading with it (the index future is dropped).
                        if tx.send(pages::progress_line(bytes, total, entries).into()).await.is_err() {
                            return;
                        }
                    }
                }
            };
            let rest = match result {
                Ok(index) => {
                    let s = &index.listing.summary;
                    let done = pages::progress_done(s.compressed_bytes, index.listing.len() as u64);
                    format!("{done}{}", pages::streamed_end(&render(&link, &index.listing)))
                }
                Err(e) => pages::streamed_failure(&e),
            };
            let _ = tx.send(rest.into()).await;
        });
        let mut response = html_response(StatusCode::OK, String::new());
        *response.body_mut() = Body::Parts(rx);
        response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(response)
    }

    /// The page for a blob that is not a layer; a JSON one is shown.
    /// A blob that is not what its digest says is the whole answer (a 502).
    async fn not_a_layer(&self, link: &DownloadLink, here: Here) -> Result<Response<Body>, Error> {
        let is_json = link.media_type.ends_with("+json") || link.media_type.ends_with("/json");
        let head = if is_json { Some(self.layers.blob_head(&self.registry, link).await) } else { None };
        let head = match head {
            Some(Err(e)) if e.is_digest_mismatch() => return Err(e),
            head => head,
        };
        Ok(html_response(StatusCode::OK, pages::not_a_layer(link, here, head)))
    }
}

/// The optional `page` of a file list, from 1.
fn page_number(pairs: &[(String, String)]) -> Result<usize, Error> {
    match query::get(pairs, "page") {
        None => Ok(1),
        Some(page) => page
            .parse::<usize>()
            .ok()
            .filter(|&p| (1..=MAX_PAGE).contains(&p))
            .ok_or_else(|| Error::bad_request(format!("page must be a number from 1 to {MAX_PAGE}"))),
    }
}

/// Highest page number accepted (a million entries make 100 pages or more).
const MAX_PAGE: usize = 10_000;

/// 404 for a path not in the layer (or not in the part of it that could be read).
fn missing(listing: &Listing, path: &LayerPath) -> Error {
    let partly = if listing.summary.stopped.is_some() { " (in the part of it that could be read)" } else { "" };
    Error::not_found(format!("{} is not in this layer{partly}", path.display()))
}

/// 301 to a relative `location` (layerpipe's own, percent-encoded: a valid header).
fn redirect(location: &str) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
    let location = HeaderValue::try_from(location).expect("percent-encoded links are visible ASCII");
    response.headers_mut().insert(header::LOCATION, location);
    response
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
    let mut response = html_response(e.status(), pages::error(e, image_input));
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
        "/files" => "files",
        "/healthz" => "healthz",
        "/metrics" => "metrics",
        p if p == "/fs" || p.starts_with("/fs/") => "browse",
        p if p.starts_with("/save/") => "save",
        _ => "other",
    }
}
