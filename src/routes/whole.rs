//! The whole image at once: its merged filesystem (folders, entries, a search across
//! every layer) and where its bytes go. Each reads every layer's listing, through the
//! layer indexes, and keeps the merged view by manifest digest (shared only by names
//! seen to serve that manifest: see [`crate::explore::images`]).

use http::{Method, Response, StatusCode};

use super::body::Body;
pub(super) use super::first_merge::Merged;
use super::first_merge::{Made, WholeImage};
use super::respond::{made, page_number, redirect, typed_response, Format};
use super::App;
use crate::api;
use crate::digest::Digest;
use crate::error::Error;
use crate::image::search::Search;
use crate::layer::entry::Kind;
use crate::layer::link::{Here, LayerPath};
use crate::manifest::{ImageIndex, ImageManifest, Manifest};
use crate::pages::{self, MergedImage, RenderSlot};
use crate::query;
use crate::reference::ImageReference;

/// Which page of the merged filesystem a request asks for.
enum View {
    Search,
    Dir,
    Entry,
}

impl App {
    /// `layers/PATH/` and `layers/PATH`: a folder of the merged filesystem, or every
    /// layer's version of one path; with `&search=`, the entries of every layer it
    /// finds. As in a layer's folders, a directory asked for without its `/` (or a file
    /// with one) is redirected, so relative links resolve from the right place. A path
    /// may be both (a file that replaced a directory): then each URL shows its own.
    pub(super) async fn merged(
        &self,
        method: &Method,
        encoded: &str,
        pairs: &[(String, String)],
        format: Format,
    ) -> Result<Response<Body>, Error> {
        let (path, wants_dir) = LayerPath::from_url(encoded)?;
        let here = if wants_dir { Here::dir(&path) } else { Here::file(&path) };
        let page = page_number(pairs)?;
        let search = query::get(pairs, "search").and_then(Search::parse);
        if let Some(search) = &search {
            if !(path.is_root() && wants_dir) {
                // A search covers every path, and its page lives at the merged root.
                let root = here.merged(&image_reference(pairs)?, &LayerPath::root(), true);
                return Ok(redirect(&format!("{root}&search={}", query::encode(&search.text()))));
            }
        }
        let image = match self.image_manifest(pairs).await? {
            Chosen::Image { reference, digest, manifest } => WholeImage { reference, digest, manifest },
            Chosen::Index(reference, index) => {
                let href = |platform: &ImageReference| here.merged(platform, &path, wants_dir);
                return Ok(choose_platform(format, &reference, &index, "the merged filesystem", href));
            }
        };
        let reference = image.reference.clone();
        let title = format!("The merged filesystem of {reference}");
        self.whole_page(method, format, image, title, move |merged| {
            let bytes = path.as_bytes();
            let is_dir = merged.fs.is_dir(bytes);
            let has_entry = merged.fs.at(bytes).any(|v| v.entry.entry.kind != Kind::Dir);
            let view = match (&search, wants_dir, is_dir, has_entry) {
                (Some(_), ..) => View::Search,
                (None, true, true, _) => View::Dir,
                (None, false, _, true) => View::Entry,
                (None, true, false, true) => return Ok(Made::Moved(here.merged(&reference, &path, false))),
                (None, false, true, false) => return Ok(Made::Moved(here.merged(&reference, &path, true))),
                (None, _, false, false) => {
                    return Err(Error::not_found(format!("{} is in no layer of this image", path.display())))
                }
            };
            let image = MergedImage { reference: &reference, layers: &merged.layers, fs: &merged.fs };
            let text = match (view, search) {
                (View::Search, Some(search)) => made(
                    format,
                    || pages::merged_search(&image, &search, page),
                    || api::merged_search(&image, &search, page),
                ),
                (View::Dir, _) => {
                    made(format, || pages::merged_dir(&image, &path, page), || api::merged_dir(&image, &path, page))
                }
                _ => {
                    made(format, || pages::merged_entry(&image, &path, page), || api::merged_entry(&image, &path, page))
                }
            };
            text.map(Made::Page)
        })
        .await
    }

    /// `sizes`: the image's largest files and its wasted bytes.
    pub(super) async fn sizes(
        &self,
        method: &Method,
        pairs: &[(String, String)],
        format: Format,
    ) -> Result<Response<Body>, Error> {
        let page = page_number(pairs)?;
        let image = match self.image_manifest(pairs).await? {
            Chosen::Image { reference, digest, manifest } => WholeImage { reference, digest, manifest },
            Chosen::Index(reference, index) => {
                let href = |platform: &ImageReference| Here::root().sizes(platform);
                return Ok(choose_platform(format, &reference, &index, "the sizes", href));
            }
        };
        let reference = image.reference.clone();
        let title = format!("Sizes of {reference}");
        self.whole_page(method, format, image, title, move |merged| {
            let image = MergedImage { reference: &reference, layers: &merged.layers, fs: &merged.fs };
            made(format, || pages::sizes(&image, page), || api::sizes(&image, page)).map(Made::Page)
        })
        .await
    }

    /// The manifest `image=REF` names: an image's, or an index to choose a platform of.
    pub(super) async fn image_manifest(&self, pairs: &[(String, String)]) -> Result<Chosen, Error> {
        let reference = image_reference(pairs)?;
        let fetched = self.registry.manifest(&reference).await?;
        Ok(match &fetched.manifest {
            Manifest::Image(manifest) => {
                Chosen::Image { reference, digest: fetched.digest.clone(), manifest: Box::new(manifest.clone()) }
            }
            Manifest::Index(index) => Chosen::Index(reference, index.clone()),
        })
    }

    /// The image's layers merged, and the render slot taken before they were read:
    /// see [`Whole::merged_layers`](super::first_merge::Whole::merged_layers).
    pub(super) async fn merged_layers(
        &self,
        reference: &ImageReference,
        manifest_digest: &Digest,
        manifest: &ImageManifest,
    ) -> Result<(RenderSlot, Merged), Error> {
        self.whole().merged_layers(reference, manifest_digest, manifest).await
    }
}

/// What an `image=REF` names.
pub(super) enum Chosen {
    /// An image manifest, with its digest.
    Image { reference: ImageReference, digest: Digest, manifest: Box<ImageManifest> },
    /// An index: its platforms have a filesystem each, so the page asks which.
    Index(ImageReference, ImageIndex),
}

/// The page (or JSON) that asks which platform of the index `reference` to show
/// `what` of; `href` links to a platform's page of it.
pub(super) fn choose_platform(
    format: Format,
    reference: &ImageReference,
    index: &ImageIndex,
    what: &'static str,
    href: impl Fn(&ImageReference) -> String,
) -> Response<Body> {
    let text = match format {
        Format::Html => pages::choose_platform(reference, index, what, href),
        Format::Json => serde_json::json!({
            "image": reference.to_string(),
            "choose_platform": what,
            "platforms": api::platforms(reference, index, href),
        })
        .to_string(),
    };
    typed_response(format, StatusCode::OK, text)
}

/// The required `image=REF`.
fn image_reference(pairs: &[(String, String)]) -> Result<ImageReference, Error> {
    let image = query::get(pairs, "image").map(str::trim).filter(|s| !s.is_empty());
    Ok(image.ok_or_else(|| Error::bad_request("the image parameter is missing"))?.parse()?)
}
