//! The first visit to a page made of the whole image (the merged view, the sizes),
//! streamed as a layer's first visit is: until every layer's listing has arrived there
//! is nothing to show, and on a real link that takes minutes.
//!
//! - When the merged view is at hand, or the answer is JSON, or the method is HEAD, the
//!   page is made and sent whole, as before. JSON is never streamed: a client reading
//!   data waits for the whole answer.
//! - Otherwise the merge runs in a task of its own. When it ends within
//!   [`STREAM_AFTER`] the page is sent whole, with its status (a 404, a redirect).
//! - Else the page streams: its frame at once, a line of progress for each layer as its
//!   listing arrives (and, while none does, the bytes of a layer being read), then the
//!   page, or the reason it failed, or a link to where it moved. Once streaming, the
//!   status is 200 whatever follows: that is the price of showing progress.
//! - A client gone stops the merge it started (the task is aborted); requests for the
//!   same view wait on one merge, and one left waiting carries it on.

use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderValue;
use http::{Method, Response, StatusCode};

use super::body::Body;
use super::respond::{html_response, redirect, typed_response, Format};
use super::App;
use crate::catalog::Catalog;
use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::error::Error;
use crate::explore::images::{self, ImageLoader};
use crate::explore::layers::Inspector;
use crate::image::merged::MergedFs;
use crate::manifest::ImageManifest;
use crate::pages::{self, LayerNews, RenderSlot, RenderSlots};
use crate::reference::ImageReference;
use crate::registry::RegistryClient;

/// How long a first visit waits for the merged view before it streams the page.
const STREAM_AFTER: std::time::Duration = std::time::Duration::from_millis(500);
/// How often a streamed page looks for news of the merge.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// An image manifest's layers, linked as its image page numbers them, and merged.
pub(super) struct Merged {
    pub(super) layers: Vec<DownloadLink>,
    pub(super) fs: Arc<MergedFs>,
}

/// What a whole-image page's render made of the merged view.
pub(super) enum Made {
    /// The page (or its JSON).
    Page(String),
    /// The answer lives at this URL (a folder asked for as a file, and the like).
    Moved(String),
}

/// The image manifest a whole-image page shows: its reference, digest and manifest.
pub(super) struct WholeImage {
    pub(super) reference: ImageReference,
    pub(super) digest: Digest,
    pub(super) manifest: Box<ImageManifest>,
}

/// The application's services a merge needs, owned, so a merge can run in a task.
#[derive(Clone)]
pub(super) struct Whole {
    registry: Arc<RegistryClient>,
    layers: Arc<Inspector>,
    images: Arc<ImageLoader>,
    renders: RenderSlots,
    catalog: Catalog,
}

impl Whole {
    /// The image's layers merged, and the render slot taken before they were read (a
    /// merge holds every listing, so merges at once are bounded by the slots); first
    /// every one must be a filesystem layer (an artifact's blobs, a signature or an
    /// SBOM, have no files to merge), and a refused merge is refused before the wait.
    pub(super) async fn merged_layers(
        &self,
        reference: &ImageReference,
        manifest_digest: &Digest,
        manifest: &ImageManifest,
    ) -> Result<(RenderSlot, Merged), Error> {
        let other = manifest.layers.iter().enumerate().find(|(_, l)| !l.is_layer());
        if let Some((i, other)) = other {
            return Err(Error::bad_request(format!(
                "layer {} is not a filesystem layer (media type {}), so this manifest has no merged filesystem",
                i + 1,
                other.media_type
            )));
        }
        if let Some(refused) = self.images.refusal(&self.registry.content_key(reference, manifest_digest)).await {
            return Err(refused);
        }
        let slot = self.renders.take().await?;
        // Made in the slot: a manifest of 4 MiB has tens of thousands of layers.
        let layers = images::layer_links(reference, manifest);
        let fs = self.images.merged(&self.registry, &self.layers, reference, manifest_digest, manifest).await?;
        self.catalog.record_image(reference, manifest_digest, manifest, None);
        Ok((slot, Merged { layers, fs }))
    }

    /// The merged view, `render`ed in the slot, with its layers' bytes and entries.
    async fn made(
        self,
        image: WholeImage,
        render: impl FnOnce(&Merged) -> Result<Made, Error> + Send + 'static,
    ) -> Result<(Made, u64, u64), Error> {
        let (slot, merged) = self.merged_layers(&image.reference, &image.digest, &image.manifest).await?;
        slot.render(move || {
            let (bytes, entries) = merged.fs.layers().iter().fold((0u64, 0u64), |(b, e), l| {
                (b.saturating_add(l.summary.compressed_bytes), e.saturating_add(l.len() as u64))
            });
            render(&merged).map(|made| (made, bytes, entries))
        })
        .await
    }
}

impl App {
    /// The services a merge needs, owned.
    pub(super) fn whole(&self) -> Whole {
        Whole {
            registry: self.registry.clone(),
            layers: self.layers.clone(),
            images: self.images.clone(),
            renders: self.renders.clone(),
            catalog: self.catalog.clone(),
        }
    }

    /// A whole-image page: what `render` makes of `image`'s merged view, streamed with
    /// progress on a first visit (see the module docs). `title` names the page while
    /// it streams.
    pub(super) async fn whole_page(
        &self,
        method: &Method,
        format: Format,
        image: WholeImage,
        title: String,
        render: impl FnOnce(&Merged) -> Result<Made, Error> + Send + 'static,
    ) -> Result<Response<Body>, Error> {
        let key = self.registry.content_key(&image.reference, &image.digest);
        let whole = self.whole();
        if format != Format::Html || *method != Method::GET || self.images.is_merged(&key) {
            return Ok(answer(format, whole.made(image, render).await?.0));
        }
        let links = images::layer_links(&image.reference, &image.manifest);
        let shown = image.reference.to_string();
        let mut work = Aborting(tokio::spawn(whole.made(image, render)));
        tokio::select! {
            joined = &mut work.0 => return Ok(answer(format, joined_result(joined)?.0)),
            _ = tokio::time::sleep(STREAM_AFTER) => {}
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let (images, layers) = (self.images.clone(), self.layers.clone());
        tokio::spawn(async move {
            if tx.send(pages::streamed_start(&title, &shown).into()).await.is_err() {
                return;
            }
            let mut news = News { read: vec![false; links.len()], seen: 0, last: None };
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            let result = loop {
                tokio::select! {
                    joined = &mut work.0 => break joined_result(joined),
                    _ = tick.tick() => {
                        let progress = images.progress(&key);
                        let lines = news.lines(progress.as_deref(), &layers, &links);
                        for line in lines {
                            // A client gone stops the merge (`work` aborts as it drops).
                            if tx.send(line.into()).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            };
            let rest = match result {
                Ok((Made::Page(html), bytes, entries)) => {
                    format!(
                        "{}{}",
                        pages::layers_progress_done(links.len(), bytes, entries),
                        pages::streamed_end(&html)
                    )
                }
                Ok((Made::Moved(href), ..)) => pages::streamed_moved(&href),
                Err(e) => pages::streamed_failure(&e),
            };
            let _ = tx.send(rest.into()).await;
        });
        let mut response = html_response(StatusCode::OK, String::new());
        *response.body_mut() = Body::Parts(rx);
        response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(response)
    }
}

/// What a streamed page has said of a merge so far.
struct News {
    /// Which layers (by index) have been read.
    read: Vec<bool>,
    /// Arrivals taken from the merge's progress.
    seen: usize,
    /// The last line about a layer being read, so the same is not sent twice.
    last: Option<LayerNews>,
}

impl News {
    /// The lines to send now: one per layer read since the last look; when none was,
    /// the bytes of the first layer still being read, if they moved.
    fn lines(
        &mut self,
        progress: Option<&images::MergeProgress>,
        layers: &Inspector,
        links: &[DownloadLink],
    ) -> Vec<String> {
        let of = links.len();
        let mut lines = Vec::new();
        for read in progress.map(|p| p.read_since(self.seen)).unwrap_or_default() {
            self.seen += 1;
            if let Some(flag) = self.read.get_mut((read.layer as usize).wrapping_sub(1)) {
                *flag = true;
            }
            let news = LayerNews::Read { layer: read.layer, bytes: read.bytes, entries: read.entries };
            lines.push(pages::layers_progress_line(self.seen, of, news));
        }
        if !lines.is_empty() {
            return lines;
        }
        let reading = links.iter().zip(&self.read).filter(|(_, read)| !**read).find_map(|(link, _)| {
            let (bytes, total, _) = layers.progress(&link.digest)?.get();
            Some(LayerNews::Reading { layer: link.layer, bytes, total })
        });
        if let Some(news) = reading.filter(|n| Some(*n) != self.last) {
            self.last = Some(news);
            lines.push(pages::layers_progress_line(self.seen, of, news));
        }
        lines
    }
}

/// A merge's task, aborted when dropped: a client gone takes its merge with it.
struct Aborting<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A merge task's result; a task that did not finish is a 502.
fn joined_result<T>(joined: Result<Result<T, Error>, tokio::task::JoinError>) -> Result<T, Error> {
    joined.map_err(|_| Error::bad_gateway("merging the image's layers failed"))?
}

/// The whole answer for what a render made.
fn answer(format: Format, made: Made) -> Response<Body> {
    match made {
        Made::Page(text) => typed_response(format, StatusCode::OK, text),
        Made::Moved(href) => redirect(&href),
    }
}
