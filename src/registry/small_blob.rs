//! Reading a small blob whole, such as an image config: fetched over the pooled
//! connections, bounded in size, and checked against its digest before anyone sees it.

use bytes::Bytes;
use http::header::HeaderMap;
use http::{Method, StatusCode};

use super::{status_error, RegistryClient};
use crate::digest::{Digest, Hasher};
use crate::error::Error;
use crate::reference::ImageReference;
use crate::upstream::Transport;

impl RegistryClient {
    /// Blob `digest` of `image`'s repository, whole, when it is at most `limit` bytes.
    /// With `verify_digests` on, bytes that do not match the digest are a 502.
    pub async fn small_blob(
        &self,
        image: &ImageReference,
        digest: &Digest,
        limit: usize,
        what: &str,
    ) -> Result<Bytes, Error> {
        let registry = self.config.registry(image.registry());
        let path = format!("/v2/{}/blobs/{digest}", image.repository());
        let response =
            self.get(&registry, image.repository(), Transport::Pooled, &Method::GET, &path, HeaderMap::new()).await?;
        if response.status() != StatusCode::OK {
            return Err(status_error(&response, &format!("{what} {digest} not found in {}", image.repository())));
        }
        let bytes = self.read_limited(image.registry(), response, limit, what).await?;
        if self.config.verify_digests {
            let mut hasher = Hasher::new(digest.algorithm());
            hasher.update(&bytes);
            let actual = hasher.finish();
            if actual != *digest {
                return Err(self.invalid(
                    image.registry(),
                    format!("the registry sent a {what} whose digest is {actual}, not {digest}"),
                ));
            }
        }
        Ok(bytes)
    }
}
