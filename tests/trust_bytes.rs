//! Issue 20, cases 3 to 5: no fallback serves another file's bytes, and what can be
//! verified is.
//!
//! - A layer index relabelled as another layer's (a valid checksum, the other layer's
//!   digest inside) is caught by the entry's header check; the file must then be found
//!   by its path in a fresh read, never as "entry N" of the blob. Against the real
//!   registry, with `index.dir`.
//! - `Range: bytes=0-` is the whole blob, and is verified like a plain GET.
//! - In multipart, a later range answered 200 is retried, then the download goes on
//!   over one connection from where the client is.
//!
//! The last two need a registry that misbehaves on demand: the fakes of
//! `tests/support`.

// Both kits include tests/common (each by #[path]), so a file that uses both loads it
// twice: two copies of the same small helpers, which is harmless.
#![allow(clippy::duplicate_mod)]

mod real;
mod support;

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use http::StatusCode;
use layerpipe::index::codec;
use real::images::{self, BuiltLayer};
use real::RealRegistry;
use support::{digest, fetch, pseudo_random, FakeBlob, FakeRegistry, GZIP_LAYER, OCI_MANIFEST, REPO};

/// The two files' contents: the same length, so that one's size and offset cannot tell
/// them apart, only their names and bytes can.
fn one() -> Vec<u8> {
    "this is file ONE, the first file\n".repeat(40).into_bytes()
}

fn two() -> Vec<u8> {
    "this is file TWO, the other file\n".repeat(40).into_bytes()
}

/// `files?`-style query of a layer of `registry/repository:v1`.
fn layer_query(registry: &RealRegistry, repository: &str, blob: &images::Blob, n: u32) -> String {
    format!(
        "image={}&digest={}&layer={n}&mt={}",
        layerpipe::query::encode(&format!("{}/{repository}:v1", registry.host())),
        layerpipe::query::encode(&blob.digest),
        layerpipe::query::encode(&blob.media_type)
    )
}

/// `sha256-HEX.idx`, as the index store names a blob's index.
fn index_file(dir: &Path, digest: &str) -> std::path::PathBuf {
    dir.join(format!("{}.idx", digest.replace(':', "-")))
}

/// Writes `from`'s index under `to`'s name, relabelled as `to`'s: the digest inside
/// changed and the checksum made good, so that the store loads it as `to`'s own.
fn relabel(dir: &Path, from: &str, to: &str) {
    let bytes = std::fs::read(index_file(dir, from)).expect("the first layer's index was stored");
    let mut index = codec::decode(&bytes[..]).expect("a stored index decodes");
    index.digest = to.parse().unwrap();
    std::fs::write(index_file(dir, to), codec::encode(&index)).unwrap();
    let back = codec::decode(&std::fs::read(index_file(dir, to)).unwrap()[..]).unwrap();
    assert_eq!(back.digest.as_str(), to, "the relabelled index loads as the other layer's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relabelled_index_never_serves_another_files_bytes() {
    let registry = RealRegistry::start();
    let (one, two) = (one(), two());
    // The same two files, in the other order.
    let a = BuiltLayer::new(images::OCI_LAYER_GZIP, &[("x/one", &one), ("x/two", &two)]);
    let b = BuiltLayer::new(images::OCI_LAYER_GZIP, &[("x/two", &two), ("x/one", &one)]);
    let (a_blob, b_blob) = (a.blob.clone(), b.blob.clone());
    let pusher = registry.pusher("trust/relabel").await;
    pusher.push_image(Some("v1"), images::OCI_MANIFEST, images::OCI_CONFIG, "amd64", vec![a, b]).await;
    let a_query = layer_query(&registry, "trust/relabel", &a_blob, 1);
    let b_query = layer_query(&registry, "trust/relabel", &b_blob, 2);
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("index");

    // Both layers listed once: both indexes stored.
    let lp = real::Layerpipe::with_index_dir(&registry, true, &dir).await;
    for query in [&a_query, &b_query] {
        let got = fetch(&lp.url(&format!("files?{query}")), &[]).await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    }
    drop(lp);

    // Saving `one` of B by A's index, relabelled as B's: A's listing puts `one` where
    // B has `two`. The header check catches that; what follows must be `one`'s bytes.
    relabel(&dir, &a_blob.digest, &b_blob.digest);
    let lp = real::Layerpipe::with_index_dir(&registry, true, &dir).await;
    let got = fetch(&lp.url(&format!("save/x/one?{b_query}")), &[]).await;
    let saved = got.body.clone().unwrap_or_default();
    assert!(saved[..] != two[..], "/save/x/one gave x/two's bytes");
    assert_eq!(got.status, StatusCode::OK);
    assert!(saved[..] == one[..], "a fresh read finds x/one: {:?}", String::from_utf8_lossy(&saved));
    let got = fetch(&lp.url(&format!("save/x/two?{b_query}")), &[]).await;
    assert!(got.body.as_ref().is_ok_and(|b| b[..] == two[..]), "then x/two is x/two: {}", got.status);
    drop(lp);

    // The same for the file's page: its preview shows `one`, never `two`.
    relabel(&dir, &a_blob.digest, &b_blob.digest);
    let lp = real::Layerpipe::with_index_dir(&registry, true, &dir).await;
    let got = fetch(&lp.url(&format!("fs/x/one?{b_query}")), &[]).await;
    let page = String::from_utf8_lossy(got.body.as_ref().expect("a page")).into_owned();
    assert!(!page.contains("file TWO"), "/fs/x/one showed x/two's contents: {page}");
    assert_eq!(got.status, StatusCode::OK, "{page}");
    assert!(page.contains("this is file ONE"), "{page}");
    // The fresh index is the one kept: B's own, with `two` first.
    let stored = codec::decode(&std::fs::read(index_file(&dir, &b_blob.digest)).unwrap()[..]).unwrap();
    let first_file = stored.listing.entries().find(|e| e.path().starts_with(b"x/")).unwrap();
    assert_eq!(first_file.path(), b"x/two");
    // A's own index and pages were never wrong.
    let got = fetch(&lp.url(&format!("fs/x/one?{a_query}")), &[]).await;
    assert!(got.text().contains("this is file ONE"));
}

/// A fake registry holding one gzip layer of `size` bytes, set up by `tweak`.
async fn fake_layer(size: usize, tweak: impl Fn(&mut FakeBlob)) -> (FakeRegistry, Bytes) {
    let blob = pseudo_random(size, 20);
    let config = Bytes::from_static(br#"{"architecture":"amd64","os":"linux"}"#);
    let manifest = support::oci_manifest(&config, &[(GZIP_LAYER, &blob[..])]);
    let mut fake_blob = FakeBlob::new(blob.clone());
    tweak(&mut fake_blob);
    let mut blobs = HashMap::new();
    blobs.insert(digest(&config), FakeBlob::new(config.clone()));
    blobs.insert(digest(&blob), fake_blob);
    let mut manifests = HashMap::new();
    manifests.insert("v1".to_owned(), (OCI_MANIFEST.to_owned(), manifest));
    (FakeRegistry::start(manifests, blobs).await, blob)
}

fn download_url(lp: &support::Layerpipe, fake: &FakeRegistry, blob: &[u8]) -> String {
    lp.url(&format!(
        "/download?image={}&digest={}&layer=1&mt={}",
        layerpipe::query::encode(&format!("{}/{REPO}:v1", fake.host())),
        layerpipe::query::encode(&digest(blob)),
        layerpipe::query::encode(GZIP_LAYER)
    ))
}

#[tokio::test]
async fn a_range_of_the_whole_blob_is_verified_like_a_plain_get() {
    // 4 MiB, corrupt in its last byte: the failure comes well after the headers went out.
    let (fake, blob) = fake_layer(4 << 20, |b| {
        let mut bad = b.data.to_vec();
        *bad.last_mut().unwrap() ^= 1;
        b.served = Some(bad.into());
    })
    .await;
    let lp = support::Layerpipe::for_fake(&fake, true).await;
    let url = download_url(&lp, &fake, &blob);
    let last = blob.len() - 1;
    // (The fake answers `bytes=a-b` and `bytes=a-` only; a suffix range covering the blob
    // is the same 206 to layerpipe.)
    for range in ["bytes=0-".to_owned(), format!("bytes=0-{last}"), format!("bytes=0-{}", last * 2)] {
        let got = fetch(&url, &[("range", &range)]).await;
        assert_eq!(got.status, StatusCode::PARTIAL_CONTENT, "{range}: headers went out first");
        assert!(got.body.is_err(), "{range}: a corrupt blob arrived as a complete 206");
    }
    // Part of the blob cannot be checked, and is passed on as the registry sent it.
    let got = fetch(&url, &[("range", "bytes=1-")]).await;
    assert_eq!(got.body.expect("a part is not checked").len(), blob.len() - 1);

    // The blob as it should be: the whole range arrives, exact.
    let (fake, blob) = fake_layer(4 << 20, |_| {}).await;
    let lp = support::Layerpipe::for_fake(&fake, true).await;
    let got = fetch(&download_url(&lp, &fake, &blob), &[("range", "bytes=0-")]).await;
    assert_eq!(got.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(got.header("content-range"), Some(format!("bytes 0-{}/{}", blob.len() - 1, blob.len()).as_str()));
    assert!(got.body.unwrap() == blob);
}

/// Multipart as in `tests/multipart.rs`: every download split at once into chunks of
/// 256 KiB over up to 4 connections, each fake connection capped at 4 MiB/s.
async fn split_download(tweak: impl Fn(&mut FakeBlob)) -> (FakeRegistry, Bytes, support::Layerpipe) {
    let (fake, blob) = fake_layer(2 << 20, |b| {
        b.via_cdn = true;
        b.throttle = Some(4 << 20);
        tweak(b);
    })
    .await;
    let lp = support::Layerpipe::start(&format!(
        r#"{{"verify_digests":true,"registries":{{"{host}":{{"endpoint":"http://{host}"}}}},
            "multipart":{{"connections":4,"chunk_bytes":262144,"min_blob_bytes":0,"probe_ms":0,
                          "capped_below_bytes_per_sec":18446744073709551615,"split_local_links":true}}}}"#,
        host = fake.host()
    ))
    .await;
    (fake, blob, lp)
}

/// (first, last) of each range GET that reached the CDN, in arrival order.
fn cdn_ranges(fake: &FakeRegistry) -> Vec<(u64, u64)> {
    let gets = fake.seen.cdn_gets.lock().unwrap();
    gets.iter()
        .filter_map(|(_, range)| {
            let (a, b) = range.as_deref()?.trim_start_matches("bytes=").split_once('-')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

// Range GETs 1 to 3 are the first window (the first chunk, whose answer proves that
// ranges work, among them); GET 4 is asked for only once the first chunk has arrived
// whole and the first connection is gone: it is a later range.

#[tokio::test]
async fn a_later_range_answered_200_is_asked_for_again() {
    let (fake, blob, lp) = split_download(|b| b.range_ignored.lock().unwrap().push(4)).await;
    let got = fetch(&download_url(&lp, &fake, &blob), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.expect("the download completes") == blob, "exact bytes");
    let ranges = cdn_ranges(&fake);
    let fourth = ranges[3];
    assert_eq!(ranges.iter().filter(|&&r| r == fourth).count(), 2, "the range answered 200 was retried: {ranges:?}");
}

#[tokio::test]
async fn a_later_range_that_keeps_being_answered_200_goes_on_over_one_connection() {
    let (fake, blob, lp) = split_download(|b| b.range_ignored.lock().unwrap().extend(4..=1000)).await;
    let got = fetch(&download_url(&lp, &fake, &blob), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.expect("never aborted while the registry serves the blob") == blob, "exact bytes");
    // The last request asked for the rest from where the client was (and got the whole
    // blob, read past the bytes the client had).
    let ranges = cdn_ranges(&fake);
    let &(from, to) = ranges.last().unwrap();
    assert_eq!(to, blob.len() as u64 - 1, "{ranges:?}");
    assert!(from > 0 && ranges.iter().any(|&(a, b)| a == from && b < to), "from a chunk's start: {ranges:?}");
    assert_eq!(ranges.iter().filter(|r| r.0 == from).count(), 4, "three tries at the chunk, then the rest: {ranges:?}");
}
