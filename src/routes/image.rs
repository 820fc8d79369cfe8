//! The image's own pages: the form, an image's layers (with their build steps and
//! referrers) or platforms, and its config.

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::body::Body;
use super::respond::{answer, made, page_number, typed_response, Format, IMMUTABLE};
use super::App;
use crate::api;
use crate::digest::Digest;
use crate::error::Error;
use crate::explore::images::FetchedConfig;
use crate::manifest::config::ImageConfig;
use crate::manifest::{FetchedManifest, ImageManifest, Manifest};
use crate::pages;
use crate::query;
use crate::reference::ImageReference;

impl App {
    /// `/` and `/?image=REF`: the form, or the image's layers (or platforms).
    pub(super) async fn image_page(&self, pairs: &[(String, String)], format: Format) -> Result<Response<Body>, Error> {
        let Some(image) = query::get(pairs, "image").map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(answer(format, pages::home, || serde_json::json!({ "form": "./?image=REF" })));
        };
        let reference: ImageReference = image.parse()?;
        let fetched = self.registry.manifest(&reference).await?;
        // The config (for the build steps) and the referrers are extras: neither can fail
        // the page, which shows the layers without them and says why.
        let config = async {
            match &fetched.manifest {
                Manifest::Image(manifest) => {
                    Some(self.images.config(&self.registry, &reference, &manifest.config).await)
                }
                Manifest::Index(_) => None,
            }
        };
        let (config, referrers) = tokio::join!(config, self.registry.referrers(&reference, &fetched.digest));
        self.catalog_image(&reference, &fetched, config.as_ref().and_then(|c| c.as_ref().ok()).map(|c| &c.config));
        let secrets = match (&fetched.manifest, &config) {
            (Manifest::Image(manifest), Some(Ok(config))) => self.known_secrets(manifest, &config.config).await,
            _ => None,
        };
        let quota = self.registry.pull_quota(reference.registry()).await;
        let page = page_number(pairs)?;
        let index: Option<ImageReference> = query::get(pairs, "index").and_then(|i| i.trim().parse().ok());
        // A manifest of 4 MiB lists tens of thousands of layers: rendered in a slot, a
        // page of them at a time.
        let shown = reference.clone();
        let page_fetched = fetched.clone();
        let text = self
            .renders
            .render(move || {
                let extras = pages::ImageExtras {
                    config: config.as_ref().map(|c| c.as_ref().map(|c| &c.config)),
                    referrers: &referrers,
                    quota,
                    secrets,
                };
                made(
                    format,
                    || pages::image_in(&shown, &page_fetched, &extras, page, index.as_ref()),
                    || api::image(&shown, &page_fetched, &extras, page),
                )
            })
            .await??;
        Ok(immutable_by_digest(&reference, &fetched, typed_response(format, StatusCode::OK, text)))
    }

    /// How many secrets the image's `/secrets` lists, when the catalog has every layer's
    /// scan: the image page shows the count without reading a file. A catalog that is
    /// off, busy or failing leaves it unknown, never the page.
    async fn known_secrets(&self, manifest: &ImageManifest, config: &ImageConfig) -> Option<usize> {
        if !self.catalog.is_on() {
            return None;
        }
        let digests: Vec<String> = manifest.layers.iter().map(|l| l.digest.to_string()).collect();
        let before = self
            .catalog
            .read(move |store| digests.iter().map(|d| store.secrets(d)).collect::<Result<Vec<_>, _>>())
            .await
            .ok()?;
        crate::explore::secrets::known_count(config, &before)
    }

    /// `/config?image=REF`: what a container of the image runs with, then the raw JSON.
    pub(super) async fn config_page(
        &self,
        pairs: &[(String, String)],
        format: Format,
    ) -> Result<Response<Body>, Error> {
        let image = query::get(pairs, "image").map(str::trim).filter(|s| !s.is_empty());
        let reference: ImageReference =
            image.ok_or_else(|| Error::bad_request("the config page needs ?image="))?.parse()?;
        let fetched = self.registry.manifest(&reference).await?;
        let (config, digest, from_manifest) = self.config_of(&reference, &fetched).await?;
        let layers = match &fetched.manifest {
            Manifest::Image(manifest) => crate::explore::images::layer_links(&reference, manifest),
            Manifest::Index(_) => Vec::new(),
        };
        let response = answer(
            format,
            || pages::config(&reference, &digest, &config, from_manifest, &layers),
            || api::config(&reference, &digest, &config, from_manifest),
        );
        Ok(immutable_by_digest(&reference, &fetched, response))
    }

    /// The config of an image manifest, its digest, and whether it was made from the
    /// manifest (schema 1) rather than read as a blob.
    pub(super) async fn config_of(
        &self,
        reference: &ImageReference,
        fetched: &FetchedManifest,
    ) -> Result<(Arc<FetchedConfig>, Digest, bool), Error> {
        match &fetched.manifest {
            Manifest::Image(manifest) => {
                let config = self.images.config(&self.registry, reference, &manifest.config).await?;
                Ok((config, manifest.config.digest.clone(), manifest.config.data.is_some()))
            }
            Manifest::Index(_) => Err(Error::bad_request(format!(
                "{reference} is an index (one manifest per platform), which has no config: open a platform's page"
            ))),
        }
    }
}

/// A page addressed by digest never changes: let browsers and proxies keep it rather
/// than spend a registry pull on a reload. Only when what it shows is what the digest
/// says: the registry client has seen the name's repository serve the digest, and the
/// manifest's bytes have that digest (unchecked with `verify_digests` off, they may not).
pub(super) fn immutable_by_digest(
    reference: &ImageReference,
    fetched: &FetchedManifest,
    mut response: Response<Body>,
) -> Response<Body> {
    if reference.digest() == Some(&fetched.digest) {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    }
    response
}
