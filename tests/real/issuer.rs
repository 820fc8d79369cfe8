//! A token issuer for the real registry: a small hyper 1 server on 127.0.0.1 that mints
//! the ES256 JWTs distribution 2.8 accepts (`auth.token` in the registry's config).
//!
//! How distribution 2.8 checks a token, and so what is minted here:
//! - the signature, with the key of the certificate in the JWT header's `x5c`, which must
//!   chain to `auth.token.rootcertbundle` (here the one self-signed certificate is both
//!   the chain and the bundle);
//! - `iss` equal to `auth.token.issuer`, `aud` a JSON string equal to `auth.token.service`;
//! - `exp` and `nbf` with 60 s of leeway;
//! - `access`: `[{"type":"repository","name":…,"actions":["pull",…]}]`.
//!
//! It serves `GET /token?service=…&scope=repository:NAME:ACTIONS` (the scope may repeat)
//! and answers `{"token","access_token","expires_in","issued_at"}`. Anonymous callers get
//! `pull` only; `push` (and `delete`) need Basic [`PUSH_USERNAME`]/[`PUSH_PASSWORD`];
//! wrong credentials get 401. A repository under [`REFUSED_PREFIX`] is granted nothing,
//! so the registry refuses it as it refuses a stranger a private repository (401,
//! `insufficient_scope`). [`TokenIssuer::set_wording`] makes the answer's `expires_in` and
//! `issued_at` as odd as some token servers send them (the JWT inside stays valid). Every
//! request is counted under each `scope` it names (or
//! `""` without one), before any check, so tests can assert how often a client asked.
//!
//! The server runs on a current-thread tokio runtime on a thread of its own, so it serves
//! whichever runtime (or none) the test uses, and stops when the issuer is dropped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

use super::common::digest::hex;

/// `auth.token.service` in the registry's config, and so every token's `aud`.
pub const SERVICE: &str = "layerpipe-e2e-registry";
/// `auth.token.issuer` in the registry's config, and so every token's `iss`.
pub const ISSUER: &str = "layerpipe-e2e-issuer";
/// The user that may push.
pub const PUSH_USERNAME: &str = "e2e-pusher";
/// [`PUSH_USERNAME`]'s password.
pub const PUSH_PASSWORD: &str = "e2e-push-password";
/// How long a minted token lives, in seconds (`expires_in`).
pub const TOKEN_LIFETIME_SECS: u64 = 300;
/// Repositories whose names start with this are granted no access at all.
pub const REFUSED_PREFIX: &str = "refused/";

/// How the issuer words the lifetime in its answers.
#[derive(Clone, Debug, PartialEq)]
pub struct Wording {
    /// `expires_in` as sent; `None` leaves it out.
    pub expires_in: Option<serde_json::Value>,
    /// How far behind the true time `issued_at` is, in seconds (a token server whose
    /// clock runs behind).
    pub issued_at_behind_secs: u64,
}

impl Default for Wording {
    fn default() -> Wording {
        Wording { expires_in: Some(json!(TOKEN_LIFETIME_SECS)), issued_at_behind_secs: 0 }
    }
}

/// A running token issuer; see the module docs.
pub struct TokenIssuer {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

struct State {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// The JWT header, base64url-encoded once: it is the same for every token.
    header_b64: String,
    certificate_pem: String,
    /// Requests served, by scope.
    requests: Mutex<HashMap<String, usize>>,
    wording: Mutex<Wording>,
}

/// One entry of a token's `access` claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// `repository` (or `registry` for catalog scopes).
    pub kind: String,
    /// The repository name.
    pub name: String,
    /// What may be done: `pull`, `push`, …
    pub actions: Vec<String>,
}

impl TokenIssuer {
    /// Makes a fresh key and self-signed certificate and starts serving on 127.0.0.1.
    pub fn start() -> TokenIssuer {
        let rng = SystemRandom::new();
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("certificate params");
        params.distinguished_name.push(rcgen::DnType::CommonName, "layerpipe e2e token issuer");
        let certificate = params.self_signed(&key_pair).expect("self-signed certificate");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key_pair.serialize_der(), &rng)
            .expect("ring reads rcgen's PKCS#8 key");
        let header = json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [STANDARD.encode(certificate.der())],
        });
        let state = Arc::new(State {
            key,
            rng,
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            certificate_pem: certificate.pem(),
            requests: Mutex::new(HashMap::new()),
            wording: Mutex::new(Wording::default()),
        });

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the token issuer");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("issuer address");
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::Builder::new()
            .name("token-issuer".into())
            .spawn(move || {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("issuer runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    loop {
                        let (stream, _) = tokio::select! {
                            accepted = listener.accept() => match accepted {
                                Ok(accepted) => accepted,
                                Err(_) => continue,
                            },
                            _ = &mut stop => return,
                        };
                        let state = served.clone();
                        tokio::spawn(async move {
                            let service = service_fn(move |request: Request<Incoming>| {
                                let state = state.clone();
                                async move { Ok::<_, Infallible>(state.answer(&request)) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
            })
            .expect("spawn the issuer thread");
        TokenIssuer { addr, state, shutdown: Some(shutdown), thread: Some(thread) }
    }

    /// Where the issuer listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token endpoint, `http://127.0.0.1:PORT/token`: the registry's `auth.token.realm`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The self-signed certificate, PEM: the registry's `auth.token.rootcertbundle`.
    pub fn certificate_pem(&self) -> &str {
        &self.state.certificate_pem
    }

    /// How many token requests named `scope` (exactly as sent, e.g.
    /// `repository:e2e/app:pull`); `""` counts requests without a scope.
    pub fn token_requests(&self, scope: &str) -> usize {
        let requests = self.state.requests.lock().unwrap();
        requests.get(scope).copied().unwrap_or(0)
    }

    /// Every scope asked for so far, with its count.
    pub fn token_requests_by_scope(&self) -> HashMap<String, usize> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Words the answers from now on as `wording` says.
    pub fn set_wording(&self, wording: Wording) {
        *self.state.wording.lock().unwrap() = wording;
    }

    /// A token for `subject` granting exactly `access`, valid for [`TOKEN_LIFETIME_SECS`]
    /// (for tests that want a token without asking over HTTP).
    pub fn mint(&self, subject: &str, access: &[Access]) -> String {
        self.state.mint(subject, access, unix_now())
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl State {
    fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.uri().path() != "/token" {
            return error(StatusCode::NOT_FOUND, "no such endpoint");
        }
        let pairs = parse_query(request.uri().query().unwrap_or(""));
        // Scopes may repeat, and the spec also allows several separated by spaces.
        let scopes: Vec<String> = pairs
            .iter()
            .filter(|(name, _)| name == "scope")
            .flat_map(|(_, value)| value.split(' ').map(str::to_owned).collect::<Vec<_>>())
            .filter(|s| !s.is_empty())
            .collect();
        {
            let mut requests = self.requests.lock().unwrap();
            if scopes.is_empty() {
                *requests.entry(String::new()).or_default() += 1;
            }
            for scope in &scopes {
                *requests.entry(scope.clone()).or_default() += 1;
            }
        }
        let service = pairs.iter().find(|(name, _)| name == "service");
        if service.map(|(_, v)| v.as_str()) != Some(SERVICE) {
            return error(StatusCode::BAD_REQUEST, &format!("service must be {SERVICE}"));
        }
        let user = match request.headers().get(header::AUTHORIZATION) {
            None => None,
            Some(value) => match basic_user(value.to_str().unwrap_or("")) {
                Some(user) => Some(user),
                None => return error(StatusCode::UNAUTHORIZED, "bad credentials"),
            },
        };
        let mut access = Vec::new();
        for scope in &scopes {
            let Some(requested) = parse_scope(scope) else {
                return error(StatusCode::BAD_REQUEST, &format!("bad scope {scope:?}"));
            };
            let actions: Vec<String> = requested
                .actions
                .iter()
                .filter(|action| action.as_str() == "pull" || user.is_some())
                .filter(|_| !requested.name.starts_with(REFUSED_PREFIX))
                .cloned()
                .collect();
            if !actions.is_empty() {
                access.push(Access { actions, ..requested });
            }
        }
        let now = unix_now();
        let token = self.mint(user.unwrap_or(""), &access, now);
        let wording = self.wording.lock().unwrap().clone();
        let mut body = json!({
            "token": token,
            "access_token": token,
            "issued_at": rfc3339(now.saturating_sub(wording.issued_at_behind_secs)),
        });
        if let Some(expires_in) = wording.expires_in {
            body["expires_in"] = expires_in;
        }
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        response
    }

    fn mint(&self, subject: &str, access: &[Access], now: u64) -> String {
        let mut jti = [0u8; 16];
        self.rng.fill(&mut jti).expect("random jti");
        let access: Vec<_> =
            access.iter().map(|a| json!({"type": a.kind, "name": a.name, "actions": a.actions})).collect();
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + TOKEN_LIFETIME_SECS,
            "nbf": now,
            "iat": now,
            "jti": hex(&jti),
            "access": access,
        });
        let signing_input = format!("{}.{}", self.header_b64, URL_SAFE_NO_PAD.encode(claims.to_string()));
        // FIXED signing: the 64-byte r||s that JWS ES256 wants, not ASN.1 DER.
        let signature = self.key.sign(&self.rng, signing_input.as_bytes()).expect("ES256 signature");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = json!({"errors": [{"code": "DENIED", "message": message}]});
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"layerpipe e2e\""));
    }
    response
}

/// The user of a valid `Basic` header; `None` for anything else.
fn basic_user(value: &str) -> Option<&'static str> {
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(credentials.trim()).ok()?;
    let expected = format!("{PUSH_USERNAME}:{PUSH_PASSWORD}");
    (decoded == expected.as_bytes()).then_some(PUSH_USERNAME)
}

/// `repository:NAME:a,b`: the name may hold `:` (a registry host with a port), the
/// actions never do.
pub fn parse_scope(scope: &str) -> Option<Access> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if kind.is_empty() || name.is_empty() {
        return None;
    }
    Some(Access {
        kind: kind.to_owned(),
        name: name.to_owned(),
        actions: actions.split(',').filter(|a| !a.is_empty()).map(str::to_owned).collect(),
    })
}

/// `a=b&c=d`, percent- and `+`-decoded.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let escaped = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match escaped {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// `2024-05-01T12:00:00Z` for seconds since the epoch (Howard Hinnant's civil_from_days).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
