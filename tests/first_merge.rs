//! The first visit to the merged view and to the sizes streams a line of progress per
//! layer as its listing arrives, then the page; JSON stays plain JSON. Against the real
//! registry, behind a slow link (a throttled relay) so the merge takes seconds.

mod real;

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use real::images::{self, BuiltLayer};
use real::relay::CountingRelay;
use real::{Layerpipe, RealRegistry};

/// The large layer's size: 16 MiB of incompressible bytes, through 8 MiB/s, about 2 s.
const LARGE: usize = 16 << 20;

/// Pushes a three-layer image to `repository`: small, large (about 2 s to read), small.
/// `seed` keeps each image's large layer its own, so no visit finds another's listing.
async fn push_slow_image(registry: &RealRegistry, repository: &str, seed: u64) -> String {
    let large = images::generate(seed, LARGE);
    let first = BuiltLayer::new(images::OCI_LAYER_GZIP, &[("etc/first.txt", format!("first {seed}").as_bytes())]);
    let middle = BuiltLayer::new(images::OCI_LAYER_GZIP, &[("opt/large.bin", &large[..])]);
    let last = BuiltLayer::new(images::OCI_LAYER_GZIP, &[("etc/last.txt", format!("last {seed}").as_bytes())]);
    let pusher = registry.pusher(repository).await;
    let image = pusher
        .push_image(Some("v1"), images::OCI_MANIFEST, images::OCI_CONFIG, "amd64", vec![first, middle, last])
        .await;
    layerpipe::query::encode(&image.reference)
}

/// A GET whose body is read frame by frame, as the parts arrive.
async fn frames(url: &str) -> (http::StatusCode, Vec<String>) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.get(url.parse().unwrap()).await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let status = response.status();
    let mut body = response.into_body();
    let mut parts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(frame) = tokio::time::timeout_at(deadline.into(), body.frame()).await.expect("the page ends") {
        if let Ok(data) = frame.expect("a frame").into_data() {
            parts.push(String::from_utf8_lossy(&data).into_owned());
        }
    }
    (status, parts)
}

/// The part where `needle` first shows, if any.
fn part_with(parts: &[String], needle: &str) -> Option<usize> {
    parts.iter().position(|p| p.contains(needle))
}

/// The streamed page's checks, shared by the merged view and the sizes: progress first,
/// a line as layers 1 and 3 arrive (while the large layer 2 is still read), then `page`.
fn assert_streamed(parts: &[String], page: &str) {
    let whole = parts.concat();
    assert!(parts.len() >= 4, "the page came in {} parts: {whole}", parts.len());
    assert!(parts[0].contains("<div class=\"progress\" id=\"progress\">"), "{}", parts[0]);
    let at_page = part_with(parts, page).unwrap_or_else(|| panic!("no {page} in {whole}"));
    // Layers 1 and 3 are small: their lines come while the large one is still read.
    let first = part_with(parts, "of 3 layers read; layer 1 read: ").unwrap_or_else(|| panic!("{whole}"));
    let third = part_with(parts, "of 3 layers read; layer 3 read: ").unwrap_or_else(|| panic!("{whole}"));
    assert!(first < at_page && third < at_page, "{whole}");
    // While no layer arrives, the large one's bytes show.
    let reading = part_with(parts, "; reading layer 2: ").unwrap_or_else(|| panic!("{whole}"));
    assert!(reading < at_page, "{whole}");
    assert!(whole.contains("<p id=\"progress-done\">Read all 3 layers: "), "{whole}");
    assert!(whole.contains(", 6 entries.</p>"), "{whole}");
    assert_eq!(whole.matches("<main>").count(), 1, "one frame: {whole}");
    assert!(whole.trim_end().ends_with("</html>"), "{whole}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_visit_to_the_merged_view_and_the_sizes_streams_progress_per_layer() {
    let registry = RealRegistry::start();
    let merged = push_slow_image(&registry, "first/merged", 11).await;
    let sizes = push_slow_image(&registry, "first/sizes", 12).await;
    let json = push_slow_image(&registry, "first/json", 13).await;
    let relay = CountingRelay::throttled(registry.addr(), Some(8 << 20)).await;
    let lp = Layerpipe::reaching(&registry, &relay.endpoint(), true, Path::new("")).await;

    let (status, parts) = frames(&lp.url(&format!("layers/?image={merged}"))).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_streamed(&parts, "<table id=\"merged\">");
    assert!(parts.concat().contains(">opt/</a>"), "{}", parts.concat());
    // The view is at hand now: the next visit is the page, whole, in one part.
    let (status, again) = frames(&lp.url(&format!("layers/opt/?image={merged}"))).await;
    assert_eq!(status, http::StatusCode::OK);
    let again = again.concat();
    assert!(!again.contains("id=\"progress\"") && again.contains(">large.bin</a>"), "{again}");

    let (status, parts) = frames(&lp.url(&format!("sizes?image={sizes}"))).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_streamed(&parts, "<table id=\"largest\">");

    // JSON is never streamed, however long the merge takes.
    let started = Instant::now();
    let (status, parts) = frames(&lp.url(&format!("sizes?image={json}&format=json"))).await;
    assert_eq!(status, http::StatusCode::OK);
    assert!(started.elapsed() > Duration::from_millis(500), "the merge was not slow enough to test streaming");
    let value: serde_json::Value = serde_json::from_str(&parts.concat()).expect("plain JSON");
    assert!(value.get("largest").is_some() || value.get("files").is_some(), "{value}");
}
