//! Foreign layers: a layer descriptor with `urls` (Windows base layers, media type
//! `application/vnd.docker.image.rootfs.foreign.diff.tar.gzip`) whose blob the registry
//! does not hold. The URLs come only from the manifest layerpipe fetched from the
//! registry (cached by digest), never from a request, so a download link cannot point
//! layerpipe anywhere. They are reached like an unlisted registry: https to public
//! addresses only ([`crate::egress`]), unless their host is itself listed in the config,
//! and never with the registry's credentials.

use http::header::{self, HeaderMap};
use http::{Method, Response, StatusCode, Uri};

use super::{status_error, RegistryClient};
use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::Manifest;
use crate::range::content_length;
use crate::reference::ImageReference;
use crate::upstream::{Transport, UpstreamBody};

impl RegistryClient {
    /// Blob `digest` of `reference` from the first of its descriptor's `urls` that
    /// answers it whole: 200 with the descriptor's size. The caller must verify the
    /// bytes against the digest (a URL may serve anything); a `Range` is not passed on,
    /// so that they can be. A layer without `urls` is the registry's 404.
    pub async fn foreign_blob(
        &self,
        reference: &ImageReference,
        digest: &Digest,
    ) -> Result<Response<UpstreamBody>, Error> {
        let not_found = || Error::not_found(format!("blob {digest} not found in {}", reference.repository()));
        let fetched = self.manifest(reference).await?;
        let Manifest::Image(manifest) = &fetched.manifest else {
            return Err(not_found());
        };
        let Some(layer) = manifest.layers.iter().find(|l| l.digest == *digest && !l.urls.is_empty()) else {
            return Err(not_found());
        };
        let mut last = None;
        for url in &layer.urls {
            match self.foreign_url(url).await {
                Ok(response)
                    if response.status() == StatusCode::OK
                        && content_length(response.headers()).is_none_or(|n| n == layer.size) =>
                {
                    return Ok(response)
                }
                Ok(response) => {
                    tracing::debug!(status = %response.status(), "a foreign layer's URL does not serve it");
                    last = Some(if response.status().is_success() {
                        self.invalid(
                            reference.registry(),
                            format!("the foreign layer's URL sent another size than {} bytes", layer.size),
                        )
                    } else {
                        status_error(&response, &format!("foreign layer {digest} not found at its URLs"))
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(not_found))
    }

    /// GETs one foreign URL, following redirects, without credentials. A HEAD on the
    /// download gets the same GET, its body dropped: servers of foreign layers need not
    /// answer HEAD.
    async fn foreign_url(&self, url: &str) -> Result<Response<UpstreamBody>, Error> {
        let uri: Uri = url.parse().map_err(|_| {
            self.invalid(crate::metrics::registries::OTHER, "the manifest lists a foreign URL that is not a URL")
        })?;
        let authority = match (uri.scheme_str(), uri.authority()) {
            (Some("http" | "https"), Some(authority)) if !authority.as_str().contains('@') => authority.as_str(),
            _ => {
                return Err(self.invalid(
                    crate::metrics::registries::OTHER,
                    "the manifest lists a foreign URL that is not an http(s) URL",
                ))
            }
        };
        // As if it were a registry of its own: listed (trusted) or public-only.
        let host = self.config.registry(authority);
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, http::HeaderValue::from_static("*/*"));
        self.follow(&host, Transport::Dedicated, &Method::GET, uri, &headers, None).await
    }
}
