//! Configuration: a JSON file, every key checked at start-up. (Over 600 lines in one
//! file on purpose: every key, its default and its check are read in one place.)
//!
//! ```json
//! {
//!   "listen": "127.0.0.1:8042",
//!   "verify_digests": true,
//!   "registries": {
//!     "127.0.0.1:5000": { "endpoint": "http://127.0.0.1:5000", "username": "u", "password": "p" }
//!   }
//! }
//! ```
//!
//! Unknown keys are errors, not ignored: a typo in a limit should stop start-up, not
//! silently leave the default in force.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use serde::Deserialize;

pub use crate::credentials::Secret;
use crate::reference::DOCKER_HUB;
use crate::tls::CaBundle;

/// Where Docker Hub's registry API lives; `docker.io` is only the name in references.
pub const DOCKER_HUB_ENDPOINT: &str = "https://registry-1.docker.io";

/// The whole configuration, with defaults filled in.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Registries by the host name used in image references. Only these may be reached
    /// over plain http or at private addresses.
    #[serde(default)]
    pub registries: HashMap<String, RegistryConfig>,
    /// Hash every full blob download and abort it when the bytes do not match the digest.
    #[serde(default = "yes")]
    pub verify_digests: bool,
    /// How long layerpipe waits, for registries and for clients.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Sizes and counts layerpipe will not go beyond.
    #[serde(default)]
    pub limits: Limits,
    /// Retries of registry requests that failed in a way worth retrying.
    #[serde(default)]
    pub retries: Retries,
    /// `"text"` (default) or `"json"`: one JSON object per log line.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Threads serving requests; by default one per CPU. How they share the work is
    /// `runtime`'s choice.
    #[serde(default = "cpus")]
    pub worker_threads: usize,
    /// `"per_core"` (default: one current-thread runtime per thread, each with its own
    /// listener) or `"multi_thread"` (tokio's work-stealing runtime): src/runtime.rs.
    #[serde(default)]
    pub runtime: RuntimeKind,
    /// Layer indexes: where they are kept and how much of them.
    #[serde(default)]
    pub index: IndexConfig,
    /// A docker `config.json` whose credentials (`auths`, `credHelpers`, `credsStore`)
    /// layerpipe uses; unset, none: a server must not use its operator's login unasked.
    pub docker_config: Option<PathBuf>,
    /// Where credential helpers are looked for instead of `PATH`: for tests, which
    /// cannot change the environment of a process they share. Not a config key.
    #[serde(skip)]
    pub credential_helper_dir: Option<PathBuf>,
    /// Fetching one large blob over several connections when one connection is slow.
    #[serde(default)]
    pub multipart: MultipartConfig,
    /// The catalog of every layer and image seen, for search across images (src/catalog/).
    #[serde(default)]
    pub catalog: CatalogConfig,
}

/// The catalog (src/catalog/): where it is kept.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// `sqlite:PATH`, `postgres://…` (replicas sharing one catalog), or `""` (off). Unset:
    /// SQLite at `catalog.sqlite` in `index.dir`, or off when indexes are kept in memory
    /// only, since a memory-only server was asked to keep nothing on disk.
    pub url: Option<CatalogUrl>,
}

impl CatalogConfig {
    /// Where the catalog is, with the default applied: beside the layer indexes.
    pub fn resolve(&self, index: &IndexConfig) -> CatalogUrl {
        match &self.url {
            Some(url) => url.clone(),
            None => index.store_dir().map_or(CatalogUrl::Off, |dir| CatalogUrl::Sqlite(dir.join("catalog.sqlite"))),
        }
    }
}

/// A catalog's place, parsed from `catalog.url`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum CatalogUrl {
    /// No catalog: nothing is recorded and `/search` says so.
    Off,
    /// An SQLite file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL connection string, `postgres://user:password@host:port/db`; it may
    /// hold a password, so it prints without one.
    Postgres(Secret),
}

impl TryFrom<String> for CatalogUrl {
    type Error = String;

    fn try_from(s: String) -> Result<CatalogUrl, String> {
        if s.is_empty() {
            return Ok(CatalogUrl::Off);
        }
        if let Some(path) = s.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err("catalog.url \"sqlite:\" needs a file: sqlite:/var/cache/layerpipe/catalog.sqlite".into());
            }
            return Ok(CatalogUrl::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(CatalogUrl::Postgres(Secret::new(s)));
        }
        Err("catalog.url must be \"sqlite:PATH\", \"postgres://…\" or \"\" (off)".into())
    }
}

impl fmt::Debug for CatalogUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogUrl::Off => f.write_str("off"),
            CatalogUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            CatalogUrl::Postgres(url) => f.write_str(&redact_password(url.expose())),
        }
    }
}

/// A connection URL for logs: its password as `***`, and its query (which may say
/// `password=` too) as `?…`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "***".to_owned() };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, _)) => (rest, "?…"),
        None => (rest, ""),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{user_info}@{host}"),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{path}{query}")
}

/// Multipart fetch (src/upstream/multipart/): once a download's first connection turns
/// out slow, the rest of a large blob comes in consecutive ranges over several
/// connections. Defaults measured in BENCHMARKS.md ("WAN profile").
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MultipartConfig {
    /// Connections one download may use at once, the first included; 1 turns multipart off.
    pub connections: usize,
    /// Bytes per range request; each is held in memory until the client has taken it.
    pub chunk_bytes: usize,
    /// Bytes of chunks all downloads may hold together; a download that cannot reserve its
    /// window streams over one connection.
    pub budget_bytes: usize,
    /// Blobs (or client ranges) smaller than this always stream over one connection.
    pub min_blob_bytes: u64,
    /// How long the first connection streams before its rate is judged.
    pub probe_ms: u64,
    /// A first connection slower than this, over `probe_ms`, is taken as capped.
    pub capped_below_bytes_per_sec: u64,
    /// Whether a registry reached at a loopback or private address may be split: off,
    /// since a slow connection there is a busy machine, not a shaped link. On for a
    /// shaping relay on a local address (the WAN benchmark, the multipart tests).
    pub split_local_links: bool,
}

impl Default for MultipartConfig {
    fn default() -> MultipartConfig {
        MultipartConfig {
            connections: 8,
            chunk_bytes: 2 << 20,
            budget_bytes: 256 << 20,
            min_blob_bytes: 64 << 20,
            probe_ms: 250,
            capped_below_bytes_per_sec: 200 << 20,
            split_local_links: false,
        }
    }
}

/// Where layer indexes are kept (src/index/).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// The folder of the persistent store; empty keeps indexes in memory only. By
    /// default `$XDG_CACHE_HOME/layerpipe`, else `~/.cache/layerpipe`.
    pub dir: PathBuf,
    /// Most bytes of index files kept; the least recently used go first beyond it.
    pub max_bytes: u64,
}

impl Default for IndexConfig {
    fn default() -> IndexConfig {
        IndexConfig { dir: default_cache_dir(), max_bytes: 1 << 30 }
    }
}

impl IndexConfig {
    /// The store's folder, unless the store is off.
    pub fn store_dir(&self) -> Option<&Path> {
        (!self.dir.as_os_str().is_empty()).then_some(self.dir.as_path())
    }
}

/// `$XDG_CACHE_HOME/layerpipe`, else `$HOME/.cache/layerpipe`, else none (memory only),
/// as the XDG base directory rules say (a relative `XDG_CACHE_HOME` is ignored).
fn default_cache_dir() -> PathBuf {
    let from = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    from("XDG_CACHE_HOME")
        .or_else(|| from("HOME").map(|home| home.join(".cache")))
        .map(|cache| cache.join("layerpipe"))
        .unwrap_or_default()
}

/// The format of log lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// One listed registry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL of the registry's API, `https://ghcr.io`, or with the path prefix it is
    /// served under: `https://host/artifactory/api/docker/REPO`.
    pub endpoint: Endpoint,
    /// Basic credentials, for the token endpoint or a Basic-auth registry.
    pub username: Option<String>,
    /// The password for `username`; never logged.
    pub password: Option<Secret>,
    /// A PEM bundle of CAs trusted for this registry (its realm and redirects too), on
    /// top of the common roots ([`crate::tls`]).
    pub ca_file: Option<PathBuf>,
    /// `ca_file`, read and checked by [`Config::parse`].
    #[serde(skip)]
    pub ca: Option<CaBundle>,
}

/// How long layerpipe waits, in seconds.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// To open a TCP connection to a registry.
    pub connect_secs: f64,
    /// For the TLS handshake with a registry, once connected.
    pub tls_handshake_secs: f64,
    /// From sending a request to a registry to having its response headers; also for
    /// reading a whole manifest or token response.
    pub response_headers_secs: f64,
    /// For the next bytes of a blob mid-download; a registry silent this long aborts
    /// the client's download.
    pub idle_read_secs: f64,
    /// For a client to send a request's headers. hyper applies the same limit to an idle
    /// keep-alive connection waiting for its next request.
    pub client_header_read_secs: f64,
    /// For a client to take the next bytes of a response it asked for: one that takes
    /// nothing this long has its connection ended and its slot freed
    /// (`src/client_idle.rs`).
    pub client_idle_secs: f64,
    /// On SIGTERM or SIGINT, how long in-flight requests may take to finish.
    pub shutdown_grace_secs: f64,
    /// The span over which `limits.explorer_min_bytes_per_sec` is averaged.
    pub explorer_rate_window_secs: f64,
    /// For an image page's referrers: their look-ups, run at once, share this one
    /// deadline, past which the page is shown without what had not come.
    pub extras_secs: f64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect_secs: 10.0,
            tls_handshake_secs: 10.0,
            response_headers_secs: 30.0,
            idle_read_secs: 60.0,
            client_header_read_secs: 30.0,
            client_idle_secs: 120.0,
            shutdown_grace_secs: 30.0,
            explorer_rate_window_secs: 60.0,
            extras_secs: 2.0,
        }
    }
}

fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value)
}

impl Timeouts {
    /// TCP connect.
    pub fn connect(&self) -> Duration {
        secs(self.connect_secs)
    }
    /// TLS handshake.
    pub fn tls_handshake(&self) -> Duration {
        secs(self.tls_handshake_secs)
    }
    /// Request to response headers.
    pub fn response_headers(&self) -> Duration {
        secs(self.response_headers_secs)
    }
    /// Silence mid-stream.
    pub fn idle_read(&self) -> Duration {
        secs(self.idle_read_secs)
    }
    /// Client request headers.
    pub fn client_header_read(&self) -> Duration {
        secs(self.client_header_read_secs)
    }
    /// A client taking nothing of a response.
    pub fn client_idle(&self) -> Duration {
        secs(self.client_idle_secs)
    }
    /// Shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        secs(self.shutdown_grace_secs)
    }
    /// The span a layer read's rate is averaged over.
    pub fn explorer_rate_window(&self) -> Duration {
        secs(self.explorer_rate_window_secs)
    }
    /// The deadline shared by an image page's referrer look-ups.
    pub fn extras(&self) -> Duration {
        secs(self.extras_secs)
    }
}

/// Sizes and counts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request line plus headers a client may send (431 beyond).
    pub max_request_header_bytes: usize,
    /// Largest manifest read from a registry.
    pub max_manifest_bytes: usize,
    /// Largest token response read from a token server.
    pub max_token_response_bytes: usize,
    /// Most redirects followed for one registry request.
    pub max_redirects: usize,
    /// Most downloads streaming at once; more get 503 with `Retry-After`.
    pub max_concurrent_downloads: usize,
    /// Most pages rendered at once (each up to 12 MiB of HTML); more wait up to 5 s,
    /// then get 503 with `Retry-After`.
    pub max_concurrent_renders: usize,
    /// The slowest a registry may send a layer being listed, previewed or saved,
    /// averaged over `timeouts.explorer_rate_window_secs` of waiting on it; slower aborts
    /// the read and frees its slot. 0 turns the check off.
    pub explorer_min_bytes_per_sec: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_request_header_bytes: 16 * 1024,
            max_manifest_bytes: MAX_MANIFEST_BYTES,
            max_token_response_bytes: 64 * 1024,
            max_redirects: 10,
            max_concurrent_downloads: 512,
            max_concurrent_renders: 4,
            explorer_min_bytes_per_sec: 64 * 1024,
        }
    }
}

/// Retries of registry requests (ping, token, manifest, and a blob request before any
/// byte has gone to the client) on connection errors, 502, 503, 504 and short 429s.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retries {
    /// Tries in all, the first included; 1 turns retries off.
    pub attempts: u32,
    /// The first backoff; each later one doubles, with full jitter.
    pub initial_backoff_ms: u64,
    /// A 429 whose `Retry-After` is at most this is waited out and retried; a longer one
    /// is passed on to the client.
    pub max_retry_after_secs: u64,
}

impl Default for Retries {
    fn default() -> Retries {
        Retries { attempts: 3, initial_backoff_ms: 100, max_retry_after_secs: 5 }
    }
}

/// A registry's base URL: `http` or `https`, a host, optionally a path prefix the API is
/// served under (without a trailing `/`), no query or user info.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Endpoint(Uri);

impl Endpoint {
    /// The URL as parsed.
    pub fn uri(&self) -> &Uri {
        &self.0
    }
}

impl TryFrom<String> for Endpoint {
    type Error = String;

    fn try_from(s: String) -> Result<Endpoint, String> {
        let bad = |why: &str| format!("endpoint {s:?} {why}");
        let uri: Uri = s.parse().map_err(|_| bad("is not a URL"))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => return Err(bad("must start with http:// or https://")),
        }
        let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("must not hold credentials; use username and password"));
        }
        if uri.query().is_some() || s.contains('#') {
            return Err(bad("must not have a query"));
        }
        // A path is a prefix the API is served under (Artifactory's
        // `/artifactory/api/docker/REPO`); `/v2/…` is added to it, so it must not be there.
        let prefix = uri.path().trim_end_matches('/');
        if prefix.ends_with("/v2") {
            return Err(bad("must not end in /v2: layerpipe adds /v2/ itself"));
        }
        let base = format!("{}://{}{prefix}", uri.scheme_str().unwrap_or("https"), authority);
        Ok(Endpoint(base.parse().map_err(|_| bad("is not a URL"))?))
    }
}

/// How requests are spread over threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    /// One tokio multi-threaded runtime with `worker_threads` workers, one listener.
    MultiThread,
    /// `worker_threads` threads, each a current-thread runtime with its own
    /// `SO_REUSEPORT` listener. The default: on loopback it took half the CPU per GiB of
    /// the multi-threaded runtime, and a tenth of its `epoll_wait` calls (BENCHMARKS.md).
    #[default]
    PerCore,
}

/// Largest manifest layerpipe reads by default (distribution's own limit):
/// `limits.max_manifest_bytes`.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8042))
}

fn yes() -> bool {
    true
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl Default for Config {
    fn default() -> Config {
        Config::parse("{}").expect("the defaults are valid")
    }
}

impl Config {
    /// Reads and checks a config file; the error names the file and the bad key.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }

    /// Parses and checks config JSON.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut config: Config = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut registries = HashMap::new();
        for (host, mut registry) in config.registries.drain() {
            crate::reference::check_registry_host(&host).map_err(|e| format!("registries: key {host:?}: {e}"))?;
            if registry.password.is_some() && registry.username.is_none() {
                return Err(format!("registries.{host}: password is set without username"));
            }
            if let Some(path) = &registry.ca_file {
                let bundle = CaBundle::load(path).map_err(|e| format!("registries.\"{host}\".ca_file: {e}"))?;
                registry.ca = Some(bundle);
            }
            // References never say index.docker.io once parsed, so neither does the config.
            let host = if host == "index.docker.io" { DOCKER_HUB.to_owned() } else { host };
            registries.insert(host, registry);
        }
        config.registries = registries;
        if let Some(path) = &config.docker_config {
            // Read now so that a missing or broken file stops start-up; the registry
            // client reads it again, and again whenever it changes.
            crate::credentials::DockerCredentials::load(path, None).map_err(|e| format!("docker_config: {e}"))?;
        }
        config.check_numbers()?;
        Ok(config)
    }

    fn check_numbers(&self) -> Result<(), String> {
        let t = &self.timeouts;
        for (key, secs) in [
            ("timeouts.connect_secs", t.connect_secs),
            ("timeouts.tls_handshake_secs", t.tls_handshake_secs),
            ("timeouts.response_headers_secs", t.response_headers_secs),
            ("timeouts.idle_read_secs", t.idle_read_secs),
            ("timeouts.client_header_read_secs", t.client_header_read_secs),
            ("timeouts.client_idle_secs", t.client_idle_secs),
            ("timeouts.shutdown_grace_secs", t.shutdown_grace_secs),
            ("timeouts.explorer_rate_window_secs", t.explorer_rate_window_secs),
            ("timeouts.extras_secs", t.extras_secs),
        ] {
            // At least a millisecond: anything shorter rounds to a zero Duration, a
            // deadline that has passed before it is set.
            if !(0.001..=86_400.0).contains(&secs) {
                return Err(format!("{key} must be from 0.001 to 86400, got {secs}"));
            }
        }
        let l = &self.limits;
        for (key, value, min, max) in [
            // hyper's read buffer stops at about 408 KiB: a larger limit could not apply.
            ("limits.max_request_header_bytes", l.max_request_header_bytes, 1024, 400 << 10),
            // Manifests and token responses are held whole in memory.
            ("limits.max_manifest_bytes", l.max_manifest_bytes, 1024, 256 << 20),
            ("limits.max_token_response_bytes", l.max_token_response_bytes, 1024, 16 << 20),
            // tokio's semaphore panics past usize::MAX >> 3 permits.
            ("limits.max_concurrent_downloads", l.max_concurrent_downloads, 1, 1_000_000),
            ("limits.max_concurrent_renders", l.max_concurrent_renders, 1, 1024),
            ("limits.max_redirects", l.max_redirects, 0, 100),
            ("limits.explorer_min_bytes_per_sec", l.explorer_min_bytes_per_sec, 0, 1 << 30),
        ] {
            if !(min..=max).contains(&value) {
                return Err(format!("{key} must be from {min} to {max}, got {value}"));
            }
        }
        let r = &self.retries;
        // The backoff ceiling is initial × 2^(attempts - 1); a huge initial value made its
        // jitter divide by zero. A minute doubled nine times is already hours.
        for (key, value, max) in [
            ("retries.initial_backoff_ms", r.initial_backoff_ms, 60_000),
            ("retries.max_retry_after_secs", r.max_retry_after_secs, 3_600),
        ] {
            if value > max {
                return Err(format!("{key} must be from 0 to {max}, got {value}"));
            }
        }
        if !(1..=1024).contains(&self.worker_threads) {
            return Err(format!("worker_threads must be from 1 to 1024, got {}", self.worker_threads));
        }
        if self.index.max_bytes < 1 << 20 {
            return Err(format!("index.max_bytes must be at least 1048576 (1 MiB), got {}", self.index.max_bytes));
        }
        let m = &self.multipart;
        for (key, value, min, max) in [
            ("multipart.connections", m.connections as u64, 1, 64),
            // A chunk is taken from the budget in one piece: tokio's semaphore counts u32.
            ("multipart.chunk_bytes", m.chunk_bytes as u64, 64 << 10, 256 << 20),
            ("multipart.budget_bytes", m.budget_bytes as u64, 0, 64 << 30),
            ("multipart.probe_ms", m.probe_ms, 0, 60_000),
        ] {
            if !(min..=max).contains(&value) {
                return Err(format!("{key} must be from {min} to {max}, got {value}"));
            }
        }
        if !(1..=10).contains(&self.retries.attempts) {
            return Err(format!("retries.attempts must be from 1 to 10, got {}", self.retries.attempts));
        }
        Ok(())
    }

    /// The registry a reference's host names: its entry in `registries`, else Docker Hub's
    /// endpoint for `docker.io`, else `https://<host>` (unlisted, so public addresses only).
    pub fn registry(&self, host: &str) -> Registry {
        if let Some(listed) = self.registries.get(host) {
            return Registry {
                host: host.to_owned(),
                endpoint: listed.endpoint.uri().clone(),
                credentials: listed.username.clone().map(|username| Credentials {
                    username,
                    password: listed.password.clone().unwrap_or(Secret::new(String::new())),
                }),
                listed: true,
            };
        }
        let endpoint = if host == DOCKER_HUB { DOCKER_HUB_ENDPOINT.to_owned() } else { format!("https://{host}") };
        Registry {
            host: host.to_owned(),
            endpoint: endpoint.parse().expect("a checked registry host makes a valid URL"),
            credentials: None,
            listed: false,
        }
    }
}

/// A registry as the client talks to it.
#[derive(Clone, Debug)]
pub struct Registry {
    /// The host as written in references (the config key).
    pub host: String,
    /// Base URL, `scheme://authority` and any path prefix, which `/v2/…` follows.
    pub endpoint: Uri,
    /// Basic credentials, when configured.
    pub credentials: Option<Credentials>,
    /// Listed in the config: trusted with plain http and private addresses.
    pub listed: bool,
}

/// A username and password for Basic auth.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: Secret,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_a_file() {
        let c = Config::parse("{}").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8042");
        assert!(c.verify_digests);
        let hub = c.registry("docker.io");
        assert_eq!(hub.endpoint.to_string(), "https://registry-1.docker.io/");
        assert!(!hub.listed);
    }

    #[test]
    fn listed_registries_and_hub_alias() {
        let c = Config::parse(
            r#"{"registries": {"127.0.0.1:5000": {"endpoint": "http://127.0.0.1:5000", "username": "u", "password": "p"},
                 "index.docker.io": {"endpoint": "https://mirror.example"}}}"#,
        )
        .unwrap();
        let r = c.registry("127.0.0.1:5000");
        assert!(r.listed);
        assert_eq!(r.credentials.unwrap().password.expose(), "p");
        assert_eq!(c.registry("docker.io").endpoint.host(), Some("mirror.example"));
        assert_eq!(c.registry("ghcr.io").endpoint.to_string(), "https://ghcr.io/");
    }

    #[test]
    fn an_endpoint_may_have_a_path_prefix() {
        let c = Config::parse(
            r#"{"registries": {"art.example": {"endpoint": "https://art.example/artifactory/api/docker/repo/"}}}"#,
        )
        .unwrap();
        let r = c.registry("art.example");
        assert_eq!(r.endpoint.to_string(), "https://art.example/artifactory/api/docker/repo");
        assert_eq!(r.endpoint.host(), Some("art.example"));
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        for (json, needle) in [
            (r#"{"lisen": "1.2.3.4:5"}"#, "lisen"),
            (r#"{"listen": "nope"}"#, "invalid socket address"),
            (r#"{"verify_digests": "yes"}"#, "invalid type"),
            (r#"{"registries": {"r.io": {"endpoint": "ftp://r.io"}}}"#, "http:// or https://"),
            (r#"{"registries": {"r.io": {"endpoint": "https://r.io/v2"}}}"#, "/v2"),
            (r#"{"registries": {"r.io": {"endpoint": "https://r.io/a/v2/"}}}"#, "/v2"),
            (r#"{"registries": {"r.io": {"endpoint": "https://r.io/a?b=c"}}}"#, "query"),
            (r#"{"registries": {"r.io": {"endpoint": "https://u:p@r.io"}}}"#, "credentials"),
            (r#"{"registries": {"r.io": {"endpoint": "https://r.io", "token": 1}}}"#, "token"),
            (r#"{"registries": {"bad host": {"endpoint": "https://r.io"}}}"#, "bad host"),
            (r#"{"timeouts": {"connect_secs": 0}}"#, "timeouts.connect_secs"),
            (r#"{"timeouts": {"idle_read_secs": -1}}"#, "timeouts.idle_read_secs"),
            (r#"{"limits": {"max_concurrent_downloads": 0}}"#, "limits.max_concurrent_downloads"),
            (r#"{"limits": {"max_redirect": 3}}"#, "max_redirect"),
            (r#"{"retries": {"attempts": 0}}"#, "retries.attempts"),
            (r#"{"log_format": "xml"}"#, "unknown variant"),
            (r#"{"worker_threads": 0}"#, "worker_threads"),
            (r#"{"docker_config": "/nonexistent/config.json"}"#, "docker_config: cannot read"),
        ] {
            let e = Config::parse(json).unwrap_err();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }

    #[test]
    fn numbers_that_would_break_arithmetic_are_refused_by_key() {
        for (json, needle) in [
            (r#"{"retries": {"initial_backoff_ms": 18446744073709551615}}"#, "retries.initial_backoff_ms"),
            (r#"{"retries": {"initial_backoff_ms": 60001}}"#, "retries.initial_backoff_ms"),
            (r#"{"retries": {"max_retry_after_secs": 18446744073709551615}}"#, "retries.max_retry_after_secs"),
            (r#"{"retries": {"attempts": 11}}"#, "retries.attempts"),
            (r#"{"limits": {"max_concurrent_downloads": 18446744073709551615}}"#, "limits.max_concurrent_downloads"),
            (r#"{"limits": {"max_manifest_bytes": 18446744073709551615}}"#, "limits.max_manifest_bytes"),
            (r#"{"limits": {"max_token_response_bytes": 18446744073709551615}}"#, "limits.max_token_response_bytes"),
            (r#"{"limits": {"max_request_header_bytes": 18446744073709551615}}"#, "limits.max_request_header_bytes"),
            (r#"{"limits": {"max_redirects": 18446744073709551615}}"#, "limits.max_redirects"),
            (r#"{"timeouts": {"connect_secs": 1e300}}"#, "timeouts.connect_secs"),
            (r#"{"timeouts": {"tls_handshake_secs": 1e-12}}"#, "timeouts.tls_handshake_secs"),
            (r#"{"worker_threads": 18446744073709551615}"#, "worker_threads"),
            (r#"{"multipart": {"connections": 0}}"#, "multipart.connections"),
            (r#"{"multipart": {"chunk_bytes": 1}}"#, "multipart.chunk_bytes"),
            (r#"{"multipart": {"chunk_bytes": 18446744073709551615}}"#, "multipart.chunk_bytes"),
            (r#"{"multipart": {"probe_ms": 18446744073709551615}}"#, "multipart.probe_ms"),
            (r#"{"multipart": {"conections": 4}}"#, "conections"),
        ] {
            let e = Config::parse(json).unwrap_err();
            assert!(e.contains(needle), "{json}: {e}");
        }
        assert!(Config::parse(r#"{"runtime": "threads"}"#).unwrap_err().contains("per_core"));
        assert_eq!(Config::parse(r#"{"runtime": "multi_thread"}"#).unwrap().runtime, RuntimeKind::MultiThread);
        assert_eq!(Config::default().runtime, RuntimeKind::PerCore);
        // The edges themselves are fine: no backoff, no waiting out a 429.
        Config::parse(r#"{"retries": {"initial_backoff_ms": 0, "max_retry_after_secs": 0}}"#).unwrap();
        Config::parse(r#"{"retries": {"initial_backoff_ms": 60000, "max_retry_after_secs": 3600}}"#).unwrap();
        Config::parse(r#"{"timeouts": {"connect_secs": 0.001}}"#).unwrap();
    }

    #[test]
    fn ca_files_are_read_at_start_up_and_named_when_bad() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        for (path, needle) in [(dir.path().join("missing.pem"), "cannot read"), (empty, "no PEM certificate")] {
            let json =
                serde_json::json!({"registries": {"r.io:5443": {"endpoint": "https://r.io:5443", "ca_file": path}}});
            let e = Config::parse(&json.to_string()).unwrap_err();
            assert!(e.contains(r#"registries."r.io:5443".ca_file"#) && e.contains(needle), "{e}");
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, params.self_signed(&key).unwrap().pem()).unwrap();
        let json = serde_json::json!({"registries": {"r.io": {"endpoint": "https://r.io", "ca_file": good}}});
        let c = Config::parse(&json.to_string()).unwrap();
        assert_eq!(c.registries["r.io"].ca.as_ref().map(CaBundle::path), Some(good.as_path()));
    }

    #[test]
    fn the_catalog_defaults_beside_the_indexes_and_takes_three_forms() {
        let c = Config::parse(r#"{"index": {"dir": "/var/cache/lp"}}"#).unwrap();
        assert_eq!(c.catalog.resolve(&c.index), CatalogUrl::Sqlite("/var/cache/lp/catalog.sqlite".into()));
        let c = Config::parse(r#"{"index": {"dir": ""}}"#).unwrap();
        assert_eq!(c.catalog.resolve(&c.index), CatalogUrl::Off, "memory only: no file appears");
        let c = Config::parse(r#"{"index": {"dir": "/x"}, "catalog": {"url": ""}}"#).unwrap();
        assert_eq!(c.catalog.resolve(&c.index), CatalogUrl::Off);
        let c = Config::parse(r#"{"catalog": {"url": "sqlite:/srv/cat.db"}}"#).unwrap();
        assert_eq!(c.catalog.resolve(&c.index), CatalogUrl::Sqlite("/srv/cat.db".into()));
        let c = Config::parse(r#"{"catalog": {"url": "postgres://lp:hunter2@db:5432/lp"}}"#).unwrap();
        assert!(matches!(c.catalog.resolve(&c.index), CatalogUrl::Postgres(_)));
        assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
        assert!(format!("{c:?}").contains("postgres://lp:***@db:5432/lp"), "{c:?}");
        for (json, needle) in [
            (r#"{"catalog": {"url": "mysql://x"}}"#, "catalog.url must be"),
            (r#"{"catalog": {"url": "sqlite:"}}"#, "needs a file"),
            (r#"{"catalog": {"uri": ""}}"#, "uri"),
        ] {
            let e = Config::parse(json).unwrap_err();
            assert!(e.contains(needle), "{json}: {e}");
        }
        assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_password("postgres://h/db?password=x"), "postgres://h/db?…");
    }

    #[test]
    fn passwords_are_not_printed() {
        let c = Config::parse(
            r#"{"registries": {"r.io": {"endpoint": "https://r.io", "username": "u", "password": "hunter2"}}}"#,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
