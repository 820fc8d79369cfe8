//! Random access inside a large layer, against the real registry: after one listing, a
//! file deep in a ≥100 MB gzip layer costs one small `Range` read; the index survives a
//! restart, a damaged index is rebuilt, and another repository is answered from the
//! index only once the registry says it has the blob.
//!
//! The registry's bytes are counted by a relay in front of it (`tests/real/relay.rs`),
//! not by layerpipe's own metrics. Needs `/usr/bin/docker-registry`.

mod real;

use std::path::Path;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use real::images::{self, Blob, BuiltLayer};
use real::relay::CountingRelay;
use real::{Layerpipe, PushedImage, RealRegistry};

/// Files in the large layer; all but three are incompressible.
const FILES: usize = 2000;
/// Each incompressible file's size: 2000 of them make a 112 MiB layer.
const FILE_BYTES: usize = 56 * 1024;
/// The most a file's preview or save may fetch from the registry.
const FILE_BUDGET: u64 = 4 << 20;

/// The files probed: the first, the middle and the last, each text.
fn probed() -> [usize; 3] {
    [0, FILES / 2, FILES - 1]
}

fn path(i: usize) -> String {
    format!("data/{:02}/file-{i:04}.{}", i % 50, if probed().contains(&i) { "txt" } else { "bin" })
}

fn contents(i: usize) -> Vec<u8> {
    if probed().contains(&i) {
        (0..400).flat_map(|line| format!("line {line} of file {i}: the quick brown fox\n").into_bytes()).collect()
    } else {
        images::generate(9000 + i as u64, FILE_BYTES)
    }
}

async fn get(url: &str) -> (StatusCode, Bytes) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.get(url.parse().unwrap()).await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let status = response.status();
    (status, response.into_body().collect().await.expect("body").to_bytes())
}

struct Layer {
    image: PushedImage,
    blob: Blob,
}

impl Layer {
    fn query(&self, repository: &str, registry: &RealRegistry) -> String {
        format!(
            "image={}&digest={}&layer=1&mt={}",
            layerpipe::query::encode(&format!("{}/{repository}:v1", registry.host())),
            layerpipe::query::encode(&self.blob.digest),
            layerpipe::query::encode(&self.blob.media_type)
        )
    }
}

/// Bytes the registry sent while `f` ran.
async fn fetched<T>(relay: &CountingRelay, f: impl std::future::Future<Output = T>) -> (T, u64) {
    let before = relay.bytes_from_registry();
    let out = f.await;
    (out, relay.bytes_from_registry() - before)
}

/// Bytes of the layer index files in `dir` (the catalog's database lives there too).
fn index_bytes(dir: &Path) -> u64 {
    let is_index = |e: &std::fs::DirEntry| e.file_name().to_string_lossy().ends_with(".idx");
    std::fs::read_dir(dir)
        .map_or(0, |d| d.filter_map(|e| e.ok().filter(is_index)?.metadata().ok()).map(|m| m.len()).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_deep_in_a_large_layer_costs_one_small_range_read() {
    let registry = RealRegistry::start();
    let files: Vec<(String, Vec<u8>)> = (0..FILES).map(|i| (path(i), contents(i))).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (p.as_str(), &c[..])).collect();
    let built = BuiltLayer::new(images::OCI_LAYER_GZIP, &refs);
    let blob = built.blob.clone();
    assert!(blob.size >= 100 << 20, "the layer is {} bytes", blob.size);
    let pusher = registry.pusher("big/layer").await;
    let image = pusher.push_image(Some("v1"), images::OCI_MANIFEST, images::OCI_CONFIG, "amd64", vec![built]).await;
    let layer = Layer { image, blob };
    let relay = CountingRelay::start(registry.addr()).await;
    let state = tempfile::tempdir().unwrap();
    let index_dir = state.path().join("index");

    // The first listing reads the blob once, and leaves an index of at most 2% of it.
    let lp = Layerpipe::reaching(&registry, &relay.endpoint(), true, &index_dir).await;
    let query = layer.query("big/layer", &registry);
    let ((status, page), bytes) = fetched(&relay, get(&lp.url(&format!("files?{query}")))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&page));
    assert!(bytes >= layer.blob.size, "the listing fetched {bytes} bytes");
    let stored = index_bytes(&index_dir);
    assert!(stored > 0 && stored * 50 <= layer.blob.size, "index {stored} bytes for a {}-byte layer", layer.blob.size);
    println!(
        "layer {} bytes, index {stored} bytes ({:.2}%)",
        layer.blob.size,
        stored as f64 * 100.0 / layer.blob.size as f64
    );

    // Each probed file: its page (a preview) and its bytes, each ≤ 4 MiB from the registry.
    for i in probed() {
        let url = lp.url(&format!("fs/{}?{query}", path(i)));
        let ((status, page), bytes) = fetched(&relay, get(&url)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(String::from_utf8_lossy(&page).contains(&format!("line 399 of file {i}: the quick brown fox")));
        assert!(bytes <= FILE_BUDGET, "previewing file {i} fetched {bytes} bytes");
        let url = lp.url(&format!("save/{}?{query}", path(i)));
        let ((status, saved), bytes) = fetched(&relay, get(&url)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(saved[..] == contents(i)[..], "file {i} saved exactly");
        assert!(bytes <= FILE_BUDGET, "saving file {i} fetched {bytes} bytes");
        println!("file {i}: preview and save each fetched at most {bytes} bytes");
    }
    // An incompressible file near the end, whole.
    let url = lp.url(&format!("save/{}?{query}", path(FILES - 2)));
    let ((_, saved), bytes) = fetched(&relay, get(&url)).await;
    assert!(saved[..] == contents(FILES - 2)[..]);
    assert!(bytes <= FILE_BUDGET, "saving file {} fetched {bytes} bytes", FILES - 2);
    drop(lp);

    // A restart with the same folder: the listing costs a HEAD, a file one small read.
    let lp = Layerpipe::reaching(&registry, &relay.endpoint(), true, &index_dir).await;
    let ((status, _), bytes) = fetched(&relay, get(&lp.url(&format!("files?{query}")))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes <= 1 << 20, "the listing after a restart fetched {bytes} bytes");
    let last = FILES - 1;
    let ((_, saved), bytes) = fetched(&relay, get(&lp.url(&format!("save/{}?{query}", path(last))))).await;
    assert!(saved[..] == contents(last)[..]);
    assert!(bytes <= FILE_BUDGET, "saving after a restart fetched {bytes} bytes");
    drop(lp);

    // Another repository without the blob: refused, with nothing read. Once it has the
    // blob (pushed there too), the index answers for it.
    let other = registry.pusher("other/app").await;
    other
        .push_image(
            Some("v1"),
            images::OCI_MANIFEST,
            images::OCI_CONFIG,
            "amd64",
            images::sample_layers(images::OCI_LAYER_GZIP, "other", "amd64"),
        )
        .await;
    let lp = Layerpipe::reaching(&registry, &relay.endpoint(), true, &index_dir).await;
    let other_query = layer.query("other/app", &registry);
    let ((status, page), bytes) = fetched(&relay, get(&lp.url(&format!("files?{other_query}")))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", String::from_utf8_lossy(&page));
    assert!(!String::from_utf8_lossy(&page).contains(&path(0)), "no listing leaks to other/app");
    assert!(bytes <= 1 << 20, "{bytes}");
    let ((status, page), _) = fetched(&relay, get(&lp.url(&format!("fs/{}?{other_query}", path(0))))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!String::from_utf8_lossy(&page).contains("quick brown fox"));
    other.push_blob(&layer.blob).await;
    let ((status, page), bytes) = fetched(&relay, get(&lp.url(&format!("files?{other_query}")))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains(&path(FILES - 1)));
    assert!(bytes <= 1 << 20, "other/app's listing from the index fetched {bytes} bytes");
    drop(lp);

    // A damaged index file is found out, removed, and rebuilt by reading the blob again.
    let is_index = |p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "idx");
    let file = std::fs::read_dir(&index_dir).unwrap().map(|e| e.unwrap().path()).find(is_index).unwrap();
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(len / 2).unwrap();
    let lp = Layerpipe::reaching(&registry, &relay.endpoint(), true, &index_dir).await;
    let ((status, page), bytes) = fetched(&relay, get(&lp.url(&format!("files?{query}")))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains(&path(FILES - 1)));
    assert!(bytes >= layer.blob.size, "a damaged index is not trusted ({bytes} bytes read)");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), len, "the index is rebuilt whole");
    let ((_, saved), bytes) = fetched(&relay, get(&lp.url(&format!("save/{}?{query}", path(last))))).await;
    assert!(saved[..] == contents(last)[..]);
    assert!(bytes <= FILE_BUDGET);
    let _ = &layer.image;
}
