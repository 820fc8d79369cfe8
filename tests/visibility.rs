//! What an operator sees of long work (issue 22, item 8), end to end against the real
//! registry (tests/real/) and the built binary, whose log is read:
//! - a first listing of a layer logs its start and its end, with digest, registry,
//!   bytes, entries and whether its index was written;
//! - an error layerpipe answers with (a 404, a 502, a 503 of its own limit) logs its
//!   reason, and the 503 is counted by the limit that refused it;
//! - a long download moves the byte counters while it runs, under its registry's label;
//! - the gauges, histograms and `layerpipe_build_info` are there;
//! - every metric family `/metrics` exposes is listed in docs/operating.md, and every
//!   family listed there is exposed, route labels included.
//!
//! Needs `/usr/bin/docker-registry` (`apt-get install -y docker-registry`).

mod real;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use layerpipe::query::encode;
use real::http::{get, page};
use real::process::Process;
use real::{PushedImage, RealRegistry};

/// The link query of `image`'s layer `n` (from 1), as the image page writes it.
fn layer_query(image: &PushedImage, n: usize) -> String {
    let blob = &image.layers[n - 1];
    format!(
        "image={}&digest={}&layer={n}&mt={}",
        encode(&image.reference),
        encode(&blob.digest),
        encode(&blob.media_type)
    )
}

/// The value of the sample line `name` (labels included) in `metrics`, if there is one.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The families `/metrics` declares (`# TYPE name kind`).
fn exposed_families(metrics: &str) -> BTreeSet<String> {
    metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split_whitespace().next().map(str::to_owned)).collect()
}

/// The section `## Metrics` of docs/operating.md.
fn metrics_doc() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operating.md")).unwrap();
    let start = doc.find("## Metrics").expect("docs/operating.md has a Metrics section");
    let rest = &doc[start + 2..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
}

/// The families the docs' metrics table lists: every `layerpipe_…` name in backticks in
/// the table's first column, its labels left off.
fn documented_families(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter(|l| l.starts_with("| `layerpipe_"))
        .flat_map(|l| {
            let first = l.split(" | ").next().unwrap().trim_start_matches("| ");
            first
                .split('`')
                .filter(|part| part.starts_with("layerpipe_"))
                .map(|part| part.split('{').next().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_family_and_route_label_is_documented_and_every_documented_one_exposed() {
    let lp = Process::start(r#"{"listen": "127.0.0.1:0", "worker_threads": 1}"#, "info");
    // One request for every route, so that each route label is seen.
    for path in [
        "/",
        "/config",
        "/dockerfile",
        "/download",
        "/files",
        "/fs/",
        "/save/x",
        "/layers/",
        "/sizes",
        "/changes",
        "/search",
        "/diff",
        "/check",
        "/secrets",
        "/healthz",
        "/no-such-page",
    ] {
        get(&format!("{}{path}", lp.base)).await;
    }
    let metrics = page(&lp.base, "metrics").await;
    let doc = metrics_doc();
    let exposed = exposed_families(&metrics);
    let documented = documented_families(&doc);
    assert!(exposed.len() > 10, "{metrics}");
    let undocumented: Vec<_> = exposed.difference(&documented).collect();
    let unexposed: Vec<_> = documented.difference(&exposed).collect();
    assert!(undocumented.is_empty(), "exposed but not in docs/operating.md: {undocumented:?}");
    assert!(unexposed.is_empty(), "in docs/operating.md but not exposed: {unexposed:?}");
    // Every route label seen is named in the docs' row for `route`.
    let routes_row = doc.lines().find(|l| l.starts_with("| `layerpipe_requests_total")).unwrap();
    let routes: BTreeSet<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("layerpipe_requests_total{route=\"")?.split('"').next())
        .collect();
    assert!(routes.len() >= 16, "{routes:?}");
    for route in routes {
        assert!(routes_row.contains(&format!("`{route}`")), "route label {route} is not in the docs: {routes_row}");
    }
    drop(lp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_work_shows_in_the_log_and_the_metrics() {
    let registry = RealRegistry::start();
    let host = registry.host();
    let small = registry.push_oci_image("visible/app", "v1").await;
    let large = registry.push_large_layer_image("visible/big", "v1", 96 << 20, 7).await;
    let dir = tempfile::tempdir().unwrap();
    // 127.0.0.1:9 (discard) is listed too: nothing listens there, so its images are 502s.
    let lp = Process::start(
        &format!(
            r#"{{"listen": "127.0.0.1:0", "worker_threads": 1, "index": {{"dir": {:?}}},
            "limits": {{"max_concurrent_downloads": 1}}, "retries": {{"attempts": 1}},
            "registries": {{"{host}": {{"endpoint": "{}"}}, "127.0.0.1:9": {{"endpoint": "http://127.0.0.1:9"}}}}}}"#,
            dir.path().join("indexes").to_str().unwrap(),
            registry.endpoint()
        ),
        "info",
    );

    // A first listing: its start and end are logged.
    page(&lp.base, &format!("files?{}", layer_query(&small, 1))).await;
    // Errors layerpipe answers with: a tag the repository lacks, a page that is not one,
    // a registry that cannot be reached.
    let missing = format!("?image={}", encode(&format!("{host}/visible/app:no-such-tag")));
    assert_eq!(get(&format!("{}/{missing}", lp.base)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&format!("{}/no-such-page", lp.base)).await.0, StatusCode::NOT_FOUND);
    let unreachable = format!("?image={}", encode("127.0.0.1:9/visible/app:v1"));
    assert_eq!(get(&format!("{}/{unreachable}", lp.base)).await.0, StatusCode::BAD_GATEWAY);

    // A long download, held open part way: the byte counters have moved already.
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let url = format!("{}/download?{}", lp.base, layer_query(&large, 1));
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut got = 0u64;
    while got < 24 << 20 {
        let frame = body.frame().await.expect("the download goes on").expect("a frame");
        got += frame.data_ref().map_or(0, |d| d.len() as u64);
    }
    let metrics = page(&lp.base, "metrics").await;
    let sent = sample(&metrics, "layerpipe_download_bytes_total").unwrap();
    assert!(sent >= (16 << 20) as f64 && sent < (96 << 20) as f64, "mid-download, after {got} bytes: {metrics}");
    let from_registry = sample(&metrics, &format!("layerpipe_upstream_bytes_total{{registry=\"{host}\"}}")).unwrap();
    assert!(from_registry >= sent, "{metrics}");
    assert_eq!(sample(&metrics, "layerpipe_active_downloads"), Some(1.0), "{metrics}");
    // Meanwhile the one download slot is taken: a second download is a 503 of that limit.
    let (status, _) = get(&format!("{}/download?{}", lp.base, layer_query(&small, 2))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    drop(body);

    // The listing's bytes, by registry; gauges, histograms, build info, failures.
    let started = Instant::now();
    let metrics = loop {
        let metrics = page(&lp.base, "metrics").await;
        if sample(&metrics, "layerpipe_active_downloads") == Some(0.0) {
            break metrics;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the download never ended: {metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let layer_bytes = sample(&metrics, "layerpipe_layer_blob_bytes_total").unwrap();
    assert_eq!(layer_bytes, small.layers[0].size as f64, "{metrics}");
    for line in [
        format!("layerpipe_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")),
        "layerpipe_listings_in_flight 0".to_owned(),
        "layerpipe_merges_in_flight 0".to_owned(),
        "layerpipe_renders_in_flight 0".to_owned(),
        "layerpipe_limited_total{limit=\"downloads\"} 1".to_owned(),
        "layerpipe_request_duration_seconds_count{route=\"files\"} 1".to_owned(),
        "layerpipe_request_duration_seconds_bucket{route=\"download\",le=\"+Inf\"} 2".to_owned(),
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line:?} in\n{metrics}");
    }
    for counted in [
        format!("layerpipe_token_fetches_total{{registry=\"{host}\"}}"),
        "layerpipe_upstream_errors_total{kind=\"connect\",registry=\"127.0.0.1:9\"}".to_owned(),
    ] {
        assert!(sample(&metrics, &counted).is_some_and(|n| n >= 1.0), "no {counted} in\n{metrics}");
    }
    assert!(metrics.lines().all(|l| !l.contains("visible/")), "a repository in a label: {metrics}");

    let log = lp.stop();
    let digest = &small.layers[0].digest;
    let line_with = |what: &str| {
        log.lines()
            .find(|l| l.contains(what) && l.contains(digest.as_str()))
            .unwrap_or_else(|| panic!("no {what:?} in\n{log}"))
    };
    let start = line_with("reading a layer for its listing and index");
    assert!(start.contains(&format!("registry=\"{host}\"")), "{start}");
    assert!(start.contains(&format!("size={}", small.layers[0].size)), "{start}");
    let end = line_with("read a layer for its listing and index");
    for field in [format!("bytes={}", small.layers[0].size), "entries=".to_owned(), "index_written=true".to_owned()] {
        assert!(end.contains(&field), "no {field} in {end}");
    }
    let refusal = |status: u16, reason: &str| {
        let line = log.lines().find(|l| {
            l.contains("answered with an error") && l.contains(&format!("status={status}")) && l.contains(reason)
        });
        assert!(line.is_some(), "no {status} with {reason:?} in\n{log}");
        line.unwrap().to_owned()
    };
    refusal(404, "no-such-tag");
    refusal(404, "no such page");
    assert!(refusal(502, "cannot connect to 127.0.0.1").contains("WARN"));
    assert!(refusal(503, "downloads").contains("limit=\"downloads\""));
}
