//! The image's own page: the form, and an image's layers or platforms.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::respond::{html_response, IMMUTABLE};
use super::App;
use crate::body::Body;
use crate::error::Error;
use crate::pages;
use crate::query;
use crate::reference::ImageReference;

impl App {
    /// `/` and `/?image=REF`: the form, or the image's layers (or platforms).
    pub(super) async fn image_page(&self, pairs: &[(String, String)]) -> Result<Response<Body>, Error> {
        let Some(image) = query::get(pairs, "image").map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(html_response(StatusCode::OK, pages::home()));
        };
        let reference: ImageReference = image.parse()?;
        let fetched = self.registry.manifest(&reference).await?;
        let quota = self.registry.pull_quota(reference.registry()).await;
        let mut response = html_response(StatusCode::OK, pages::image(&reference, &fetched, quota));
        if reference.digest().is_some() {
            // A manifest never changes for its digest, and neither does its page: let
            // browsers and proxies keep it rather than spend a registry pull on a reload.
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
        }
        Ok(response)
    }
}
