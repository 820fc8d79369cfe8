//! A layer downloaded whole, as a file.

use http::{HeaderMap, Method, Response};

use super::App;
use crate::body::Body;
use crate::download::{self, DownloadLink};
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
        let upstream = self.registry.blob(&link.image, &link.digest, &method, pass_on).await?;
        Ok(match slot {
            Some(slot) => {
                let plan =
                    self.multipart.plan(&upstream, || self.registry.blob_ranges(&link.image, &link.digest, &upstream));
                download::respond(upstream, plan, &link.digest, &link.file_name(), &self.stream, slot)
            }
            None => download::respond_to_head(upstream, &link.file_name()),
        })
    }
}
