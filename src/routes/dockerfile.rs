//! `/dockerfile?image=REF`: the image's Dockerfile, rebuilt from its config's history.

use http::Response;

use super::body::Body;
use super::respond::{answer, Format};
use super::App;
use crate::api;
use crate::error::Error;
use crate::manifest::Manifest;
use crate::pages;
use crate::query;
use crate::reference::ImageReference;

impl App {
    /// `/dockerfile?image=REF`: one instruction per history entry, beside its layer.
    pub(super) async fn dockerfile_page(
        &self,
        pairs: &[(String, String)],
        format: Format,
    ) -> Result<Response<Body>, Error> {
        let image = query::get(pairs, "image").map(str::trim).filter(|s| !s.is_empty());
        let reference: ImageReference =
            image.ok_or_else(|| Error::bad_request("the Dockerfile page needs ?image="))?.parse()?;
        let fetched = self.registry.manifest(&reference).await?;
        // An index has no history of its own: config_of says so, and which page to open.
        let (config, _, _) = self.config_of(&reference, &fetched).await?;
        let Manifest::Image(manifest) = &fetched.manifest else {
            return Err(Error::bad_request(format!("{reference} is an index: open a platform's page")));
        };
        let response = answer(
            format,
            || pages::dockerfile(&reference, manifest, &config),
            || api::dockerfile(&reference, manifest, &config),
        );
        Ok(super::image::immutable_by_digest(&reference, &fetched, response))
    }
}
