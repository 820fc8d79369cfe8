//! How handlers' results become responses: the headers every page carries, redirects,
//! error pages, and the query values several routes share; and whether the answer is
//! the page or its JSON ([`Format`]).

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::body::Body;
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

/// What a request asks to get: the page, or its data as JSON (`?format=json`, or an
/// `Accept` that names `application/json` and not `text/html`: a browser's names both,
/// or `*/*`, and gets the page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The HTML page.
    Html,
    /// The page's data (src/api/).
    Json,
}

impl Format {
    /// The format a request asks for; see the type's docs.
    pub fn of(headers: &http::HeaderMap, pairs: &[(String, String)]) -> Format {
        match query::get(pairs, "format") {
            Some("json") => return Format::Json,
            Some(_) => return Format::Html,
            None => {}
        }
        let accept =
            headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
        let names = |wanted: &str| {
            accept.split(',').any(|t| t.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(wanted))
        };
        if names("application/json") && !names("text/html") {
            Format::Json
        } else {
            Format::Html
        }
    }
}

/// A JSON answer, with the headers pages carry (it is the same data) and `Vary: Accept`.
pub(super) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    typed_response(Format::Json, status, value.to_string())
}

/// The text of the page or of its JSON, as `format` asks; only that one is made (in a
/// render slot, for the pages that take one).
pub(super) fn made(
    format: Format,
    html: impl FnOnce() -> Result<String, Error>,
    json: impl FnOnce() -> Result<serde_json::Value, Error>,
) -> Result<String, Error> {
    match format {
        Format::Html => html(),
        Format::Json => json().map(|v| v.to_string()),
    }
}

/// A made page or JSON text, with its content type and the headers every page carries.
pub(super) fn typed_response(format: Format, status: StatusCode, text: String) -> Response<Body> {
    let mut response = html_response(status, text);
    if format == Format::Json {
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}

/// 200 with the page or the JSON, as `format` asks; only that one is made.
pub(super) fn answer(
    format: Format,
    html: impl FnOnce() -> String,
    json: impl FnOnce() -> serde_json::Value,
) -> Response<Body> {
    let text = made(format, || Ok(html()), || Ok(json())).expect("neither fails");
    typed_response(format, StatusCode::OK, text)
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
    // The same URL answers HTML or JSON by `Accept`: caches must keep them apart.
    headers.insert(header::VARY, HeaderValue::from_static("accept"));
    response
}

/// The error page for `e`, with `Retry-After` (429) or `Allow` (405) where they belong;
/// as JSON, `{"error": MESSAGE, "status": CODE}` with the same status and headers.
pub fn error_response(e: &Error, image_input: &str, format: Format) -> Response<Body> {
    let mut response = match format {
        Format::Html => html_response(e.status(), pages::error(e, image_input)),
        Format::Json => json_response(e.status(), &crate::api::error(e)),
    };
    if let Some(retry_after) = e.retry_after() {
        // 429 and 503: tell the client when to come back.
        response.headers_mut().insert(header::RETRY_AFTER, retry_after.clone());
    }
    if e.status() == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}
