//! Pushing through the registry API, as `docker push` does: a push token from the issuer,
//! then per blob `HEAD` (skip if present) or a monolithic upload (`POST
//! /v2/<name>/blobs/uploads/`, then `PUT <location>&digest=…` with the bytes), then the
//! manifest `PUT`.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use super::images::{self, Blob, BuiltLayer};
use super::issuer::{PUSH_PASSWORD, PUSH_USERNAME, SERVICE};
use super::RealRegistry;

/// A request body: nothing, or a blob's chunks, generated as hyper asks for them.
pub struct PushBody {
    chunks: Box<dyn Iterator<Item = Bytes> + Send>,
    left: u64,
}

impl PushBody {
    /// No body.
    pub fn empty() -> PushBody {
        PushBody { chunks: Box::new(std::iter::empty()), left: 0 }
    }

    /// `bytes`.
    pub fn bytes(bytes: impl Into<Bytes>) -> PushBody {
        let bytes = bytes.into();
        PushBody { left: bytes.len() as u64, chunks: Box::new(std::iter::once(bytes)) }
    }

    /// A blob's content, streamed.
    pub fn blob(blob: &Blob) -> PushBody {
        PushBody { chunks: blob.chunks(), left: blob.size }
    }
}

impl http_body::Body for PushBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let chunk = self.chunks.next().expect("a chunk for every byte announced");
        self.left -= chunk.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// An image as pushed: everything a test checks a page or a download against.
#[derive(Clone, Debug)]
pub struct PushedImage {
    /// `127.0.0.1:PORT/<repository>:<tag>`, or `…@<digest>` for an index's platform.
    pub reference: String,
    /// The repository name on the registry.
    pub repository: String,
    /// The tag, if it was pushed by tag.
    pub tag: Option<String>,
    /// The manifest's media type.
    pub media_type: String,
    /// `sha256:` of the manifest bytes.
    pub digest: String,
    /// The manifest as pushed.
    pub manifest: Bytes,
    /// The config blob.
    pub config: Blob,
    /// The layers, base first.
    pub layers: Vec<Blob>,
    /// `(os, architecture)`.
    pub platform: (String, String),
}

/// An index as pushed.
#[derive(Clone, Debug)]
pub struct PushedIndex {
    /// `127.0.0.1:PORT/<repository>:<tag>`.
    pub reference: String,
    /// The repository name on the registry.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The index's media type.
    pub media_type: String,
    /// `sha256:` of the index bytes.
    pub digest: String,
    /// The images, in the index's order; each `reference` names its digest.
    pub platforms: Vec<PushedImage>,
}

/// Pushes to one repository with a push token.
pub struct Pusher<'a> {
    registry: &'a RealRegistry,
    client: Client<HttpConnector, PushBody>,
    repository: String,
    authorization: HeaderValue,
}

impl RealRegistry {
    /// A pusher for `repository`, holding a `pull,push` token from the issuer.
    pub async fn pusher(&self, repository: &str) -> Pusher<'_> {
        let client = Client::builder(TokioExecutor::new()).build_http();
        let scope = format!("repository:{repository}:pull,push");
        let url = format!(
            "{}?service={}&scope={}",
            self.issuer().realm(),
            layerpipe::query::encode(SERVICE),
            layerpipe::query::encode(&scope)
        );
        let basic = STANDARD.encode(format!("{PUSH_USERNAME}:{PUSH_PASSWORD}"));
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::try_from(format!("Basic {basic}")).unwrap());
        let (status, _, body) = send(&client, Method::GET, &url, headers, PushBody::empty()).await;
        assert_eq!(status, StatusCode::OK, "push token for {scope}: {body:?}");
        let answer: serde_json::Value = serde_json::from_slice(&body).expect("token JSON");
        let token = answer["token"].as_str().expect("a token");
        Pusher {
            registry: self,
            client,
            repository: repository.to_owned(),
            authorization: HeaderValue::try_from(format!("Bearer {token}")).unwrap(),
        }
    }

    /// Pushes an OCI image (config + three gzip-compressed tar layers) as `repository:tag`.
    pub async fn push_oci_image(&self, repository: &str, tag: &str) -> PushedImage {
        self.push_sample_image(repository, tag, images::OCI_MANIFEST, images::OCI_CONFIG, images::OCI_LAYER_GZIP).await
    }

    /// Pushes the same image as [`RealRegistry::push_oci_image`] (the very same layer
    /// bytes) with a Docker schema 2 manifest and Docker media types.
    pub async fn push_docker_image(&self, repository: &str, tag: &str) -> PushedImage {
        self.push_sample_image(
            repository,
            tag,
            images::DOCKER_MANIFEST,
            images::DOCKER_CONFIG,
            images::DOCKER_LAYER_GZIP,
        )
        .await
    }

    async fn push_sample_image(
        &self,
        repository: &str,
        tag: &str,
        manifest_type: &str,
        config_type: &str,
        layer_type: &str,
    ) -> PushedImage {
        let pusher = self.pusher(repository).await;
        pusher
            .push_image(
                Some(tag),
                manifest_type,
                config_type,
                "amd64",
                images::sample_layers(layer_type, "sample", "amd64"),
            )
            .await
    }

    /// Pushes an OCI index of two images, linux/amd64 and linux/arm64 (different layers),
    /// each by digest, then the index as `repository:tag`.
    pub async fn push_oci_index(&self, repository: &str, tag: &str) -> PushedIndex {
        let pusher = self.pusher(repository).await;
        let mut platforms = Vec::new();
        for architecture in ["amd64", "arm64"] {
            let layers = images::sample_layers(images::OCI_LAYER_GZIP, "index", architecture);
            platforms
                .push(pusher.push_image(None, images::OCI_MANIFEST, images::OCI_CONFIG, architecture, layers).await);
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": images::OCI_INDEX,
            "manifests": platforms.iter().map(|p| json!({
                "mediaType": p.media_type,
                "digest": p.digest,
                "size": p.manifest.len(),
                "platform": {"os": p.platform.0, "architecture": p.platform.1},
            })).collect::<Vec<_>>(),
        })
        .to_string();
        let digest = pusher.push_manifest(tag, images::OCI_INDEX, Bytes::from(index)).await;
        PushedIndex {
            reference: format!("{}/{repository}:{tag}", self.host()),
            repository: repository.to_owned(),
            tag: tag.to_owned(),
            media_type: images::OCI_INDEX.to_owned(),
            digest,
            platforms,
        }
    }

    /// Pushes an OCI image whose one layer is `size` pseudo-random bytes from `seed`
    /// (labelled `tar+gzip`, though the bytes are neither: registries do not look).
    /// The bytes are generated twice, once to hash and once as they are uploaded; they
    /// are never all in memory nor on disk outside the registry's storage.
    pub async fn push_large_layer_image(&self, repository: &str, tag: &str, size: u64, seed: u64) -> PushedImage {
        let layer = Blob::generated(images::OCI_LAYER_GZIP, seed, size);
        let config =
            Blob::from_bytes(images::OCI_CONFIG, images::image_config("amd64", std::slice::from_ref(&layer.digest)));
        let pusher = self.pusher(repository).await;
        pusher.push_blobs(Some(tag), images::OCI_MANIFEST, "amd64", config, vec![layer]).await
    }
}

impl Pusher<'_> {
    /// Pushes `layers`, a config of `config_type` for them, and a manifest of
    /// `manifest_type`, tagged `tag` (or by digest only).
    pub async fn push_image(
        &self,
        tag: Option<&str>,
        manifest_type: &str,
        config_type: &str,
        architecture: &str,
        layers: Vec<BuiltLayer>,
    ) -> PushedImage {
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let config = Blob::from_bytes(config_type, images::image_config(architecture, &diff_ids));
        let layers = layers.into_iter().map(|l| l.blob).collect();
        self.push_blobs(tag, manifest_type, architecture, config, layers).await
    }

    /// Pushes `config` and `layers` and a manifest of `manifest_type` for them.
    pub async fn push_blobs(
        &self,
        tag: Option<&str>,
        manifest_type: &str,
        architecture: &str,
        config: Blob,
        layers: Vec<Blob>,
    ) -> PushedImage {
        self.push_blob(&config).await;
        for layer in &layers {
            self.push_blob(layer).await;
        }
        let manifest = Bytes::from(images::image_manifest(manifest_type, &config, &layers));
        let digest = format!("sha256:{}", images::sha256_hex(&manifest));
        let pushed = self.push_manifest(tag.unwrap_or(&digest), manifest_type, manifest.clone()).await;
        assert_eq!(pushed, digest);
        let reference = match tag {
            Some(tag) => format!("{}/{}:{tag}", self.registry.host(), self.repository),
            None => format!("{}/{}@{digest}", self.registry.host(), self.repository),
        };
        PushedImage {
            reference,
            repository: self.repository.clone(),
            tag: tag.map(str::to_owned),
            media_type: manifest_type.to_owned(),
            digest,
            manifest,
            config,
            layers,
            platform: ("linux".to_owned(), architecture.to_owned()),
        }
    }

    /// Uploads `blob` unless the repository has it.
    pub async fn push_blob(&self, blob: &Blob) {
        let base = self.registry.endpoint();
        let repository = &self.repository;
        let (status, _, _) = self
            .request(
                Method::HEAD,
                &format!("{base}/v2/{repository}/blobs/{}", blob.digest),
                HeaderMap::new(),
                PushBody::empty(),
            )
            .await;
        if status == StatusCode::OK {
            return;
        }
        let (status, headers, body) = self
            .request(
                Method::POST,
                &format!("{base}/v2/{repository}/blobs/uploads/"),
                HeaderMap::new(),
                PushBody::empty(),
            )
            .await;
        self.expect(StatusCode::ACCEPTED, status, "start upload", &body);
        let location = headers.get(header::LOCATION).and_then(|l| l.to_str().ok()).expect("upload Location");
        let location = if location.starts_with('/') { format!("{base}{location}") } else { location.to_owned() };
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={}", layerpipe::query::encode(&blob.digest));
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.size));
        let (status, headers, body) = self.request(Method::PUT, &url, headers, PushBody::blob(blob)).await;
        self.expect(StatusCode::CREATED, status, "finish upload", &body);
        assert_eq!(
            headers.get("docker-content-digest").and_then(|d| d.to_str().ok()),
            Some(blob.digest.as_str()),
            "the registry's digest of the upload"
        );
    }

    /// PUTs a manifest as `reference` (tag or digest); answers the registry's digest.
    pub async fn push_manifest(&self, reference: &str, media_type: &str, body: Bytes) -> String {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::try_from(media_type).unwrap());
        let url = format!("{}/v2/{}/manifests/{reference}", self.registry.endpoint(), self.repository);
        let (status, headers, answer) = self.request(Method::PUT, &url, headers, PushBody::bytes(body)).await;
        self.expect(StatusCode::CREATED, status, "manifest PUT", &answer);
        headers.get("docker-content-digest").and_then(|d| d.to_str().ok()).expect("Docker-Content-Digest").to_owned()
    }

    async fn request(
        &self,
        method: Method,
        url: &str,
        mut headers: HeaderMap,
        body: PushBody,
    ) -> (StatusCode, HeaderMap, Bytes) {
        headers.insert(header::AUTHORIZATION, self.authorization.clone());
        send(&self.client, method, url, headers, body).await
    }

    fn expect(&self, expected: StatusCode, status: StatusCode, what: &str, body: &[u8]) {
        assert_eq!(
            status,
            expected,
            "{what} in {}: {}\nregistry log:\n{}",
            self.repository,
            String::from_utf8_lossy(body),
            self.registry.log_tail()
        );
    }
}

/// One request; the whole answer (only small answers are expected here).
async fn send(
    client: &Client<HttpConnector, PushBody>,
    method: Method,
    url: &str,
    headers: HeaderMap,
    body: PushBody,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut request = Request::builder().method(method.clone()).uri(url).body(body).expect("request");
    *request.headers_mut() = headers;
    let response = client.request(request).await.unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    (parts.status, parts.headers, body)
}
