//! Docker image manifests of schema 1, still served for old images: layers as
//! `fsLayers` (top layer first, with an empty blob for every step that made no layer)
//! and history as `v1Compatibility`, one JSON string per step, paired with `fsLayers`.

use serde::Deserialize;

use crate::digest::Digest;
use crate::image::config::{HistoryEntry, ImageConfig, RunConfig};

/// The empty tar+gzip layer that schema 1 lists for steps that made no layer.
pub const EMPTY_LAYER: &str = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";

/// The media type schema 1 layers are, for file names and the layer table.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A schema 1 manifest, turned the way schema 2 has it: base layer first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema1Manifest {
    /// The layers' digests, base first, empty layers left out.
    pub layers: Vec<Digest>,
    /// The image config its history entries make: the top step's config, and one history
    /// entry per step, base first.
    pub config: ImageConfig,
}

/// Parses a schema 1 manifest (signed or not: the signature is not checked, as
/// distribution itself stopped doing when it deprecated schema 1; the layers are still
/// checked against their digests when read).
pub fn parse(bytes: &[u8]) -> Result<Schema1Manifest, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct FsLayer {
        blob_sum: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct History {
        v1_compatibility: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        fs_layers: Vec<FsLayer>,
        #[serde(default)]
        history: Vec<History>,
        architecture: Option<String>,
    }
    let raw: Raw =
        serde_json::from_slice(bytes).map_err(|e| format!("the registry sent an invalid schema 1 manifest: {e}"))?;
    if !raw.history.is_empty() && raw.history.len() != raw.fs_layers.len() {
        return Err(format!(
            "the registry sent a schema 1 manifest with {} layers but {} history entries",
            raw.fs_layers.len(),
            raw.history.len()
        ));
    }
    let mut layers = Vec::new();
    let mut history = Vec::new();
    let mut top: Option<V1Compatibility> = None;
    for (i, fs_layer) in raw.fs_layers.iter().enumerate().rev() {
        let digest: Digest =
            fs_layer.blob_sum.parse().map_err(|e| format!("a schema 1 layer has an invalid digest: {e}"))?;
        let empty = digest.as_str() == EMPTY_LAYER;
        if !empty {
            layers.push(digest);
        }
        if let Some(h) = raw.history.get(i) {
            let v1: V1Compatibility = serde_json::from_str(&h.v1_compatibility)
                .map_err(|e| format!("a schema 1 history entry is invalid: {e}"))?;
            history.push(v1.entry(empty));
            if i == 0 {
                top = Some(v1);
            }
        }
    }
    let top = top.unwrap_or_default();
    let config = ImageConfig {
        architecture: top.architecture.clone().or(raw.architecture),
        os: top.os.clone(),
        created: top.created.clone(),
        config: top.config,
        history,
    };
    Ok(Schema1Manifest { layers, config })
}

/// The bytes a signed schema 1 manifest's digest is of: the manifest without its
/// signatures, as each JWS signature's protected header describes it (`formatLength`
/// bytes of the manifest, then the base64url `formatTail`). The manifest itself when it
/// is not signed that way.
pub fn digested_bytes(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    signed_payload(bytes).map_or(std::borrow::Cow::Borrowed(bytes), std::borrow::Cow::Owned)
}

fn signed_payload(bytes: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    #[derive(Deserialize)]
    struct Signature {
        protected: String,
    }
    #[derive(Deserialize)]
    struct Signed {
        #[serde(rename = "schemaVersion")]
        schema_version: u32,
        signatures: Vec<Signature>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Protected {
        format_length: usize,
        format_tail: String,
    }
    let signed: Signed = serde_json::from_slice(bytes).ok()?;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let protected = engine.decode(signed.signatures.first()?.protected.trim_end_matches('=')).ok()?;
    let protected: Protected = serde_json::from_slice(&protected).ok()?;
    let tail = engine.decode(protected.format_tail.trim_end_matches('=')).ok()?;
    let mut payload = bytes.get(..protected.format_length)?.to_vec();
    payload.extend_from_slice(&tail);
    (signed.schema_version == 1).then_some(payload)
}

/// One `v1Compatibility` entry: the step's command and, on the top one, the config.
#[derive(Clone, Debug, Default, Deserialize)]
struct V1Compatibility {
    created: Option<String>,
    architecture: Option<String>,
    os: Option<String>,
    comment: Option<String>,
    config: Option<RunConfig>,
    container_config: Option<ContainerConfig>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfig {
    #[serde(default)]
    cmd: Option<Vec<String>>,
}

impl V1Compatibility {
    fn entry(&self, empty_layer: bool) -> HistoryEntry {
        let created_by = self.container_config.as_ref().and_then(|c| c.cmd.as_ref()).map(|cmd| cmd.join(" "));
        HistoryEntry { created: self.created.clone(), created_by, comment: self.comment.clone(), empty_layer }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::history;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn v1(cmd: &str, extra: &str) -> String {
        serde_json::to_string(&format!(
            r#"{{"id":"x","created":"2015-01-01T00:00:00Z","container_config":{{"Cmd":["/bin/sh","-c",{}]}}{extra}}}"#,
            serde_json::to_string(cmd).unwrap()
        ))
        .unwrap()
    }

    #[test]
    fn layers_come_base_first_without_empty_ones() {
        let json = format!(
            r#"{{"schemaVersion":1,"name":"a/b","tag":"old","architecture":"amd64",
            "fsLayers":[{{"blobSum":"{EMPTY_LAYER}"}},{{"blobSum":"{D2}"}},{{"blobSum":"{D1}"}}],
            "history":[{{"v1Compatibility":{}}},{{"v1Compatibility":{}}},{{"v1Compatibility":{}}}],
            "signatures":[]}}"#,
            v1("#(nop) CMD [\"sh\"]", r#","config":{"Env":["A=1"],"Cmd":["sh"]},"os":"linux""#),
            v1("apt-get install -y curl", ""),
            v1("#(nop) ADD file:abc in /", ""),
        );
        let m = parse(json.as_bytes()).unwrap();
        assert_eq!(m.layers.iter().map(Digest::as_str).collect::<Vec<_>>(), [D1, D2]);
        let commands: Vec<String> =
            m.config.history.iter().map(|h| history::command(h.created_by.as_deref().unwrap())).collect();
        assert_eq!(commands, ["ADD file:abc in /", "RUN apt-get install -y curl", "CMD [\"sh\"]"]);
        assert_eq!(m.config.history.iter().map(|h| h.empty_layer).collect::<Vec<_>>(), [false, false, true]);
        let run = m.config.config.as_ref().unwrap();
        assert_eq!((run.env.as_slice(), run.cmd.as_slice()), (&["A=1".to_owned()][..], &["sh".to_owned()][..]));
        assert_eq!((m.config.architecture.as_deref(), m.config.os.as_deref()), (Some("amd64"), Some("linux")));
        // And the history pairs with the layers.
        assert_eq!(history::pair(&m.layers, &m.config.history).mismatch, None);
    }

    #[test]
    fn bad_schema_1_manifests_are_errors() {
        assert!(parse(b"{}").is_err());
        assert!(parse(br#"{"fsLayers":[{"blobSum":"sha256:zz"}]}"#).is_err());
        let mismatched = format!(r#"{{"fsLayers":[{{"blobSum":"{D1}"}}],"history":[]}}"#);
        assert_eq!(parse(mismatched.as_bytes()).unwrap().layers.len(), 1);
        let two = format!(
            r#"{{"fsLayers":[{{"blobSum":"{D1}"}}],"history":[{{"v1Compatibility":"{{}}"}},{{"v1Compatibility":"{{}}"}}]}}"#
        );
        assert!(parse(two.as_bytes()).unwrap_err().contains("1 layers but 2 history"));
        let bad_v1 = format!(r#"{{"fsLayers":[{{"blobSum":"{D1}"}}],"history":[{{"v1Compatibility":"["}}]}}"#);
        assert!(parse(bad_v1.as_bytes()).is_err());
    }
}

#[cfg(test)]
mod signed {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn a_signed_manifest_is_digested_without_its_signatures() {
        let payload = "{\n   \"schemaVersion\": 1,\n   \"fsLayers\": []\n}";
        // As docker's libtrust signs: cut before the closing brace, append the signatures.
        let cut = payload.rfind("\n}").unwrap();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let protected =
            engine.encode(format!(r#"{{"formatLength":{cut},"formatTail":"{}"}}"#, engine.encode(&payload[cut..])));
        let signed = format!(
            "{},\n   \"signatures\": [{{\"protected\": \"{protected}\", \"signature\": \"x\"}}]\n}}",
            &payload[..cut]
        );
        assert_eq!(&*digested_bytes(signed.as_bytes()), payload.as_bytes());
        assert_eq!(&*digested_bytes(payload.as_bytes()), payload.as_bytes());
        assert_eq!(&*digested_bytes(b"[1]"), b"[1]");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = parse(&bytes);
            let _ = digested_bytes(&bytes);
        }
    }
}
