//! The inside of one layer: its files by size, its folders, one entry, one file saved.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};

use super::body::Body;
use super::respond::{html_response, made, page_number, redirect, typed_response, Format};
use super::App;
use crate::api;
use crate::download::{content_disposition, DownloadLink};
use crate::error::Error;
use crate::explore::layers::{ByIndex, FileToSave};
use crate::image::search::Search;
use crate::index::LayerIndex;
use crate::layer::entry::Kind;
use crate::layer::link::{Here, LayerPath};
use crate::layer::listing::{Listing, Lookup};
use crate::pages;
use crate::query;

/// How long a first visit waits for a layer's index before it streams the page.
const STREAM_AFTER: std::time::Duration = std::time::Duration::from_millis(500);
/// How often a first visit's page gets a line of progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

impl App {
    /// `files`: the layer's entries, largest first; with `&search=`, those it finds.
    pub(super) async fn files(
        &self,
        method: &Method,
        pairs: &[(String, String)],
        format: Format,
    ) -> Result<Response<Body>, Error> {
        let link = DownloadLink::from_query(pairs)?;
        let page = page_number(pairs)?;
        let search = query::get(pairs, "search").and_then(Search::parse);
        if !link.is_layer() {
            return self.not_a_layer(&link, Here::root(), format).await;
        }
        // JSON is never streamed: a client reading data waits for the whole answer.
        if page == 1 && *method == Method::GET && format == Format::Html && !self.layers.is_indexed(&link.digest) {
            let render =
                move |link: &DownloadLink, listing: &Listing| pages::layer_files(link, listing, 1, search.as_ref());
            return self.first_visit(link, render).await;
        }
        let listing = self.layers.listing(&link).await?;
        if format == Format::Html && page > pages::file_pages(&link, &listing, search.as_ref()) {
            return Err(Error::not_found(format!("the list of files has no page {page}")));
        }
        let text = self
            .renders
            .render(move || {
                made(
                    format,
                    || Ok(pages::layer_files(&link, &listing, page, search.as_ref())),
                    || api::layer_files(&link, &listing, page, search.as_ref()),
                )
            })
            .await??;
        Ok(typed_response(format, StatusCode::OK, text))
    }

    /// `fs/PATH/` and `fs/PATH`: a directory of the layer, or one entry. A directory asked
    /// for without its `/` (or a file with one) is redirected, so that relative links
    /// resolve from the right place.
    pub(super) async fn browse(
        &self,
        method: &Method,
        encoded: &str,
        pairs: &[(String, String)],
        format: Format,
    ) -> Result<Response<Body>, Error> {
        let link = DownloadLink::from_query(pairs)?;
        let (path, wants_dir) = LayerPath::from_url(encoded)?;
        if !link.is_layer() {
            let here = if wants_dir { Here::dir(&path) } else { Here::file(&path) };
            return self.not_a_layer(&link, here, format).await;
        }
        if path.depth() == 0
            && wants_dir
            && *method == Method::GET
            && format == Format::Html
            && !self.layers.is_indexed(&link.digest)
        {
            let root = LayerPath::root();
            return self.first_visit(link, move |link, listing| pages::layer_dir(link, listing, &root, 1)).await;
        }
        // A preview that finds the index stale has dropped it: the page is made again,
        // the file looked up by its path in the fresh read.
        for _ in 0..2 {
            let layer = self.layers.index(&link).await?;
            let asked = Asked { path: &path, wants_dir, format };
            if let Some(response) = self.browse_in(method, &link, asked, pairs, &layer).await? {
                return Ok(response);
            }
        }
        Err(stale_twice())
    }

    /// `fs/PATH` by `layer`'s listing; `None` when the preview found `layer` stale.
    async fn browse_in(
        &self,
        method: &Method,
        link: &DownloadLink,
        asked: Asked<'_>,
        pairs: &[(String, String)],
        layer: &Arc<LayerIndex>,
    ) -> Result<Option<Response<Body>>, Error> {
        let Asked { path, wants_dir, format } = asked;
        let listing = &layer.listing;
        let entry = match listing.lookup(path.as_bytes()) {
            Lookup::Missing => return Err(missing(listing, path)),
            Lookup::ImpliedDir => None,
            Lookup::Entry(e) if e.entry.kind == Kind::Dir => None,
            Lookup::Entry(e) => Some(e),
        };
        let text = match (entry, wants_dir) {
            (None, true) => {
                let page = page_number(pairs)?;
                if format == Format::Html && page > pages::dir_pages(link, listing, path) {
                    return Err(Error::not_found(format!("{} has no page {page}", path.display())));
                }
                let (link, listing, path) = (link.clone(), listing.clone(), path.clone());
                self.renders
                    .render(move || {
                        made(
                            format,
                            || Ok(pages::layer_dir(&link, &listing, &path, page)),
                            || api::layer_dir(&link, &listing, &path, page),
                        )
                    })
                    .await??
            }
            (None, false) => return Ok(Some(redirect(&Here::file(path).fs(link, path, true)))),
            (Some(_), true) => return Ok(Some(redirect(&Here::dir(path).fs(link, path, false)))),
            (Some(e), false) => {
                let content = listing.content_of(e.index).filter(|c| c.entry.size > 0 && *method != Method::HEAD);
                let preview = match content {
                    Some(c) => match self.layers.preview(link, layer, c.index).await {
                        Ok(ByIndex::Stale) => return Ok(None),
                        Ok(ByIndex::Read(preview)) => Some(Ok(preview)),
                        // Busy is the whole answer: 503 with Retry-After, as for downloads;
                        // so is a blob that is not what its digest says.
                        Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE || e.is_digest_mismatch() => {
                            return Err(e)
                        }
                        Err(e) => Some(Err(e)),
                    },
                    None => None,
                };
                match format {
                    Format::Html => pages::layer_file(link, listing, e, path, preview),
                    Format::Json => api::layer_file(link, listing, e, path, preview).to_string(),
                }
            }
        };
        Ok(Some(typed_response(format, StatusCode::OK, text)))
    }

    /// `save/PATH`: one file of the layer, as an attachment under its own name.
    pub(super) async fn save(
        &self,
        method: &Method,
        encoded: &str,
        pairs: &[(String, String)],
    ) -> Result<Response<Body>, Error> {
        let link = DownloadLink::from_query(pairs)?;
        let (path, wants_dir) = LayerPath::from_url(encoded)?;
        if wants_dir {
            return Err(Error::bad_request("only files can be saved, not directories"));
        }
        if !link.is_layer() {
            return Err(Error::bad_request("this blob is not a filesystem layer; download it whole instead"));
        }
        let name = String::from_utf8_lossy(path.name()).into_owned();
        // A save that finds the index stale has dropped it: the file is looked up again
        // by its path, its size and kind as the fresh read found them.
        for _ in 0..2 {
            let layer = self.layers.index(&link).await?;
            let listing = &layer.listing;
            let Lookup::Entry(e) = listing.lookup(path.as_bytes()) else {
                return Err(missing(listing, &path));
            };
            let content = listing.content_of(e.index).ok_or_else(|| {
                Error::bad_request(format!(
                    "{} is not a file: only files (and hard links to them) can be saved",
                    path.display()
                ))
            })?;
            let length = content.entry.size;
            if *method == Method::HEAD || length == 0 {
                return Ok(saved_file(Body::empty(), length, &name));
            }
            let file = FileToSave { index: content.index, length };
            if let ByIndex::Read(body) = self.layers.save(&link, &layer, file).await? {
                return Ok(saved_file(Body::Entry(body), length, &name));
            }
        }
        Err(stale_twice())
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
        let layers = self.layers.clone();
        let reading = (layers.clone(), link.clone());
        let mut index = Box::pin(async move { reading.0.index(&reading.1).await });
        tokio::select! {
            result = &mut index => {
                let listing = result?.listing.clone();
                let html = self.renders.render(move || render(&link, &listing)).await?;
                return Ok(html_response(StatusCode::OK, html));
            }
            _ = tokio::time::sleep(STREAM_AFTER) => {}
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let renders = self.renders.clone();
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
                    let listing = index.listing.clone();
                    match renders.render(move || render(&link, &listing)).await {
                        Ok(html) => format!("{done}{}", pages::streamed_end(&html)),
                        Err(e) => pages::streamed_failure(&e),
                    }
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

    /// The page for a blob that is not a layer: its first 64 KiB are read and shown as
    /// they decode (JSON, a DSSE envelope, text, or hex; see `pages::not_a_layer`).
    /// A blob that is not what its digest says is the whole answer (a 502).
    async fn not_a_layer(&self, link: &DownloadLink, here: Here, format: Format) -> Result<Response<Body>, Error> {
        let head = match self.layers.blob_head(link).await {
            Err(e) if e.is_digest_mismatch() => return Err(e),
            head => Some(head),
        };
        let text = match format {
            Format::Html => pages::not_a_layer(link, here, head),
            Format::Json => api::not_a_layer(link, here, head).to_string(),
        };
        Ok(typed_response(format, StatusCode::OK, text))
    }
}

/// What a `fs/` request asks for: the path, whether as a folder, and in which format.
#[derive(Clone, Copy)]
struct Asked<'a> {
    path: &'a LayerPath,
    wants_dir: bool,
    format: Format,
}

/// A saved file's response: `body`, `length` bytes, an attachment named `name`.
fn saved_file(body: Body, length: u64, name: &str) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::CONTENT_DISPOSITION, content_disposition(name));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// 502 when a fresh read of the layer, too, did not have the file where it put it: the
/// registry's ranges disagree with its whole blob.
fn stale_twice() -> Error {
    Error::bad_gateway("the layer's blob did not have the file where a fresh read of it found it; the registry's ranges do not match its blob")
}

/// 404 for a path not in the layer (or not in the part of it that could be read).
fn missing(listing: &Listing, path: &LayerPath) -> Error {
    let partly = if listing.summary.stopped.is_some() { " (in the part of it that could be read)" } else { "" };
    Error::not_found(format!("{} is not in this layer{partly}", path.display()))
}
