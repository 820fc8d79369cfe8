//! Docker image manifests of schema 1, still served for old images: layers as
//! `fsLayers` (top layer first, with an empty blob for every step that made no layer)
//! and history as `v1Compatibility`, one JSON string per step, paired with `fsLayers`.

use std::borrow::Cow;

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

/// The bytes a schema 1 manifest's digest is of. Signed (`+prettyjws`), that is the
/// JWS payload: the manifest without its signatures, as each signature's protected
/// header describes it (`formatLength` bytes of the manifest, then the base64url
/// `formatTail`). Unsigned, or not schema 1, the bytes themselves.
///
/// Danger: the header is the sender's word, and no signature is checked. With
/// `formatLength: 0` and another manifest as `formatTail`, any schema 1 JSON would get
/// that manifest's digest. So the payload must be the manifest itself, signatures
/// stripped (the same JSON), and every signature must describe the same payload; else
/// this is an error, for a 502.
pub fn digested_bytes(bytes: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    use serde_json::Value;
    #[derive(Deserialize)]
    struct Signature {
        protected: String,
    }
    let Ok(Value::Object(mut manifest)) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(Cow::Borrowed(bytes));
    };
    // As `crate::manifest::parse` tells schema 1 from the rest.
    if manifest.get("schemaVersion").and_then(Value::as_u64) != Some(1) {
        return Ok(Cow::Borrowed(bytes));
    }
    let Some(signatures) = manifest.remove("signatures") else {
        return Ok(Cow::Borrowed(bytes));
    };
    let unusable = |why: &str| format!("the registry sent a signed schema 1 manifest with {why}");
    let signatures: Vec<Signature> =
        serde_json::from_value(signatures).map_err(|_| unusable("signatures that are not JWS signatures"))?;
    let mut payload: Option<Vec<u8>> = None;
    for signature in &signatures {
        let this = signed_payload(bytes, &signature.protected)
            .ok_or_else(|| unusable("a protected header that does not say what was signed"))?;
        match &payload {
            Some(first) if *first != this => return Err(unusable("signatures over different payloads")),
            Some(_) => {}
            None => payload = Some(this),
        }
    }
    // No signatures: the bytes as they are are what is shown and digested.
    let Some(payload) = payload else {
        return Ok(Cow::Borrowed(bytes));
    };
    match serde_json::from_slice::<Value>(&payload) {
        Ok(signed) if signed == Value::Object(manifest) => Ok(Cow::Owned(payload)),
        _ => Err(unusable("a signed payload that is not the manifest itself")),
    }
}

/// The payload one signature's `protected` header describes, if it describes one
/// within `bytes`.
fn signed_payload(bytes: &[u8], protected: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Protected {
        format_length: usize,
        format_tail: String,
    }
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let protected = engine.decode(protected.trim_end_matches('=')).ok()?;
    let protected: Protected = serde_json::from_slice(&protected).ok()?;
    let tail = engine.decode(protected.format_tail.trim_end_matches('=')).ok()?;
    let mut payload = bytes.get(..protected.format_length)?.to_vec();
    payload.extend_from_slice(&tail);
    Some(payload)
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

    const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// A signature whose protected header says the payload is the first `length` bytes
    /// and then `tail`.
    fn signature(length: usize, tail: &str) -> String {
        let protected = ENGINE.encode(format!(r#"{{"formatLength":{length},"formatTail":"{}"}}"#, ENGINE.encode(tail)));
        format!(r#"{{"protected": "{protected}", "signature": "x"}}"#)
    }

    /// `payload` signed as docker's libtrust signs: cut before the closing brace, the
    /// signatures (each made by `sign` from the cut) added there.
    fn signed(payload: &str, sign: impl Fn(usize, &str) -> Vec<String>) -> String {
        let cut = payload.rfind("\n}").unwrap();
        let signatures = sign(cut, &payload[cut..]).join(", ");
        format!("{},\n   \"signatures\": [{signatures}]\n}}", &payload[..cut])
    }

    const PAYLOAD: &str = "{\n   \"schemaVersion\": 1,\n   \"fsLayers\": []\n}";

    #[test]
    fn a_signed_manifest_is_digested_without_its_signatures() {
        let one = signed(PAYLOAD, |cut, tail| vec![signature(cut, tail)]);
        assert_eq!(&*digested_bytes(one.as_bytes()).unwrap(), PAYLOAD.as_bytes());
        let two = signed(PAYLOAD, |cut, tail| vec![signature(cut, tail), signature(cut, tail)]);
        assert_eq!(&*digested_bytes(two.as_bytes()).unwrap(), PAYLOAD.as_bytes());
        assert_eq!(&*digested_bytes(PAYLOAD.as_bytes()).unwrap(), PAYLOAD.as_bytes());
        let none = signed(PAYLOAD, |_, _| vec![]);
        assert_eq!(&*digested_bytes(none.as_bytes()).unwrap(), none.as_bytes());
        assert_eq!(&*digested_bytes(b"[1]").unwrap(), b"[1]");
        let not_schema_1 = r#"{"schemaVersion":2,"signatures":[{"protected":"!"}]}"#;
        assert_eq!(&*digested_bytes(not_schema_1.as_bytes()).unwrap(), not_schema_1.as_bytes());
    }

    #[test]
    fn a_payload_that_is_another_manifest_is_refused() {
        // The forgery: nothing of the manifest, all of another one as the tail, so its
        // digest would be the other's.
        let other = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
        let forged = signed(PAYLOAD, |_, _| vec![signature(0, other)]);
        let e = digested_bytes(forged.as_bytes()).unwrap_err();
        assert!(e.contains("signed payload that is not the manifest itself"), "{e}");
        // Another schema 1 manifest as the tail is no better.
        let other_1 = PAYLOAD.replace("[]", r#"[{"blobSum":"sha256:1"}]"#);
        let forged = signed(PAYLOAD, |_, _| vec![signature(0, &other_1)]);
        assert!(digested_bytes(forged.as_bytes()).is_err());
        // A tail that changes one field of the signed part.
        let forged = signed(PAYLOAD, |cut, _| vec![signature(cut, r#","fsLayers":[{"blobSum":"x"}]}"#)]);
        assert!(digested_bytes(forged.as_bytes()).is_err());
    }

    #[test]
    fn signatures_that_disagree_or_say_nothing_are_refused() {
        let other = r#"{"schemaVersion":1,"fsLayers":[],"x":1}"#;
        let disagree = signed(PAYLOAD, |cut, tail| vec![signature(cut, tail), signature(0, other)]);
        assert!(digested_bytes(disagree.as_bytes()).unwrap_err().contains("different payloads"));
        let past_the_end = signed(PAYLOAD, |_, tail| vec![signature(1 << 20, tail)]);
        assert!(digested_bytes(past_the_end.as_bytes()).unwrap_err().contains("protected header"));
        let garbled = signed(PAYLOAD, |_, _| vec![r#"{"protected": "%%%"}"#.to_owned()]);
        assert!(digested_bytes(garbled.as_bytes()).is_err());
        let not_a_list = PAYLOAD.replace("\n}", ",\"signatures\":7}");
        assert!(digested_bytes(not_a_list.as_bytes()).is_err());
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
