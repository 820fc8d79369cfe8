//! The busy profile (`LOAD_PROFILE=busy`): many downloads of one large blob at once from
//! the loopback origin, every core shared by all of them, as on a busy server. A split
//! cannot help there (the bytes are as near as the CPU), so layerpipe must not split:
//! each variant's row counts the origin's ranged requests, layerpipe's peak RSS, and the
//! bytes all clients received in the window.
//!
//! Variants, one round each, in this order: layerpipe's defaults, the same with
//! `multipart.connections: 1` (multipart off), and any `LOAD_VARIANTS` build (with its
//! `LOAD_VARIANT_<NAME>_JSON`). Settings: `LOAD_BUSY_DOWNLOADS` (default 50),
//! `LOAD_BUSY_SECS` (each download reads this long or to its end, default 12),
//! `LOAD_BLOB_MIB` (default 1024 in this profile).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};

use super::blobs::{Blobs, TTFB_BLOB_BYTES};
use super::client::{client, BenchClient, Endpoint};
use super::options::Options;
use super::origin::Origin;
use super::procfs::{peak_rss_mib, reset_peak_rss};
use super::proxy::{set_mode, Proxy};
use super::report::MIB;

/// One variant's round.
struct Row {
    label: String,
    ranged: usize,
    peak_rss_mib: f64,
    received: u64,
    failed: usize,
}

/// The busy profile's table.
pub struct BusyReport {
    downloads: usize,
    secs: u64,
    blob_mib: u64,
    rows: Vec<Row>,
}

/// Runs the profile; see the module docs.
pub fn run(options: &Options) -> Result<BusyReport, String> {
    let var = |name: &str, default: u64| -> Result<u64, String> {
        std::env::var(name).map_or(Ok(default), |v| v.trim().parse().map_err(|_| format!("{name}={v:?}")))
    };
    let downloads = var("LOAD_BUSY_DOWNLOADS", 50)? as usize;
    let secs = var("LOAD_BUSY_SECS", 12)?;
    let blob_mib = var("LOAD_BLOB_MIB", 1024)?;
    let size = blob_mib * MIB;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let blobs = Arc::new(Blobs::new(&[size, TTFB_BLOB_BYTES]));
    let origin = runtime.block_on(Origin::start(blobs.clone()))?;
    let host = origin.host();
    let work = tempfile::Builder::new().prefix("layerpipe-busy-").tempdir().map_err(|e| e.to_string())?;
    set_mode(work.path(), 0o755)?;
    let mut variants: Vec<(String, PathBuf, String)> = vec![
        ("layerpipe, defaults".into(), options.layerpipe.clone(), String::new()),
        (
            "layerpipe, multipart.connections: 1".into(),
            options.layerpipe.clone(),
            r#""multipart":{"connections":1},"#.into(),
        ),
    ];
    variants.extend(options.variants.iter().map(|v| (v.name.clone(), v.binary.clone(), v.extra_config.clone())));
    let client = client();
    let mut rows = Vec::new();
    for (i, (label, binary, extra)) in variants.into_iter().enumerate() {
        let proxy = Proxy::start_layerpipe_with(&binary, &work.path().join(format!("v{i}")), &host, false, &extra)?;
        let endpoint = Endpoint { base: proxy.base(), authorization: None, layerpipe: true };
        // Warm up (ping, token) on the small blob, then measure from here.
        let small = endpoint.url(&host, blobs.digest(TTFB_BLOB_BYTES));
        runtime.block_on(read_for(client.clone(), small, Duration::from_secs(30)))?;
        reset_peak_rss(proxy.worker)?;
        let ranged_before = origin.state.ranged_requests.load(Ordering::Relaxed);
        let url = endpoint.url(&host, blobs.digest(size));
        let window = Duration::from_secs(secs);
        let results = runtime.block_on(async {
            let tasks: Vec<_> =
                (0..downloads).map(|_| tokio::spawn(read_for(client.clone(), url.clone(), window))).collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.map_err(|e| e.to_string()).and_then(|r| r));
            }
            results
        });
        let row = Row {
            label,
            ranged: origin.state.ranged_requests.load(Ordering::Relaxed) - ranged_before,
            peak_rss_mib: peak_rss_mib(proxy.worker)?,
            received: results.iter().filter_map(|r| r.as_ref().ok()).sum(),
            failed: results.iter().filter(|r| r.is_err()).count(),
        };
        if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
            eprintln!("busy: {}: {} downloads failed, the first: {e}", row.label, row.failed);
        }
        eprintln!(
            "busy: {}: {} ranged requests, peak RSS {:.1} MiB, {:.0} MiB received",
            row.label,
            row.ranged,
            row.peak_rss_mib,
            row.received as f64 / MIB as f64
        );
        rows.push(row);
    }
    Ok(BusyReport { downloads, secs, blob_mib, rows })
}

/// GETs `url` and reads it for `window` or to its end: the bytes received.
async fn read_for(client: BenchClient, url: String, window: Duration) -> Result<u64, String> {
    let deadline = tokio::time::Instant::now() + window;
    let request = http::Request::get(&url).body(Empty::new()).map_err(|e| e.to_string())?;
    let response = tokio::time::timeout_at(deadline, client.request(request))
        .await
        .map_err(|_| format!("GET {url}: no answer"))?
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: {}", response.status()));
    }
    let mut body = response.into_body();
    let mut received = 0u64;
    while let Ok(Some(frame)) = tokio::time::timeout_at(deadline, body.frame()).await {
        let frame = frame.map_err(|e| format!("GET {url}: broke after {received} bytes: {e}"))?;
        received += frame.data_ref().map_or(0, |d| d.len() as u64);
    }
    Ok(received)
}

impl BusyReport {
    /// The table for BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Busy profile: {} downloads at once of a {} MiB blob from the loopback origin, each read for {} s\n",
            self.downloads, self.blob_mib, self.secs
        );
        let _ = writeln!(out, "| layerpipe | ranged requests at the origin | peak RSS MiB | received MiB | failed |");
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.0} | {} |",
                r.label,
                r.ranged,
                r.peak_rss_mib,
                r.received as f64 / MIB as f64,
                r.failed
            );
        }
        out
    }
}
