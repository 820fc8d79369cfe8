//! Fetching manifests without spending a registry's pull quota on page views.
//!
//! Docker Hub counts every manifest GET as a pull and lets anonymous users make a
//! handful an hour, while a HEAD is free. So a manifest asked for by tag is first
//! HEADed to learn its digest, and GET (by digest) only when that digest is not cached.
//! Manifests are immutable for their digest, so the cache needs no expiry, only a bound
//! in bytes. The quota headers Docker Hub sends back are remembered per registry, for
//! the pages to show.

use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};

use super::{status_error, RegistryClient};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::Error;
use crate::manifest::{self, FetchedManifest};
use crate::reference::ImageReference;
use crate::upstream::{Transport, UpstreamBody};

/// Memory the cached manifests may hold in all.
pub const MAX_CACHED_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// A registry's pull quota for layerpipe's address, as its last answer stated it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PullQuota {
    /// Pulls allowed per window.
    pub limit: u64,
    /// Pulls left in this window.
    pub remaining: u64,
    /// The window, in seconds, when stated.
    pub window_secs: Option<u64>,
}

/// Manifests by digest, and the last quota seen per registry.
pub(super) struct ManifestCache {
    /// With each manifest, its length in bytes, for the weigher.
    manifests: moka::future::Cache<Digest, (Arc<FetchedManifest>, usize)>,
    quotas: moka::future::Cache<String, PullQuota>,
}

impl Default for ManifestCache {
    fn default() -> Self {
        ManifestCache {
            manifests: moka::future::Cache::builder()
                .max_capacity(MAX_CACHED_MANIFEST_BYTES)
                .weigher(|_, (_, size): &(Arc<FetchedManifest>, usize)| {
                    u32::try_from(size.saturating_add(256)).unwrap_or(u32::MAX)
                })
                .build(),
            quotas: moka::future::Cache::builder()
                .max_capacity(1024)
                .time_to_live(std::time::Duration::from_secs(3600))
                .build(),
        }
    }
}

impl RegistryClient {
    /// The manifest (or index) `reference` names: from the cache when its digest is
    /// known and cached, else fetched by digest. A tag costs a HEAD to learn its digest;
    /// a registry that does not say it (no `Docker-Content-Digest`) is asked by tag.
    pub async fn manifest(&self, reference: &ImageReference) -> Result<Arc<FetchedManifest>, Error> {
        let digest = match reference.digest() {
            Some(digest) => Some(digest.clone()),
            None => self.manifest_digest(reference).await?,
        };
        let Some(digest) = digest else {
            return Ok(Arc::new(self.fetch_manifest(reference, None).await?.0));
        };
        let by_digest = reference.with_digest(digest.clone());
        let fetch = async {
            let (fetched, size) = self.fetch_manifest(&by_digest, by_digest.digest()).await?;
            Ok::<_, Error>((Arc::new(fetched), size))
        };
        let (fetched, _) = self.manifests.manifests.try_get_with(digest, fetch).await.map_err(|e| Error::clone(&e))?;
        Ok(fetched)
    }

    /// The pull quota `registry` last stated for layerpipe's address, if it states one.
    pub async fn pull_quota(&self, registry: &str) -> Option<PullQuota> {
        self.manifests.quotas.get(registry).await
    }

    /// The digest a tag points to, by a HEAD; `None` when the registry does not say.
    async fn manifest_digest(&self, reference: &ImageReference) -> Result<Option<Digest>, Error> {
        let response = self.manifest_request(reference, &Method::HEAD).await?;
        match response.status() {
            StatusCode::OK => {}
            // A registry that does not do HEAD: ask by GET, as before quotas.
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED | StatusCode::BAD_REQUEST => return Ok(None),
            // Anything else a GET would answer too; asking twice would only add load.
            _ => return Err(status_error(&response, &format!("manifest {reference} not found"))),
        }
        let digest = response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok());
        Ok(digest.and_then(|d| d.parse().ok()))
    }

    /// GETs a manifest, answering it and its length; `expected` is the digest its bytes
    /// must have.
    async fn fetch_manifest(
        &self,
        reference: &ImageReference,
        expected: Option<&Digest>,
    ) -> Result<(FetchedManifest, usize), Error> {
        let response = self.manifest_request(reference, &Method::GET).await?;
        if response.status() != StatusCode::OK {
            return Err(status_error(&response, &format!("manifest {reference} not found")));
        }
        let content_type =
            response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = self.read_limited(response, self.config.limits.max_manifest_bytes, "manifest").await?;
        let mut hasher = Hasher::new(expected.map_or(Algorithm::Sha256, Digest::algorithm));
        // A signed schema 1 manifest's digest leaves out its signatures.
        hasher.update(&manifest::schema1::digested_bytes(&bytes));
        let digest = hasher.finish();
        if let Some(expected) = expected {
            if self.config.verify_digests && *expected != digest {
                return Err(
                    self.invalid(format!("the registry sent a manifest whose digest is {digest}, not {expected}"))
                );
            }
        }
        let (media_type, manifest) = manifest::parse(content_type.as_deref(), &bytes).map_err(|e| self.invalid(e))?;
        let size = bytes.len();
        Ok((FetchedManifest { media_type, digest, manifest, raw: bytes }, size))
    }

    async fn manifest_request(
        &self,
        reference: &ImageReference,
        method: &Method,
    ) -> Result<Response<UpstreamBody>, Error> {
        let registry = self.config.registry(reference.registry());
        let path = format!("/v2/{}/manifests/{}", reference.repository(), reference.manifest_reference());
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(manifest::ACCEPT));
        let response = self.get(&registry, reference.repository(), Transport::Pooled, method, &path, headers).await?;
        if let Some(quota) = pull_quota(response.headers()) {
            self.manifests.quotas.insert(registry.host.clone(), quota).await;
        }
        Ok(response)
    }
}

/// Docker Hub's `ratelimit-limit: 100;w=21600` and `ratelimit-remaining: 87;w=21600`.
fn pull_quota(headers: &HeaderMap) -> Option<PullQuota> {
    let field = |name: &str| -> Option<(u64, Option<u64>)> {
        let text = headers.get(name)?.to_str().ok()?;
        let mut parts = text.split(';');
        let count = parts.next()?.trim().parse().ok()?;
        let window = parts.find_map(|p| p.trim().strip_prefix("w=")?.parse().ok());
        Some((count, window))
    };
    let (limit, window) = field("ratelimit-limit")?;
    let (remaining, _) = field("ratelimit-remaining")?;
    Some(PullQuota { limit, remaining, window_secs: window })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_quota_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(pull_quota(&h), None);
        h.insert("ratelimit-limit", HeaderValue::from_static("100;w=21600"));
        assert_eq!(pull_quota(&h), None);
        h.insert("ratelimit-remaining", HeaderValue::from_static("87;w=21600"));
        assert_eq!(pull_quota(&h), Some(PullQuota { limit: 100, remaining: 87, window_secs: Some(21600) }));
        h.insert("ratelimit-remaining", HeaderValue::from_static("x"));
        assert_eq!(pull_quota(&h), None);
        h.insert("ratelimit-remaining", HeaderValue::from_static("5"));
        assert_eq!(pull_quota(&h).unwrap().remaining, 5);
    }
}
