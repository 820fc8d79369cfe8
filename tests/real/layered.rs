//! An image worth exploring as a whole: three layers where later ones delete, overwrite
//! and hide what earlier ones ship, a config whose history has steps without layers,
//! cosign-style and referrers-tag referrers, and many tags.

use bytes::Bytes;
use serde_json::json;

use super::images::{self, Blob, BuiltLayer};
use super::{PushedImage, RealRegistry};

/// The secret the base layer ships and the second layer deletes.
pub const SECRET: &[u8] = b"AKIA-layerpipe-test-secret\n";

/// The three layers, base first:
/// 0. `etc/passwd`, `etc/secret.key`, `var/cache/apt/pkg.deb` (64 KiB), `opt/tool/run`;
/// 1. deletes `etc/secret.key`, makes `var/cache` opaque (adding `var/cache/fresh`),
///    overwrites `etc/passwd`, replaces the directory `opt/tool` with a file;
/// 2. adds `app/main.py`.
pub fn layered_layers() -> Vec<BuiltLayer> {
    let deb = images::generate(42, 64 * 1024);
    vec![
        BuiltLayer::new(
            images::OCI_LAYER_GZIP,
            &[
                ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
                ("etc/secret.key", SECRET),
                ("var/cache/apt/pkg.deb", &deb),
                ("opt/tool/run", b"#!/bin/sh\n"),
            ],
        ),
        BuiltLayer::new(
            images::OCI_LAYER_GZIP,
            &[
                ("etc/.wh.secret.key", b""),
                ("var/cache/.wh..wh..opq", b""),
                ("var/cache/fresh", b"fresh\n"),
                ("etc/passwd", b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n"),
                ("opt/tool", b"now a file\n"),
            ],
        ),
        BuiltLayer::new(images::OCI_LAYER_GZIP, &[("app/main.py", b"print('hello')\n")]),
    ]
}

/// The config: history with `ENV` and `CMD` steps that made no layer, in the forms
/// classic docker and buildkit write.
pub fn layered_config(diff_ids: &[String]) -> Vec<u8> {
    json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "APP_MODE=<prod>"],
            "Entrypoint": ["/usr/bin/python3"],
            "Cmd": ["/app/main.py"],
            "WorkingDir": "/app",
            "User": "app",
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {"org.opencontainers.image.source": "https://example.invalid/app"}
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:base in / "},
            {"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop)  ENV APP_MODE=<prod>", "empty_layer": true},
            {"created": "2024-01-01T00:00:00Z", "created_by": "RUN |1 MODE=prod /bin/sh -c rm /etc/secret.key && useradd app # buildkit"},
            {"created": "2024-01-01T00:00:00Z", "created_by": "COPY main.py /app/ # buildkit"},
            {"created": "2024-01-01T00:00:00Z", "created_by": "CMD [\"/app/main.py\"]", "empty_layer": true}
        ]
    })
    .to_string()
    .into_bytes()
}

/// What [`RealRegistry::push_layered_image`] pushed.
pub struct LayeredImage {
    /// The image.
    pub image: PushedImage,
    /// The cosign-style signature tag, `sha256-HEX.sig`.
    pub signature_tag: String,
    /// The digest of the SBOM the referrers tag lists.
    pub sbom_digest: String,
}

impl RealRegistry {
    /// Pushes the layered image as `repository:tag`, a signature under cosign's tag, an
    /// SBOM listed in a referrers-tag index, and `extra_tags` more tags of the image.
    pub async fn push_layered_image(&self, repository: &str, tag: &str, extra_tags: usize) -> LayeredImage {
        let pusher = self.pusher(repository).await;
        let layers = layered_layers();
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let config = Blob::from_bytes(images::OCI_CONFIG, layered_config(&diff_ids));
        let layers = layers.into_iter().map(|l| l.blob).collect();
        let image = pusher.push_blobs(Some(tag), images::OCI_MANIFEST, "amd64", config, layers).await;
        for n in 0..extra_tags {
            pusher.push_manifest(&format!("t{n:04}"), images::OCI_MANIFEST, image.manifest.clone()).await;
        }
        let subject = image.digest.replace(':', "-");
        // A signature and an SBOM: small artifacts, each a manifest with one blob.
        let signature = artifact(&pusher, "application/vnd.dev.cosign.simplesigning.v1+json", b"signed").await;
        let signature_tag = format!("{subject}.sig");
        pusher.push_manifest(&signature_tag, images::OCI_MANIFEST, signature.clone()).await;
        let sbom = artifact(&pusher, "application/spdx+json", b"{\"spdxVersion\":\"SPDX-2.3\"}").await;
        let sbom_digest = format!("sha256:{}", images::sha256_hex(&sbom));
        pusher.push_manifest(&sbom_digest, images::OCI_MANIFEST, sbom.clone()).await;
        let referrers = json!({
            "schemaVersion": 2,
            "mediaType": images::OCI_INDEX,
            "manifests": [{
                "mediaType": images::OCI_MANIFEST,
                "artifactType": "application/spdx+json",
                "digest": sbom_digest,
                "size": sbom.len(),
            }],
        })
        .to_string();
        pusher.push_manifest(&subject, images::OCI_INDEX, Bytes::from(referrers)).await;
        LayeredImage { image, signature_tag, sbom_digest }
    }
}

/// Pushes a one-blob artifact's blobs and answers its manifest (not yet pushed).
async fn artifact(pusher: &super::push::Pusher<'_>, media_type: &str, content: &[u8]) -> Bytes {
    let config = Blob::from_bytes("application/vnd.oci.empty.v1+json", &b"{}"[..]);
    let layer = Blob::from_bytes(media_type, content.to_vec());
    pusher.push_blob(&config).await;
    pusher.push_blob(&layer).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": images::OCI_MANIFEST,
        "artifactType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
    });
    Bytes::from(manifest.to_string())
}
