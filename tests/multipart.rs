//! Multipart fetch (src/upstream/multipart/) against the in-process fakes: a blob comes
//! in consecutive ranges over several connections once the first connection is judged
//! capped. The tests force that judgement (`probe_ms` 0, any rate counts as capped) and
//! count requests and connections in the fakes; nothing here depends on timing.

mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::StatusCode;
use support::*;

/// Chunk size in the tests: small, so that a few MiB make a dozen chunks.
const CHUNK: usize = 256 << 10;
/// Connections per download in the tests.
const CONNECTIONS: usize = 4;
/// What each fake connection is capped at, so that the first connection's frames stay
/// small and several connections overlap.
const CAP: u64 = 4 << 20;

struct Served {
    fake: FakeRegistry,
    blob: Bytes,
    lp: Layerpipe,
}

/// A fake registry holding one layer of `size` bytes, set up by `tweak`, and layerpipe
/// with `multipart` as its multipart config (JSON object body).
async fn serve(size: usize, multipart: &str, tweak: impl Fn(&mut FakeBlob)) -> Served {
    let blob = pseudo_random(size, 7);
    let config = Bytes::from_static(br#"{"architecture":"amd64","os":"linux"}"#);
    let manifest = oci_manifest(&config, &[(GZIP_LAYER, &blob[..])]);
    let mut fake_blob = FakeBlob::new(blob.clone());
    fake_blob.throttle = Some(CAP);
    tweak(&mut fake_blob);
    let mut blobs = HashMap::new();
    blobs.insert(digest(&config), FakeBlob::new(config.clone()));
    blobs.insert(digest(&blob), fake_blob);
    let mut manifests = HashMap::new();
    manifests.insert("v1".to_owned(), (OCI_MANIFEST.to_owned(), manifest));
    let fake = FakeRegistry::start(manifests, blobs).await;
    let lp = Layerpipe::start(&format!(
        r#"{{"verify_digests":true,"registries":{{"{host}":{{"endpoint":"http://{host}"}}}},"multipart":{multipart}}}"#,
        host = fake.host()
    ))
    .await;
    Served { fake, blob, lp }
}

/// Splits every large download at once: the rate is judged at the first frame, and any
/// rate counts as capped.
fn forced(extra: &str) -> String {
    forced_above(0, extra)
}

/// Like [`forced`], for blobs of at least `min_blob_bytes`.
fn forced_above(min_blob_bytes: usize, extra: &str) -> String {
    format!(
        r#"{{"connections":{CONNECTIONS},"chunk_bytes":{CHUNK},"min_blob_bytes":{min_blob_bytes},"probe_ms":0,"capped_below_bytes_per_sec":18446744073709551615,"split_local_links":true{extra}}}"#
    )
}

impl Served {
    fn download_url(&self) -> String {
        let image = format!("{}/{REPO}:v1", self.fake.host());
        self.lp.url(&format!(
            "/download?image={}&digest={}&layer=1&mt={}",
            layerpipe::query::encode(&image),
            layerpipe::query::encode(&digest(&self.blob)),
            layerpipe::query::encode(GZIP_LAYER)
        ))
    }

    /// (first, last) of every range GET that reached the CDN, in arrival order.
    fn cdn_ranges(&self) -> Vec<(usize, usize)> {
        let gets = self.fake.seen.cdn_gets.lock().unwrap();
        gets.iter().filter_map(|(_, range)| range.as_deref().map(parse_range)).collect()
    }

    /// (first, last) of every range GET of the blob that reached the registry.
    fn registry_ranges(&self) -> Vec<(usize, usize)> {
        let ranges = self.fake.seen.blob_ranges(&digest(&self.blob));
        ranges.iter().filter_map(|range| range.as_deref().map(parse_range)).collect()
    }
}

fn parse_range(range: &str) -> (usize, usize) {
    let (a, b) = range.trim_start_matches("bytes=").split_once('-').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

/// The ranges sorted, each starting where the one before ended, up to `end`.
fn assert_tiles(mut ranges: Vec<(usize, usize)>, end: usize) {
    ranges.sort();
    for pair in ranges.windows(2) {
        assert_eq!(pair[1].0, pair[0].1 + 1, "ranges leave no gap and do not overlap: {ranges:?}");
    }
    assert_eq!(ranges.last().unwrap().1, end - 1, "the last range ends the blob: {ranges:?}");
}

#[tokio::test]
async fn a_blob_of_many_chunks_arrives_whole_and_in_order_over_several_cdn_connections() {
    let s = serve(3 * 1024 * 1024 + 12_345, &forced(""), |b| b.via_cdn = true).await;
    let got = fetch(&s.download_url(), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-length"), Some(s.blob.len().to_string().as_str()));
    assert!(got.body.as_ref().unwrap() == &s.blob, "exact bytes, in order");

    let ranges = s.cdn_ranges();
    assert!(ranges.len() >= 10, "the rest came in chunks: {ranges:?}");
    assert!(ranges.iter().all(|(a, b)| b - a < CHUNK), "no chunk is larger than chunk_bytes: {ranges:?}");
    assert_tiles(ranges, s.blob.len());
    // The first request and one connection per chunk, all to the final (CDN) URL: the
    // registry redirected once.
    assert!(s.fake.cdn.connections() >= 10, "{} connections", s.fake.cdn.connections());
    assert_eq!(s.fake.seen.redirects.load(Ordering::SeqCst), 1);
    assert!(s.registry_ranges().is_empty(), "chunks went straight to the CDN");
    // Credentials stay with the registry.
    let authorizations = s.fake.seen.cdn_authorizations.lock().unwrap().clone();
    assert!(authorizations.iter().all(Option::is_none), "{authorizations:?}");
}

#[tokio::test]
async fn a_chunk_that_breaks_is_asked_for_again_from_where_it_broke() {
    let s = serve(2 * 1024 * 1024, &forced(""), |b| {
        b.via_cdn = true;
        b.range_faults.lock().unwrap().push((3, 100_000));
    })
    .await;
    let got = fetch(&s.download_url(), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.as_ref().unwrap() == &s.blob, "exact bytes despite the broken chunk");

    let ranges = s.cdn_ranges();
    // The broken GET and its retry end at the same byte; the retry starts no earlier.
    let broken = ranges[2];
    let retries: Vec<_> = ranges.iter().enumerate().filter(|&(i, r)| i != 2 && r.1 == broken.1).collect();
    assert_eq!(retries.len(), 1, "one retry of {broken:?}: {ranges:?}");
    assert!(retries[0].1 .0 >= broken.0, "{ranges:?}");
    let retry = retries[0].0;
    let mut unique = ranges.clone();
    unique.remove(retry);
    assert_tiles(unique, s.blob.len());
}

#[tokio::test]
async fn a_chunk_that_keeps_breaking_aborts_the_download() {
    // Every try at the third range fails before its end: after retries.attempts tries the
    // download is cut off, never delivered as complete.
    let s = serve(2 * 1024 * 1024, &forced(""), |b| {
        b.via_cdn = true;
        b.range_faults.lock().unwrap().extend((3..=40).map(|n| (n, 0)));
    })
    .await;
    let got = fetch(&s.download_url(), &[]).await;
    assert_eq!(got.status, StatusCode::OK, "headers went out before the failure");
    assert!(got.body.is_err(), "the download must fail, not end short");
}

#[tokio::test]
async fn a_server_that_ignores_range_leaves_the_download_on_its_first_connection() {
    let s = serve(2 * 1024 * 1024, &forced(""), |b| {
        b.via_cdn = true;
        b.ranges = Ranges::Ignored;
    })
    .await;
    let got = fetch(&s.download_url(), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.as_ref().unwrap() == &s.blob, "exact bytes from the first connection");
    // It tried one window of chunks (the first connection counts as one), saw 200s, and
    // asked for nothing more.
    let gets = s.fake.seen.cdn_gets.lock().unwrap().clone();
    let tried = gets.iter().filter(|(_, range)| range.is_some()).count();
    assert!((1..CONNECTIONS).contains(&tried), "{gets:?}");
}

#[tokio::test]
async fn a_signed_url_that_expires_mid_download_is_signed_again_by_the_registry() {
    // Each signature serves 3 GETs; the 4th gets 403 as S3 does for an expired URL.
    let s = serve(3 * 1024 * 1024, &forced(""), |b| {
        b.via_cdn = true;
        b.signature_uses = Some(3);
    })
    .await;
    let got = fetch(&s.download_url(), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.as_ref().unwrap() == &s.blob, "exact bytes across several signatures");

    let expired = s.fake.seen.expired.load(Ordering::SeqCst);
    let redirects = s.fake.seen.redirects.load(Ordering::SeqCst);
    assert!(expired >= 1, "the CDN refused an old signature");
    assert!(redirects >= 2, "the registry signed a new URL: {redirects} redirects");
    assert!(!s.registry_ranges().is_empty(), "a chunk went back through the (authenticated) registry");
    // Every signature served at most its 3 GETs: later chunks used the new URL.
    let uses = s.fake.seen.signature_uses.lock().unwrap().clone();
    let served: usize = uses.values().map(|&n| n.min(3)).sum();
    assert_eq!(served + expired, uses.values().sum::<usize>(), "{uses:?}");
    let authorizations = s.fake.seen.cdn_authorizations.lock().unwrap().clone();
    assert!(authorizations.iter().all(Option::is_none), "{authorizations:?}");
}

#[tokio::test]
async fn an_exhausted_budget_leaves_the_download_on_one_connection() {
    // Room for one chunk only: no download can reserve a window of two.
    let s = serve(2 * 1024 * 1024, &forced(&format!(r#","budget_bytes":{CHUNK}"#)), |b| b.via_cdn = true).await;
    let got = fetch(&s.download_url(), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.as_ref().unwrap() == &s.blob);
    assert!(s.cdn_ranges().is_empty(), "no range was asked for");
    assert_eq!(s.fake.cdn.connections(), 1);
}

#[tokio::test]
async fn a_blob_below_the_size_threshold_stays_on_one_connection() {
    let s = serve(2 * 1024 * 1024, &forced_above(4 << 20, ""), |b| b.via_cdn = true).await;
    let got = fetch(&s.download_url(), &[]).await;
    assert!(got.body.as_ref().unwrap() == &s.blob);
    assert!(s.cdn_ranges().is_empty());
    assert_eq!(s.fake.cdn.connections(), 1);
}

#[tokio::test]
async fn a_client_range_is_fetched_in_parts_within_the_range_from_the_registry_itself() {
    // No CDN: the chunks go to the registry, with its token.
    let s = serve(3 * 1024 * 1024, &forced(""), |_| {}).await;
    let (first, last) = (100_000usize, 2_500_000usize);
    let got = fetch(&s.download_url(), &[("range", &format!("bytes={first}-{last}"))]).await;
    assert_eq!(got.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(got.header("content-range"), Some(format!("bytes {first}-{last}/{}", s.blob.len()).as_str()));
    assert!(got.body.as_ref().unwrap() == &s.blob.slice(first..=last), "exactly the range");

    let ranges = s.registry_ranges();
    assert!(ranges.len() >= 5, "the range came in parts: {ranges:?}");
    assert_eq!(ranges[0], (first, last), "the client's own range first");
    assert!(ranges[1..].iter().all(|&(a, b)| a > first && b <= last), "chunks stay within it: {ranges:?}");
    assert_tiles(ranges[1..].to_vec(), last + 1);
    // `registry_ranges` lists only GETs that carried the registry's token; the fake
    // answers 401 to any other, so every chunk was authorised.
}
