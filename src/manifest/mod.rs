//! Manifests and indexes, in the OCI image spec's words: an image *manifest* lists a
//! config and layers by *descriptor*; an *index* (Docker: manifest list) lists one
//! manifest per platform.
//!
//! `oci-spec` was weighed for these types (issue 21) and not adopted:
//! - it has no Docker schema 1, which [`schema1`] reads into the same [`ImageManifest`]
//!   (layers base first, sizes unknown, a config made from the history and carried in
//!   its descriptor's [`Descriptor::data`], which no oci-spec descriptor has room for);
//! - its digests are its own type, not [`Digest`], whose parse is what makes a digest
//!   from a registry safe to put in a URL or a file name; a conversion would be needed
//!   at every use;
//! - it would remove only the few serde structs here; the size limits stay where the
//!   bytes are read ([`crate::registry`]) whatever parses them, and it would bring its
//!   builder and getter crates, with every field reached through a getter.

use bytes::Bytes;
use serde::Deserialize;

use crate::digest::{Algorithm, Digest};

pub mod config;
pub mod dsse;
pub mod schema1;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Docker image manifest, schema 1, signed (what registries serve).
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker image manifest, schema 1, unsigned.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// The media type of the config made from a schema 1 manifest's history.
pub const SCHEMA1_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The `Accept` header for manifest requests: every type layerpipe can show. Schema 1
/// comes last, at a lower weight: a registry that has the image in both forms (or
/// converts, as distribution 2 does) must send the newer one.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5, application/vnd.docker.distribution.manifest.v1+json;q=0.5";

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
    /// The content itself, when the manifest carries it rather than the registry (the
    /// config made from a schema 1 manifest's history): it is not fetched.
    #[serde(skip)]
    pub data: Option<Bytes>,
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

/// How a layer's bytes are packed, from its media type; decides the file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerFormat {
    /// `…tar+gzip` (OCI) or `…tar.gzip` (Docker).
    Gzip,
    /// `…tar+zstd`.
    Zstd,
    /// An uncompressed tar.
    Tar,
    /// Anything else (not a layer we know).
    Other,
}

impl LayerFormat {
    /// The format a media type names.
    pub fn from_media_type(media_type: &str) -> LayerFormat {
        if media_type.ends_with("+gzip") || media_type.ends_with(".gzip") {
            LayerFormat::Gzip
        } else if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
            LayerFormat::Zstd
        } else if media_type.ends_with(".tar") {
            LayerFormat::Tar
        } else {
            LayerFormat::Other
        }
    }

    /// Whether it is a filesystem layer (tar, compressed or not), whose files can be
    /// listed; an artifact's blob is not one.
    pub fn is_layer(self) -> bool {
        self != LayerFormat::Other
    }

    /// The file extension, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            LayerFormat::Gzip => ".tar.gzip",
            LayerFormat::Zstd => ".tar.zst",
            LayerFormat::Tar => ".tar",
            LayerFormat::Other => ".bin",
        }
    }
}

impl Descriptor {
    /// Whether it names a filesystem layer ([`LayerFormat::is_layer`]).
    pub fn is_layer(&self) -> bool {
        LayerFormat::from_media_type(&self.media_type).is_layer()
    }
}

/// An image manifest: a config and the layers, base first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageManifest {
    /// The config blob.
    pub config: Descriptor,
    /// The layers, in order.
    pub layers: Vec<Descriptor>,
    /// Whether the layers' sizes are known: schema 1 manifests have none (their sizes
    /// read 0), and pages show them as unknown.
    pub sizes_known: bool,
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
    /// The bytes as the registry sent them, for the page that shows the JSON itself.
    pub raw: bytes::Bytes,
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
    let content_type = content_type.map(|c| c.split(';').next().unwrap_or(c).trim());
    if raw.schema_version == Some(1) {
        return from_schema1(content_type, bytes);
    }
    let media_type = raw.media_type.or(content_type.map(str::to_owned)).unwrap_or_default();
    let manifest = match (raw.manifests, raw.config, raw.layers) {
        (Some(manifests), None, None) => Manifest::Index(ImageIndex { manifests }),
        (None, Some(config), Some(layers)) => Manifest::Image(ImageManifest { config, layers, sizes_known: true }),
        _ => return Err(format!("the registry sent a manifest of unsupported type {media_type:?}")),
    };
    Ok((media_type, manifest))
}

/// A schema 1 manifest as an image manifest: its layers base first (without the empty
/// ones), sizes unknown, and a config made from its history, carried in the descriptor.
fn from_schema1(content_type: Option<&str>, bytes: &[u8]) -> Result<(String, Manifest), String> {
    let parsed = schema1::parse(bytes)?;
    // Registries serve schema 1 signed; the unsigned type only when they say so.
    let media_type = if content_type == Some(DOCKER_SCHEMA1) { DOCKER_SCHEMA1 } else { DOCKER_SCHEMA1_SIGNED };
    let config_json =
        serde_json::to_vec(&parsed.config).map_err(|e| format!("the schema 1 history is unusable: {e}"))?;
    let config = Descriptor {
        media_type: SCHEMA1_CONFIG.to_owned(),
        digest: Digest::of(Algorithm::Sha256, &config_json),
        size: config_json.len() as u64,
        platform: None,
        urls: Vec::new(),
        data: Some(Bytes::from(config_json)),
    };
    let layers = parsed
        .layers
        .into_iter()
        .map(|digest| Descriptor {
            media_type: schema1::LAYER_MEDIA_TYPE.to_owned(),
            digest,
            size: 0,
            platform: None,
            urls: Vec::new(),
            data: None,
        })
        .collect();
    Ok((media_type.to_owned(), Manifest::Image(ImageManifest { config, layers, sizes_known: false })))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn layer_formats_by_media_type() {
        let format = LayerFormat::from_media_type;
        assert_eq!(format("application/vnd.oci.image.layer.v1.tar+gzip"), LayerFormat::Gzip);
        assert_eq!(format("application/vnd.docker.image.rootfs.diff.tar.gzip"), LayerFormat::Gzip);
        assert_eq!(format("application/vnd.oci.image.layer.v1.tar+zstd"), LayerFormat::Zstd);
        assert_eq!(format("application/vnd.oci.image.layer.v1.tar"), LayerFormat::Tar);
        assert_eq!(format("application/octet-stream"), LayerFormat::Other);
        assert!(format("application/vnd.oci.image.layer.v1.tar").is_layer());
        assert!(!format("application/vnd.in-toto+json").is_layer());
    }

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
        assert!(parse(None, br#"{"schemaVersion":1}"#).unwrap_err().contains("schema 1"));
        let bad_digest = r#"{"config":{"mediaType":"x","digest":"sha256:zz","size":1},"layers":[]}"#;
        assert!(parse(None, bad_digest.as_bytes()).is_err());
        assert!(parse(None, br#"{"schemaVersion":2}"#).is_err());
    }
}

#[cfg(test)]
mod schema1_tests {
    use super::*;

    #[test]
    fn schema_1_is_an_image_with_its_config_inside() {
        let d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
        let v1 = |cmd: &str| {
            serde_json::to_string(&format!(r#"{{"container_config":{{"Cmd":["/bin/sh","-c","{cmd}"]}}}}"#)).unwrap()
        };
        let json = format!(
            r#"{{"schemaVersion":1,"name":"a/b","tag":"old","architecture":"amd64",
            "fsLayers":[{{"blobSum":"{d2}"}},{{"blobSum":"{}"}},{{"blobSum":"{d1}"}}],
            "history":[{{"v1Compatibility":{}}},{{"v1Compatibility":{}}},{{"v1Compatibility":{}}}]}}"#,
            schema1::EMPTY_LAYER,
            v1("make"),
            v1("#(nop) ENV A=1"),
            v1("#(nop) ADD file:x in /"),
        );
        let (media_type, manifest) = parse(Some(DOCKER_SCHEMA1_SIGNED), json.as_bytes()).unwrap();
        assert_eq!(media_type, DOCKER_SCHEMA1_SIGNED);
        let Manifest::Image(m) = manifest else { panic!("not an image") };
        assert_eq!(m.layers.iter().map(|l| l.digest.as_str()).collect::<Vec<_>>(), [d1, d2]);
        assert!(m.layers.iter().all(|l| l.media_type == schema1::LAYER_MEDIA_TYPE && l.size == 0));
        assert!(!m.sizes_known);
        let data = m.config.data.as_ref().unwrap();
        assert_eq!(m.config.digest, Digest::of(Algorithm::Sha256, data));
        let config = crate::manifest::config::parse(data).unwrap();
        let empties: Vec<bool> = config.history.iter().map(|h| h.empty_layer).collect();
        assert_eq!(empties, [false, true, false]);
        assert_eq!(parse(Some(DOCKER_SCHEMA1), json.as_bytes()).unwrap().0, DOCKER_SCHEMA1);
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
