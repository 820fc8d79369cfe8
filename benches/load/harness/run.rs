//! The main profile's measurements, run by run: each run starts fresh proxy processes
//! (so peak RSS and CPU time belong to that run alone) and downloads through every path
//! in turn (A B C D E, A B C D E, …): one large stream with the hyper client and with
//! curl, the hashing programs on the same blob, the peak RSS of a small and a large
//! download, many streams at once, and time-to-first-byte with tokens cached. With
//! `LOAD_PERF_DIR`, the last run ends with the profilers (profile.rs).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::blobs::{Blobs, TTFB_BLOB_BYTES};
use super::client::{client, curl_download, download, Endpoint};
use super::nginx::project_nginx_directives;
use super::options::{require_nginx, Options};
use super::origin::Origin;
use super::procfs::{clock_ticks, cpu_seconds, peak_rss_mib, reset_peak_rss};
use super::profile::{profile, syscall_counts};
use super::proxy::{set_mode, Proxy};
use super::report::{mbps, Report, Samples, GIB, MIB};
use super::routes::{routes, Via};

/// Requests made (and not counted) before the time-to-first-byte samples.
const TTFB_WARMUP: usize = 5;

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
            if let Some(p) = proxy {
                reset_peak_rss(p.worker)?;
            }
            let cpu_before = proxy.as_ref().map(|p| cpu_seconds(p.worker, ticks)).transpose()?;
            samples[i].curl_mbps.push(curl_download(&url, endpoint.authorization.as_ref(), single)?);
            if let (Some(p), Some(before)) = (proxy, cpu_before) {
                let used = cpu_seconds(p.worker, ticks)? - before;
                samples[i].curl_cpu_per_gib.push(used / (single as f64 / GIB));
                samples[i].curl_rss_single.push(peak_rss_mib(p.worker)?);
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
