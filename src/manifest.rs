//! Manifests and indexes, in the OCI image spec's words: an image *manifest* lists a
//! config and layers by *descriptor*; an *index* (Docker: manifest list) lists one
//! manifest per platform.

use serde::Deserialize;

use crate::digest::Digest;

pub mod schema1;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The `Accept` header for manifest requests: every type layerpipe can show.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest layerpipe reads (distribution's own limit).
pub const MAX_SIZE: usize = 4 * 1024 * 1024;

/// A pointer to content: its media type, digest and size.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the content is.
    pub media_type: String,
    /// Its digest.
    #[serde(deserialize_with = "deserialize_digest")]
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The platform, for entries of an index.
    pub platform: Option<Platform>,
    /// Where else the content may be fetched from: a foreign layer's (Windows base
    /// layers) only home. layerpipe reads them only from a manifest it fetched itself.
    #[serde(default)]
    pub urls: Vec<String>,
}

/// The platform an index entry is for.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `v8`.
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// An image manifest: a config and the layers, base first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageManifest {
    /// The config blob.
    pub config: Descriptor,
    /// The layers, in order.
    pub layers: Vec<Descriptor>,
}

/// An index: one manifest per platform (or other variants, such as attestations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageIndex {
    /// The manifests it lists.
    pub manifests: Vec<Descriptor>,
}

/// A manifest of either kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Manifest {
    /// An image manifest.
    Image(ImageManifest),
    /// An index or manifest list.
    Index(ImageIndex),
}

/// A manifest as fetched: its parsed content, media type and digest.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    /// The media type, from the manifest itself or else the response's `Content-Type`.
    pub media_type: String,
    /// The digest of the manifest's bytes.
    pub digest: Digest,
    /// The content.
    pub manifest: Manifest,
}

fn deserialize_digest<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

/// Parses manifest JSON; `content_type` is the response's, used when the JSON has no
/// `mediaType`. Returns the media type in force with the manifest.
pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<(String, Manifest), String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        schema_version: Option<u32>,
        media_type: Option<String>,
        config: Option<Descriptor>,
        layers: Option<Vec<Descriptor>>,
        manifests: Option<Vec<Descriptor>>,
    }
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| format!("the registry sent an invalid manifest: {e}"))?;
    if raw.schema_version == Some(1) {
        return Err("schema 1 manifests are not supported".into());
    }
    let content_type = content_type.map(|c| c.split(';').next().unwrap_or(c).trim());
    let media_type = raw.media_type.or(content_type.map(str::to_owned)).unwrap_or_default();
    let manifest = match (raw.manifests, raw.config, raw.layers) {
        (Some(manifests), None, None) => Manifest::Index(ImageIndex { manifests }),
        (None, Some(config), Some(layers)) => Manifest::Image(ImageManifest { config, layers }),
        _ => return Err(format!("the registry sent a manifest of unsupported type {media_type:?}")),
    };
    Ok((media_type, manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn image_manifest() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":7}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":26470178,"annotations":{{"a":"b"}}}}]}}"#
        );
        let (mt, m) = parse(None, json.as_bytes()).unwrap();
        assert_eq!(mt, OCI_MANIFEST);
        let Manifest::Image(m) = m else { panic!("not an image") };
        assert_eq!(m.config.digest.as_str(), D1);
        assert_eq!(m.layers[0].size, 26470178);
    }

    #[test]
    fn index_with_platforms_and_type_from_header() {
        let json = format!(
            r#"{{"schemaVersion":2,"manifests":[
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D1}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D2}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let (mt, m) =
            parse(Some("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8"), json.as_bytes())
                .unwrap();
        assert_eq!(mt, DOCKER_MANIFEST_LIST);
        let Manifest::Index(i) = m else { panic!("not an index") };
        let platforms: Vec<_> = i.manifests.iter().map(|d| d.platform.as_ref().unwrap().to_string()).collect();
        assert_eq!(platforms, ["linux/arm64/v8", "linux/amd64"]);
    }

    #[test]
    fn bad_manifests() {
        assert!(parse(None, b"not json").is_err());
        assert!(parse(None, br#"{"schemaVersion":1,"fsLayers":[]}"#).unwrap_err().contains("schema 1"));
        let bad_digest = r#"{"config":{"mediaType":"x","digest":"sha256:zz","size":1},"layers":[]}"#;
        assert!(parse(None, bad_digest.as_bytes()).is_err());
        assert!(parse(None, br#"{"schemaVersion":2}"#).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn valid() -> Vec<u8> {
        let d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"x","digest":"{d}","size":7}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":1,
            "platform":{{"os":"linux","architecture":"amd64"}}}}],"manifests":null}}"#
        )
        .into_bytes()
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = parse(None, &bytes);
        }

        #[test]
        fn damaged_manifests_parse_or_fail_without_panicking(
            flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8)
        ) {
            let mut bytes = valid();
            for (at, byte) in flips {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let _ = parse(Some("application/json"), &bytes);
        }
    }
}
