//! dive's view of one layer: `changes?image=REF&layer=N`, its entries marked against the
//! layers below. A whole-image page: it reads the merged view, as `/sizes` does.

use http::{Response, StatusCode};

use super::respond::{html_response, page_number};
use super::whole::Chosen;
use super::App;
use crate::body::Body;
use crate::error::Error;
use crate::layer::link::Here;
use crate::pages::{self, MergedImage};
use crate::query;

impl App {
    /// `changes?image=REF&layer=N[&page=P]`.
    pub(super) async fn changes(&self, pairs: &[(String, String)]) -> Result<Response<Body>, Error> {
        let page = page_number(pairs)?;
        let layer: u32 = query::get(pairs, "layer")
            .ok_or_else(|| Error::bad_request("the layer parameter is missing"))?
            .trim()
            .parse()
            .map_err(|_| Error::bad_request("the layer parameter is not a layer number"))?;
        let (reference, manifest_digest, manifest) = match self.image_manifest(pairs).await? {
            Chosen::Image { reference, digest, manifest } => (reference, digest, manifest),
            Chosen::Index(reference, index) => {
                let html = pages::choose_platform(&reference, &index, "the layer's changes", |platform| {
                    Here::root().changes(platform, layer)
                });
                return Ok(html_response(StatusCode::OK, html));
            }
        };
        let (slot, merged) = self.merged_layers(&reference, &manifest_digest, &manifest).await?;
        let html = slot
            .render(move || {
                let image = MergedImage { reference: &reference, layers: &merged.layers, fs: &merged.fs };
                pages::changes(&image, layer, page)
            })
            .await?;
        Ok(html_response(StatusCode::OK, html))
    }
}
