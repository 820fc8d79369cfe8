//! Fetching manifests without spending a registry's pull quota on page views, and
//! without showing one name's manifest under another.
//!
//! Docker Hub counts every manifest GET as a pull and lets anonymous users make a
//! handful an hour, while a HEAD is free. So a manifest asked for by tag is first
//! HEADed to learn its digest, and GET (by digest) only when that digest is not cached.
//! Manifests are immutable for their digest, so the cache needs no expiry, only a bound
//! in bytes. The quota headers Docker Hub sends back are remembered per registry, for
//! the pages to show.
//!
//! A cached manifest answers for a name only once that name's registry is seen to
//! serve its digest in that repository:
//! - a tag's HEAD naming the digest, or a GET by digest, shows it;
//! - else a HEAD of the manifest by digest, with that repository's token, asks;
//! - either is remembered for [`SERVED_TTL`], so repeat views cost no request.
//!
//! Without that, one view of `evil/x@sha256:X` would answer for `library/ubuntu@sha256:X`
//! on any registry. Cached bytes are shared across names only when their digest was
//! checked (`verify_digests`); unchecked, each name keeps its own ([`ContentKey`]).
//!
//! Known gap: a registry is taken at its word that it serves a digest, as the layer
//! pages take it for blobs, so a registry that answers every HEAD with 200 is shown
//! what layerpipe has cached for that digest from elsewhere (true to the digest, but
//! perhaps from a private repository).

use std::sync::Arc;
use std::time::Duration;

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

/// How long a repository, once seen to serve a manifest's digest, may be shown it from
/// the cache without asking again (the layer pages remember blobs as long).
pub const SERVED_TTL: Duration = Duration::from_secs(600);

/// What cached content is kept under: its digest, and the name it was fetched for when
/// that digest was not checked. Checked, the content is what the digest says wherever
/// it came from, and is shared by every name seen to serve the digest; unchecked, it is
/// only what one registry sent for one name, and stays with that name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContentKey {
    /// `registry/repository`, when the digest was not checked.
    name: Option<String>,
    digest: Digest,
}

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

/// Manifests by digest, which names were seen to serve which digests lately, and the
/// last quota seen per registry.
pub(super) struct ManifestCache {
    /// With each manifest, its length in bytes, for the weigher.
    manifests: moka::future::Cache<ContentKey, (Arc<FetchedManifest>, usize)>,
    /// `registry/repository@digest` seen served (by a tag's HEAD, a HEAD or a GET).
    served: moka::future::Cache<String, ()>,
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
            served: moka::future::Cache::builder().max_capacity(100_000).time_to_live(SERVED_TTL).build(),
            quotas: moka::future::Cache::builder()
                .max_capacity(1024)
                .time_to_live(std::time::Duration::from_secs(3600))
                .build(),
        }
    }
}

impl RegistryClient {
    /// The manifest (or index) `reference` names: from the cache when its digest is
    /// known and cached and the repository is seen to serve it, else fetched by digest.
    /// A tag costs a HEAD to learn its digest; a registry that does not say it (no
    /// `Docker-Content-Digest`) is asked by tag. See the module docs.
    ///
    /// A 404 says which is missing: the repository, or the tag (or digest) in a
    /// repository that exists, asked of the tag list (a HEAD's 404 has no body to tell,
    /// and a tag list is no pull).
    pub async fn manifest(&self, reference: &ImageReference) -> Result<Arc<FetchedManifest>, Error> {
        match self.manifest_of(reference).await {
            Err(e) if e.status() == StatusCode::NOT_FOUND => Err(self.what_is_missing(reference, e).await),
            answer => answer,
        }
    }

    /// The 404 for `reference`'s manifest, once the tag list says whether its
    /// repository exists; `e` as it was when the tag list cannot say.
    async fn what_is_missing(&self, reference: &ImageReference, e: Error) -> Error {
        let repository = crate::reference::Repository::from(reference).to_string();
        match self.tags(reference, 1, None).await {
            Ok(_) => {
                let what = if reference.digest().is_none() { "tag" } else { "manifest" };
                let message = format!("{what} {} not found in repository {repository}", reference.manifest_reference());
                Error::not_in_repository(message, repository)
            }
            Err(t) if t.status() == StatusCode::NOT_FOUND => {
                Error::not_found(format!("repository {repository} not found"))
            }
            Err(_) => e,
        }
    }

    async fn manifest_of(&self, reference: &ImageReference) -> Result<Arc<FetchedManifest>, Error> {
        let digest = match reference.digest() {
            Some(digest) => Some(digest.clone()),
            None => self.manifest_digest(reference).await?,
        };
        let Some(digest) = digest else {
            return Ok(Arc::new(self.fetch_manifest(reference, None).await?.0));
        };
        let by_digest = reference.with_digest(digest.clone());
        if reference.digest().is_none() {
            // The tag's HEAD named the digest: the repository serves it.
            self.manifests.served.insert(served_key(&by_digest, &digest), ()).await;
        }
        let fetch = async {
            let (fetched, size) = self.fetch_manifest(&by_digest, by_digest.digest()).await?;
            self.manifests.served.insert(served_key(&by_digest, &digest), ()).await;
            Ok::<_, Error>((Arc::new(fetched), size))
        };
        let key = self.content_key(reference, &digest);
        let (fetched, _) = self.manifests.manifests.try_get_with(key, fetch).await.map_err(|e| Error::clone(&e))?;
        // Cached, or fetched just now for another name asking at the same time.
        self.confirm_served(&by_digest, &digest).await?;
        Ok(fetched)
    }

    /// The key content fetched for `reference` with `digest` is cached under: see
    /// [`ContentKey`]. Configs and merged views are cached by it too.
    pub fn content_key(&self, reference: &ImageReference, digest: &Digest) -> ContentKey {
        let name =
            (!self.config.verify_digests).then(|| format!("{}/{}", reference.registry(), reference.repository()));
        ContentKey { name, digest: digest.clone() }
    }

    /// Makes sure `by_digest`'s repository serves manifest `digest` before a cached copy
    /// answers for it: a HEAD with that repository's token, unless seen lately. A
    /// registry that does not do HEAD is asked by GET, and must send that digest.
    async fn confirm_served(&self, by_digest: &ImageReference, digest: &Digest) -> Result<(), Error> {
        let key = served_key(by_digest, digest);
        if self.manifests.served.contains_key(&key) {
            return Ok(());
        }
        let response = self.manifest_request(by_digest, &Method::HEAD).await?;
        match response.status() {
            StatusCode::OK => {
                let said = response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok());
                if self.config.verify_digests && said.is_some_and(|said| said != digest.as_str()) {
                    return Err(self.invalid(
                        by_digest.registry(),
                        format!(
                            "the registry answered for manifest {digest} with another digest ({})",
                            said.unwrap_or_default()
                        ),
                    ));
                }
            }
            // Checked against the digest, as any GET by digest is.
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED | StatusCode::BAD_REQUEST => {
                self.fetch_manifest(by_digest, Some(digest)).await?;
            }
            _ => return Err(status_error(&response, &format!("manifest {by_digest} not found"))),
        }
        self.manifests.served.insert(key, ()).await;
        Ok(())
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
        let bytes = self
            .read_limited(reference.registry(), response, self.config.limits.max_manifest_bytes, "manifest")
            .await?;
        // A signed schema 1 manifest's digest leaves out its signatures; what is shown is
        // parsed from the bytes the digest is of.
        let digested = manifest::schema1::digested_bytes(&bytes).map_err(|e| self.invalid(reference.registry(), e))?;
        let mut hasher = Hasher::new(expected.map_or(Algorithm::Sha256, Digest::algorithm));
        hasher.update(&digested);
        let digest = hasher.finish();
        if let Some(expected) = expected {
            if self.config.verify_digests && *expected != digest {
                return Err(self.invalid(
                    reference.registry(),
                    format!("the registry sent a manifest whose digest is {digest}, not {expected}"),
                ));
            }
        }
        let (media_type, manifest) =
            manifest::parse(content_type.as_deref(), &digested).map_err(|e| self.invalid(reference.registry(), e))?;
        let size = bytes.len();
        Ok((FetchedManifest { media_type, digest, manifest, raw: digested.into_owned().into() }, size))
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

/// The key of `by_digest`'s repository serving manifest `digest`.
fn served_key(by_digest: &ImageReference, digest: &Digest) -> String {
    format!("{}/{}@{digest}", by_digest.registry(), by_digest.repository())
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
