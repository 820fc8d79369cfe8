//! `/secrets?image=REF`: the image's secrets (src/explore/secrets.rs), with each layer's
//! scan taken from the catalog when it was scanned before, and each new one handed to
//! the catalog, so the next image that shares a layer reads nothing for it.
//!
//! For an index, the page asks which platform, as the merged view does.

use http::Response;

use super::body::Body;
use super::respond::{answer, Format};
use super::whole::{choose_platform, Chosen, Merged};
use super::App;
use crate::api;
use crate::error::Error;
use crate::explore::secrets::{scan_image, ImageScan};
use crate::layer::link::Here;
use crate::manifest::ImageManifest;
use crate::pages;
use crate::reference::ImageReference;

impl App {
    /// `secrets?image=REF`: see the module docs.
    pub(super) async fn secrets_page(
        &self,
        pairs: &[(String, String)],
        format: Format,
    ) -> Result<Response<Body>, Error> {
        let (reference, manifest_digest, manifest) = match self.image_manifest(pairs).await? {
            Chosen::Image { reference, digest, manifest } => (reference, digest, manifest),
            Chosen::Index(reference, index) => {
                let href = |platform: &ImageReference| Here::root().secrets(platform);
                return Ok(choose_platform(format, &reference, &index, "the secrets", href));
            }
        };
        // The render slot covers the merge; the scan that follows takes preview slots.
        let (slot, merged) = self.merged_layers(&reference, &manifest_digest, &manifest).await?;
        drop(slot);
        let scan = self.scan_secrets(&reference, &manifest, &merged).await?;
        let on = self.catalog.is_on();
        Ok(answer(
            format,
            || pages::secrets(&reference, &merged.layers, &scan, on),
            || api::secrets(&reference, &merged.layers, &scan, on),
        ))
    }

    /// The secrets of an image manifest whose layers are `merged`: each layer's scan
    /// taken from the catalog when it was made before, each new one handed to the
    /// catalog.
    pub(super) async fn scan_secrets(
        &self,
        reference: &ImageReference,
        manifest: &ImageManifest,
        merged: &Merged,
    ) -> Result<ImageScan, Error> {
        let config = self.images.config(&self.registry, reference, &manifest.config).await?;
        let digests: Vec<String> = merged.layers.iter().map(|l| l.digest.to_string()).collect();
        let before = if self.catalog.is_on() {
            let asked = digests.clone();
            // A busy or failing catalog costs a fresh scan, not the page.
            self.catalog
                .read(move |store| asked.iter().map(|d| store.secrets(d)).collect::<Result<Vec<_>, _>>())
                .await
                .unwrap_or_else(|_| vec![None; digests.len()])
        } else {
            vec![None; digests.len()]
        };
        let scan = scan_image(&self.layers, &merged.layers, &merged.fs, &config.config, before).await;
        for (l, secrets) in &scan.scanned_now {
            self.catalog.record_secrets(&merged.layers[*l].digest, secrets.clone());
        }
        Ok(scan)
    }
}
