//! `/search`: the catalog's pages. `?q=TEXT` finds entries of every catalogued layer by
//! path, `?layer=DIGEST` lists the images that ship a layer, and neither shows the form.
//! Also where the image page hands its image to the catalog ([`App::catalog_image`]),
//! so that it needs one call.

use std::sync::Arc;

use http::Response;

use super::body::Body;
use super::respond::{answer, Format};
use super::App;
use crate::api;
use crate::catalog::search::{self, NameSearch};
use crate::catalog::FindingKey;
use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::config::ImageConfig;
use crate::manifest::{FetchedManifest, Manifest};
use crate::pages;
use crate::query;
use crate::reference::ImageReference;

impl App {
    /// `/search`, `/search?q=TEXT[&after=ROW]`, `/search?layer=DIGEST`,
    /// `/search?secrets=1[&after_layer=DIGEST&after=N]`.
    pub(super) async fn search(&self, pairs: &[(String, String)], format: Format) -> Result<Response<Body>, Error> {
        let text = |name: &str| query::get(pairs, name).map(str::trim).filter(|s| !s.is_empty());
        if text("secrets") == Some("1") {
            return self.catalog_secrets(pairs, format).await;
        }
        if let Some(digest) = text("layer") {
            let digest: Digest = digest.parse().map_err(|e| Error::bad_request(format!("layer: {e}")))?;
            let key = digest.to_string();
            let usage = self.catalog.read(move |store| search::layer_usage(store, &key)).await?;
            return Ok(answer(format, || pages::search_layer(&digest, &usage), || api::layer_usage(&digest, &usage)));
        }
        let Some(q) = text("q") else {
            let totals = self.catalog.read(|store| store.totals()).await?;
            return Ok(answer(format, || pages::search_home(totals), || api::search_home(totals)));
        };
        let found = NameSearch::parse(q).map_err(Error::bad_request)?;
        let after = match query::get(pairs, "after") {
            None => None,
            Some(after) => Some(
                after
                    .parse::<i64>()
                    .ok()
                    .filter(|a| *a >= 0)
                    .ok_or_else(|| Error::bad_request("after must be a row number from a search's next link"))?,
            ),
        };
        let searched = Arc::new(found);
        let page = {
            let searched = searched.clone();
            self.catalog.read(move |store| search::find(store, &searched, after.unwrap_or(0))).await?
        };
        Ok(answer(format, || pages::search_hits(&searched, after, &page), || api::search_hits(&searched, &page)))
    }

    /// `/search?secrets=1`: a page of every secret found in a catalogued layer.
    async fn catalog_secrets(&self, pairs: &[(String, String)], format: Format) -> Result<Response<Body>, Error> {
        let after = match (query::get(pairs, "after_layer"), query::get(pairs, "after")) {
            (None, None) => None,
            (Some(layer), Some(idx)) => {
                let layer: Digest = layer.parse().map_err(|e| Error::bad_request(format!("after_layer: {e}")))?;
                let idx = idx
                    .parse::<i64>()
                    .ok()
                    .filter(|i| *i >= 0)
                    .ok_or_else(|| Error::bad_request("after must be a number from a page's next link"))?;
                Some(FindingKey { layer: layer.to_string(), idx })
            }
            _ => return Err(Error::bad_request("after_layer and after go together, from a page's next link")),
        };
        let first = after.is_none();
        let page = self.catalog.read(move |store| search::secret_findings(store, after.as_ref())).await?;
        Ok(answer(format, || pages::search_secrets(&page, !first), || api::search_secrets(&page)))
    }

    /// Hands the image an image page showed to the catalog (an index is not an image:
    /// its platforms are catalogued when their pages are shown); never waits.
    pub(super) fn catalog_image(
        &self,
        reference: &ImageReference,
        fetched: &FetchedManifest,
        config: Option<&ImageConfig>,
    ) {
        if let Manifest::Image(manifest) = &fetched.manifest {
            self.catalog.record_image(reference, &fetched.digest, manifest, config);
        }
    }
}
