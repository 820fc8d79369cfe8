//! Counters for `/metrics`, in Prometheus' text format.
//!
//! Plain atomics and small maps behind mutexes, one file per concern: durations
//! ([`histogram`]), the bounded `registry` label ([`registries`]), byte counters that
//! move while a transfer runs without an atomic per frame ([`flow`]), and gauges of work
//! in flight ([`in_flight`]). The hot path (a frame of a download) adds to a local count
//! only. Every label's values come from a fixed set in the code, or (registries) are
//! capped: no repository or path is ever a label.
//!
//! `prometheus-client` was weighed for the exposition (issue 21) and not adopted:
//! - it would remove mostly the text writing ([`Metrics::render`], about 140 lines) and
//!   the small histogram; the capped `registry` label ([`registries`]) and the batched
//!   byte counts ([`flow`]) would stay ours, since it caps no label and counts each add;
//! - its text encoder writes OpenMetrics, not the Prometheus text served now: a `# EOF`
//!   line, `_total` appended to counter names itself, a `.` after each help text, so
//!   the exposition that dashboards and `tests/visibility.rs` read would change;
//! - its labelled counters (`Family`) look the label set up in a lock-guarded map on
//!   each increment, where a download's frame here adds to a local count only.

pub mod flow;
pub mod histogram;
pub mod in_flight;
pub mod registries;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use histogram::Histogram;
use in_flight::{InFlight, Work};
use registries::Registries;

/// Upper bounds, in seconds, of the download duration histogram's buckets.
const DURATION_BUCKETS: [f64; 11] = [0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0];

/// Upper bounds, in seconds, of the request duration histogram's buckets: a page is
/// milliseconds from a cache, seconds when it reads a big layer first.
const REQUEST_BUCKETS: [f64; 10] = [0.005, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0, 30.0, 120.0, 600.0];

/// Kinds of registry failure, the `kind` label of `layerpipe_upstream_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum UpstreamError {
    /// Could not connect.
    Connect,
    /// No answer in time (connect, headers, or mid-stream).
    Timeout,
    /// layerpipe refused to connect (not a public address, not https).
    Refused,
    /// The registry's TLS certificate is not trusted (never retried: it would not change).
    Certificate,
    /// The registry answered 429.
    RateLimited,
    /// The registry answered 5xx.
    ServerError,
    /// The registry answered something unusable (bad JSON, bad challenge, too large).
    InvalidResponse,
    /// A blob's stream broke mid-download.
    StreamBroken,
}

impl UpstreamError {
    fn label(self) -> &'static str {
        match self {
            UpstreamError::Connect => "connect",
            UpstreamError::Timeout => "timeout",
            UpstreamError::Refused => "refused",
            UpstreamError::Certificate => "certificate",
            UpstreamError::RateLimited => "rate_limited",
            UpstreamError::ServerError => "server_error",
            UpstreamError::InvalidResponse => "invalid_response",
            UpstreamError::StreamBroken => "stream_broken",
        }
    }
}

/// Everything `/metrics` reports; one per process, shared.
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    request_durations: Mutex<BTreeMap<&'static str, Histogram>>,
    download_bytes: AtomicU64,
    active_downloads: AtomicI64,
    download_durations: Histogram,
    token_cache_hits: AtomicU64,
    token_cache_misses: AtomicU64,
    registries: Registries,
    digest_mismatches: AtomicU64,
    layer_blob_bytes: AtomicU64,
    index_reads: AtomicU64,
    client_idle_closed: CountsBy,
    in_flight: [AtomicI64; Work::ALL.len()],
    limited: CountsBy,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics { .. }")
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            requests: Mutex::default(),
            request_durations: Mutex::default(),
            download_bytes: AtomicU64::new(0),
            active_downloads: AtomicI64::new(0),
            download_durations: Histogram::new(&DURATION_BUCKETS),
            token_cache_hits: AtomicU64::new(0),
            token_cache_misses: AtomicU64::new(0),
            registries: Registries::default(),
            digest_mismatches: AtomicU64::new(0),
            layer_blob_bytes: AtomicU64::new(0),
            index_reads: AtomicU64::new(0),
            client_idle_closed: CountsBy::default(),
            in_flight: Default::default(),
            limited: CountsBy::default(),
        }
    }
}

impl Metrics {
    /// A request to `route` was answered with `status`, its response ready after `elapsed`.
    pub fn request(&self, route: &'static str, status: u16, elapsed: Duration) {
        *self.requests.lock().unwrap_or_else(|e| e.into_inner()).entry((route, status)).or_default() += 1;
        self.request_durations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(route)
            .or_insert_with(|| Histogram::new(&REQUEST_BUCKETS))
            .observe(elapsed);
    }

    /// A connection answering `route` was ended: its client took nothing for
    /// `timeouts.client_idle_secs`.
    pub fn client_idle_closed(&self, route: &'static str) {
        self.client_idle_closed.add(route);
    }

    /// A request was refused with 503 because `limit` (one of layerpipe's own: `downloads`,
    /// `renders`, `merges`, …) had no slot free.
    pub fn limited(&self, limit: &'static str) {
        self.limited.add(limit);
    }

    /// A download started.
    pub fn download_started(&self) {
        self.active_downloads.fetch_add(1, Relaxed);
    }

    /// A download ended after `elapsed` (its bytes were counted by its [`flow::Flow`]).
    pub fn download_ended(&self, elapsed: Duration) {
        self.active_downloads.fetch_sub(1, Relaxed);
        self.download_durations.observe(elapsed);
    }

    /// A token was found in the cache.
    pub fn token_cache_hit(&self) {
        self.token_cache_hits.fetch_add(1, Relaxed);
    }

    /// A token was not in the cache.
    pub fn token_cache_miss(&self) {
        self.token_cache_misses.fetch_add(1, Relaxed);
    }

    /// A token was requested from a token server, for `registry` (its host).
    pub fn token_fetch(&self, registry: &str) {
        self.registries.get(registry).token_fetches.fetch_add(1, Relaxed);
    }

    /// A request to `registry` (its host) failed.
    pub fn upstream_error(&self, registry: &str, kind: UpstreamError) {
        let stats = self.registries.get(registry);
        *stats.errors.lock().unwrap_or_else(|e| e.into_inner()).entry(kind).or_default() += 1;
    }

    /// A blob did not match its digest.
    pub fn digest_mismatch(&self) {
        self.digest_mismatches.fetch_add(1, Relaxed);
    }

    /// A file was read from a layer by its index (a `Range` read), not from the start.
    pub fn index_read(&self) {
        self.index_reads.fetch_add(1, Relaxed);
    }

    /// Downloads streaming now.
    pub fn active_downloads(&self) -> i64 {
        self.active_downloads.load(Relaxed)
    }

    /// `work` starts: counted in its gauge until the guard is dropped.
    pub fn in_flight(self: &Arc<Self>, work: Work) -> InFlight {
        InFlight::start(self, work)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            family(out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        };
        family(&mut out, "layerpipe_build_info", "gauge", "Always 1; its label says which layerpipe runs.");
        let _ = writeln!(out, "layerpipe_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        family(&mut out, "layerpipe_requests_total", "counter", "Requests answered, by route and status.");
        for ((route, status), n) in self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "layerpipe_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        family(
            &mut out,
            "layerpipe_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its response's headers, by route (a download's body is timed by layerpipe_download_duration_seconds).",
        );
        for (route, histogram) in self.request_durations.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            histogram.render(&mut out, "layerpipe_request_duration_seconds", &format!("route=\"{route}\","));
        }
        family(
            &mut out,
            "layerpipe_limited_total",
            "counter",
            "Requests answered 503 because one of layerpipe's own limits had no slot free, by limit.",
        );
        self.limited.render(&mut out, "layerpipe_limited_total", "limit");
        family(
            &mut out,
            "layerpipe_client_idle_closed_total",
            "counter",
            "Connections ended because their client took nothing for timeouts.client_idle_secs, by route.",
        );
        self.client_idle_closed.render(&mut out, "layerpipe_client_idle_closed_total", "route");
        for work in Work::ALL {
            let (name, help) = work.gauge();
            family(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {}", self.in_flight[work as usize].load(Relaxed));
        }
        counter(
            &mut out,
            "layerpipe_download_bytes_total",
            "Bytes of blobs sent to clients, counted as they flow.",
            self.download_bytes.load(Relaxed),
        );
        family(&mut out, "layerpipe_active_downloads", "gauge", "Downloads streaming now.");
        let _ = writeln!(out, "layerpipe_active_downloads {}", self.active_downloads.load(Relaxed));
        family(
            &mut out,
            "layerpipe_download_duration_seconds",
            "histogram",
            "Time from a download's start to its end.",
        );
        self.download_durations.render(&mut out, "layerpipe_download_duration_seconds", "");
        counter(
            &mut out,
            "layerpipe_layer_blob_bytes_total",
            "Blob bytes read from registries to list, preview or save inside layers, counted as they flow.",
            self.layer_blob_bytes.load(Relaxed),
        );
        counter(
            &mut out,
            "layerpipe_index_reads_total",
            "Previews and saved files read through a layer index with a Range request.",
            self.index_reads.load(Relaxed),
        );
        counter(
            &mut out,
            "layerpipe_token_cache_hits_total",
            "Tokens found in the cache.",
            self.token_cache_hits.load(Relaxed),
        );
        counter(
            &mut out,
            "layerpipe_token_cache_misses_total",
            "Tokens not in the cache.",
            self.token_cache_misses.load(Relaxed),
        );
        let registries = self.registries.each();
        family(
            &mut out,
            "layerpipe_upstream_bytes_total",
            "counter",
            "Blob bytes read from each registry (downloads and reads inside layers), counted as they flow.",
        );
        for (registry, stats) in &registries {
            let _ = writeln!(
                out,
                "layerpipe_upstream_bytes_total{{registry=\"{registry}\"}} {}",
                stats.bytes.load(Relaxed)
            );
        }
        family(
            &mut out,
            "layerpipe_token_fetches_total",
            "counter",
            "Token requests sent to token servers, by registry.",
        );
        for (registry, stats) in &registries {
            let n = stats.token_fetches.load(Relaxed);
            if n > 0 {
                let _ = writeln!(out, "layerpipe_token_fetches_total{{registry=\"{registry}\"}} {n}");
            }
        }
        family(
            &mut out,
            "layerpipe_upstream_errors_total",
            "counter",
            "Failed registry requests, by kind and registry.",
        );
        for (registry, stats) in &registries {
            for (kind, n) in stats.errors.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                let _ = writeln!(
                    out,
                    "layerpipe_upstream_errors_total{{kind=\"{}\",registry=\"{registry}\"}} {n}",
                    kind.label()
                );
            }
        }
        counter(
            &mut out,
            "layerpipe_digest_mismatches_total",
            "Downloads aborted because the bytes did not match the digest.",
            self.digest_mismatches.load(Relaxed),
        );
        out
    }
}

/// A counter by one label whose values are fixed words (routes, limits).
#[derive(Default)]
struct CountsBy(Mutex<BTreeMap<&'static str, u64>>);

impl CountsBy {
    fn add(&self, key: &'static str) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default() += 1;
    }

    /// One `name{label="key"} n` line per key seen.
    fn render(&self, out: &mut String, name: &str, label: &str) {
        for (key, n) in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "{name}{{{label}=\"{key}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Arc::new(Metrics::default());
        m.request("download", 200, Duration::from_millis(3));
        m.request("download", 200, Duration::from_millis(300));
        m.request("page", 404, Duration::from_millis(3));
        m.download_started();
        m.download_started();
        m.download_ended(Duration::from_millis(300));
        drop({
            let mut flow = flow::FlowSink::new(&m, "r.example", flow::FlowKind::Download).flow();
            flow.add(1000);
            flow
        });
        m.token_cache_miss();
        m.token_fetch("r.example");
        m.upstream_error("r.example", UpstreamError::Timeout);
        m.digest_mismatch();
        m.limited("downloads");
        let listing = m.in_flight(Work::Listing);
        let text = m.render();
        for line in [
            &format!("layerpipe_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")),
            "layerpipe_requests_total{route=\"download\",status=\"200\"} 2",
            "layerpipe_requests_total{route=\"page\",status=\"404\"} 1",
            "layerpipe_request_duration_seconds_bucket{route=\"download\",le=\"0.005\"} 1",
            "layerpipe_request_duration_seconds_bucket{route=\"download\",le=\"+Inf\"} 2",
            "layerpipe_request_duration_seconds_count{route=\"download\"} 2",
            "layerpipe_limited_total{limit=\"downloads\"} 1",
            "layerpipe_listings_in_flight 1",
            "layerpipe_merges_in_flight 0",
            "layerpipe_download_bytes_total 1000",
            "layerpipe_upstream_bytes_total{registry=\"r.example\"} 1000",
            "layerpipe_active_downloads 1",
            "layerpipe_download_duration_seconds_bucket{le=\"0.25\"} 0",
            "layerpipe_download_duration_seconds_bucket{le=\"1\"} 1",
            "layerpipe_download_duration_seconds_bucket{le=\"+Inf\"} 1",
            "layerpipe_download_duration_seconds_count 1",
            "layerpipe_token_cache_misses_total 1",
            "layerpipe_token_fetches_total{registry=\"r.example\"} 1",
            "layerpipe_upstream_errors_total{kind=\"timeout\",registry=\"r.example\"} 1",
            "layerpipe_digest_mismatches_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        drop(listing);
        assert!(m.render().lines().any(|l| l == "layerpipe_listings_in_flight 0"));
        // Every sample line belongs to a declared family, declared once.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let family = name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
            assert_eq!(text.matches(&format!("# TYPE {family} ")).count(), 1, "{name} undeclared or twice");
        }
    }
}
