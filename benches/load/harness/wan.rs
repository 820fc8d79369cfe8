//! The WAN profile of the load benchmark (`LOAD_PROFILE=wan`): a shaping relay between
//! every path and the origin caps each TCP connection's rate and delays the first bytes
//! of each response, as a CDN link does where one connection gets a fraction of the
//! pipe. One blob is downloaded, interleaved, over three paths:
//!
//! - direct: the client through the relay, one connection (the token in the client);
//! - nginx, tuned, proxying through the relay;
//! - layerpipe (verify_digests on, multipart defaults with `split_local_links` on, since
//!   the relay is on loopback, unless `LOAD_WAN_LAYERPIPE_JSON`
//!   adds keys), reaching the registry through the relay.
//!
//! Settings: `LOAD_WAN_RATE_MBPS` (per connection, MB/s, default 25),
//! `LOAD_WAN_DELAY_MS` (first-byte delay, default 30), `LOAD_BLOB_MIB` (default 256 in
//! this profile), `LOAD_RUNS`. Every download is hashed by the client and must match.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::blobs::{hex, Blobs, TTFB_BLOB_BYTES};
use super::client::{client, BenchClient, Endpoint};
use super::nginx::{project_nginx_directives, tuned};
use super::options::{require_nginx, Options};
use super::origin::Origin;
use super::procfs::{peak_rss_mib, reset_peak_rss};
use super::proxy::{set_mode, Proxy};
use super::report::{cell, mbps, median, MIB};

/// The relay's settings.
#[derive(Clone, Copy, Debug)]
pub struct Shaping {
    /// Bytes per second each connection may carry towards the client.
    pub rate: u64,
    /// Added before the first bytes of each response.
    pub delay: Duration,
}

/// A TCP relay to `origin` that shapes what flows back; see the module docs.
struct Relay {
    port: u16,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(origin: SocketAddr, shaping: Shaping) -> Result<Relay, String> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("relay: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                tokio::spawn(async move {
                    let Ok(upstream) = TcpStream::connect(origin).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = upstream.set_nodelay(true);
                    relay(client, upstream, shaping).await;
                });
            }
        });
        Ok(Relay { port, accept })
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// How much the relay moves at once: small, so that the rate is smooth.
const RELAY_READ: usize = 16 * 1024;

/// Requests pass as they are; responses are delayed and paced.
async fn relay(client: TcpStream, upstream: TcpStream, shaping: Shaping) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    // Set when a request went up: the next bytes back are a response's first.
    let asked = Arc::new(AtomicBool::new(false));
    let asked_up = asked.clone();
    let up = async move {
        let mut buf = vec![0u8; RELAY_READ];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            asked_up.store(true, Ordering::SeqCst);
            if upstream_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = upstream_write.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; RELAY_READ];
        // When the next bytes may go. An idle connection saves no budget for a burst.
        let mut next = Instant::now();
        loop {
            let n = match upstream_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if asked.swap(false, Ordering::SeqCst) {
                tokio::time::sleep(shaping.delay).await;
            }
            next = next.max(Instant::now());
            tokio::time::sleep_until(next.into()).await;
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
            next += Duration::from_secs_f64(n as f64 / shaping.rate as f64);
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// One WAN path's samples.
#[derive(Clone, Debug, Default)]
pub struct WanSamples {
    /// MB/s of each download.
    pub mbps: Vec<f64>,
    /// Peak RSS of the proxy during the download, MiB.
    pub rss: Vec<f64>,
}

/// What the WAN profile found.
#[derive(Clone, Debug)]
pub struct WanReport {
    pub shaping: Shaping,
    pub blob_mib: u64,
    pub runs: usize,
    pub rows: Vec<(String, WanSamples)>,
}

/// Downloads `url`, hashing it; fails unless the bytes hash to `digest`.
async fn download_checked(
    client: &BenchClient,
    url: &str,
    authorization: Option<&HeaderValue>,
    digest: &str,
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut request = Request::get(url).body(Empty::new()).map_err(|e| e.to_string())?;
    if let Some(auth) = authorization {
        request.headers_mut().insert(header::AUTHORIZATION, auth.clone());
    }
    let response = client.request(request).await.map_err(|e| format!("GET {url}: {e}"))?;
    if response.status() != StatusCode::OK {
        return Err(format!("GET {url}: {}", response.status()));
    }
    let mut body = response.into_body();
    let mut hasher = Sha256::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("GET {url}: the body broke: {e}"))?;
        if let Some(data) = frame.data_ref() {
            hasher.update(data);
        }
    }
    let got = format!("sha256:{}", hex(&hasher.finalize()));
    if got != digest {
        return Err(format!("GET {url}: the bytes hash to {got}, not {digest}"));
    }
    Ok(started.elapsed())
}

/// Runs the WAN profile.
pub fn run(options: &Options) -> Result<WanReport, String> {
    let var = |name: &str, default: u64| -> Result<u64, String> {
        match std::env::var(name) {
            Ok(v) => v.trim().parse().map_err(|_| format!("{name}={v:?} is not a number")),
            Err(_) => Ok(default),
        }
    };
    let shaping = Shaping {
        rate: var("LOAD_WAN_RATE_MBPS", 25)? * 1_000_000,
        delay: Duration::from_millis(var("LOAD_WAN_DELAY_MS", 30)?),
    };
    let blob_mib = var("LOAD_BLOB_MIB", 256)?;
    // The relay is on loopback, which layerpipe never splits unless told that a relay
    // shapes it; a `multipart` object of one's own must say so itself.
    let extra = match std::env::var("LOAD_WAN_LAYERPIPE_JSON") {
        Ok(s) if s.contains(r#""multipart""#) => format!("{s},"),
        Ok(s) => format!(r#"{s},"multipart":{{"split_local_links":true}},"#),
        Err(_) => r#""multipart":{"split_local_links":true},"#.to_owned(),
    };
    require_nginx(&options.nginx)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let size = blob_mib * MIB;
    let blobs = Arc::new(Blobs::new(&[size, TTFB_BLOB_BYTES]));
    let origin = runtime.block_on(Origin::start(blobs.clone()))?;
    let origin_addr: SocketAddr = origin.host().parse().map_err(|e| format!("{e}"))?;
    let relay = runtime.block_on(Relay::start(origin_addr, shaping))?;
    let relay_host = relay.host();
    let client = client();
    let work = tempfile::Builder::new().prefix("layerpipe-wan-").tempdir().map_err(|e| e.to_string())?;
    set_mode(work.path(), 0o755)?;
    let (_, project) = project_nginx_directives(&options.project_dir);
    let labels = ["direct (one connection)", "nginx, tuned", "layerpipe, verify_digests on"];
    let mut rows: Vec<(String, WanSamples)> = labels.iter().map(|l| (l.to_string(), WanSamples::default())).collect();
    for run in 0..options.runs {
        let dir = work.path().join(format!("wan{run}"));
        let nginx =
            Proxy::start_nginx(&options.nginx, &dir.join("nginx"), &relay_host, origin.token(), &tuned(&project), 16)?;
        let layerpipe =
            Proxy::start_layerpipe_with(&options.layerpipe, &dir.join("layerpipe"), &relay_host, true, &extra)?;
        let proxies = [None, Some(&nginx), Some(&layerpipe)];
        for (i, proxy) in proxies.iter().enumerate() {
            let endpoint = match proxy {
                None => Endpoint {
                    base: format!("http://{relay_host}"),
                    authorization: Some(origin.state.authorization.clone()),
                    layerpipe: false,
                },
                Some(p) => Endpoint { base: p.base(), authorization: None, layerpipe: !p.nginx },
            };
            // Warm up: ping and token (and nginx's upstream connection) before timing.
            let small = endpoint.url(&relay_host, blobs.digest(TTFB_BLOB_BYTES));
            runtime.block_on(download_checked(
                &client,
                &small,
                endpoint.authorization.as_ref(),
                blobs.digest(TTFB_BLOB_BYTES),
            ))?;
            if let Some(p) = proxy {
                reset_peak_rss(p.worker)?;
            }
            let url = endpoint.url(&relay_host, blobs.digest(size));
            let elapsed = runtime.block_on(download_checked(
                &client,
                &url,
                endpoint.authorization.as_ref(),
                blobs.digest(size),
            ))?;
            rows[i].1.mbps.push(mbps(size, elapsed));
            if let Some(p) = proxy {
                rows[i].1.rss.push(peak_rss_mib(p.worker)?);
            }
            eprintln!("wan run {run}: {}: {:.1} MB/s", rows[i].0, mbps(size, elapsed));
        }
    }
    Ok(WanReport { shaping, blob_mib, runs: options.runs, rows })
}

impl WanReport {
    /// The table for BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "WAN profile: {} MiB blob, each connection capped at {} MB/s, {} ms to first byte, {} interleaved runs (median [min–max])\n",
            self.blob_mib,
            self.shaping.rate / 1_000_000,
            self.shaping.delay.as_millis(),
            self.runs
        );
        let _ = writeln!(out, "| path | MB/s | × direct | peak RSS MiB |");
        let _ = writeln!(out, "|---|---|---|---|");
        let direct = median(&self.rows[0].1.mbps).unwrap_or(f64::NAN);
        for (label, s) in &self.rows {
            let ratio = median(&s.mbps).map_or(f64::NAN, |m| m / direct);
            let rss = if s.rss.is_empty() { "–".to_owned() } else { cell(&s.rss, 1) };
            let _ = writeln!(out, "| {label} | {} | {ratio:.2} | {rss} |", cell(&s.mbps, 1));
        }
        out
    }
}
