//! The one error type of layerpipe: every failure knows the HTTP status it answers with
//! and the one-line reason a user sees on the error page.
//!
//! Messages are written for people and never carry a token, a password or a registry's
//! response body (which could hold anything).

use std::fmt;

use http::{HeaderValue, StatusCode};

/// A boxed error of any cause, as hyper's bodies and services take it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a client is told to wait (`Retry-After`) when a limit layerpipe keeps is full.
pub const BUSY_RETRY_AFTER_SECS: u32 = 5;

/// A failure to answer a request, as the user will see it.
#[derive(Clone, Debug)]
pub struct Error {
    status: StatusCode,
    message: String,
    retry_after: Option<HeaderValue>,
    /// The registry's bytes did not hash to the digest asked for.
    mismatch: bool,
    /// The repository whose tag list the error page links to: a tag or manifest is
    /// missing from a repository that exists.
    tags_of: Option<String>,
    /// The limit of layerpipe's own that had no slot free, for a 503 from [`Error::busy`]:
    /// the `limit` label of `layerpipe_limited_total`.
    limit: Option<&'static str>,
}

impl Error {
    fn new(status: StatusCode, message: impl Into<String>) -> Error {
        Error { status, message: message.into(), retry_after: None, mismatch: false, tags_of: None, limit: None }
    }

    /// 400: the request itself is wrong (a bad reference, digest or parameter).
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such page, repository, tag or blob.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(StatusCode::NOT_FOUND, message)
    }

    /// 404: a tag (or manifest) that `repository`, which exists, does not have; the
    /// error page links to its tag list.
    pub fn not_in_repository(message: impl Into<String>, repository: impl Into<String>) -> Error {
        Error { tags_of: Some(repository.into()), ..Error::not_found(message) }
    }

    /// 401: the registry wants credentials that layerpipe does not have or that it refused.
    pub fn unauthorized(message: impl Into<String>) -> Error {
        Error::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403: the registry refused, or layerpipe refuses to connect where it was asked to.
    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::new(StatusCode::FORBIDDEN, message)
    }

    /// 405: only GET and HEAD are served.
    pub fn method_not_allowed() -> Error {
        Error::new(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are allowed")
    }

    /// 422: what was asked for is beyond one of layerpipe's limits (a merged view of
    /// too many entries), which asking again does not change.
    pub fn beyond_limit(message: impl Into<String>) -> Error {
        Error::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 429: the registry is rate limiting; its `Retry-After` is passed on when it sent one.
    pub fn too_many_requests(message: impl Into<String>, retry_after: Option<HeaderValue>) -> Error {
        Error { retry_after, ..Error::new(StatusCode::TOO_MANY_REQUESTS, message) }
    }

    /// 503: layerpipe is at its limit of concurrent downloads, or shutting down.
    pub fn service_unavailable(message: impl Into<String>, retry_after_secs: u32) -> Error {
        Error {
            retry_after: Some(HeaderValue::from(retry_after_secs)),
            ..Error::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// 503 with `Retry-After: 5`: one of layerpipe's own limits (download, preview,
    /// render or catalog slots) is full; `message` says which to the user, and `limit`
    /// (a fixed word: `downloads`, `renders`, …) to the metrics.
    pub fn busy(limit: &'static str, message: impl Into<String>) -> Error {
        Error { limit: Some(limit), ..Error::service_unavailable(message, BUSY_RETRY_AFTER_SECS) }
    }

    /// 502: the registry failed or answered something layerpipe cannot use.
    pub fn bad_gateway(message: impl Into<String>) -> Error {
        Error::new(StatusCode::BAD_GATEWAY, message)
    }

    /// 502: the registry sent a blob whose bytes hash to `actual`, not to the `expected`
    /// digest asked for. Nothing read from it may be shown or delivered whole.
    pub fn digest_mismatch(expected: &crate::digest::Digest, actual: &crate::digest::Digest) -> Error {
        Error {
            mismatch: true,
            ..Error::bad_gateway(format!("the registry sent a blob whose digest is {actual}, not {expected}"))
        }
    }

    /// 504: the registry did not answer in time.
    pub fn gateway_timeout(message: impl Into<String>) -> Error {
        Error::new(StatusCode::GATEWAY_TIMEOUT, message)
    }

    /// The status the error page is served with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The one-line reason shown to the user.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether this is [`Error::digest_mismatch`]: a page answers with it whole rather
    /// than show the rest of what it holds.
    pub fn is_digest_mismatch(&self) -> bool {
        self.mismatch
    }

    /// The repository whose tags the error page offers, for [`Error::not_in_repository`].
    pub fn tags_of(&self) -> Option<&str> {
        self.tags_of.as_deref()
    }

    /// Which of layerpipe's own limits refused this request, for a [`Error::busy`] 503.
    pub fn limit(&self) -> Option<&'static str> {
        self.limit
    }

    /// The `Retry-After` value to send with a 429 (if the registry gave one) or a 503.
    pub fn retry_after(&self) -> Option<&HeaderValue> {
        self.retry_after.as_ref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<crate::reference::ReferenceError> for Error {
    fn from(e: crate::reference::ReferenceError) -> Error {
        Error::bad_request(e.0)
    }
}

impl From<crate::digest::DigestError> for Error {
    fn from(e: crate::digest::DigestError) -> Error {
        Error::bad_request(e.0)
    }
}
