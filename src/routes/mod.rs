//! Routing: which handler answers a request. The handlers live by area beside this
//! table (`image`, `tags`, `download`, `layer`, `whole`), and `respond` turns their results
//! into responses.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the forms: an image reference, a repository |
//! | `GET /?repo=REPO[&last=TAG]` | the repository's tags, 100 a page, each linking to its image |
//! | `GET /?image=REF` | the image's layers with their build steps and referrers (or, for an index, its platforms) |
//! | `GET /config?image=REF` | the image's config: what a container runs with, then the raw JSON |
//! | `GET /dockerfile?image=REF` | the image's Dockerfile, rebuilt from its history |
//! | `GET /download?image=REF&digest=D&layer=N&mt=MT` | the layer, as a file |
//! | `GET /files?image=REF&digest=D&layer=N&mt=MT[&page=P]` | the layer's entries, largest first |
//! | `GET /fs/PATH/?image=…` | one directory of the layer (`/fs/?…` is its root) |
//! | `GET /fs/PATH?image=…` | one entry of the layer; a file's first 64 KiB |
//! | `GET /save/PATH?image=…` | one file of the layer, as a file |
//! | `GET /files?…&search=TEXT` | the layer's entries whose path has TEXT (`^TEXT`: starts with it) |
//! | `GET /layers/PATH/?image=REF` | one directory of the merged filesystem, hidden entries struck through |
//! | `GET /layers/PATH?image=REF` | every layer's version of one path of the merged filesystem |
//! | `GET /layers/?image=REF&search=TEXT` | the entries of every layer whose path has TEXT |
//! | `GET /sizes?image=REF` | the image's largest files and its wasted bytes |
//! | `GET /changes?image=REF&layer=N` | layer N's entries marked added, modified or removed against the layers below |
//! | `GET /search?q=TEXT` / `?layer=DIGEST` | entries of every catalogued layer by path / the images that ship a layer |
//! | `GET /secrets?image=REF` | the image's secrets: each finding's place, fate and masked value, deleted ones first |
//! | `GET /diff?a=REF&b=REF` | two images' merged filesystems compared: added, removed, changed |
//! | `GET /check?image=REF&max_wasted_bytes=N&min_efficiency=F&no_secrets=1` | JSON: 200 when the image is within the limits, 422 with the reasons |
//! | `GET /healthz` | `ok` |
//! | `GET /metrics` | Prometheus metrics |
//! | explore's forms: `/size/…`, `/fs/REPO@DIGEST/…`, `/layers/IMAGE/…`, `/sizes/…`, `/?blob=…` | a 302 to the page above that answers it (see `explore_compat`) |
//!
//! Every page answers as JSON too (`src/api/`) for `Accept: application/json` or
//! `?format=json`; errors then are `{"error": …, "status": …}`.
//!
//! HEAD is answered like GET without a body; other methods get 405.

pub mod body;
mod changes;
mod check;
mod diff;
mod dockerfile;
mod download;
mod explore_compat;
mod first_merge;
mod image;
mod layer;
mod respond;
mod search;
mod secrets;
mod tags;
mod whole;

use std::sync::Arc;

use http::{Method, Request, Response};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::download::{DownloadLink, DownloadSlots, StreamOptions};
use crate::error::Error;
use crate::explore::contents::ContentHashes;
use crate::explore::images::ImageLoader;
use crate::explore::layers::Inspector;
use crate::hashing::HashWorkers;
use crate::layer::link::{Here, LayerPath};
use crate::metrics::Metrics;
use crate::pages::RenderSlots;
use crate::query;
use crate::registry::RegistryClient;
use crate::upstream::multipart::Multipart;
use respond::{redirect, text_response, Format};

pub use body::Body;
pub use respond::error_response;

/// The application: shared by every connection.
pub struct App {
    registry: Arc<RegistryClient>,
    downloads: DownloadSlots,
    stream: StreamOptions,
    multipart: Multipart,
    layers: Arc<Inspector>,
    renders: RenderSlots,
    /// Image configs and merged views, cached by digest.
    images: Arc<ImageLoader>,
    metrics: Arc<Metrics>,
    /// Every layer and image seen, for `/search`.
    catalog: Catalog,
    /// File hashes read for diffs.
    hashes: ContentHashes,
}

impl App {
    /// An application serving with `config`; panics when its catalog cannot be opened
    /// (in-process tests: serving uses [`App::try_new`]).
    pub fn new(config: Arc<Config>) -> App {
        App::try_new(config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// An application serving with `config`, or why it cannot start (its catalog).
    pub fn try_new(config: Arc<Config>) -> Result<App, String> {
        let metrics = Arc::new(Metrics::default());
        let catalog = Catalog::open(&config)?;
        let multipart = Multipart::new(&config);
        let registry = Arc::new(RegistryClient::new(config.clone(), metrics.clone()));
        Ok(App {
            downloads: DownloadSlots::new(config.limits.max_concurrent_downloads, metrics.clone()),
            stream: StreamOptions {
                verify: config.verify_digests,
                idle_timeout: config.timeouts.idle_read(),
                hashing: Arc::new(HashWorkers::per_core()),
            },
            multipart: multipart.clone(),
            layers: Arc::new(
                Inspector::new(&config, metrics.clone(), registry.clone(), multipart)
                    .observed_by(Arc::new(catalog.clone())),
            ),
            renders: RenderSlots::new(config.limits.max_concurrent_renders).counted_in(metrics.clone()),
            images: Arc::new(ImageLoader::default()),
            registry,
            metrics,
            catalog,
            hashes: ContentHashes::default(),
        })
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
            Err(e) => {
                let e = Error::bad_request(e);
                self.refused(&e, request.uri().path());
                return error_response(&e, "", Format::of(request.headers(), &[]));
            }
        };
        // `/check` is for CI jobs: JSON whatever they accept.
        let format = match request.uri().path() {
            "/check" => Format::Json,
            _ => Format::of(request.headers(), &pairs),
        };
        let image_input = query::get(&pairs, "image").unwrap_or("").to_owned();
        let result = if !matches!(*request.method(), Method::GET | Method::HEAD) {
            Err(Error::method_not_allowed())
        } else {
            let method = request.method();
            match request.uri().path() {
                path if explore_compat::is_explore(path, &pairs) => self.explore(path, &pairs).await,
                "/" => match nonempty(&pairs, "image").is_none().then(|| nonempty(&pairs, "repo")).flatten() {
                    Some(repo) => self.tags_page(repo, &pairs, format).await,
                    None => self.image_page(&pairs, format).await,
                },
                "/config" => self.config_page(&pairs, format).await,
                "/dockerfile" => self.dockerfile_page(&pairs, format).await,
                "/download" => self.download(method.clone(), request.headers(), &pairs).await,
                "/files" => self.files(method, &pairs, format).await,
                "/fs" => DownloadLink::from_query(&pairs)
                    .map(|link| redirect(&Here::root().fs(&link, &LayerPath::root(), true))),
                path if path.starts_with("/fs/") => self.browse(method, &path["/fs/".len()..], &pairs, format).await,
                path if path.starts_with("/save/") => self.save(method, &path["/save/".len()..], &pairs).await,
                // The query goes along as it came: it is from a valid URI, so a valid header.
                "/layers" => Ok(redirect(&format!("./layers/?{}", request.uri().query().unwrap_or("")))),
                path if path.starts_with("/layers/") => {
                    self.merged(method, &path["/layers/".len()..], &pairs, format).await
                }
                "/sizes" => self.sizes(method, &pairs, format).await,
                "/changes" => self.changes(&pairs, format).await,
                "/search" => self.search(&pairs, format).await,
                "/diff" => self.diff(&pairs, format).await,
                "/check" => self.check(&pairs).await,
                "/secrets" => self.secrets_page(&pairs, format).await,
                "/healthz" => Ok(text_response("ok\n".into())),
                "/metrics" => Ok(text_response(self.metrics.render().into())),
                _ => Err(Error::not_found("no such page")),
            }
        };
        let mut response = result.unwrap_or_else(|e| {
            self.refused(&e, request.uri().path());
            error_response(&e, &image_input, format)
        });
        if query::get(&pairs, "format") == Some("json") {
            keep_json(&mut response);
        }
        response
    }
}

impl App {
    /// Logs why layerpipe answers `path` with `e`'s status (5xx as a warning), and
    /// counts a 503 of one of its own limits by that limit. The message is the one the
    /// user sees: written to carry no token or credential (src/error.rs).
    fn refused(&self, e: &Error, path: &str) {
        let (route, status, reason) = (route_label(path), e.status().as_u16(), e.message());
        if let Some(limit) = e.limit() {
            self.metrics.limited(limit);
        }
        if e.status().is_server_error() {
            tracing::warn!(route, status, limit = e.limit(), reason, "answered with an error");
        } else {
            tracing::info!(route, status, reason, "answered with an error");
        }
    }
}

/// A redirect asked for with `?format=json` leads to JSON too: its `Location` (one of
/// layerpipe's own, with a query) gets `&format=json`.
fn keep_json(response: &mut Response<Body>) {
    if !response.status().is_redirection() {
        return;
    }
    let Some(location) = response.headers().get(http::header::LOCATION).and_then(|l| l.to_str().ok()) else {
        return;
    };
    if location.contains('?') && !location.contains("format=json") {
        if let Ok(value) = http::HeaderValue::try_from(format!("{location}&format=json")) {
            response.headers_mut().insert(http::header::LOCATION, value);
        }
    }
}

/// The query value `name`, unless it is missing or blank (an empty form box).
fn nonempty<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query::get(pairs, name).map(str::trim).filter(|s| !s.is_empty())
}

/// The route label of a path, for metrics.
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/" => "page",
        "/config" => "config",
        "/dockerfile" => "dockerfile",
        "/download" => "download",
        "/files" => "files",
        "/healthz" => "healthz",
        "/metrics" => "metrics",
        p if p == "/fs" || p.starts_with("/fs/") => "browse",
        p if p.starts_with("/save/") => "save",
        p if p == "/layers" || p.starts_with("/layers/") => "merged",
        "/sizes" => "sizes",
        "/changes" => "changes",
        "/search" => "search",
        "/diff" => "diff",
        "/check" => "check",
        "/secrets" => "secrets",
        _ => "other",
    }
}
