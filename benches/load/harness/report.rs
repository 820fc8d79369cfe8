//! What a run found and the table it prints: every sample of every path, one cell per
//! measurement as the median with its range over the runs, then each target with its
//! numbers and whether it was met. The TLS and WAN profiles print their cells the same
//! way.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use super::options::Options;

/// The unit of every `LOAD_*` size.
pub(super) const MIB: u64 = 1024 * 1024;
/// CPU time is reported per GiB moved.
pub(super) const GIB: f64 = (1024 * 1024 * 1024) as f64;

/// Every sample of one path, one entry per run.
#[derive(Default, Clone, Debug)]
pub struct Samples {
    pub single_mbps: Vec<f64>,
    pub cpu_per_gib: Vec<f64>,
    /// The single stream again with curl as the client: MB/s, and the proxy's CPU per GiB.
    pub curl_mbps: Vec<f64>,
    pub curl_cpu_per_gib: Vec<f64>,
    /// The proxy's peak RSS during the curl download (curl reads as fast as loopback
    /// allows, so more frames can wait in the proxy than with the hyper client).
    pub curl_rss_single: Vec<f64>,
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

/// MB/s (decimal megabytes, as curl and the table report them).
pub(super) fn mbps(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e6
}

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

pub(super) fn median(values: &[f64]) -> Option<f64> {
    spread(values).map(|(m, _, _)| m)
}

pub(super) fn cell(values: &[f64], decimals: usize) -> String {
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
            "| path | 1 stream of {} MiB, MB/s | proxy CPU s/GiB | origin + client CPU s/GiB | curl: 1 stream, MB/s | curl: proxy CPU s/GiB | peak RSS MiB, 1 stream | curl: peak RSS MiB | peak RSS MiB, {} MiB download | peak RSS MiB, {} MiB download | {}×{} MiB at once, aggregate MB/s | peak RSS MiB, {} streams | TTFB ms, median | TTFB ms, p99 |",
            o.blob_mib, o.rss_small_mib, o.rss_large_mib, o.concurrency, o.concurrent_mib, o.concurrency
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (label, s) in &self.rows {
            let _ = writeln!(
                out,
                "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&s.single_mbps, 0),
                cell(&s.cpu_per_gib, 2),
                cell(&s.bench_cpu_per_gib, 2),
                cell(&s.curl_mbps, 0),
                cell(&s.curl_cpu_per_gib, 2),
                cell(&s.rss_single, 1),
                cell(&s.curl_rss_single, 1),
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
            "| {} | {} | — | — | — | — | — | — | — | — | — | — | — | — |",
            sha256sum_label(o),
            cell(&self.sha256sum_mbps, 0)
        );
        let _ = writeln!(
            out,
            "| {} | {} | — | — | — | — | — | — | — | — | — | — | — | — |",
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
            "- peak RSS ≤ 32 MiB for one stream: {:.1} MiB, curl {:.1} (verify on: {:.1}, curl {:.1}) — {}",
            m(&off.rss_single),
            m(&off.curl_rss_single),
            m(&on.rss_single),
            m(&on.curl_rss_single),
            verdict(
                [&off.rss_single, &off.curl_rss_single, &on.rss_single, &on.curl_rss_single]
                    .iter()
                    .all(|v| m(v) <= 32.0)
            )
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
