//! The explorer's first read of a big layer through a capped link, against the real
//! registry (tests/real/) behind a relay that caps each connection's rate:
//!
//! - a local link (the relay is on loopback) is never split, however slow: one GET of
//!   the blob, as on a busy machine where more connections would only share the cores;
//! - told that the relay shapes it (`multipart.split_local_links`), the same listing
//!   comes over several connections at ≥ 3× the one connection's speed, whole: every
//!   file listed, and the blob fetched about once.
//!
//! Needs `/usr/bin/docker-registry` (`apt-get install -y docker-registry`).

mod real;

use std::time::{Duration, Instant};

use layerpipe::config::Config;
use layerpipe::query::encode;
use real::images::{self, BuiltLayer};
use real::relay::CountingRelay;
use real::{Layerpipe, RealRegistry};
use serde_json::Value;

/// Each connection through the relay carries at most this many bytes a second.
const CAP: u64 = 4 << 20;
/// Files of the layer, each `FILE_BYTES` that gzip cannot shrink: 24 MiB, 6 s at `CAP`.
const FILES: usize = 24;
const FILE_BYTES: usize = 1 << 20;

/// layerpipe reaching `registry` at `endpoint`, splitting blobs from 8 MiB, with the
/// `multipart` keys in `extra`.
async fn layerpipe(registry: &RealRegistry, endpoint: &str, extra: &str) -> Layerpipe {
    let config = Config::parse(&format!(
        r#"{{"index": {{"dir": ""}}, "multipart": {{"min_blob_bytes": 8388608{extra}}},
            "registries": {{"{host}": {{"endpoint": "{endpoint}"}}}}}}"#,
        host = registry.host(),
    ))
    .unwrap();
    Layerpipe::with_config(config).await
}

/// Lists the layer as JSON; the time it took and the paths listed.
async fn list(lp: &Layerpipe, query: &str) -> (Duration, Vec<String>) {
    let started = Instant::now();
    let (status, body) = real::common::http::get(&lp.url(&format!("files{query}&format=json"))).await;
    let took = started.elapsed();
    assert_eq!(status, http::StatusCode::OK, "{body}");
    let listing: Value = serde_json::from_str(&body).unwrap();
    let paths = listing["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap().to_owned()).collect();
    (took, paths)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_layer_is_listed_over_several_connections_only_where_the_link_is_capped() {
    let registry = RealRegistry::start();
    let files: Vec<(String, Vec<u8>)> =
        (0..FILES).map(|i| (format!("data/{i:02}.bin"), images::generate(900 + i as u64, FILE_BYTES))).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (p.as_str(), &c[..])).collect();
    let layer = BuiltLayer::new(images::OCI_LAYER_GZIP, &refs);
    let blob = layer.blob.clone();
    let pusher = registry.pusher("capped/app").await;
    let image = pusher.push_image(Some("v1"), images::OCI_MANIFEST, images::OCI_CONFIG, "amd64", vec![layer]).await;
    let query = format!(
        "?image={}&digest={}&layer=1&mt={}",
        encode(&image.reference),
        encode(&blob.digest),
        encode(images::OCI_LAYER_GZIP)
    );
    let blob_gets = || registry.requests("GET", &format!("/blobs/{}", blob.digest));
    let size = blob.size as f64;

    // A local link, slow or not, stays on one connection.
    let relay = CountingRelay::throttled(registry.addr(), Some(CAP)).await;
    let local = layerpipe(&registry, &relay.endpoint(), "").await;
    let (one, paths) = list(&local, &query).await;
    assert_eq!(paths.iter().filter(|p| p.ends_with(".bin")).count(), FILES, "{paths:?}");
    assert_eq!(blob_gets(), 1, "a local link is never split: {}", registry.log_tail());

    // Told the relay shapes it, the same first read splits.
    let relay = CountingRelay::throttled(registry.addr(), Some(CAP)).await;
    let shaped = layerpipe(&registry, &relay.endpoint(), r#", "split_local_links": true"#).await;
    let (split, paths) = list(&shaped, &query).await;
    assert_eq!(paths.iter().filter(|p| p.ends_with(".bin")).count(), FILES, "{paths:?}");
    let ranged = blob_gets() - 1;
    assert!(ranged >= 4, "the read went over several connections: {ranged} GETs");
    let fetched = relay.bytes_from_registry() as f64;
    assert!(fetched < size * 1.3, "fetched {fetched} bytes of a {size}-byte blob");
    let speedup = one.as_secs_f64() / split.as_secs_f64();
    eprintln!("one connection {one:?}, split {split:?}: {speedup:.2}x, {ranged} ranged GETs");
    assert!(speedup >= 3.0, "one connection {one:?}, split {split:?}: {speedup:.2}x");
}
