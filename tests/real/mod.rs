//! A real registry for end-to-end tests: Debian's `docker-registry` (CNCF distribution
//! 2.8.2) with filesystem storage in a temp dir and token auth, served by the in-process
//! [`TokenIssuer`]. Everything listens on 127.0.0.1 only.
//!
//! ```ignore
//! let registry = RealRegistry::start();
//! let image = registry.push_oci_image("e2e/app", "v1").await;
//! // point layerpipe at registry.host() / registry.endpoint(), fetch image.reference …
//! assert_eq!(registry.issuer().token_requests("repository:e2e/app:pull"), 1);
//! ```
//!
//! Each `RealRegistry` is its own process, storage and issuer: tests do not share state
//! and may run in parallel. Dropping it kills the registry and deletes its storage.

// Shared support: each test file uses only part of it, re-exports included.
#![allow(dead_code, unused_imports)]

// Shared with tests/support: the layerpipe runner, SHA-256 and the page's links.
#[path = "../common/mod.rs"]
pub mod common;
pub mod hanging_relay;
pub mod images;
pub mod issuer;
pub mod layered;
pub mod layerpipe;
pub mod nginx;
pub mod postgres;
pub mod push;
pub mod relay;
pub mod tls;

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use common::html;
pub use common::http;
pub use common::process;
pub use images::{Blob, Content};
pub use issuer::{TokenIssuer, ISSUER, PUSH_PASSWORD, PUSH_USERNAME, SERVICE};
pub use layerpipe::Layerpipe;
pub use push::{PushedImage, PushedIndex};

/// Where Debian's `docker-registry` package puts the registry.
pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// How long the registry may take to answer `/v2/` after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running registry; see the module docs.
pub struct RealRegistry {
    child: Child,
    addr: SocketAddr,
    issuer: TokenIssuer,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl RealRegistry {
    /// Starts the token issuer and a registry on a free 127.0.0.1 port, and waits until
    /// the registry answers `/v2/` with the issuer's challenge.
    pub fn start() -> RealRegistry {
        if !Path::new(REGISTRY_BINARY).exists() {
            panic!("docker-registry not installed: run apt-get install -y docker-registry");
        }
        let issuer = TokenIssuer::start();
        let dir = tempfile::Builder::new().prefix("layerpipe-registry-").tempdir().expect("temp dir for the registry");
        let bundle = dir.path().join("token-root.crt");
        fs::write(&bundle, issuer.certificate_pem()).expect("write the root cert bundle");
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).expect("storage dir");
        let log = dir.path().join("registry.log");

        let realm = issuer.realm();
        let (child, addr) = spawn_registry(
            "the registry",
            &dir.path().join("config.yml"),
            &log,
            |addr| config_yaml(addr, &issuer, &storage, &bundle),
            |child, addr| wait_ready(child, addr, &realm),
        );
        RealRegistry { child, addr, issuer, dir, log }
    }

    /// `127.0.0.1:PORT`: the registry's host as image references name it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The registry's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token issuer the registry trusts.
    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    /// The registry's storage directory (filesystem driver root).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// How many requests of `method` for a URI containing `uri_part` the registry has
    /// answered, by its access log (`"GET /v2/… HTTP/1.1" 200 …`).
    pub fn requests(&self, method: &str, uri_part: &str) -> usize {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let start = format!("\"{method} ");
        log.lines()
            .filter_map(|l| l.split_once(&start).map(|(_, rest)| rest.split(' ').next().unwrap_or("")))
            .filter(|uri| uri.contains(uri_part))
            .count()
    }

    /// How many requests of `method` for exactly `uri` the registry has answered (`/v2/`
    /// for its pings, which [`RealRegistry::requests`] cannot single out).
    pub fn requests_of(&self, method: &str, uri: &str) -> usize {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let request = format!("\"{method} {uri} ");
        log.lines().filter(|l| l.contains(&request)).count()
    }

    /// The end of the registry's log (its stdout and stderr), for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

impl Drop for RealRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `docker-registry serve` with the config `config_for` writes for a free port,
/// logging to `log`, and waits until `ready` says it is up. The port is free when asked,
/// but another process may take it before the registry binds it; then the registry exits
/// and another port is tried, five times in all before `what` is reported as not started.
fn spawn_registry(
    what: &str,
    config: &Path,
    log: &Path,
    config_for: impl Fn(SocketAddr) -> String,
    ready: impl Fn(&mut Child, SocketAddr) -> Result<(), String>,
) -> (Child, SocketAddr) {
    let mut failures = Vec::new();
    for _ in 0..5 {
        let addr = free_port();
        fs::write(config, config_for(addr)).expect("write the registry config");
        let log_file = fs::File::create(log).expect("registry log");
        let mut child = Command::new(REGISTRY_BINARY)
            .arg("serve")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {REGISTRY_BINARY}: {e}"));
        match ready(&mut child, addr) {
            Ok(()) => return (child, addr),
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                failures.push(format!("{addr}: {why}\n{}", tail(log)));
            }
        }
    }
    panic!("{what} did not start:\n{}", failures.join("\n---\n"));
}

/// Polls `GET /v2/` until it answers 401 with a Bearer challenge naming our issuer's
/// `realm`: proof that this registry, with token auth, is the one listening.
fn wait_ready(child: &mut Child, addr: SocketAddr, realm: &str) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let realm = format!("realm=\"{realm}\"");
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("docker-registry exited: {status}"));
        }
        match ping(addr) {
            Ok(head) if head.starts_with("HTTP/1.1 401") && head.contains(&realm) => return Ok(()),
            Ok(head) => return Err(format!("/v2/ answered, but not as expected:\n{head}")),
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e) => return Err(format!("/v2/ did not answer in {START_TIMEOUT:?}: {e}")),
        }
    }
}

/// The last 8 KiB of the log file at `path`.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(8 * 1024);
    let start = (start..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
    text[start..].to_owned()
}

/// A port that was free a moment ago.
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port on 127.0.0.1")
}

/// `GET /v2/` over a plain socket; the response head.
fn ping(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    Ok(text.split("\r\n\r\n").next().unwrap_or("").to_owned())
}

fn config_yaml(addr: SocketAddr, issuer: &TokenIssuer, storage: &Path, bundle: &Path) -> String {
    format!(
        r#"version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: layerpipe-e2e-not-secret
auth:
  token:
    realm: {realm}
    service: {SERVICE}
    issuer: {ISSUER}
    rootcertbundle: {bundle}
"#,
        storage = storage.display(),
        realm = issuer.realm(),
        bundle = bundle.display(),
    )
}
