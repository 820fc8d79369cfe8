//! The registry client: pings a registry, authenticates, fetches manifests and blobs,
//! and follows redirects. It speaks the distribution protocol; [`crate::upstream`]
//! carries its requests. (Over 500 lines: ping, auth retry and redirects wrap every
//! fetch, and the kinds of fetch live in `registry/`.)
//!
//! Credentials (Basic or Bearer) go only to the registry's own origin; a redirect to a
//! CDN on another host is followed without them. Basic credentials go to the token realm
//! only when it is on the registry's domain ([`crate::auth::realm`]). Unlisted registries are reached only
//! over https and only at public addresses (see [`crate::egress`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};

use crate::auth::tokens::{Token, TokenCache, TokenKey};
use crate::auth::{realm, Scheme};
use crate::config::{Config, Registry, Secret};
use crate::credentials::{Credential, DockerCredentials};
use crate::digest::Digest;
use crate::error::Error;
use crate::metrics::{Metrics, UpstreamError};
use crate::range::{content_length, ByteRange};
use crate::reference::ImageReference;
use crate::upstream::{Transport, Trust, Upstream, UpstreamBody};

mod foreign;
mod manifests;
mod ranged;
mod referrers;
mod small_blob;
mod tags;

pub use manifests::{ContentKey, PullQuota};
pub use ranged::FinalUrl;
pub use referrers::Referrer;
pub use tags::TagPage;

/// How long a registry's auth scheme (its `/v2/` answer) is remembered.
const SCHEME_TTL: Duration = Duration::from_secs(600);

/// Request headers a client may send that are passed on to a blob request.
pub const PASSED_ON_REQUEST_HEADERS: [HeaderName; 2] = [header::RANGE, header::IF_RANGE];

/// Talks to registries on behalf of requests; one per process.
pub struct RegistryClient {
    config: Arc<Config>,
    upstream: Upstream,
    schemes: moka::future::Cache<String, Scheme>,
    /// Schemes a repository's own 401 asked for, by registry host and repository: some
    /// registries answer `/v2/` anonymously and guard repositories one by one (zot with
    /// per-repository policies, Artifactory with anonymous access on).
    repository_schemes: moka::future::Cache<(String, String), Scheme>,
    tokens: TokenCache,
    manifests: manifests::ManifestCache,
    referrers_cache: referrers::ReferrersCache,
    /// `docker_config`'s credentials, for registries without their own in the config.
    docker: Option<DockerCredentials>,
}

/// Which `Authorization` a request carried, so a 401 can forget the right token, and
/// tell whether asking again could change the answer.
struct Authorization {
    header: Option<HeaderValue>,
    token_key: Option<TokenKey>,
    /// The scheme it was made for.
    scheme: Scheme,
    /// The token came from the cache rather than being fetched for this request.
    cached_token: bool,
}

impl RegistryClient {
    /// A client for the registries `config` describes, counting into `metrics`.
    pub fn new(config: Arc<Config>, metrics: Arc<Metrics>) -> RegistryClient {
        RegistryClient {
            upstream: Upstream::new(&config, metrics),
            schemes: moka::future::Cache::builder().max_capacity(1024).time_to_live(SCHEME_TTL).build(),
            repository_schemes: moka::future::Cache::builder().max_capacity(10_000).time_to_live(SCHEME_TTL).build(),
            tokens: TokenCache::new(10_000),
            manifests: manifests::ManifestCache::default(),
            referrers_cache: referrers::ReferrersCache::default(),
            docker: config.docker_config.as_deref().and_then(|path| {
                DockerCredentials::load(path, config.credential_helper_dir.clone())
                    .map_err(|e| tracing::error!(error = %e, "docker_config: no docker credentials"))
                    .ok()
            }),
            config,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The metrics registry failures are counted in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.upstream.metrics()
    }

    /// Starts a blob download: GET or HEAD, with the client's `Range`/`If-Range` passed on
    /// when the range is one [`ByteRange`] (else both are dropped and the whole blob asked
    /// for). Answers the registry's (or CDN's) response when it is 200, a 206 carrying
    /// exactly the range asked for, or a 416 to a range; any other 206 or 416 is a 502.
    pub async fn blob(
        &self,
        reference: &ImageReference,
        digest: &Digest,
        method: &Method,
        mut pass_on: HeaderMap,
    ) -> Result<Response<UpstreamBody>, Error> {
        let registry = self.config.registry(reference.registry());
        let path = format!("/v2/{}/blobs/{}", reference.repository(), digest);
        let range = pass_on.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(ByteRange::parse);
        if range.is_none() {
            pass_on.remove(header::RANGE);
            pass_on.remove(header::IF_RANGE);
        }
        let response =
            self.get(&registry, reference.repository(), Transport::Dedicated, method, &path, pass_on).await?;
        match (response.status(), range) {
            (StatusCode::OK, _) | (StatusCode::RANGE_NOT_SATISFIABLE, Some(_)) => Ok(response),
            (StatusCode::PARTIAL_CONTENT, Some(range)) => {
                let content_range = response.headers().get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok());
                if range.answered_by(content_range.unwrap_or(""), content_length(response.headers())) {
                    Ok(response)
                } else {
                    Err(self.invalid(
                        reference.registry(),
                        format!("the registry answered {range} of blob {digest} with other bytes"),
                    ))
                }
            }
            (StatusCode::PARTIAL_CONTENT | StatusCode::RANGE_NOT_SATISFIABLE, None) => Err(self.invalid(
                reference.registry(),
                format!("the registry answered {} to a request for the whole blob {digest}", response.status()),
            )),
            _ => Err(status_error(&response, &format!("blob {digest} not found in {}", reference.repository()))),
        }
    }

    /// The answer to a HEAD on a download, without a HEAD: signed CDN URLs are signed for
    /// GET (S3 behind GHCR answers a HEAD with 403, ECR Public with 401), so the first
    /// byte is asked for (`Range: bytes=0-0`) and its `Content-Range` gives the blob's
    /// length, answered as a 200 with that `Content-Length`. A client's own `Range` is
    /// asked for as it is, to answer the headers its GET would get. The body, one byte or
    /// the client's range, is for the caller to drop.
    pub async fn blob_head(
        &self,
        reference: &ImageReference,
        digest: &Digest,
        pass_on: HeaderMap,
    ) -> Result<Response<UpstreamBody>, Error> {
        if pass_on.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(ByteRange::parse).is_some() {
            return self.blob(reference, digest, &Method::GET, pass_on).await;
        }
        let mut first_byte = HeaderMap::new();
        first_byte.insert(header::RANGE, HeaderValue::from_static("bytes=0-0"));
        let response = self.blob(reference, digest, &Method::GET, first_byte).await;
        let response = match response {
            // An empty blob has no first byte: 416 with `bytes */0`.
            Ok(r) if r.status() == StatusCode::RANGE_NOT_SATISFIABLE => r,
            Ok(r) if r.status() == StatusCode::PARTIAL_CONTENT => r,
            // A registry that ignores `Range` sent the whole blob, and its length.
            other => return other,
        };
        let complete = response
            .headers()
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit_once('/'))
            .and_then(|(_, complete)| complete.parse::<u64>().ok())
            .filter(|&n| (n == 0) == (response.status() == StatusCode::RANGE_NOT_SATISFIABLE))
            .ok_or_else(|| {
                self.invalid(reference.registry(), format!("the registry did not say the length of blob {digest}"))
            })?;
        let (mut parts, body) = response.into_parts();
        parts.status = StatusCode::OK;
        parts.headers.remove(header::CONTENT_RANGE);
        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(complete));
        Ok(Response::from_parts(parts, body))
    }

    /// An authenticated request for `path` on `registry`, following redirects.
    ///
    /// A 401 is taken to mean a stale token, or a repository guarded by a challenge of its
    /// own; it costs that repository, never the whole registry:
    /// - the repository's token is forgotten, and the 401's own challenge remembered for
    ///   the repository; the registry's scheme and credentials (a helper's answer) are
    ///   kept, so a refused name cannot make layerpipe re-ping the registry or re-run a
    ///   credential helper;
    /// - the request is made once more only when that can change the answer: its token
    ///   came from the cache (it may have gone stale), or the challenge asks for another
    ///   scheme. A token fetched for this very request, refused under the same challenge,
    ///   would only be fetched and refused again.
    async fn get(
        &self,
        registry: &Registry,
        repository: &str,
        transport: Transport,
        method: &Method,
        path: &str,
        headers: HeaderMap,
    ) -> Result<Response<UpstreamBody>, Error> {
        let url: Uri = format!("{}{}", registry.endpoint.to_string().trim_end_matches('/'), path)
            .parse()
            .map_err(|_| Error::bad_request("the reference does not make a valid registry URL"))?;
        let mut retried = false;
        loop {
            let auth = self.authorization(registry, repository).await?;
            let mut response =
                self.follow(registry, transport, method, url.clone(), &headers, auth.header.as_ref()).await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            // Only the registry's own challenge counts, not a CDN's after a redirect.
            let own = response.extensions().get::<FinalUrl>().is_some_and(|u| same_origin(&u.0, &registry.endpoint));
            let challenge = own.then(|| Scheme::from_headers(response.headers()).ok()).flatten();
            let changes = !own || auth.cached_token || challenge.as_ref().is_some_and(|c| *c != auth.scheme);
            if retried || !changes {
                if hides_missing_repositories(registry) {
                    response.extensions_mut().insert(MissingOrRefused);
                }
                return Ok(response);
            }
            retried = true;
            if let Some(key) = &auth.token_key {
                self.tokens.invalidate(key).await;
            }
            if let Some(scheme) = challenge {
                self.repository_schemes.insert((registry.host.clone(), repository.to_owned()), scheme).await;
            }
        }
    }

    /// Sends a request and follows redirects, sending `authorization` only to the
    /// registry's own origin.
    async fn follow(
        &self,
        registry: &Registry,
        transport: Transport,
        method: &Method,
        mut url: Uri,
        headers: &HeaderMap,
        authorization: Option<&HeaderValue>,
    ) -> Result<Response<UpstreamBody>, Error> {
        let max = self.config.limits.max_redirects;
        for _ in 0..=max {
            let mut request_headers = headers.clone();
            if let (Some(auth), true) = (authorization, same_origin(&url, &registry.endpoint)) {
                request_headers.insert(header::AUTHORIZATION, auth.clone());
            }
            let mut response =
                self.upstream.send(&registry.host, trust(registry), transport, method, &url, &request_headers).await?;
            response.extensions_mut().insert(FinalUrl(url.clone()));
            let location = match response.status() {
                StatusCode::MOVED_PERMANENTLY
                | StatusCode::FOUND
                | StatusCode::SEE_OTHER
                | StatusCode::TEMPORARY_REDIRECT
                | StatusCode::PERMANENT_REDIRECT => response.headers().get(header::LOCATION),
                _ => return Ok(response),
            };
            let location = location.and_then(|l| l.to_str().ok()).ok_or_else(|| {
                self.invalid(&registry.host, "the registry sent a redirect without a usable Location")
            })?;
            url = resolve_location(&url, location)
                .ok_or_else(|| self.invalid(&registry.host, "the registry redirected to an invalid URL"))?;
        }
        Err(self.invalid(&registry.host, format!("the registry redirected more than {max} times")))
    }

    /// The `Authorization` for pulling `repository`, by the scheme the repository's own
    /// 401 asked for, else the registry's (its `/v2/` answer).
    async fn authorization(&self, registry: &Registry, repository: &str) -> Result<Authorization, Error> {
        let own = self.repository_schemes.get(&(registry.host.clone(), repository.to_owned())).await;
        let scheme = match own {
            Some(scheme) => scheme,
            None => self
                .schemes
                .try_get_with(registry.host.clone(), self.ping(registry))
                .await
                .map_err(|e| Error::clone(&e))?,
        };
        match &scheme {
            Scheme::Anonymous => Ok(Authorization { header: None, token_key: None, scheme, cached_token: false }),
            Scheme::Basic => {
                let credential = self.credential(registry).await?;
                let header = credential.as_ref().and_then(basic);
                Ok(Authorization { header, token_key: None, scheme, cached_token: false })
            }
            Scheme::Bearer { realm, service } => {
                let credential = self.credential(registry).await?;
                let key = TokenKey {
                    registry: registry.host.clone(),
                    realm: realm.clone(),
                    service: service.clone(),
                    scope: format!("repository:{repository}:pull"),
                    username: credential.as_ref().map(Credential::identity),
                };
                let (token, cached_token) = match self.tokens.get(&key).await {
                    Some(token) => {
                        self.metrics().token_cache_hit();
                        (token, true)
                    }
                    None => {
                        self.metrics().token_cache_miss();
                        let fetch = self.fetch_token(registry, &key, credential.as_ref());
                        (self.tokens.get_or_fetch(key.clone(), fetch).await?, false)
                    }
                };
                let header = Some(token.authorization().clone());
                Ok(Authorization { header, token_key: Some(key), scheme, cached_token })
            }
        }
    }

    /// The credentials for `registry`: its own in the config come first (they were set
    /// for layerpipe on purpose), else `docker_config`'s, else none.
    async fn credential(&self, registry: &Registry) -> Result<Option<Credential>, Error> {
        if let Some(c) = &registry.credentials {
            return Ok(Some(Credential::Basic { username: c.username.clone(), password: c.password.clone() }));
        }
        match &self.docker {
            Some(docker) => docker.lookup(&registry.host).await,
            None => Ok(None),
        }
    }

    /// `GET /v2/`: 200 means anonymous, 401 carries the challenge.
    async fn ping(&self, registry: &Registry) -> Result<Scheme, Error> {
        let url: Uri =
            format!("{}/v2/", registry.endpoint.to_string().trim_end_matches('/')).parse().expect("endpoint URL");
        let response = self
            .upstream
            .send(&registry.host, trust(registry), Transport::Pooled, &Method::GET, &url, &HeaderMap::new())
            .await?;
        match response.status() {
            StatusCode::OK => Ok(Scheme::Anonymous),
            StatusCode::UNAUTHORIZED => Scheme::from_headers(response.headers())
                .map_err(|e| self.invalid(&registry.host, format!("{}: {e}", registry.host))),
            _ => Err(status_error(&response, &format!("{} is not a registry (no /v2/)", registry.host))),
        }
    }

    /// Asks the realm for a pull token for `key.scope`: a GET, with Basic credentials
    /// when there are any, or for an identity token the OAuth2 refresh-token POST.
    /// Either credential goes only to a realm on the registry's domain.
    async fn fetch_token(
        &self,
        registry: &Registry,
        key: &TokenKey,
        credential: Option<&Credential>,
    ) -> Result<Token, Error> {
        let separator = if key.realm.contains('?') { '&' } else { '?' };
        let url: Uri = format!(
            "{}{separator}service={}&scope={}",
            key.realm,
            crate::query::encode(&key.service),
            crate::query::encode(&key.scope)
        )
        .parse()
        .map_err(|_| self.invalid(&registry.host, format!("{} names an invalid token realm", registry.host)))?;
        if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
            return Err(self
                .invalid(&registry.host, format!("{} names a token realm that is not an http(s) URL", registry.host)));
        }
        let credentials = realm::judge(&url, &registry.host, &registry.endpoint).map_err(|refusal| {
            self.metrics().upstream_error(&registry.host, UpstreamError::Refused);
            Error::forbidden(refusal)
        })?;
        let mut headers = HeaderMap::new();
        let credential = match credential {
            Some(_) if credentials == realm::Credentials::Withhold => {
                tracing::warn!(
                    registry = %registry.host,
                    realm_host = url.host().unwrap_or_default(),
                    "the token realm is not on the registry's domain: asking it without the configured credentials"
                );
                None
            }
            credential => credential,
        };
        self.metrics().token_fetch(&registry.host);
        let response = match credential {
            Some(Credential::IdentityToken(refresh)) => {
                let realm_url: Uri = key.realm.parse().map_err(|_| {
                    self.invalid(&registry.host, format!("{} names an invalid token realm", registry.host))
                })?;
                let form = refresh_token_form(refresh, &key.service, &key.scope);
                self.upstream.post_form(&registry.host, trust(registry), &realm_url, &headers, form).await?
            }
            basic_or_none => {
                if let Some(auth) = basic_or_none.and_then(basic) {
                    headers.insert(header::AUTHORIZATION, auth);
                }
                self.upstream
                    .send(&registry.host, trust(registry), Transport::Pooled, &Method::GET, &url, &headers)
                    .await?
            }
        };
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let repository = key.scope.trim_start_matches("repository:").trim_end_matches(":pull");
                return Err(Error::unauthorized(format!(
                    "the token server of {} refused to grant pull access to {repository}",
                    registry.host
                )));
            }
            _ => return Err(status_error(&response, "the token server was not found")),
        }
        let body = self
            .read_limited(&registry.host, response, self.config.limits.max_token_response_bytes, "token response")
            .await?;
        Token::from_response(&body, SystemTime::now())
            .map_err(|e| self.invalid(&registry.host, format!("{}: {e}", registry.host)))
    }

    /// Reads a small body whole, failing past `limit` bytes or the response timeout.
    async fn read_limited(
        &self,
        registry: &str,
        response: Response<UpstreamBody>,
        limit: usize,
        what: &str,
    ) -> Result<Bytes, Error> {
        let too_large = || self.invalid(registry, format!("the {what} is larger than {limit} bytes"));
        if content_length(response.headers()).is_some_and(|length| length > limit as u64) {
            return Err(too_large());
        }
        let timeout = self.config.timeouts.response_headers();
        match tokio::time::timeout(timeout, Limited::new(response.into_body(), limit).collect()).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Ok(Err(_)) => {
                self.metrics().upstream_error(registry, UpstreamError::StreamBroken);
                Err(Error::bad_gateway(format!("the connection broke while reading the {what}")))
            }
            Err(_) => {
                self.metrics().upstream_error(registry, UpstreamError::Timeout);
                Err(Error::gateway_timeout(format!("the {what} did not arrive within {} s", timeout.as_secs_f64())))
            }
        }
    }

    /// Counts an unusable answer of `registry` (its host) and makes it the user's 502.
    fn invalid(&self, registry: &str, message: impl Into<String>) -> Error {
        self.metrics().upstream_error(registry, UpstreamError::InvalidResponse);
        Error::bad_gateway(message)
    }
}

/// Which client a registry's requests (and its realm's and redirects') go through.
fn trust(registry: &Registry) -> Trust {
    if registry.listed {
        Trust::Listed
    } else {
        Trust::PublicOnly
    }
}

/// The OAuth2 refresh-token grant (RFC 6749 §6) the distribution token spec uses for
/// identity tokens.
fn refresh_token_form(refresh: &Secret, service: &str, scope: &str) -> String {
    use crate::query::encode;
    format!(
        "grant_type=refresh_token&refresh_token={}&service={}&scope={}&client_id=layerpipe",
        encode(refresh.expose()),
        encode(service),
        encode(scope)
    )
}

/// Basic credentials as a sensitive header value; none for an identity token.
fn basic(credential: &Credential) -> Option<HeaderValue> {
    let Credential::Basic { username, password } = credential else {
        return None;
    };
    let encoded = base64(format!("{username}:{}", password.expose()).as_bytes());
    let mut value = HeaderValue::try_from(format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Standard base64 with padding, for Basic credentials (the `base64` crate, which the
/// schema 1 signature check needs anyway).
pub(crate) fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Marks a 401 from a registry that answers 401, not 404, for a repository that does not
/// exist (Docker Hub): the user is told it may be either.
#[derive(Clone, Copy, Debug)]
struct MissingOrRefused;

/// Docker Hub answers 401 for a repository that does not exist, as for a private one.
fn hides_missing_repositories(registry: &Registry) -> bool {
    registry.host == crate::reference::DOCKER_HUB
        || registry.endpoint.host().is_some_and(|h| h.eq_ignore_ascii_case("registry-1.docker.io"))
}

/// The error for a registry response that is not what was asked for.
fn status_error<B>(response: &Response<B>, not_found: &str) -> Error {
    let status = response.status();
    match status {
        StatusCode::NOT_FOUND => Error::not_found(not_found),
        StatusCode::UNAUTHORIZED if response.extensions().get::<MissingOrRefused>().is_some() => {
            Error::unauthorized(format!("{not_found}, or needs credentials"))
        }
        StatusCode::UNAUTHORIZED => Error::unauthorized("the registry refused the request: authentication required"),
        StatusCode::FORBIDDEN => Error::forbidden("the registry denied access"),
        StatusCode::TOO_MANY_REQUESTS => Error::too_many_requests(
            "the registry is rate limiting requests; try again later",
            response.headers().get(header::RETRY_AFTER).cloned(),
        ),
        _ => Error::bad_gateway(format!("the registry answered {status}")),
    }
}

/// Scheme, host and port (with the scheme's default filled in) are equal.
fn same_origin(a: &Uri, b: &Uri) -> bool {
    let port = |u: &Uri| u.port_u16().unwrap_or(if u.scheme_str() == Some("http") { 80 } else { 443 });
    a.scheme() == b.scheme()
        && a.host().map(str::to_ascii_lowercase) == b.host().map(str::to_ascii_lowercase)
        && port(a) == port(b)
}

/// The absolute URL a `Location` header points to, relative to `base`.
fn resolve_location(base: &Uri, location: &str) -> Option<Uri> {
    let absolute = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{}://{rest}", base.scheme_str()?)
    } else if location.starts_with('/') {
        format!("{}://{}{location}", base.scheme_str()?, base.authority()?)
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{}://{}{dir}/{location}", base.scheme_str()?, base.authority()?)
    };
    let uri: Uri = absolute.parse().ok()?;
    uri.host()?;
    Some(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let u = |s: &str| s.parse::<Uri>().unwrap();
        assert!(same_origin(&u("https://r.io/v2/x"), &u("https://R.io:443")));
        assert!(same_origin(&u("http://127.0.0.1:5000/a"), &u("http://127.0.0.1:5000")));
        assert!(!same_origin(&u("http://127.0.0.1:5001/a"), &u("http://127.0.0.1:5000")));
        assert!(!same_origin(&u("http://r.io/a"), &u("https://r.io")));
        assert!(!same_origin(&u("https://cdn.r.io/a"), &u("https://r.io")));
    }

    #[test]
    fn base64_of_credentials() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn locations() {
        let base: Uri = "http://127.0.0.1:5000/v2/a/blobs/sha256:x".parse().unwrap();
        let r = |l: &str| resolve_location(&base, l).map(|u| u.to_string());
        assert_eq!(r("https://cdn.example/b?sig=1").as_deref(), Some("https://cdn.example/b?sig=1"));
        assert_eq!(r("//cdn.example/b").as_deref(), Some("http://cdn.example/b"));
        assert_eq!(r("/other").as_deref(), Some("http://127.0.0.1:5000/other"));
        assert_eq!(r("y").as_deref(), Some("http://127.0.0.1:5000/v2/a/blobs/y"));
        assert_eq!(r("http://"), None);
    }
}
