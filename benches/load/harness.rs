//! The load benchmark's logic, shared by `cargo bench --bench load` (benches/load/main.rs)
//! and its smoke test (tests/load_bench_smoke.rs). BENCHMARKS.md says what it measures
//! and why; in short: one large blob, served from memory by a fast Bearer-auth origin on
//! loopback, downloaded
//!
//! - directly from the origin (with the token),
//! - through Debian's nginx, as the project's reverse-proxy config has it
//!   (`proxy_buffering off`) and tuned (`proxy_buffering on`, 16 × 256k buffers, no temp
//!   file), adding the `Authorization` header itself,
//! - through the release `layerpipe` binary, with `verify_digests` off and on,
//!
//! interleaved (A B C D E, A B C D E, …), each run with fresh proxy processes so that peak
//! RSS and CPU time belong to that run alone. The client is a hyper 1 client in this
//! process that reads frames and drops them, and for the single stream also `curl`, a
//! client of its own process as a user would run it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest as _, Sha256};

// In the same folder whether this file is the bench's module or the smoke test's `#[path]` one.
#[path = "tls.rs"]
pub mod tls;
#[path = "wan.rs"]
pub mod wan;

const MIB: u64 = 1024 * 1024;
const GIB: f64 = (1024 * 1024 * 1024) as f64;

/// The small blob time-to-first-byte is measured on.
const TTFB_BLOB_BYTES: u64 = 4096;
/// Requests made (and not counted) before the time-to-first-byte samples.
const TTFB_WARMUP: usize = 5;
/// Frames the origin sends: slices of one buffer, no copies.
const ORIGIN_FRAME: usize = 1024 * 1024;
/// The pattern the blobs repeat; larger than any buffer on the path, so nothing can
/// tell it is a repetition.
const PATTERN_BYTES: usize = 16 * 1024 * 1024;
/// No single download may take longer (the benchmark stops by itself).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a started proxy gets to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Media type in the layerpipe download URL (decides only the file name).
const LAYER_MEDIA_TYPE: &str = "application%2Fvnd.oci.image.layer.v1.tar%2Bgzip";
/// Repository the origin serves, and its tag.
const REPOSITORY: &str = "bench/blob";

/// What to measure, and how much.
#[derive(Clone, Debug)]
pub struct Options {
    /// `LOAD_BLOB_MIB`: the single-stream blob (and the one `sha256sum` hashes).
    pub blob_mib: u64,
    /// `LOAD_RUNS`: how many times every measurement is repeated.
    pub runs: usize,
    /// `LOAD_CONCURRENCY`: downloads at once in the aggregate measurement.
    pub concurrency: usize,
    /// `LOAD_CONCURRENT_MIB`: size of each of those downloads.
    pub concurrent_mib: u64,
    /// `LOAD_TTFB_REQUESTS`: time-to-first-byte samples per run and path.
    pub ttfb_requests: usize,
    /// `LOAD_RSS_SMALL_MIB`, `LOAD_RSS_LARGE_MIB`: the two downloads whose peak RSS is
    /// compared (memory must not grow with the blob).
    pub rss_small_mib: u64,
    /// See `rss_small_mib`.
    pub rss_large_mib: u64,
    /// `LOAD_LAYERPIPE`: the layerpipe binary.
    pub layerpipe: PathBuf,
    /// `LOAD_NGINX`: the nginx binary.
    pub nginx: PathBuf,
    /// Where `deploy/nginx.conf` would be.
    pub project_dir: PathBuf,
    /// `LOAD_PERF_DIR`: when set, after the last run, `perf stat`, `perf record -g` and
    /// `strace` (I/O system calls) are attached in turn to each proxy during one more
    /// single-stream download each, and their output is left in this directory.
    pub perf_dir: Option<PathBuf>,
    /// `LOAD_VARIANTS=name=/path/to/layerpipe,…`: other layerpipe builds measured in the
    /// same interleaved runs (verify_digests off), to try a change against the same noise.
    /// `LOAD_VARIANT_<NAME>_JSON='"key":value,'` (the name upper-cased, other characters
    /// as `_`) adds config keys to that variant's config, to try a setting rather than a
    /// build.
    pub variants: Vec<Variant>,
}

/// One `LOAD_VARIANTS` entry.
#[derive(Clone, Debug)]
pub struct Variant {
    /// The row's name.
    pub name: String,
    /// The layerpipe binary.
    pub binary: PathBuf,
    /// `"key":value,` text put first in its config object, or empty.
    pub extra_config: String,
}

impl Variant {
    /// The environment variable that holds a variant's extra config keys.
    fn config_var(name: &str) -> String {
        let upper: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        format!("LOAD_VARIANT_{upper}_JSON")
    }
}

impl Options {
    /// The full-size defaults, overridden by the `LOAD_*` environment variables.
    pub fn from_env(layerpipe: &str, project_dir: &str) -> Result<Options, String> {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
            match std::env::var(name) {
                Ok(v) => v.trim().parse().map_err(|_| format!("{name}={v:?} is not a valid number")),
                Err(_) => Ok(default),
            }
        }
        let options = Options {
            blob_mib: var("LOAD_BLOB_MIB", 1024)?,
            runs: var("LOAD_RUNS", 3)?,
            concurrency: var("LOAD_CONCURRENCY", 64)?,
            concurrent_mib: var("LOAD_CONCURRENT_MIB", 64)?,
            ttfb_requests: var("LOAD_TTFB_REQUESTS", 200)?,
            rss_small_mib: var("LOAD_RSS_SMALL_MIB", 256)?,
            rss_large_mib: var("LOAD_RSS_LARGE_MIB", 4096)?,
            layerpipe: std::env::var_os("LOAD_LAYERPIPE").map_or_else(|| PathBuf::from(layerpipe), PathBuf::from),
            nginx: std::env::var_os("LOAD_NGINX").map_or_else(|| PathBuf::from("/usr/sbin/nginx"), PathBuf::from),
            project_dir: PathBuf::from(project_dir),
            perf_dir: std::env::var_os("LOAD_PERF_DIR").map(PathBuf::from),
            variants: match std::env::var("LOAD_VARIANTS") {
                Ok(list) => list
                    .split(',')
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| {
                        let (name, path) = v
                            .split_once('=')
                            .ok_or_else(|| format!("LOAD_VARIANTS: {v:?} is not name=/path/to/layerpipe"))?;
                        let name = name.trim().to_owned();
                        let extra_config = std::env::var(Variant::config_var(&name)).unwrap_or_default();
                        Ok(Variant { name, binary: PathBuf::from(path.trim()), extra_config })
                    })
                    .collect::<Result<_, String>>()?,
                Err(_) => Vec::new(),
            },
        };
        options.check()?;
        Ok(options)
    }

    fn check(&self) -> Result<(), String> {
        if self.runs == 0
            || self.concurrency == 0
            || self.ttfb_requests == 0
            || [self.blob_mib, self.concurrent_mib, self.rss_small_mib, self.rss_large_mib].contains(&0)
        {
            return Err("every LOAD_* size and count must be at least 1".into());
        }
        Ok(())
    }
}

/// Fails with the message the project uses everywhere when nginx is missing.
pub fn require_nginx(nginx: &Path) -> Result<(), String> {
    if nginx.is_file() {
        Ok(())
    } else {
        Err("nginx not installed: run apt-get install -y nginx-light".into())
    }
}

// ---------------------------------------------------------------------------------------
// Blobs: one pseudo-random pattern, repeated; every blob is a prefix of the repetition.

/// The blobs the origin serves, by digest.
struct Blobs {
    pattern: Bytes,
    /// size → `sha256:…`
    digests: HashMap<u64, String>,
    /// `sha256:…` → size
    sizes: HashMap<String, u64>,
}

impl Blobs {
    fn new(sizes: &[u64]) -> Blobs {
        let pattern = pseudo_random(PATTERN_BYTES, 0x6c61_7965_7270_6970);
        let mut sorted = sizes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        // One pass over the longest blob, with the hash of each shorter one taken on the
        // way (they are its prefixes).
        let mut hasher = Sha256::new();
        let mut position = 0u64;
        let mut digests = HashMap::new();
        for &size in &sorted {
            while position < size {
                let (offset, n) = pattern_span(pattern.len(), position, size, usize::MAX);
                hasher.update(&pattern[offset..offset + n]);
                position += n as u64;
            }
            digests.insert(size, format!("sha256:{}", hex(&hasher.clone().finalize())));
        }
        let sizes = digests.iter().map(|(s, d)| (d.clone(), *s)).collect();
        Blobs { pattern, digests, sizes }
    }

    fn digest(&self, size: u64) -> &str {
        &self.digests[&size]
    }

    /// Writes the blob of `size` bytes to `path`.
    fn write(&self, size: u64, path: &Path) -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut position = 0;
        while position < size {
            let (offset, n) = pattern_span(self.pattern.len(), position, size, usize::MAX);
            std::io::Write::write_all(&mut file, &self.pattern[offset..offset + n])?;
            position += n as u64;
        }
        std::io::Write::flush(&mut file)
    }
}

/// Where in the pattern the bytes at `position` are, and how many to take at once.
fn pattern_span(pattern_len: usize, position: u64, size: u64, max: usize) -> (usize, usize) {
    let offset = (position % pattern_len as u64) as usize;
    let left = usize::try_from(size - position).unwrap_or(usize::MAX);
    (offset, (pattern_len - offset).min(left).min(max))
}

fn pseudo_random(len: usize, seed: u64) -> Bytes {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

// ---------------------------------------------------------------------------------------
// The origin: a registry's auth and blob routes, blobs from memory.

struct OriginState {
    port: u16,
    authorization: HeaderValue,
    token_json: Bytes,
    blobs: Arc<Blobs>,
    token_requests: AtomicUsize,
}

/// The fake registry every path downloads from.
struct Origin {
    state: Arc<OriginState>,
    accept: tokio::task::JoinHandle<()>,
}

impl Origin {
    async fn start(blobs: Arc<Blobs>) -> Result<Origin, String> {
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

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.state.port)
    }

    fn token(&self) -> &str {
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

// ---------------------------------------------------------------------------------------
// The client: hyper 1, frames read and dropped.

type BenchClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> BenchClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector)
}

/// One finished download.
struct Download {
    /// From sending the request to the first byte of the body.
    first_byte: Duration,
    /// From sending the request to the last byte.
    elapsed: Duration,
}

/// Where a path downloads a blob from.
#[derive(Clone)]
struct Endpoint {
    /// `http://127.0.0.1:P`
    base: String,
    /// `Bearer …` for the origin itself; proxies authenticate on their own.
    authorization: Option<HeaderValue>,
    /// True for layerpipe's `/download?…` URLs, false for the registry API's.
    layerpipe: bool,
}

impl Endpoint {
    fn url(&self, origin_host: &str, digest: &str) -> String {
        if self.layerpipe {
            format!(
                "{}/download?image={}%2F{}%3Alatest&digest={digest}&layer=1&mt={LAYER_MEDIA_TYPE}",
                self.base,
                origin_host.replace(':', "%3A"),
                REPOSITORY.replace('/', "%2F"),
            )
        } else {
            format!("{}/v2/{REPOSITORY}/blobs/{digest}", self.base)
        }
    }
}

async fn download(
    client: &BenchClient,
    url: &str,
    authorization: Option<&HeaderValue>,
    size: u64,
) -> Result<Download, String> {
    let fetch = async {
        let started = Instant::now();
        let mut request = Request::get(url).body(Empty::new()).map_err(|e| e.to_string())?;
        if let Some(auth) = authorization {
            request.headers_mut().insert(header::AUTHORIZATION, auth.clone());
        }
        let response = client.request(request).await.map_err(|e| format!("GET {url}: {e}"))?;
        if response.status() != StatusCode::OK {
            let status = response.status();
            let body = response.into_body().collect().await.map(|c| c.to_bytes());
            let body = body.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            return Err(format!("GET {url}: {status}: {}", body.trim()));
        }
        let mut body = response.into_body();
        let mut first_byte = None;
        let mut received = 0u64;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| format!("GET {url}: the body broke after {received} of {size} bytes: {e}"))?;
            if let Some(data) = frame.data_ref() {
                if first_byte.is_none() && !data.is_empty() {
                    first_byte = Some(started.elapsed());
                }
                received += data.len() as u64;
            }
        }
        let elapsed = started.elapsed();
        if received != size {
            return Err(format!("GET {url}: {received} bytes, expected {size}"));
        }
        Ok(Download { first_byte: first_byte.unwrap_or(elapsed), elapsed })
    };
    tokio::time::timeout(DOWNLOAD_TIMEOUT, fetch)
        .await
        .map_err(|_| format!("GET {url}: not done within {DOWNLOAD_TIMEOUT:?}"))?
}

/// One download by `curl` (its own process, output to /dev/null): MB/s as curl measures
/// it, `speed_download`, bytes over the transfer from the request to the last byte.
fn curl_download(url: &str, authorization: Option<&HeaderValue>, size: u64) -> Result<f64, String> {
    let mut command = Command::new("curl");
    command.args([
        "-s",
        "-o",
        "/dev/null",
        "--max-time",
        "600",
        "-w",
        "%{http_code} %{size_download} %{speed_download}",
    ]);
    if let Some(auth) = authorization {
        command.arg("-H").arg(format!("Authorization: {}", auth.to_str().map_err(|e| e.to_string())?));
    }
    let output = command
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run curl ({e}): apt-get install -y curl"))?;
    let written = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = written.split_whitespace().collect();
    let [status, bytes, speed] = fields[..] else {
        return Err(format!("curl {url}: {} and {written:?}", output.status));
    };
    if status != "200" || bytes.parse::<u64>().ok() != Some(size) {
        return Err(format!("curl {url}: status {status}, {bytes} bytes, expected 200 and {size}"));
    }
    let speed: f64 = speed.parse().map_err(|_| format!("curl {url}: speed {speed:?}"))?;
    Ok(speed / 1e6)
}

// ---------------------------------------------------------------------------------------
// Proxy processes, and what /proc says about them.

/// A proxy running as its own process.
struct Proxy {
    child: Child,
    /// The process that moves the bytes (nginx: the worker, not the master).
    worker: u32,
    port: u16,
    dir: PathBuf,
    nginx: bool,
}

impl Proxy {
    fn start_layerpipe(binary: &Path, dir: &Path, origin_host: &str, verify: bool) -> Result<Proxy, String> {
        Proxy::start_layerpipe_with(binary, dir, origin_host, verify, "")
    }

    /// Like [`Proxy::start_layerpipe`], with `extra` (`"key":value,…`) added to its config.
    fn start_layerpipe_with(
        binary: &Path,
        dir: &Path,
        origin_host: &str,
        verify: bool,
        extra: &str,
    ) -> Result<Proxy, String> {
        let registry = format!(r#""{origin_host}":{{"endpoint":"http://{origin_host}"}}"#);
        Proxy::start_layerpipe_config(
            binary,
            dir,
            &format!(r#"{{{extra}"verify_digests":{verify},"index":{{"dir":""}},"registries":{{{registry}}}}}"#),
        )
    }

    /// layerpipe with this whole JSON `config`.
    fn start_layerpipe_config(binary: &Path, dir: &Path, config: &str) -> Result<Proxy, String> {
        if !binary.is_file() {
            return Err(format!("{} does not exist: run cargo build --release", binary.display()));
        }
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let config_text = config;
        let config = dir.join("layerpipe.json");
        std::fs::write(&config, config_text).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.join("layerpipe.log")).map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", std::env::var("LOAD_LAYERPIPE_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let worker = child.id();
        let mut proxy = Proxy { child, worker, port, dir: dir.to_owned(), nginx: false };
        proxy.wait_until_listening("layerpipe.log")?;
        Ok(proxy)
    }

    fn start_nginx(
        binary: &Path,
        dir: &Path,
        origin_host: &str,
        token: &str,
        directives: &[String],
        concurrency: usize,
    ) -> Result<Proxy, String> {
        require_nginx(binary)?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let prefix = dir.display();
        let location: String = directives.iter().map(|d| format!("      {d}\n")).collect();
        let config = format!(
            "pid {prefix}/nginx.pid;
events {{ worker_connections {connections}; }}
http {{
  access_log {prefix}/access.log;
  client_body_temp_path {prefix}/client_body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  upstream origin {{ server {origin_host}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
{location}      proxy_pass http://origin;
      # nginx cannot do the registry's token dance: the token is fixed here.
      proxy_set_header Authorization \"Bearer {token}\";
    }}
  }}
}}
",
            connections = (4 * concurrency).max(1024),
        );
        Proxy::start_nginx_config(binary, dir, port, &config)
    }

    /// nginx with this whole `config` (which listens on 127.0.0.1:`port`), its worker
    /// measured.
    fn start_nginx_config(binary: &Path, dir: &Path, port: u16, config: &str) -> Result<Proxy, String> {
        require_nginx(binary)?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("nginx.conf"), config).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("stderr.log")).map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-g")
            .arg("daemon off; master_process on; worker_processes 1;")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let master = child.id();
        let mut proxy = Proxy { child, worker: master, port, dir: dir.to_owned(), nginx: true };
        proxy.wait_until_listening("error.log")?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(worker) = children(master).first() {
                proxy.worker = *worker;
                return Ok(proxy);
            }
            if Instant::now() > deadline {
                return Err("nginx started no worker process".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_until_listening(&mut self, log: &str) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join(log)).unwrap_or_default();
                return Err(format!("the proxy exited ({status}) at start: {log}"));
            }
            if StdStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("the proxy did not listen on {address}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.nginx {
            // TERM to the master: it stops its worker (a KILL would orphan the worker).
            let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = Command::new("kill").arg("-KILL").arg(self.worker.to_string()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    let listener = StdListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// The fields of /proc/PID/stat after the command name (field 3, state, is index 0).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| stat_fields(child).and_then(|f| f.get(1)?.parse::<u32>().ok()) == Some(pid))
        .collect()
}

/// User + system CPU time of `pid` (all its threads), in seconds.
fn cpu_seconds(pid: u32, ticks_per_second: f64) -> Result<f64, String> {
    let fields = stat_fields(pid).ok_or_else(|| format!("no /proc/{pid}/stat"))?;
    let ticks = |i: usize| -> Result<u64, String> {
        fields.get(i).and_then(|t| t.parse().ok()).ok_or_else(|| format!("/proc/{pid}/stat has no field {}", i + 3))
    };
    // utime and stime are fields 14 and 15.
    Ok((ticks(11)? + ticks(12)?) as f64 / ticks_per_second)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Sets the peak RSS (VmHWM) of `pid` back to its current RSS.
fn reset_peak_rss(pid: u32) -> Result<(), String> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .map_err(|e| format!("cannot reset the peak RSS of {pid} (/proc/{pid}/clear_refs): {e}"))
}

/// VmHWM of `pid`, in MiB.
fn peak_rss_mib(pid: u32) -> Result<f64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("/proc/{pid}/status has no VmHWM"))?;
    Ok(kib / 1024.0)
}

// ---------------------------------------------------------------------------------------
// nginx configurations.

/// The directives of the project's nginx `location` that proxies to layerpipe, and where
/// they came from: `deploy/nginx.conf` when the repository has one, else the equivalent
/// written here.
fn project_nginx_directives(project_dir: &Path) -> (String, Vec<String>) {
    let path = project_dir.join("deploy/nginx.conf");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Some(directives) = proxy_location_directives(&text) {
            return ("deploy/nginx.conf".into(), directives);
        }
    }
    // deploy/nginx.conf does not exist (or has no proxying location): this is what README
    // describes — layerpipe behind a reverse proxy, HTTP/1.1 upstream, the body streamed
    // through as it arrives (proxy_buffering off) rather than buffered.
    let builtin = [
        "proxy_http_version 1.1;",
        "proxy_set_header Connection \"\";",
        "proxy_set_header Host $host;",
        "proxy_buffering off;",
        "proxy_request_buffering off;",
        "proxy_read_timeout 300s;",
    ];
    ("project-equivalent".into(), builtin.iter().map(|d| (*d).to_owned()).collect())
}

/// The `proxy_*` directives (except `proxy_pass`, which the benchmark points at the
/// origin) of the first `location` block with a `proxy_pass`.
fn proxy_location_directives(config: &str) -> Option<Vec<String>> {
    let text: String = config.lines().map(|l| l.split('#').next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut rest = text.as_str();
    while let Some(at) = rest.find("location") {
        let after = &rest[at..];
        let open = after.find('{')?;
        let body_start = at + open + 1;
        // The block's end, counting nested braces.
        let mut depth = 1;
        let mut end = None;
        for (i, c) in rest[body_start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(body_start + i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end?;
        let body = &rest[body_start..end];
        if body.contains("proxy_pass") {
            let directives = body
                .split(';')
                .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|d| d.starts_with("proxy_") && !d.starts_with("proxy_pass "))
                .map(|d| format!("{d};"))
                .collect();
            return Some(directives);
        }
        rest = &rest[end + 1..];
    }
    None
}

/// The project's directives with buffering turned on, as a user tuning nginx for large
/// downloads would set it (issue 13): a 256k first buffer, 16 × 256k buffers per request,
/// 512k of them busy sending at once, and no temp file, so nginx reads ahead of a slow
/// client in large reads without touching the disk.
fn tuned(directives: &[String]) -> Vec<String> {
    let replaced = [
        "proxy_buffering ",
        "proxy_buffer_size ",
        "proxy_buffers ",
        "proxy_busy_buffers_size ",
        "proxy_max_temp_file_size ",
    ];
    directives
        .iter()
        .filter(|d| !replaced.iter().any(|r| d.starts_with(r)))
        .cloned()
        .chain(
            [
                "proxy_buffering on;",
                "proxy_buffer_size 256k;",
                "proxy_buffers 16 256k;",
                "proxy_busy_buffers_size 512k;",
                "proxy_max_temp_file_size 0;",
            ]
            .map(str::to_owned),
        )
        .collect()
}

// ---------------------------------------------------------------------------------------
// The measurements.

/// How one path reaches the origin.
enum Via {
    /// The client itself, with the token.
    Direct,
    /// nginx with these directives in its proxying `location`.
    Nginx(Vec<String>),
    /// This layerpipe binary, verify_digests on or off, with these extra config keys.
    Layerpipe(PathBuf, bool, String),
}

/// One path measured: its row label, a short name for its files, and how it goes.
struct Route {
    label: String,
    slug: String,
    via: Via,
}

/// The paths measured, in the order they are interleaved: direct, nginx as the project
/// configures it, nginx tuned, layerpipe with verify_digests off and on, then any
/// `LOAD_VARIANTS` (other layerpipe builds, verify_digests off).
fn routes(options: &Options, nginx_source: &str, project: Vec<String>) -> Vec<Route> {
    let route = |label: String, slug: &str, via| Route { label, slug: slug.to_owned(), via };
    let layerpipe = &options.layerpipe;
    let mut routes = vec![
        route("direct (origin, token in the client)".into(), "direct", Via::Direct),
        route(format!("nginx, {nginx_source} (proxy_buffering off)"), "nginx-project", Via::Nginx(project.clone())),
        route(
            "nginx, tuned (buffering on, 256k + 16×256k, busy 512k, no temp file)".into(),
            "nginx-tuned",
            Via::Nginx(tuned(&project)),
        ),
        route(
            "layerpipe, verify_digests off".into(),
            "layerpipe-off",
            Via::Layerpipe(layerpipe.clone(), false, String::new()),
        ),
        route(
            "layerpipe, verify_digests on".into(),
            "layerpipe-on",
            Via::Layerpipe(layerpipe.clone(), true, String::new()),
        ),
    ];
    for Variant { name, binary, extra_config } in &options.variants {
        routes.push(route(
            format!("layerpipe variant {name}, verify_digests off"),
            &format!("variant-{name}"),
            Via::Layerpipe(binary.clone(), false, extra_config.clone()),
        ));
    }
    routes
}

/// Every sample of one path, one entry per run.
#[derive(Default, Clone, Debug)]
pub struct Samples {
    pub single_mbps: Vec<f64>,
    pub cpu_per_gib: Vec<f64>,
    /// The single stream again with curl as the client: MB/s, and the proxy's CPU per GiB.
    pub curl_mbps: Vec<f64>,
    pub curl_cpu_per_gib: Vec<f64>,
    /// CPU of this process (origin and client) per GiB of the single stream.
    pub bench_cpu_per_gib: Vec<f64>,
    pub rss_single: Vec<f64>,
    pub rss_small: Vec<f64>,
    pub rss_large: Vec<f64>,
    pub aggregate_mbps: Vec<f64>,
    pub rss_concurrent: Vec<f64>,
    pub ttfb_median_ms: Vec<f64>,
    pub ttfb_p99_ms: Vec<f64>,
}

/// What a benchmark run found.
#[derive(Clone, Debug)]
pub struct Report {
    pub options: Options,
    /// Where the project nginx config came from.
    pub nginx_source: String,
    /// In the order of `routes`: direct, nginx project, nginx tuned, layerpipe off, on,
    /// then the variants.
    pub rows: Vec<(String, Samples)>,
    /// `sha256sum` over the single-stream blob in a file (page cache), MB/s per run.
    pub sha256sum_mbps: Vec<f64>,
    /// `openssl dgst -sha256` over the same file, MB/s per run: one core's SHA-256 at
    /// OpenSSL's speed, what verification is measured against.
    pub openssl_mbps: Vec<f64>,
    /// Token requests the origin answered during the time-to-first-byte samples (0 when
    /// the cache was warm, as it should be).
    pub tokens_during_ttfb: usize,
    /// Where perf output was left, when asked for.
    pub perf_dir: Option<PathBuf>,
    /// With `LOAD_PERF_DIR`: per proxy, `epoll_wait`, `futex` and read calls per GiB of
    /// one curl download under `strace -f -c`.
    pub syscalls: Vec<(String, [f64; 3])>,
}

fn mbps(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e6
}

/// Runs the whole benchmark; see the module docs.
pub fn run(options: &Options) -> Result<Report, String> {
    options.check()?;
    require_nginx(&options.nginx)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let single = options.blob_mib * MIB;
    let concurrent = options.concurrent_mib * MIB;
    let (rss_small, rss_large) = (options.rss_small_mib * MIB, options.rss_large_mib * MIB);
    let blobs = Arc::new(Blobs::new(&[single, concurrent, rss_small, rss_large, TTFB_BLOB_BYTES]));
    let origin = runtime.block_on(Origin::start(blobs.clone()))?;
    let origin_host = origin.host();
    let client = client();
    let ticks = clock_ticks();

    let work = tempfile::Builder::new().prefix("layerpipe-load-").tempdir().map_err(|e| e.to_string())?;
    // nginx's worker runs as `nobody` when started by root: let it through.
    set_mode(work.path(), 0o755)?;
    let blob_file = work.path().join("blob");
    blobs.write(single, &blob_file).map_err(|e| format!("cannot write the blob for sha256sum: {e}"))?;

    let (nginx_source, project) = project_nginx_directives(&options.project_dir);
    let routes = routes(options, &nginx_source, project);
    let mut samples: Vec<Samples> = vec![Samples::default(); routes.len()];
    let mut sha256sum_mbps = Vec::new();
    let mut openssl_mbps = Vec::new();
    let mut tokens_during_ttfb = 0;
    let mut syscalls = Vec::new();

    for run in 0..options.runs {
        let dir = work.path().join(format!("run{run}"));
        let proxies = routes
            .iter()
            .map(|route| {
                let dir = dir.join(&route.slug);
                match &route.via {
                    Via::Direct => Ok(None),
                    Via::Nginx(directives) => Proxy::start_nginx(
                        &options.nginx,
                        &dir,
                        &origin_host,
                        origin.token(),
                        directives,
                        options.concurrency,
                    )
                    .map(Some),
                    Via::Layerpipe(binary, verify, extra) => {
                        Proxy::start_layerpipe_with(binary, &dir, &origin_host, *verify, extra).map(Some)
                    }
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        let endpoints: Vec<Endpoint> = proxies
            .iter()
            .map(|proxy| match proxy {
                None => Endpoint {
                    base: format!("http://{origin_host}"),
                    authorization: Some(origin.state.authorization.clone()),
                    layerpipe: false,
                },
                Some(p) => Endpoint { base: p.base(), authorization: None, layerpipe: !p.nginx },
            })
            .collect();
        let get = |i: usize, size: u64| {
            let endpoint = &endpoints[i];
            let url = endpoint.url(&origin_host, blobs.digest(size));
            let client = client.clone();
            let authorization = endpoint.authorization.clone();
            async move { download(&client, &url, authorization.as_ref(), size).await }
        };

        // Warm up: the ping and token fetch, and a pooled connection, on every path.
        for i in 0..routes.len() {
            runtime.block_on(get(i, TTFB_BLOB_BYTES))?;
        }

        // A B C D E: one large stream each; the proxy's CPU time and peak RSS meanwhile.
        for (i, proxy) in proxies.iter().enumerate() {
            if let Some(p) = proxy {
                reset_peak_rss(p.worker)?;
            }
            let cpu_before = proxy.as_ref().map(|p| cpu_seconds(p.worker, ticks)).transpose()?;
            let bench_before = cpu_seconds(std::process::id(), ticks)?;
            let d = runtime.block_on(get(i, single))?;
            samples[i].single_mbps.push(mbps(single, d.elapsed));
            let bench_used = cpu_seconds(std::process::id(), ticks)? - bench_before;
            samples[i].bench_cpu_per_gib.push(bench_used / (single as f64 / GIB));
            if let (Some(p), Some(before)) = (proxy, cpu_before) {
                let used = cpu_seconds(p.worker, ticks)? - before;
                samples[i].cpu_per_gib.push(used / (single as f64 / GIB));
                samples[i].rss_single.push(peak_rss_mib(p.worker)?);
            }
        }
        // A B C D E again, with curl as the client.
        for (i, proxy) in proxies.iter().enumerate() {
            let endpoint = &endpoints[i];
            let url = endpoint.url(&origin_host, blobs.digest(single));
            let cpu_before = proxy.as_ref().map(|p| cpu_seconds(p.worker, ticks)).transpose()?;
            samples[i].curl_mbps.push(curl_download(&url, endpoint.authorization.as_ref(), single)?);
            if let (Some(p), Some(before)) = (proxy, cpu_before) {
                let used = cpu_seconds(p.worker, ticks)? - before;
                samples[i].curl_cpu_per_gib.push(used / (single as f64 / GIB));
            }
        }
        sha256sum_mbps.push(time_hashing(&["sha256sum"], &blob_file, single)?);
        openssl_mbps.push(time_hashing(&["openssl", "dgst", "-sha256"], &blob_file, single)?);

        // Peak RSS of a small and a large download, each from a reset.
        for (i, proxy) in proxies.iter().enumerate() {
            let Some(p) = proxy else { continue };
            for (size, into) in [(rss_small, 0), (rss_large, 1)] {
                reset_peak_rss(p.worker)?;
                runtime.block_on(get(i, size))?;
                let peak = peak_rss_mib(p.worker)?;
                if into == 0 {
                    samples[i].rss_small.push(peak);
                } else {
                    samples[i].rss_large.push(peak);
                }
            }
        }

        // Many streams at once: aggregate throughput and peak RSS.
        for (i, proxy) in proxies.iter().enumerate() {
            if let Some(p) = proxy {
                reset_peak_rss(p.worker)?;
            }
            let started = Instant::now();
            runtime.block_on(async {
                let tasks: Vec<_> = (0..options.concurrency).map(|_| tokio::spawn(get(i, concurrent))).collect();
                for task in tasks {
                    task.await.map_err(|e| e.to_string())??;
                }
                Ok::<_, String>(())
            })?;
            let elapsed = started.elapsed();
            samples[i].aggregate_mbps.push(mbps(concurrent * options.concurrency as u64, elapsed));
            if let Some(p) = proxy {
                samples[i].rss_concurrent.push(peak_rss_mib(p.worker)?);
            }
        }

        // Time to first byte of a small blob, tokens cached, connections pooled.
        for (i, sample) in samples.iter_mut().enumerate() {
            let tokens_before = origin.state.token_requests.load(Ordering::Relaxed);
            let mut times = runtime.block_on(async {
                for _ in 0..TTFB_WARMUP {
                    get(i, TTFB_BLOB_BYTES).await?;
                }
                let mut times = Vec::with_capacity(options.ttfb_requests);
                for _ in 0..options.ttfb_requests {
                    let d = get(i, TTFB_BLOB_BYTES).await?;
                    times.push(d.first_byte.as_secs_f64() * 1000.0);
                }
                Ok::<_, String>(times)
            })?;
            tokens_during_ttfb += origin.state.token_requests.load(Ordering::Relaxed) - tokens_before;
            times.sort_by(f64::total_cmp);
            sample.ttfb_median_ms.push(percentile(&times, 0.5));
            sample.ttfb_p99_ms.push(percentile(&times, 0.99));
        }

        if run + 1 == options.runs {
            if let Some(perf_dir) = &options.perf_dir {
                let curl = |i: usize| {
                    let endpoint = &endpoints[i];
                    curl_download(
                        &endpoint.url(&origin_host, blobs.digest(single)),
                        endpoint.authorization.as_ref(),
                        single,
                    )
                };
                runtime.block_on(async { profile(perf_dir, &routes, &proxies, &|i| get(i, single), &curl).await })?;
                syscalls = syscall_counts(perf_dir, &routes, single);
            }
        }
        drop(proxies);
    }
    drop(origin);

    Ok(Report {
        options: options.clone(),
        nginx_source,
        rows: routes.into_iter().map(|r| r.label).zip(samples).collect(),
        sha256sum_mbps,
        openssl_mbps,
        tokens_during_ttfb,
        perf_dir: options.perf_dir.clone(),
        syscalls,
    })
}

/// `perf stat`, `perf record -g` and `strace` (the I/O system calls, with their sizes),
/// each attached to a proxy for one more large download; output goes to `dir`. Then
/// `strace -f -c` (system call counts, all threads) during one more, with curl as the
/// client: `SLUG.syscalls.txt`.
async fn profile<F, Fut>(
    dir: &Path,
    routes: &[Route],
    proxies: &[Option<Proxy>],
    get: &F,
    curl: &dyn Fn(usize) -> Result<f64, String>,
) -> Result<(), String>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<Download, String>>,
{
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for (i, proxy) in proxies.iter().enumerate() {
        let Some(p) = proxy else { continue };
        let pid = p.worker.to_string();
        let out = |suffix: &str| dir.join(format!("{}.{suffix}", routes[i].slug)).display().to_string();
        let (stat, record, strace) = (out("stat.txt"), out("perf.data"), out("strace.txt"));
        let tools = [
            ("perf", vec!["stat", "-d", "-p", &pid, "-o", &stat]),
            ("perf", vec!["record", "-g", "-F", "999", "-p", &pid, "-o", &record]),
            (
                "strace",
                vec![
                    "-f",
                    "-qq",
                    "-e",
                    "trace=read,readv,recvfrom,recvmsg,write,writev,sendto,sendmsg,epoll_wait,epoll_pwait",
                    "-p",
                    &pid,
                    "-o",
                    &strace,
                ],
            ),
        ];
        for (program, args) in tools {
            let mut tool = Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot run {program}: {e}"))?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let result = get(i).await;
            let _ = Command::new("kill").arg("-INT").arg(tool.id().to_string()).status();
            let _ = tool.wait();
            result?;
        }
        let counts = out("syscalls.txt");
        let mut strace = Command::new("strace")
            .args(["-f", "-c", "-o", &counts, "-p", &pid])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run strace: {e}"))?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let result = curl(i);
        let _ = Command::new("kill").arg("-INT").arg(strace.id().to_string()).status();
        let _ = strace.wait();
        result?;
    }
    Ok(())
}

/// `epoll_wait` (and `epoll_pwait`), `futex` and read calls per GiB, from each proxy's
/// `strace -c` summary left by [`profile`].
fn syscall_counts(dir: &Path, routes: &[Route], bytes: u64) -> Vec<(String, [f64; 3])> {
    let per_gib = bytes as f64 / GIB;
    routes
        .iter()
        .filter_map(|route| {
            let text = std::fs::read_to_string(dir.join(format!("{}.syscalls.txt", route.slug))).ok()?;
            let mut counts = [0.0; 3];
            for line in text.lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // % time, seconds, usecs/call, calls, [errors,] syscall
                let (Some(name), Some(calls)) = (fields.last(), fields.get(3).and_then(|c| c.parse::<f64>().ok()))
                else {
                    continue;
                };
                let slot = match *name {
                    "epoll_wait" | "epoll_pwait" | "epoll_pwait2" => 0,
                    "futex" => 1,
                    "read" | "readv" | "recvfrom" | "recvmsg" => 2,
                    _ => continue,
                };
                counts[slot] += calls / per_gib;
            }
            Some((route.label.clone(), counts))
        })
        .collect()
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The speed of `command FILE` (a hashing program), process start to exit, the file in
/// the page cache (it was just written).
fn time_hashing(command: &[&str], file: &Path, size: u64) -> Result<f64, String> {
    let started = Instant::now();
    let output = Command::new(command[0])
        .args(&command[1..])
        .arg(file)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", command[0]))?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        return Err(format!("{} failed: {}", command.join(" "), output.status));
    }
    Ok(mbps(size, elapsed))
}

/// The `p` quantile of sorted `values` (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------
// The table.

/// Median, min and max.
fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    Some((median, sorted[0], sorted[n - 1]))
}

fn median(values: &[f64]) -> Option<f64> {
    spread(values).map(|(m, _, _)| m)
}

fn cell(values: &[f64], decimals: usize) -> String {
    match spread(values) {
        None => "—".into(),
        Some((m, lo, hi)) if values.len() == 1 || lo == hi => format!("{m:.decimals$}"),
        Some((m, lo, hi)) => format!("{m:.decimals$} ({lo:.decimals$}–{hi:.decimals$})"),
    }
}

/// The label of every row the table has, in order.
pub fn row_labels(report: &Report) -> Vec<String> {
    let mut labels: Vec<String> = report.rows.iter().map(|(l, _)| l.clone()).collect();
    labels.push(sha256sum_label(&report.options));
    labels.push(openssl_label(&report.options));
    labels
}

fn sha256sum_label(options: &Options) -> String {
    format!("sha256sum, {} MiB file in page cache", options.blob_mib)
}

fn openssl_label(options: &Options) -> String {
    format!("openssl dgst -sha256, {} MiB file in page cache", options.blob_mib)
}

impl Report {
    /// The results as one markdown table, then the targets.
    pub fn markdown(&self) -> String {
        let o = &self.options;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| path | 1 stream of {} MiB, MB/s | proxy CPU s/GiB | origin + client CPU s/GiB | curl: 1 stream, MB/s | curl: proxy CPU s/GiB | peak RSS MiB, 1 stream | peak RSS MiB, {} MiB download | peak RSS MiB, {} MiB download | {}×{} MiB at once, aggregate MB/s | peak RSS MiB, {} streams | TTFB ms, median | TTFB ms, p99 |",
            o.blob_mib, o.rss_small_mib, o.rss_large_mib, o.concurrency, o.concurrent_mib, o.concurrency
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (label, s) in &self.rows {
            let _ = writeln!(
                out,
                "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&s.single_mbps, 0),
                cell(&s.cpu_per_gib, 2),
                cell(&s.bench_cpu_per_gib, 2),
                cell(&s.curl_mbps, 0),
                cell(&s.curl_cpu_per_gib, 2),
                cell(&s.rss_single, 1),
                cell(&s.rss_small, 1),
                cell(&s.rss_large, 1),
                cell(&s.aggregate_mbps, 0),
                cell(&s.rss_concurrent, 1),
                cell(&s.ttfb_median_ms, 3),
                cell(&s.ttfb_p99_ms, 3),
            );
        }
        let _ = writeln!(
            out,
            "| {} | {} | — | — | — | — | — | — | — | — | — | — | — |",
            sha256sum_label(o),
            cell(&self.sha256sum_mbps, 0)
        );
        let _ = writeln!(
            out,
            "| {} | {} | — | — | — | — | — | — | — | — | — | — | — |",
            openssl_label(o),
            cell(&self.openssl_mbps, 0)
        );
        out.push('\n');
        out.push_str(&self.targets());
        out
    }

    /// Each target with its numbers, met or not met (medians over the runs).
    pub fn targets(&self) -> String {
        let s = |i: usize| &self.rows[i].1;
        let m = |v: &[f64]| median(v).unwrap_or(f64::NAN);
        let verdict = |ok: bool| if ok { "**met**" } else { "**not met**" };
        let (direct, ngx_p, ngx_t, off, on) = (s(0), s(1), s(2), s(3), s(4));
        let best_nginx = m(&ngx_p.single_mbps).max(m(&ngx_t.single_mbps));
        let lp = m(&off.single_mbps);
        let cpu_nginx = m(&ngx_p.cpu_per_gib).min(m(&ngx_t.cpu_per_gib));
        let ttfb_over = m(&off.ttfb_median_ms) - m(&direct.ttfb_median_ms);
        let ttfb_over_p99 = m(&off.ttfb_p99_ms) - m(&direct.ttfb_p99_ms);
        let sha = m(&self.sha256sum_mbps);
        let o = &self.options;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "- single stream, layerpipe (verify off) ≥ 1.1× the better nginx and ≥ 0.7× direct: {:.2}× nginx, {:.2}× direct — {}",
            lp / best_nginx,
            lp / m(&direct.single_mbps),
            verdict(lp >= 1.1 * best_nginx && lp >= 0.7 * m(&direct.single_mbps))
        );
        let _ = writeln!(
            out,
            "- CPU per GiB ≤ the better nginx's ({cpu_nginx:.2} s): layerpipe {:.2} s (verify on: {:.2} s) — {}",
            m(&off.cpu_per_gib),
            m(&on.cpu_per_gib),
            verdict(m(&off.cpu_per_gib) <= cpu_nginx)
        );
        let curl_nginx = m(&ngx_t.curl_mbps);
        let curl_cpu_nginx = m(&ngx_t.curl_cpu_per_gib);
        let _ = writeln!(
            out,
            "- with curl as the client, layerpipe (verify off) vs tuned nginx: single stream {:.0} vs {curl_nginx:.0} MB/s = {:.2}× (target ≥ 1.0×) — {}; CPU {:.2} vs {curl_cpu_nginx:.2} s/GiB = {:.2}× (target ≤ 1.0×) — {}",
            m(&off.curl_mbps),
            m(&off.curl_mbps) / curl_nginx,
            verdict(m(&off.curl_mbps) >= curl_nginx),
            m(&off.curl_cpu_per_gib),
            m(&off.curl_cpu_per_gib) / curl_cpu_nginx,
            verdict(m(&off.curl_cpu_per_gib) <= curl_cpu_nginx),
        );
        for (label, v) in self.rows.iter().skip(5) {
            let _ = writeln!(
                out,
                "- {label}, against layerpipe verify off in the same runs: hyper client {:.2}× the speed, {:.2}× the CPU per GiB; curl {:.2}× the speed, {:.2}× the CPU per GiB; {}×{} MiB aggregate {:.2}×",
                m(&v.single_mbps) / lp,
                m(&v.cpu_per_gib) / m(&off.cpu_per_gib),
                m(&v.curl_mbps) / m(&off.curl_mbps),
                m(&v.curl_cpu_per_gib) / m(&off.curl_cpu_per_gib),
                o.concurrency,
                o.concurrent_mib,
                m(&v.aggregate_mbps) / m(&off.aggregate_mbps),
            );
        }
        // Every proxied byte is copied by the origin, the proxy (twice) and the client, on
        // a machine with this many cores: what 0.7× direct would leave for the proxy.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
        let at_07 = 0.7 * m(&direct.single_mbps) * 1e6 / GIB;
        let _ = writeln!(
            out,
            "- CPU bound on {cores} cores: origin + client take {:.2} s/GiB direct and {:.2} s/GiB through layerpipe; at 0.7× direct ({:.2} GiB/s) that leaves at most {:.2} s/GiB for any proxy (layerpipe {:.2}, tuned nginx {:.2})",
            m(&direct.bench_cpu_per_gib),
            m(&off.bench_cpu_per_gib),
            at_07,
            cores / at_07 - m(&off.bench_cpu_per_gib),
            m(&off.cpu_per_gib),
            m(&ngx_t.cpu_per_gib),
        );
        let _ = writeln!(
            out,
            "- peak RSS ≤ 32 MiB for one stream: {:.1} MiB (verify on: {:.1}) — {}",
            m(&off.rss_single),
            m(&on.rss_single),
            verdict(m(&off.rss_single).max(m(&on.rss_single)) <= 32.0)
        );
        let _ = writeln!(
            out,
            "- peak RSS ≤ 64 MiB for {} streams: {:.1} MiB (verify on: {:.1}) — {}",
            o.concurrency,
            m(&off.rss_concurrent),
            m(&on.rss_concurrent),
            verdict(m(&off.rss_concurrent).max(m(&on.rss_concurrent)) <= 64.0)
        );
        let grows = |x: &Samples| m(&x.rss_large) - m(&x.rss_small);
        let _ = writeln!(
            out,
            "- a {} MiB download peaks no higher than a {} MiB one (within {RSS_NOISE_MIB} MiB): {:.1} vs {:.1} MiB (verify on: {:.1} vs {:.1}) — {}",
            o.rss_large_mib,
            o.rss_small_mib,
            m(&off.rss_large),
            m(&off.rss_small),
            m(&on.rss_large),
            m(&on.rss_small),
            verdict(grows(off) <= RSS_NOISE_MIB && grows(on) <= RSS_NOISE_MIB)
        );
        let _ = writeln!(
            out,
            "- time-to-first-byte overhead over direct ≤ 1 ms, warm token cache: median +{ttfb_over:.3} ms, p99 +{ttfb_over_p99:.3} ms (verify on: median +{:.3} ms) — {}",
            m(&on.ttfb_median_ms) - m(&direct.ttfb_median_ms),
            verdict(ttfb_over <= 1.0)
        );
        let _ = writeln!(
            out,
            "- verify_digests on vs sha256sum on the same blob: {:.0} vs {sha:.0} MB/s = {:.2}× (on/off: {:.2}×)",
            m(&on.single_mbps),
            m(&on.single_mbps) / sha,
            m(&on.single_mbps) / lp,
        );
        let openssl = m(&self.openssl_mbps);
        let _ = writeln!(
            out,
            "- verify_digests on vs openssl dgst -sha256 on the same blob (target ≥ 0.9×): hyper client {:.0} vs {openssl:.0} MB/s = {:.2}×, curl {:.0} MB/s = {:.2}× — {}",
            m(&on.single_mbps),
            m(&on.single_mbps) / openssl,
            m(&on.curl_mbps),
            m(&on.curl_mbps) / openssl,
            verdict(m(&on.single_mbps).max(m(&on.curl_mbps)) >= 0.9 * openssl),
        );
        let _ = writeln!(
            out,
            "- token requests to the origin during the TTFB samples: {} (0 = the cache stayed warm)",
            self.tokens_during_ttfb
        );
        for (label, [epoll, futex, reads]) in &self.syscalls {
            let _ = writeln!(
                out,
                "- {label}, one curl download under strace -f -c, per GiB: {epoll:.0} epoll_wait, {futex:.0} futex, {reads:.0} reads"
            );
        }
        if let Some(dir) = &self.perf_dir {
            let _ = writeln!(
                out,
                "- perf stat and perf record output: {} (perf report -i FILE --no-children)",
                dir.display()
            );
        }
        out
    }
}

/// Peak RSS is counted in pages and moves with allocator timing: two downloads whose
/// peaks differ by less than this are taken to peak equally.
const RSS_NOISE_MIB: f64 = 1.0;
