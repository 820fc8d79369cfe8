//! What refers to a manifest: signatures, attestations and SBOMs. OCI 1.1 registries
//! answer `GET /v2/NAME/referrers/DIGEST` with an index; older ones hold the same under
//! the tag `sha256-HEX` (the referrers tag schema), and cosign keeps its signatures,
//! attestations and SBOMs under `sha256-HEX.sig`, `.att` and `.sbom`.
//!
//! Referrers are an extra on a page, so looking for them must cost neither a pull nor
//! the page's time:
//! - the referrers tag is HEADed (free on Docker Hub), and its index GET by digest only
//!   when that digest is not cached; the cache is keyed by registry, repository and
//!   digest, and holds only indexes whose bytes had that digest;
//! - all the look-ups run at once, under one deadline (`timeouts.extras_secs`); past it,
//!   the page is shown without what had not come;
//! - a look-up that failed (an error, a refusal, the deadline) is not tried again for
//!   [`FAILURE_TTL`], and whether a registry has the referrers API is remembered for
//!   [`API_TTL`], so that only the look-ups it needs are made.
//!
//! Known gap: a referrer tagged while a failure is remembered shows up only after it.

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use serde::Deserialize;
use tokio::time::Instant;

use super::RegistryClient;
use crate::digest::{Digest, Hasher};
use crate::error::Error;
use crate::manifest;
use crate::reference::ImageReference;
use crate::upstream::Transport;

/// One manifest that refers to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Referrer {
    /// A referrer from the referrers API or the referrers tag: its digest and what it is.
    Manifest {
        /// The referrer's manifest.
        digest: Digest,
        /// Its `artifactType` (or media type when it has none).
        artifact_type: String,
    },
    /// A tag of cosign's scheme that exists: `sha256-HEX.sig` and the like.
    Tag(String),
}

/// cosign's suffixes, in the order pages show them.
const COSIGN_SUFFIXES: [&str; 3] = [".sig", ".att", ".sbom"];

/// How long a failed look-up is answered as "none" without asking the registry again.
pub const FAILURE_TTL: Duration = Duration::from_secs(60);

/// How long whether a registry has the referrers API is remembered.
pub const API_TTL: Duration = Duration::from_secs(600);

/// Most referrers the cached indexes hold in all (each is a digest and a type).
const MAX_CACHED_REFERRERS: u64 = 100_000;

/// What referrer look-ups remember; one per client.
pub(super) struct ReferrersCache {
    /// Referrers-tag indexes by registry host, repository and the index's own digest.
    indexes: moka::future::Cache<(String, String, Digest), Arc<Vec<Referrer>>>,
    /// Whether a registry (by host) has the referrers API.
    api: moka::future::Cache<String, bool>,
    /// Look-ups that failed lately, by registry host, repository and request path.
    failed: moka::future::Cache<(String, String, String), ()>,
}

impl Default for ReferrersCache {
    fn default() -> Self {
        ReferrersCache {
            indexes: moka::future::Cache::builder()
                .max_capacity(MAX_CACHED_REFERRERS)
                .weigher(|_, referrers: &Arc<Vec<Referrer>>| u32::try_from(referrers.len() + 1).unwrap_or(u32::MAX))
                .build(),
            api: moka::future::Cache::builder().max_capacity(1024).time_to_live(API_TTL).build(),
            failed: moka::future::Cache::builder().max_capacity(10_000).time_to_live(FAILURE_TTL).build(),
        }
    }
}

/// What the referrers API answered.
enum Api {
    /// The referrers it lists.
    Listed(Vec<Referrer>),
    /// The registry does not have the API.
    Absent,
}

impl RegistryClient {
    /// What refers to manifest `digest` in `image`'s repository: the referrers API's
    /// answer when the registry has it, else the referrers tag's index and cosign's tags.
    /// Failures to look are not the page's error: what could not be had is left out.
    pub async fn referrers(&self, image: &ImageReference, digest: &Digest) -> Vec<Referrer> {
        let deadline = Instant::now() + self.config.timeouts.extras();
        let host = self.config.registry(image.registry()).host;
        let has_api = self.referrers_cache.api.get(&host).await;
        let schema_tag = format!("{}-{}", digest.algorithm().name(), digest.hex());
        let api = async {
            match has_api {
                Some(false) => None,
                _ => {
                    self.look(image, &format!("referrers/{digest}"), deadline, self.referrers_api(image, digest)).await
                }
            }
        };
        // The tags are asked for alongside the API until the registry is known to have
        // it; they are HEADs, free where pulls are counted.
        let tags = async {
            if has_api == Some(true) {
                return Vec::new();
            }
            let index = self.look(image, &schema_tag, deadline, self.referrers_index(image, &schema_tag));
            let cosign = COSIGN_SUFFIXES.map(|suffix| {
                let tag = format!("{schema_tag}{suffix}");
                async move {
                    let exists = self.look(image, &tag, deadline, self.manifest_exists(image, &tag)).await;
                    (exists == Some(true)).then_some(Referrer::Tag(tag))
                }
            });
            let [sig, att, sbom] = cosign;
            let (index, sig, att, sbom) = tokio::join!(index, sig, att, sbom);
            let mut found = index.flatten().map(|index| index.to_vec()).unwrap_or_default();
            found.extend([sig, att, sbom].into_iter().flatten());
            found
        };
        let (api, tags) = tokio::join!(api, tags);
        match api {
            Some(Api::Listed(found)) => {
                self.referrers_cache.api.insert(host, true).await;
                found
            }
            Some(Api::Absent) => {
                self.referrers_cache.api.insert(host, false).await;
                tags
            }
            None => tags,
        }
    }

    /// Runs look-up `what` (a path under the repository, naming it for the failure
    /// memory) until `deadline`; `None` when it failed, now or lately.
    async fn look<T>(
        &self,
        image: &ImageReference,
        what: &str,
        deadline: Instant,
        lookup: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Option<T> {
        let key = (self.config.registry(image.registry()).host, image.repository().to_owned(), what.to_owned());
        if self.referrers_cache.failed.contains_key(&key) {
            return None;
        }
        let error = match tokio::time::timeout_at(deadline, lookup).await {
            Ok(Ok(found)) => return Some(found),
            Ok(Err(e)) => e.message().to_owned(),
            Err(_) => "the deadline for extras passed".to_owned(),
        };
        tracing::debug!(registry = %key.0, repository = %key.1, lookup = %key.2, error, "referrers look-up failed");
        self.referrers_cache.failed.insert(key, ()).await;
        None
    }

    /// The referrers API's answer.
    async fn referrers_api(&self, image: &ImageReference, digest: &Digest) -> Result<Api, Error> {
        let path = format!("/v2/{}/referrers/{digest}", image.repository());
        let (status, body) = self.get_index(image, &path).await?;
        match (status, body) {
            (StatusCode::OK, Some(body)) => {
                parse(&body).map(Api::Listed).map_err(|e| self.invalid(image.registry(), e))
            }
            // What a registry without the API answers for a path it does not know.
            (StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED, _) => {
                Ok(Api::Absent)
            }
            (status, _) => Err(Error::bad_gateway(format!("the referrers API answered {status}"))),
        }
    }

    /// The index held under the referrers tag, if there is one: a HEAD to learn its
    /// digest (Docker Hub counts manifest GETs against the pull quota, and most images
    /// have none), then the cache or a GET by that digest.
    async fn referrers_index(&self, image: &ImageReference, tag: &str) -> Result<Option<Arc<Vec<Referrer>>>, Error> {
        let Some(digest) = self.manifest_head(image, tag).await? else {
            return Ok(None);
        };
        let Some(digest) = digest else {
            // A registry that does not say the digest: asked by tag, and not cached.
            let path = format!("/v2/{}/manifests/{tag}", image.repository());
            return Ok(Some(Arc::new(self.index_at(image, &path, None).await?)));
        };
        let key = (self.config.registry(image.registry()).host, image.repository().to_owned(), digest.clone());
        let path = format!("/v2/{}/manifests/{digest}", image.repository());
        let fetch = async { self.index_at(image, &path, Some(&digest)).await.map(Arc::new) };
        let found = self.referrers_cache.indexes.try_get_with(key, fetch).await.map_err(|e| Error::clone(&e))?;
        Ok(Some(found))
    }

    /// The referrers the index at `path` lists; its bytes must have digest `expected`.
    async fn index_at(
        &self,
        image: &ImageReference,
        path: &str,
        expected: Option<&Digest>,
    ) -> Result<Vec<Referrer>, Error> {
        let (status, body) = self.get_index(image, path).await?;
        let Some(body) = body.filter(|_| status == StatusCode::OK) else {
            return Err(Error::bad_gateway(format!("the referrers tag's index answered {status}")));
        };
        if let Some(expected) = expected {
            let mut hasher = Hasher::new(expected.algorithm());
            hasher.update(&body);
            let digest = hasher.finish();
            if digest != *expected {
                return Err(self.invalid(
                    image.registry(),
                    format!("the registry sent a referrers index whose digest is {digest}, not {expected}"),
                ));
            }
        }
        parse(&body).map_err(|e| self.invalid(image.registry(), e))
    }

    /// A GET of an index at `path`: its status, and its body when it is 200.
    async fn get_index(&self, image: &ImageReference, path: &str) -> Result<(StatusCode, Option<bytes::Bytes>), Error> {
        let registry = self.config.registry(image.registry());
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(manifest::OCI_INDEX));
        let response = self.get(&registry, image.repository(), Transport::Pooled, &Method::GET, path, headers).await?;
        if response.status() != StatusCode::OK {
            return Ok((response.status(), None));
        }
        let body = self
            .read_limited(image.registry(), response, self.config.limits.max_manifest_bytes, "referrers index")
            .await?;
        Ok((StatusCode::OK, Some(body)))
    }

    /// Whether a manifest is tagged `tag` (a HEAD, which registries do not count as a
    /// pull); an error for an answer other than yes or no.
    async fn manifest_exists(&self, image: &ImageReference, tag: &str) -> Result<bool, Error> {
        Ok(self.manifest_head(image, tag).await?.is_some())
    }

    /// A HEAD of the manifest tagged `tag`: `None` when there is none, else the digest
    /// the registry says it has (if it says).
    async fn manifest_head(&self, image: &ImageReference, tag: &str) -> Result<Option<Option<Digest>>, Error> {
        let registry = self.config.registry(image.registry());
        let path = format!("/v2/{}/manifests/{tag}", image.repository());
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(manifest::ACCEPT));
        let response =
            self.get(&registry, image.repository(), Transport::Pooled, &Method::HEAD, &path, headers).await?;
        match response.status() {
            StatusCode::OK => {
                let digest = response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok());
                Ok(Some(digest.and_then(|d| d.parse().ok())))
            }
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(Error::bad_gateway(format!("a HEAD of tag {tag} answered {status}"))),
        }
    }
}

/// The referrers an index lists.
fn parse(body: &[u8]) -> Result<Vec<Referrer>, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Entry {
        media_type: Option<String>,
        artifact_type: Option<String>,
        digest: String,
    }
    #[derive(Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Entry>,
    }
    let index: Index =
        serde_json::from_slice(body).map_err(|e| format!("the registry sent an invalid referrers index: {e}"))?;
    index
        .manifests
        .into_iter()
        .map(|e| {
            let digest = e.digest.parse().map_err(|e| format!("a referrer has an invalid digest: {e}"))?;
            let artifact_type = e.artifact_type.or(e.media_type).unwrap_or_default();
            Ok(Referrer::Manifest { digest, artifact_type })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrers_come_with_their_artifact_types() {
        let d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","digest":"{d}","size":1}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":1}}]}}"#
        );
        let found = parse(body.as_bytes()).unwrap();
        let types: Vec<&str> = found
            .iter()
            .map(|r| match r {
                Referrer::Manifest { artifact_type, .. } => artifact_type.as_str(),
                Referrer::Tag(_) => "",
            })
            .collect();
        assert_eq!(types, ["application/spdx+json", "application/vnd.oci.image.manifest.v1+json"]);
        assert!(parse(br#"{"manifests":[{"digest":"sha256:zz"}]}"#).is_err());
        assert_eq!(parse(br#"{}"#).unwrap(), []);
    }
}
