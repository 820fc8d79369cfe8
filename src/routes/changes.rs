//! dive's view of one layer: `changes?image=REF&layer=N`, its entries marked against the
//! layers below. A whole-image page: it reads the merged view, as `/sizes` does.

use http::{Response, StatusCode};

use super::body::Body;
use super::respond::{made, page_number, typed_response, Format};
use super::whole::{choose_platform, Chosen};
use super::App;
use crate::api;
use crate::error::Error;
use crate::layer::link::Here;
use crate::pages::{self, MergedImage};
use crate::query;
use crate::reference::ImageReference;

impl App {
    /// `changes?image=REF&layer=N[&page=P]`.
    pub(super) async fn changes(&self, pairs: &[(String, String)], format: Format) -> Result<Response<Body>, Error> {
        let page = page_number(pairs)?;
        let layer: u32 = query::get(pairs, "layer")
            .ok_or_else(|| Error::bad_request("the layer parameter is missing"))?
            .trim()
            .parse()
            .map_err(|_| Error::bad_request("the layer parameter is not a layer number"))?;
        let (reference, manifest_digest, manifest) = match self.image_manifest(pairs).await? {
            Chosen::Image { reference, digest, manifest } => (reference, digest, manifest),
            Chosen::Index(reference, index) => {
                let href = |platform: &ImageReference| Here::root().changes(platform, layer);
                return Ok(choose_platform(format, &reference, &index, "the layer's changes", href));
            }
        };
        let (slot, merged) = self.merged_layers(&reference, &manifest_digest, &manifest).await?;
        let text = slot
            .render(move || {
                let image = MergedImage { reference: &reference, layers: &merged.layers, fs: &merged.fs };
                made(format, || pages::changes(&image, layer, page), || api::changes(&image, layer, page))
            })
            .await?;
        Ok(typed_response(format, StatusCode::OK, text))
    }
}
