//! A layer downloaded whole, as a file.

use http::{HeaderMap, Method, Response, StatusCode};

use super::App;
use crate::body::Body;
use crate::download::{self, DownloadLink, StreamOptions};
use crate::error::Error;
use crate::registry::PASSED_ON_REQUEST_HEADERS;

impl App {
    /// `download`: the layer, streamed as a file.
    pub(super) async fn download(
        &self,
        method: Method,
        headers: &HeaderMap,
        pairs: &[(String, String)],
    ) -> Result<Response<Body>, Error> {
        let link = DownloadLink::from_query(pairs)?;
        // A HEAD streams nothing: no slot, and not counted as a download.
        let slot = if method == Method::HEAD { None } else { Some(self.downloads.take()?) };
        let mut pass_on = HeaderMap::new();
        for name in PASSED_ON_REQUEST_HEADERS {
            if let Some(value) = headers.get(&name) {
                pass_on.insert(name, value.clone());
            }
        }
        let upstream = if method == Method::HEAD {
            self.registry.blob_head(&link.image, &link.digest, pass_on).await
        } else {
            self.registry.blob(&link.image, &link.digest, &method, pass_on).await
        };
        // A blob the registry does not have may be a foreign layer, fetched from the URLs
        // its manifest lists: whole, and always verified, since those URLs may serve anything.
        let (upstream, foreign) = match upstream {
            Err(e) if e.status() == StatusCode::NOT_FOUND => {
                (self.registry.foreign_blob(&link.image, &link.digest).await?, true)
            }
            other => (other?, false),
        };
        Ok(match slot {
            Some(slot) if foreign => {
                let verified = StreamOptions { verify: true, ..self.stream.clone() };
                download::respond(upstream, None, &link.digest, &link.file_name(), &verified, slot)
            }
            Some(slot) => {
                let plan =
                    self.multipart.plan(&upstream, || self.registry.blob_ranges(&link.image, &link.digest, &upstream));
                download::respond(upstream, plan, &link.digest, &link.file_name(), &self.stream, slot)
            }
            None => download::respond_to_head(upstream, &link.file_name()),
        })
    }
}
