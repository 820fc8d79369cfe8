//! What refers to a manifest: signatures, attestations and SBOMs. OCI 1.1 registries
//! answer `GET /v2/NAME/referrers/DIGEST` with an index; older ones hold the same under
//! the tag `sha256-HEX` (the referrers tag schema), and cosign keeps its signatures,
//! attestations and SBOMs under `sha256-HEX.sig`, `.att` and `.sbom`.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use serde::Deserialize;

use super::RegistryClient;
use crate::digest::Digest;
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

impl RegistryClient {
    /// What refers to manifest `digest` in `image`'s repository. A registry without the
    /// referrers API or any such tag has none; failures to look are not the page's error.
    pub async fn referrers(&self, image: &ImageReference, digest: &Digest) -> Vec<Referrer> {
        match self.referrers_api(image, digest).await {
            Ok(Some(found)) => return found,
            Ok(None) => {}
            Err(e) => tracing::debug!(error = e.message(), "referrers API failed"),
        }
        let mut found = Vec::new();
        let schema_tag = format!("{}-{}", digest.algorithm().name(), digest.hex());
        if let Ok(Some(manifests)) = self.referrers_index(image, &schema_tag).await {
            found.extend(manifests);
        }
        for suffix in COSIGN_SUFFIXES {
            let tag = format!("{schema_tag}{suffix}");
            if self.manifest_exists(image, &tag).await {
                found.push(Referrer::Tag(tag));
            }
        }
        found
    }

    /// The referrers API's answer; `None` when the registry does not have the API.
    async fn referrers_api(&self, image: &ImageReference, digest: &Digest) -> Result<Option<Vec<Referrer>>, Error> {
        let path = format!("/v2/{}/referrers/{digest}", image.repository());
        self.referrers_index_at(image, &path).await
    }

    /// The index held under the referrers tag, if there is one. Asked with a HEAD first:
    /// Docker Hub counts manifest GETs against the pull quota, and most images have none.
    async fn referrers_index(&self, image: &ImageReference, tag: &str) -> Result<Option<Vec<Referrer>>, Error> {
        if !self.manifest_exists(image, tag).await {
            return Ok(None);
        }
        let path = format!("/v2/{}/manifests/{tag}", image.repository());
        self.referrers_index_at(image, &path).await
    }

    async fn referrers_index_at(&self, image: &ImageReference, path: &str) -> Result<Option<Vec<Referrer>>, Error> {
        let registry = self.config.registry(image.registry());
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(manifest::OCI_INDEX));
        let response = self.get(&registry, image.repository(), Transport::Pooled, &Method::GET, path, headers).await?;
        if response.status() != StatusCode::OK {
            return Ok(None);
        }
        let body = self.read_limited(response, self.config.limits.max_manifest_bytes, "referrers index").await?;
        parse(&body).map(Some).map_err(|e| self.invalid(e))
    }

    /// Whether a manifest is tagged `tag` (a HEAD, which registries do not count as a pull).
    async fn manifest_exists(&self, image: &ImageReference, tag: &str) -> bool {
        let registry = self.config.registry(image.registry());
        let path = format!("/v2/{}/manifests/{tag}", image.repository());
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(manifest::ACCEPT));
        let response = self.get(&registry, image.repository(), Transport::Pooled, &Method::HEAD, &path, headers).await;
        response.is_ok_and(|r| r.status() == StatusCode::OK)
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
