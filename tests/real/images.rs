//! Test images, built at test time: real `tar` layers gzip-compressed, image configs,
//! manifests and indexes, and large layers of deterministic pseudo-random bytes that are
//! generated as they are streamed (never held whole, never written to disk by us).

use std::io::Write as _;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use serde_json::{json, Value};

pub use super::common::digest::{hex, sha256_hex};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip-compressed tar layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip-compressed tar layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Size of the chunks generated content is produced and streamed in.
pub const CHUNK: usize = 1 << 20;

/// A blob's bytes: held, or generated from a seed on demand.
#[derive(Clone, Debug)]
pub enum Content {
    /// Small blobs: the bytes themselves.
    Bytes(Bytes),
    /// Large blobs: the first `size` bytes of the [`Generated`] stream from `seed`.
    Generated {
        /// The generator's seed.
        seed: u64,
        /// How many bytes.
        size: u64,
    },
}

/// A blob as pushed: what a descriptor says about it, and its content.
#[derive(Clone, Debug)]
pub struct Blob {
    /// The media type its descriptors give.
    pub media_type: String,
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
    /// Its length in bytes.
    pub size: u64,
    /// The bytes, or how to make them.
    pub content: Content,
}

impl Blob {
    /// A blob holding `bytes`.
    pub fn from_bytes(media_type: &str, bytes: impl Into<Bytes>) -> Blob {
        let bytes = bytes.into();
        Blob {
            media_type: media_type.to_owned(),
            digest: format!("sha256:{}", sha256_hex(&bytes)),
            size: bytes.len() as u64,
            content: Content::Bytes(bytes),
        }
    }

    /// A blob of `size` pseudo-random bytes from `seed`; generates them once to hash them.
    pub fn generated(media_type: &str, seed: u64, size: u64) -> Blob {
        let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
        for chunk in Generated::new(seed, size) {
            hasher.update(&chunk);
        }
        Blob {
            media_type: media_type.to_owned(),
            digest: format!("sha256:{}", hex(hasher.finish().as_ref())),
            size,
            content: Content::Generated { seed, size },
        }
    }

    /// The sha256 of the bytes, in hex (the digest without `sha256:`).
    pub fn sha256(&self) -> &str {
        self.digest.strip_prefix("sha256:").expect("test blobs are sha256")
    }

    /// The bytes of a held blob; `None` for a generated one (see [`Blob::range`]).
    pub fn bytes(&self) -> Option<&Bytes> {
        match &self.content {
            Content::Bytes(bytes) => Some(bytes),
            Content::Generated { .. } => None,
        }
    }

    /// Bytes `start..=end`, as a `Range: bytes=start-end` asks; generates a generated
    /// blob's bytes from the start up to `end`, so keep ranges near the start.
    pub fn range(&self, start: u64, end: u64) -> Vec<u8> {
        assert!(start <= end && end < self.size, "range {start}-{end} of {}", self.size);
        let (start, end) = (start as usize, end as usize);
        match &self.content {
            Content::Bytes(bytes) => bytes[start..=end].to_vec(),
            Content::Generated { seed, .. } => generate(*seed, end + 1).split_off(start),
        }
    }

    /// The chunks to send: the held bytes in one, or the generated ones.
    pub fn chunks(&self) -> Box<dyn Iterator<Item = Bytes> + Send> {
        match &self.content {
            Content::Bytes(bytes) => Box::new(std::iter::once(bytes.clone())),
            Content::Generated { seed, size } => Box::new(Generated::new(*seed, *size)),
        }
    }

    /// Its descriptor in a manifest.
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// The pseudo-random stream from `seed`, `size` bytes in [`CHUNK`]-sized pieces: chunk
/// `i` is the ChaCha20 keystream under a key made from `seed` and nonce `i` (ring's
/// assembly, so ~1 GB/s even in a debug build, where a hand-written PRNG loop manages
/// ~100 MB/s). A shorter stream is a prefix of a longer one from the same seed.
pub struct Generated {
    key: LessSafeKey,
    chunk: u64,
    left: u64,
}

impl Generated {
    /// The first `size` bytes of the stream from `seed`.
    pub fn new(seed: u64, size: u64) -> Generated {
        let key = ring::digest::digest(&ring::digest::SHA256, &seed.to_le_bytes());
        Generated {
            key: LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key.as_ref()).expect("a 32-byte key")),
            chunk: 0,
            left: size,
        }
    }
}

impl Iterator for Generated {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.left == 0 {
            return None;
        }
        let len = self.left.min(CHUNK as u64) as usize;
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.chunk.to_le_bytes());
        // Encrypting zeros leaves the keystream; the tag is not needed.
        let mut bytes = vec![0u8; len];
        let _tag = self
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut bytes)
            .expect("ChaCha20 keystream");
        self.chunk += 1;
        self.left -= len as u64;
        Some(Bytes::from(bytes))
    }
}

/// The first `size` bytes of the stream from `seed`, in one piece.
pub fn generate(seed: u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    for chunk in Generated::new(seed, size as u64) {
        out.extend_from_slice(&chunk);
    }
    out
}

/// An uncompressed tar archive of `files` (path, contents), with the directories they
/// need, owned by root, dated 2024-01-01: the same input always makes the same bytes.
pub fn tar_archive(files: &[(&str, &[u8])]) -> Vec<u8> {
    const MTIME: u64 = 1_704_067_200;
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs: Vec<String> = Vec::new();
    for (path, contents) in files {
        let mut prefix = String::new();
        for part in path.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            prefix.push_str(part);
            prefix.push('/');
            if !dirs.contains(&prefix) {
                dirs.push(prefix.clone());
                let mut header = tar::Header::new_ustar();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                header.set_mtime(MTIME);
                header.set_uid(0);
                header.set_gid(0);
                builder.append_data(&mut header, &prefix, std::io::empty()).expect("tar directory");
            }
        }
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(if path.contains("/bin/") { 0o755 } else { 0o644 });
        header.set_size(contents.len() as u64);
        header.set_mtime(MTIME);
        header.set_uid(0);
        header.set_gid(0);
        builder.append_data(&mut header, path, *contents).expect("tar file");
    }
    builder.into_inner().expect("tar archive")
}

/// `bytes` gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A layer as built: the tar's digest (the config's `diff_id`) and the compressed blob.
pub struct BuiltLayer {
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// The gzip-compressed tar, as a blob of `media_type`.
    pub blob: Blob,
}

impl BuiltLayer {
    /// `files` as a tar, gzip-compressed, as a blob of `media_type`.
    pub fn new(media_type: &str, files: &[(&str, &[u8])]) -> BuiltLayer {
        let tar = tar_archive(files);
        BuiltLayer { diff_id: format!("sha256:{}", sha256_hex(&tar)), blob: Blob::from_bytes(media_type, gzip(&tar)) }
    }
}

/// Three layers of a small image for `architecture`: a base with `/etc`, a program, and
/// ~192 KiB of incompressible data (so its download spans many frames). The contents
/// depend on `label` and `architecture`, so different images get different blobs.
pub fn sample_layers(media_type: &str, label: &str, architecture: &str) -> Vec<BuiltLayer> {
    let os_release = format!("NAME=\"layerpipe e2e\"\nID=e2e\nVARIANT_ID={label}\nARCH={architecture}\n");
    let hello = format!("#!/bin/sh\necho 'hello from {label} on {architecture}'\n");
    let seed = label
        .bytes()
        .chain(architecture.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let data = generate(seed, 192 * 1024 + 13);
    vec![
        BuiltLayer::new(media_type, &[("etc/os-release", os_release.as_bytes()), ("etc/hostname", b"e2e\n")]),
        BuiltLayer::new(media_type, &[("usr/local/bin/hello", hello.as_bytes())]),
        BuiltLayer::new(media_type, &[("usr/share/e2e/data.bin", &data)]),
    ]
}

/// An image config for linux/`architecture` whose rootfs is `diff_ids`.
pub fn image_config(architecture: &str, diff_ids: &[String]) -> Vec<u8> {
    json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": architecture,
        "os": "linux",
        "config": {"Cmd": ["/usr/local/bin/hello"], "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": diff_ids.iter().map(|_| json!({"created": "2024-01-01T00:00:00Z", "created_by": "layerpipe e2e"})).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}

/// An image manifest of `media_type` for `config` and `layers`.
pub fn image_manifest(media_type: &str, config: &Blob, layers: &[Blob]) -> Vec<u8> {
    json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}
