//! A layer downloaded whole, as a file: the registry's blob response turned into the
//! browser's, its status and chosen headers around the verified body of `download.rs`.

use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};

use super::body::Body;
use super::App;
use crate::digest::Digest;
use crate::download::{self, content_disposition, DownloadLink, DownloadSlot, StreamOptions};
use crate::error::Error;
use crate::registry::PASSED_ON_REQUEST_HEADERS;
use crate::upstream::multipart::Plan;
use crate::upstream::UpstreamBody;

impl App {
    /// `download`: the layer, streamed as a file.
    pub(super) async fn download(
        &self,
        method: Method,
        headers: &HeaderMap,
        pairs: &[(String, String)],
    ) -> Result<Response<Body>, Error> {
        let link = DownloadLink::from_query(pairs)?;
        // A HEAD streams nothing: no slot, and not counted as a download.
        let slot = if method == Method::HEAD { None } else { Some(self.downloads.take(link.image.registry())?) };
        let mut pass_on = HeaderMap::new();
        for name in PASSED_ON_REQUEST_HEADERS {
            if let Some(value) = headers.get(&name) {
                pass_on.insert(name, value.clone());
            }
        }
        let upstream = if method == Method::HEAD {
            self.registry.blob_head(&link.image, &link.digest, pass_on).await
        } else {
            self.registry.blob(&link.image, &link.digest, &method, pass_on).await
        };
        // A blob the registry does not have may be a foreign layer, fetched from the URLs
        // its manifest lists: whole, and always verified, since those URLs may serve anything.
        let (upstream, foreign) = match upstream {
            Err(e) if e.status() == StatusCode::NOT_FOUND => {
                (self.registry.foreign_blob(&link.image, &link.digest).await?, true)
            }
            other => (other?, false),
        };
        Ok(match slot {
            Some(slot) if foreign => {
                let verified = StreamOptions { verify: true, ..self.stream.clone() };
                respond(upstream, None, &link.digest, &link.file_name(), &verified, slot)
            }
            Some(slot) => {
                let plan =
                    self.multipart.plan(&upstream, || self.registry.blob_ranges(&link.image, &link.digest, &upstream));
                respond(upstream, plan, &link.digest, &link.file_name(), &self.stream, slot)
            }
            None => respond_to_head(upstream, &link.file_name()),
        })
    }
}

/// Response headers taken from the registry's blob response.
const PASSED_ON_RESPONSE_HEADERS: [header::HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::ETAG,
    header::LAST_MODIFIED,
];

/// Turns the registry's blob response into the browser's download response: its status
/// and the headers passed on, around the verified body ([`download::blob_body`]).
fn respond(
    upstream: Response<UpstreamBody>,
    multipart: Option<Plan>,
    digest: &Digest,
    file_name: &str,
    options: &StreamOptions,
    slot: DownloadSlot,
) -> Response<Body> {
    let (parts, incoming) = upstream.into_parts();
    if parts.status == StatusCode::RANGE_NOT_SATISFIABLE {
        return not_satisfiable(&parts);
    }
    let body = download::blob_body(&parts, incoming, multipart, digest, options, slot);
    with_passed_on_headers(&parts, file_name, Body::Blob(body))
}

/// The download's answer to a HEAD: the same status and headers, no body. Nothing is
/// streamed, so it takes no download slot and is not counted as a download; dropping the
/// registry's (empty) body closes its connection.
fn respond_to_head(upstream: Response<UpstreamBody>, file_name: &str) -> Response<Body> {
    let (parts, _) = upstream.into_parts();
    if parts.status == StatusCode::RANGE_NOT_SATISFIABLE {
        return not_satisfiable(&parts);
    }
    with_passed_on_headers(&parts, file_name, Body::empty())
}

/// A 416 with only its status and `Content-Range`: the registry's body is its own error
/// text, and distribution 2.8 sends it under the blob's Content-Length.
fn not_satisfiable(parts: &http::response::Parts) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = parts.status;
    if let Some(range) = parts.headers.get(header::CONTENT_RANGE) {
        response.headers_mut().insert(header::CONTENT_RANGE, range.clone());
    }
    response
}

/// `body` under the registry's status and the headers passed on, named `file_name`.
fn with_passed_on_headers(parts: &http::response::Parts, file_name: &str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = parts.status;
    let headers = response.headers_mut();
    for name in PASSED_ON_RESPONSE_HEADERS {
        if let Some(value) = parts.headers.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    headers.entry(header::CONTENT_TYPE).or_insert(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_DISPOSITION, content_disposition(file_name));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
