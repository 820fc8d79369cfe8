//! How handlers' results become responses: the headers every page carries, redirects,
//! error pages, and the query values several routes share.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::body::Body;
use crate::error::Error;
use crate::pages;
use crate::query;

/// `Cache-Control` for pages addressed by digest.
pub(super) const IMMUTABLE: &str = "max-age=31536000, immutable";

/// Pages may load nothing from anywhere and submit forms only to layerpipe.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'";

/// The optional `page` of a file list, from 1.
pub(super) fn page_number(pairs: &[(String, String)]) -> Result<usize, Error> {
    match query::get(pairs, "page") {
        None => Ok(1),
        Some(page) => page
            .parse::<usize>()
            .ok()
            .filter(|&p| (1..=MAX_PAGE).contains(&p))
            .ok_or_else(|| Error::bad_request(format!("page must be a number from 1 to {MAX_PAGE}"))),
    }
}

/// Highest page number accepted (a million entries make 100 pages or more).
pub(super) const MAX_PAGE: usize = 10_000;

/// 301 to a relative `location` (layerpipe's own, percent-encoded: a valid header).
pub(super) fn redirect(location: &str) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
    let location = HeaderValue::try_from(location).expect("percent-encoded links are visible ASCII");
    response.headers_mut().insert(header::LOCATION, location);
    response
}

/// A plain-text answer (health, metrics).
pub(super) fn text_response(text: Body) -> Response<Body> {
    let mut response = Response::new(text);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// An HTML page with the headers every page carries (no caching, the CSP, no sniffing, no referrer).
pub(super) fn html_response(status: StatusCode, html: String) -> Response<Body> {
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The error page for `e`, with `Retry-After` (429) or `Allow` (405) where they belong.
pub fn error_response(e: &Error, image_input: &str) -> Response<Body> {
    let mut response = html_response(e.status(), pages::error(e, image_input));
    if let Some(retry_after) = e.retry_after() {
        // 429 and 503: tell the client when to come back.
        response.headers_mut().insert(header::RETRY_AFTER, retry_after.clone());
    }
    if e.status() == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}
