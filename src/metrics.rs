//! Counters for `/metrics`, in Prometheus' text format.
//!
//! Plain atomics and two small maps behind mutexes: the hot path (a frame of a download)
//! touches none of them; each request or download updates a few once, at its end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds, in seconds, of the download duration histogram's buckets.
const DURATION_BUCKETS: [f64; 11] = [0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0];

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
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    download_bytes: AtomicU64,
    active_downloads: AtomicI64,
    duration_buckets: [AtomicU64; DURATION_BUCKETS.len()],
    duration_count: AtomicU64,
    duration_sum_micros: AtomicU64,
    token_cache_hits: AtomicU64,
    token_cache_misses: AtomicU64,
    token_fetches: AtomicU64,
    upstream_errors: Mutex<BTreeMap<UpstreamError, u64>>,
    digest_mismatches: AtomicU64,
    layer_blob_bytes: AtomicU64,
    index_reads: AtomicU64,
    client_idle_closed: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// A request to `route` was answered with `status`.
    pub fn request(&self, route: &'static str, status: u16) {
        *self.requests.lock().unwrap_or_else(|e| e.into_inner()).entry((route, status)).or_default() += 1;
    }

    /// A connection answering `route` was ended: its client took nothing for
    /// `timeouts.client_idle_secs`.
    pub fn client_idle_closed(&self, route: &'static str) {
        *self.client_idle_closed.lock().unwrap_or_else(|e| e.into_inner()).entry(route).or_default() += 1;
    }

    /// A download started.
    pub fn download_started(&self) {
        self.active_downloads.fetch_add(1, Relaxed);
    }

    /// A download ended after `elapsed`, having sent `bytes`.
    pub fn download_ended(&self, elapsed: Duration, bytes: u64) {
        self.active_downloads.fetch_sub(1, Relaxed);
        self.download_bytes.fetch_add(bytes, Relaxed);
        let secs = elapsed.as_secs_f64();
        for (bound, count) in DURATION_BUCKETS.iter().zip(&self.duration_buckets) {
            if secs <= *bound {
                count.fetch_add(1, Relaxed);
            }
        }
        self.duration_count.fetch_add(1, Relaxed);
        self.duration_sum_micros.fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    /// A token was found in the cache.
    pub fn token_cache_hit(&self) {
        self.token_cache_hits.fetch_add(1, Relaxed);
    }

    /// A token was not in the cache.
    pub fn token_cache_miss(&self) {
        self.token_cache_misses.fetch_add(1, Relaxed);
    }

    /// A token was requested from a token server.
    pub fn token_fetch(&self) {
        self.token_fetches.fetch_add(1, Relaxed);
    }

    /// A registry request failed.
    pub fn upstream_error(&self, kind: UpstreamError) {
        *self.upstream_errors.lock().unwrap_or_else(|e| e.into_inner()).entry(kind).or_default() += 1;
    }

    /// A blob did not match its digest.
    pub fn digest_mismatch(&self) {
        self.digest_mismatches.fetch_add(1, Relaxed);
    }

    /// Blob bytes were read from a registry to list, preview or save inside a layer.
    pub fn layer_blob_bytes(&self, bytes: u64) {
        self.layer_blob_bytes.fetch_add(bytes, Relaxed);
    }

    /// A file was read from a layer by its index (a `Range` read), not from the start.
    pub fn index_read(&self) {
        self.index_reads.fetch_add(1, Relaxed);
    }

    /// Downloads streaming now.
    pub fn active_downloads(&self) -> i64 {
        self.active_downloads.load(Relaxed)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP layerpipe_requests_total Requests answered, by route and status.\n# TYPE layerpipe_requests_total counter\n",
        );
        for ((route, status), n) in self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "layerpipe_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        out.push_str(
            "# HELP layerpipe_client_idle_closed_total Connections ended because their client took nothing for timeouts.client_idle_secs, by route.\n# TYPE layerpipe_client_idle_closed_total counter\n",
        );
        for (route, n) in self.client_idle_closed.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "layerpipe_client_idle_closed_total{{route=\"{route}\"}} {n}");
        }
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter(
            &mut out,
            "layerpipe_download_bytes_total",
            "Bytes of blobs sent to clients.",
            self.download_bytes.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP layerpipe_active_downloads Downloads streaming now.\n# TYPE layerpipe_active_downloads gauge\nlayerpipe_active_downloads {}",
            self.active_downloads.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP layerpipe_download_duration_seconds Time from a download's start to its end.\n# TYPE layerpipe_download_duration_seconds histogram"
        );
        for (bound, count) in DURATION_BUCKETS.iter().zip(&self.duration_buckets) {
            let _ =
                writeln!(out, "layerpipe_download_duration_seconds_bucket{{le=\"{bound}\"}} {}", count.load(Relaxed));
        }
        let total = self.duration_count.load(Relaxed);
        let _ = writeln!(out, "layerpipe_download_duration_seconds_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(
            out,
            "layerpipe_download_duration_seconds_sum {}\nlayerpipe_download_duration_seconds_count {total}",
            self.duration_sum_micros.load(Relaxed) as f64 / 1e6
        );
        counter(
            &mut out,
            "layerpipe_layer_blob_bytes_total",
            "Blob bytes read from registries to list, preview or save inside layers.",
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
        counter(
            &mut out,
            "layerpipe_token_fetches_total",
            "Token requests sent to token servers.",
            self.token_fetches.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP layerpipe_upstream_errors_total Failed registry requests, by kind.\n# TYPE layerpipe_upstream_errors_total counter"
        );
        for (kind, n) in self.upstream_errors.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "layerpipe_upstream_errors_total{{kind=\"{}\"}} {n}", kind.label());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.request("download", 200);
        m.request("download", 200);
        m.request("page", 404);
        m.download_started();
        m.download_started();
        m.download_ended(Duration::from_millis(300), 1000);
        m.token_cache_miss();
        m.token_fetch();
        m.upstream_error(UpstreamError::Timeout);
        m.digest_mismatch();
        let text = m.render();
        for line in [
            "layerpipe_requests_total{route=\"download\",status=\"200\"} 2",
            "layerpipe_requests_total{route=\"page\",status=\"404\"} 1",
            "layerpipe_download_bytes_total 1000",
            "layerpipe_active_downloads 1",
            "layerpipe_download_duration_seconds_bucket{le=\"0.25\"} 0",
            "layerpipe_download_duration_seconds_bucket{le=\"1\"} 1",
            "layerpipe_download_duration_seconds_bucket{le=\"+Inf\"} 1",
            "layerpipe_download_duration_seconds_count 1",
            "layerpipe_token_cache_misses_total 1",
            "layerpipe_token_fetches_total 1",
            "layerpipe_upstream_errors_total{kind=\"timeout\"} 1",
            "layerpipe_digest_mismatches_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Every sample line belongs to a declared family.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let family = name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {family} ")), "{name} undeclared");
        }
    }
}
