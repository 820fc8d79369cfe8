//! The ranges of one blob, for a multipart fetch ([`crate::upstream::multipart`]).
//!
//! Chunks go straight to the URL the blob response finally came from (a CDN's, after a
//! redirect), without credentials unless that URL is the registry's own origin, as
//! [`RegistryClient::follow`] does for the first request. A signed CDN URL expires: any
//! answer from it other than a success sends the chunk back through the registry, which
//! authenticates and redirects to a fresh URL, used for the chunks after it.

use std::sync::{Arc, Mutex};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, Uri};

use super::{same_origin, trust, RegistryClient};
use crate::config::Registry;
use crate::digest::Digest;
use crate::error::Error;
use crate::reference::ImageReference;
use crate::upstream::multipart::{BoxFuture, RangeSource};
use crate::upstream::{Transport, UpstreamBody};

/// The URL a response came from after redirects, kept in its extensions.
#[derive(Clone, Debug)]
pub struct FinalUrl(pub Uri);

/// One blob's ranges, asked of its final URL; see the module docs.
struct BlobRanges {
    client: Arc<RegistryClient>,
    registry: Registry,
    repository: String,
    /// `/v2/<repository>/blobs/<digest>`.
    path: String,
    /// Where chunks are asked for now.
    url: Mutex<Uri>,
}

impl RegistryClient {
    /// A source of the ranges of `digest`, the blob `response` answered, starting at the
    /// URL the response came from.
    pub fn blob_ranges(
        self: &Arc<Self>,
        reference: &ImageReference,
        digest: &Digest,
        response: &Response<UpstreamBody>,
    ) -> Option<Arc<dyn RangeSource>> {
        let FinalUrl(url) = response.extensions().get::<FinalUrl>()?.clone();
        Some(Arc::new(BlobRanges {
            client: self.clone(),
            registry: self.config.registry(reference.registry()),
            repository: reference.repository().to_owned(),
            path: format!("/v2/{}/blobs/{}", reference.repository(), digest),
            url: Mutex::new(url),
        }))
    }
}

impl BlobRanges {
    async fn fetch_range(&self, first: u64, last: u64) -> Result<Response<UpstreamBody>, Error> {
        let mut headers = HeaderMap::new();
        let range = HeaderValue::try_from(format!("bytes={first}-{last}")).expect("digits and punctuation");
        headers.insert(header::RANGE, range);
        let url = self.url.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !same_origin(&url, &self.registry.endpoint) {
            let client = &self.client;
            let response = client
                .upstream
                .send(&self.registry.host, trust(&self.registry), Transport::Dedicated, &Method::GET, &url, &headers)
                .await?;
            if response.status().is_success() {
                return Ok(response);
            }
            tracing::debug!(status = %response.status(), "the blob's URL no longer serves ranges: asking the registry again");
        }
        let response = self
            .client
            .get(&self.registry, &self.repository, Transport::Dedicated, &Method::GET, &self.path, headers)
            .await?;
        if let Some(FinalUrl(fresh)) = response.extensions().get::<FinalUrl>() {
            *self.url.lock().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
        }
        Ok(response)
    }
}

impl RangeSource for BlobRanges {
    fn fetch(&self, first: u64, last: u64) -> BoxFuture<'_, Result<Response<UpstreamBody>, Error>> {
        Box::pin(self.fetch_range(first, last))
    }
}
