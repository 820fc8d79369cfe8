//! The origin: a fake registry in this process, with a registry's token auth
//! (`/token`, a Bearer challenge) and its manifest and blob routes, honouring `Range` as
//! registries and CDNs do. Blobs come from memory as 1 MiB slices of the pattern, so the
//! origin costs as little CPU as possible and every proxy is measured against the same
//! fast source.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::blobs::{hex, pattern_span, pseudo_random, Blobs};

/// Frames the origin sends: slices of one buffer, no copies.
const ORIGIN_FRAME: usize = 1024 * 1024;
/// Repository the origin serves, and its tag.
pub(super) const REPOSITORY: &str = "bench/blob";

pub(super) struct OriginState {
    port: u16,
    pub(super) authorization: HeaderValue,
    token_json: Bytes,
    blobs: Arc<Blobs>,
    pub(super) token_requests: AtomicUsize,
    /// Blob requests that carried a `Range` (multipart fetch's chunks).
    pub(super) ranged_requests: AtomicUsize,
}

/// The fake registry every path downloads from.
pub(super) struct Origin {
    pub(super) state: Arc<OriginState>,
    accept: tokio::task::JoinHandle<()>,
}

impl Origin {
    pub(super) async fn start(blobs: Arc<Blobs>) -> Result<Origin, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("origin: cannot listen on loopback: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let token = format!("bench-{}", hex(&pseudo_random(16, u64::from(port))));
        let state = Arc::new(OriginState {
            port,
            authorization: HeaderValue::try_from(format!("Bearer {token}")).expect("ASCII"),
            token_json: Bytes::from(format!(r#"{{"token":"{token}","expires_in":300}}"#)),
            blobs,
            token_requests: AtomicUsize::new(0),
            ranged_requests: AtomicUsize::new(0),
        });
        let serving = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(origin_answer(&state, &request)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Origin { state, accept })
    }

    pub(super) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.state.port)
    }

    pub(super) fn token(&self) -> &str {
        self.state.authorization.to_str().expect("ASCII").trim_start_matches("Bearer ")
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn origin_answer(state: &OriginState, request: &Request<Incoming>) -> Response<OriginBody> {
    let path = request.uri().path();
    if path == "/token" {
        state.token_requests.fetch_add(1, Ordering::Relaxed);
        return respond(StatusCode::OK, "application/json", state.token_json.clone());
    }
    let authorized = request.headers().get(header::AUTHORIZATION) == Some(&state.authorization);
    if !authorized {
        let mut response = respond(
            StatusCode::UNAUTHORIZED,
            "application/json",
            Bytes::from_static(br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#),
        );
        let challenge = format!(r#"Bearer realm="http://127.0.0.1:{}/token",service="bench""#, state.port);
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::try_from(challenge).expect("ASCII"));
        return response;
    }
    if path == "/v2/" {
        return respond(StatusCode::OK, "application/json", Bytes::from_static(b"{}"));
    }
    let Some(rest) = path.strip_prefix("/v2/").and_then(|p| p.strip_prefix(REPOSITORY)) else {
        return not_found();
    };
    if rest == "/manifests/latest" {
        return respond(
            StatusCode::OK,
            "application/vnd.oci.image.manifest.v1+json",
            Bytes::from(manifest(&state.blobs)),
        );
    }
    let Some(&size) = rest.strip_prefix("/blobs/").and_then(|digest| state.blobs.sizes.get(digest)) else {
        return not_found();
    };
    // `Range: bytes=a-b`, as registries and CDNs honour it (multipart fetch uses it).
    let range = request
        .headers()
        .get(header::RANGE)
        .and_then(|v| {
            v.to_str().ok()?.strip_prefix("bytes=")?.split_once('-').map(|(a, b)| (a.to_owned(), b.to_owned()))
        })
        .and_then(|(a, b)| {
            let first: u64 = a.parse().ok()?;
            let last: u64 = if b.is_empty() { size - 1 } else { b.parse::<u64>().ok()?.min(size - 1) };
            (first <= last).then_some((first, last))
        });
    if range.is_some() {
        state.ranged_requests.fetch_add(1, Ordering::Relaxed);
    }
    let (position, end) = range.map_or((0, size), |(first, last)| (first, last + 1));
    let body = if request.method() == Method::HEAD {
        OriginBody::Full(None)
    } else {
        OriginBody::Blob { pattern: state.blobs.pattern.clone(), position, size: end }
    };
    let mut response = Response::new(body);
    if let Some((first, last)) = range {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let content_range = format!("bytes {first}-{last}/{size}");
        response.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::try_from(content_range).expect("ASCII"));
    }
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - position));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    response
}

fn manifest(blobs: &Blobs) -> String {
    let mut sizes: Vec<_> = blobs.digests.iter().collect();
    sizes.sort();
    let layers: Vec<String> = sizes
        .iter()
        .map(|(size, digest)| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{digest}","size":{size}}}"#
            )
        })
        .collect();
    let (config_size, config_digest) = sizes[0];
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[{}]}}"#,
        layers.join(",")
    )
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<OriginBody> {
    let mut response = Response::new(OriginBody::Full(Some(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn not_found() -> Response<OriginBody> {
    respond(StatusCode::NOT_FOUND, "application/json", Bytes::from_static(br#"{"errors":[{"code":"NOT_FOUND"}]}"#))
}

/// The origin's bodies: a small one whole, or a blob as 1 MiB slices of the pattern.
enum OriginBody {
    Full(Option<Bytes>),
    Blob { pattern: Bytes, position: u64, size: u64 },
}

impl http_body::Body for OriginBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            OriginBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            OriginBody::Blob { pattern, position, size } => {
                if *position >= *size {
                    return Poll::Ready(None);
                }
                let (offset, n) = pattern_span(pattern.len(), *position, *size, ORIGIN_FRAME);
                *position += n as u64;
                Poll::Ready(Some(Ok(Frame::data(pattern.slice(offset..offset + n)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            OriginBody::Full(bytes) => bytes.is_none(),
            OriginBody::Blob { position, size, .. } => position >= size,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            OriginBody::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            OriginBody::Blob { position, size, .. } => SizeHint::with_exact(size - position),
        }
    }
}
