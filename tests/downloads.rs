//! The page and the download against in-process fakes: a registry that demands Bearer
//! tokens from a separate token server, and a CDN on another port. Each test names the
//! promise it checks.

mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::StatusCode;
use support::*;

struct Image {
    fake: FakeRegistry,
    layers: Vec<Bytes>,
    manifest: Bytes,
    manifest_digest: String,
}

/// A fake registry holding `team/app:v1` with three layers; `tweak` adjusts each blob.
async fn image(tweak: impl Fn(usize, &mut FakeBlob)) -> Image {
    image_of_size(100_000, tweak).await
}

/// Like [`image`], with layers of about `size` bytes. A failure must come after more than
/// one read buffer (~400 KiB) of a layer for the client to have had the headers first.
async fn image_of_size(size: usize, tweak: impl Fn(usize, &mut FakeBlob)) -> Image {
    let layers: Vec<Bytes> = (0..3).map(|i| pseudo_random(size + i * 7_777, i as u64 + 1)).collect();
    let config = Bytes::from_static(br#"{"architecture":"amd64","os":"linux"}"#);
    let refs: Vec<(&str, &[u8])> = layers.iter().map(|l| (GZIP_LAYER, &l[..])).collect();
    let manifest = oci_manifest(&config, &refs);
    let manifest_digest = digest(&manifest);
    let mut blobs = HashMap::new();
    blobs.insert(digest(&config), FakeBlob::new(config.clone()));
    for (i, layer) in layers.iter().enumerate() {
        let mut blob = FakeBlob::new(layer.clone());
        tweak(i, &mut blob);
        blobs.insert(digest(layer), blob);
    }
    let mut manifests = HashMap::new();
    manifests.insert("v1".to_owned(), (OCI_MANIFEST.to_owned(), manifest.clone()));
    manifests.insert(manifest_digest.clone(), (OCI_MANIFEST.to_owned(), manifest.clone()));
    Image { fake: FakeRegistry::start(manifests, blobs).await, layers, manifest, manifest_digest }
}

fn page_url(lp: &Layerpipe, image: &str) -> String {
    lp.url(&format!("/?image={}", layerpipe::query::encode(image)))
}

#[tokio::test]
async fn page_lists_every_layer_and_each_x_downloads_its_exact_bytes_under_its_name() {
    let img = image(|_, _| {}).await;
    let lp = Layerpipe::for_fake(&img.fake, true).await;
    let page = fetch(&page_url(&lp, &format!("{}/{REPO}:v1", img.fake.host())), &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    assert!(html.contains(&img.manifest_digest), "manifest digest shown");
    let links = download_links(&html);
    assert_eq!(links.len(), 3);
    for (i, (link, layer)) in links.iter().zip(&img.layers).enumerate() {
        assert!(html.contains(&digest(layer)));
        let got = fetch(&lp.url(&format!("/{link}")), &[]).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.body.as_ref().unwrap(), layer, "layer {}", i + 1);
        assert_eq!(got.header("content-length"), Some(layer.len().to_string().as_str()));
        let name = format!("team-app-v1-{}.tar.gzip", i + 1);
        assert_eq!(
            got.header("content-disposition"),
            Some(format!("attachment; filename=\"{name}\"; filename*=UTF-8''{name}").as_str())
        );
    }
    // The page and all three downloads shared one token, asked for with the challenge's
    // service and a pull scope for the repository.
    assert_eq!(img.fake.token_requests(), 1);
    let queries = img.fake.seen.token_queries.lock().unwrap().clone();
    assert_eq!(queries, ["service=fake-registry&scope=repository%3Ateam%2Fapp%3Apull"]);
}

#[tokio::test]
async fn digest_only_reference_names_files_by_the_manifest_digest() {
    let img = image(|_, _| {}).await;
    let lp = Layerpipe::for_fake(&img.fake, true).await;
    let page = fetch(&page_url(&lp, &format!("{}/{REPO}@{}", img.fake.host(), img.manifest_digest)), &[]).await;
    let link = &download_links(&page.text())[1];
    let got = fetch(&lp.url(&format!("/{link}")), &[]).await;
    let name = format!("team-app-{}-2.tar.gzip", &img.manifest_digest[7..19]);
    assert!(got.header("content-disposition").unwrap().contains(&format!("filename=\"{name}\"")));
}

#[tokio::test]
async fn cdn_never_sees_the_token() {
    // Every blob redirects to the CDN, a server on another port (another origin).
    let img = image(|_, blob| blob.via_cdn = true).await;
    let lp = Layerpipe::for_fake(&img.fake, true).await;
    let html = fetch(&page_url(&lp, &format!("{}/{REPO}:v1", img.fake.host())), &[]).await.text();
    for (link, layer) in download_links(&html).iter().zip(&img.layers) {
        let got = fetch(&lp.url(&format!("/{link}")), &[]).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.body.as_ref().unwrap(), layer);
    }
    let at_cdn = img.fake.seen.cdn_authorizations.lock().unwrap().clone();
    assert_eq!(at_cdn.len(), 3, "every download went through the CDN");
    assert!(at_cdn.iter().all(Option::is_none), "Authorization reached the CDN: {at_cdn:?}");
    // The registry itself did get the token for the blob requests.
    let at_registry = img.fake.seen.registry_requests.lock().unwrap().clone();
    assert!(at_registry.iter().filter(|(p, _)| p.contains("/blobs/")).all(|(_, a)| a.is_some()));
}

#[tokio::test]
async fn twenty_concurrent_downloads_make_one_token_request() {
    let img = image(|_, _| {}).await;
    let lp = Layerpipe::for_fake(&img.fake, true).await;
    let link = format!(
        "/download?image={}&digest={}&layer=1&mt={}",
        layerpipe::query::encode(&format!("{}/{REPO}:v1", img.fake.host())),
        digest(&img.layers[0]),
        layerpipe::query::encode(GZIP_LAYER)
    );
    let url = lp.url(&link);
    let downloads: Vec<_> = (0..20).map(|_| tokio::spawn(fetch_hashed_owned(url.clone()))).collect();
    for d in downloads {
        let (status, _, sha, _) = d.await.unwrap().unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(sha, sha256_hex(&img.layers[0]));
    }
    assert_eq!(img.fake.token_requests(), 1);
}

async fn fetch_hashed_owned(url: String) -> Result<(StatusCode, http::HeaderMap, String, u64), String> {
    fetch_hashed(&url).await
}

fn link_for(img: &Image, layer: usize) -> String {
    format!(
        "/download?image={}&digest={}&layer={}&mt={}",
        layerpipe::query::encode(&format!("{}/{REPO}:v1", img.fake.host())),
        digest(&img.layers[layer]),
        layer + 1,
        layerpipe::query::encode(GZIP_LAYER)
    )
}

#[tokio::test]
async fn a_stream_cut_halfway_leaves_the_client_with_an_error_not_a_clean_end() {
    for verify in [true, false] {
        let img = image_of_size(4 << 20, |i, blob| {
            if i == 0 {
                blob.cut_at = Some((blob.data.len() / 2, Cut::Fail));
            }
        })
        .await;
        let lp = Layerpipe::for_fake(&img.fake, verify).await;
        let got = fetch(&lp.url(&link_for(&img, 0)), &[]).await;
        assert_eq!(got.status, StatusCode::OK, "headers were already sent");
        assert!(got.body.is_err(), "verify={verify}: the client saw a clean end");
        // One request for the blob: the break was not retried (or resumed with a Range)
        // behind the client's back.
        let blob_path = format!("/v2/{REPO}/blobs/{}", digest(&img.layers[0]));
        let requests = img.fake.seen.registry_requests.lock().unwrap().clone();
        let blob_requests = requests.iter().filter(|(path, _)| *path == blob_path).count();
        assert_eq!(blob_requests, 1, "verify={verify}: the registry saw {requests:?}");
    }
}

#[tokio::test]
async fn a_corrupted_blob_is_aborted_when_verifying() {
    let img = image_of_size(4 << 20, |i, blob| {
        if i == 0 {
            let mut bad = blob.data.to_vec();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            blob.served = Some(bad.into());
        }
    })
    .await;
    let lp = Layerpipe::for_fake(&img.fake, true).await;
    let got = fetch(&lp.url(&link_for(&img, 0)), &[]).await;
    assert_eq!(got.status, StatusCode::OK, "headers were already sent");
    assert!(got.body.is_err(), "a corrupt blob arrived as complete");
    // Without verification the same bytes pass: it is the check that catches them.
    let lp = Layerpipe::for_fake(&img.fake, false).await;
    let got = fetch(&lp.url(&link_for(&img, 0)), &[]).await;
    assert_eq!(got.body.unwrap().len(), img.layers[0].len());
}

#[tokio::test]
async fn a_100_mib_blob_arrives_with_the_right_sha256() {
    let big = pseudo_random(100 * 1024 * 1024, 42);
    let expected = sha256_hex(&big);
    let config = Bytes::from_static(b"{}");
    let manifest = oci_manifest(&config, &[(GZIP_LAYER, &big)]);
    let mut blobs = HashMap::new();
    blobs.insert(digest(&big), FakeBlob::new(big.clone()));
    let mut manifests = HashMap::new();
    manifests.insert("big".to_owned(), (OCI_MANIFEST.to_owned(), manifest));
    let fake = FakeRegistry::start(manifests, blobs).await;
    let lp = Layerpipe::for_fake(&fake, true).await;
    let html = fetch(&page_url(&lp, &format!("{}/{REPO}:big", fake.host())), &[]).await.text();
    drop(big);
    let (status, headers, sha, len) = fetch_hashed(&lp.url(&format!("/{}", download_links(&html)[0]))).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(len, 100 * 1024 * 1024);
    assert_eq!(sha, expected);
    assert_eq!(headers["content-length"], (100 * 1024 * 1024).to_string());
}

#[tokio::test]
async fn range_gives_the_right_slice_and_416_past_the_end() {
    let img = image(|_, _| {}).await;
    let lp = Layerpipe::for_fake(&img.fake, true).await;
    let url = lp.url(&link_for(&img, 1));
    let got = fetch(&url, &[("range", "bytes=1000-1999")]).await;
    assert_eq!(got.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(got.body.as_ref().unwrap(), &img.layers[1].slice(1000..2000));
    let total = img.layers[1].len();
    assert_eq!(got.header("content-range"), Some(format!("bytes 1000-1999/{total}").as_str()));
    // Resuming from the middle to the end, as `curl -C -` does.
    let got = fetch(&url, &[("range", "bytes=5000-")]).await;
    assert_eq!(got.body.as_ref().unwrap(), &img.layers[1].slice(5000..));
    let got = fetch(&url, &[("range", &format!("bytes={total}-"))]).await;
    assert_eq!(got.status, StatusCode::RANGE_NOT_SATISFIABLE);
}

#[tokio::test]
async fn head_answers_the_headers_without_the_body() {
    let img = image(|_, _| {}).await;
    let lp = Layerpipe::for_fake(&img.fake, true).await;
    let got = fetch_method("HEAD", &lp.url(&link_for(&img, 2)), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-length"), Some(img.layers[2].len().to_string().as_str()));
    assert!(got.header("content-disposition").unwrap().contains("team-app-v1-3.tar.gzip"));
    assert!(got.body.unwrap().is_empty());
}

#[tokio::test]
async fn bad_references_and_parameters_give_400_with_a_reason() {
    let img = image(|_, _| {}).await;
    let lp = Layerpipe::for_fake(&img.fake, true).await;
    for (url, reason) in [
        (page_url(&lp, "Upper/Case"), "invalid repository name"),
        (page_url(&lp, "repo:bad tag"), "invalid tag"),
        (page_url(&lp, "repo@sha256:123"), "invalid digest"),
        (lp.url("/download?image=a/b&digest=sha256:zz&layer=1"), "digest"),
        (lp.url("/download?image=a/b&layer=1"), "no digest"),
        (lp.url("/?image=%ff"), "UTF-8"),
    ] {
        let got = fetch(&url, &[]).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{url}");
        assert!(got.text().contains(reason), "{url}: {}", got.text());
        assert_eq!(got.header("content-type"), Some("text/html; charset=utf-8"));
    }
    assert_eq!(img.fake.registry.connections(), 0, "bad input reached the registry");
}

#[tokio::test]
async fn an_unlisted_loopback_registry_is_refused_before_any_connection() {
    let img = image(|_, _| {}).await;
    let lp = Layerpipe::start("{}").await; // nothing listed
    for reference in
        [format!("{}/{REPO}:v1", img.fake.host()), format!("localhost:{}/{REPO}:v1", img.fake.registry.addr.port())]
    {
        let got = fetch(&page_url(&lp, &reference), &[]).await;
        assert_eq!(got.status, StatusCode::FORBIDDEN, "{reference}: {}", got.text());
    }
    let got = fetch(&lp.url(&link_for(&img, 0)), &[]).await;
    assert_eq!(got.status, StatusCode::FORBIDDEN);
    assert_eq!(img.fake.registry.connections(), 0);
}

#[tokio::test]
async fn registry_errors_map_to_statuses() {
    let img = image(|_, _| {}).await;
    let lp = Layerpipe::for_fake(&img.fake, true).await;
    let got = fetch(&page_url(&lp, &format!("{}/{REPO}:nope", img.fake.host())), &[]).await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    assert!(got.text().contains("not found"));
    let got = fetch(&page_url(&lp, &format!("{}/other/repo:v1", img.fake.host())), &[]).await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    let missing = format!(
        "/download?image={}&digest=sha256:{}&layer=1",
        layerpipe::query::encode(&format!("{}/{REPO}:v1", img.fake.host())),
        "0".repeat(64)
    );
    assert_eq!(fetch(&lp.url(&missing), &[]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_rate_limited_registry_passes_its_retry_after_on() {
    let server = FakeServer::start(|req| {
        if req.uri().path() == "/v2/" {
            return respond(StatusCode::OK, "{}");
        }
        let mut r = respond(StatusCode::TOO_MANY_REQUESTS, "slow down");
        r.headers_mut().insert("retry-after", http::HeaderValue::from_static("17"));
        r
    })
    .await;
    let lp = Layerpipe::start(&format!(r#"{{"registries":{{"{0}":{{"endpoint":"http://{0}"}}}}}}"#, server.addr)).await;
    let got = fetch(&page_url(&lp, &format!("{}/a/b:c", server.addr)), &[]).await;
    assert_eq!(got.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(got.header("retry-after"), Some("17"));
}

#[tokio::test]
async fn a_failing_registry_is_a_502_and_an_absent_one_too() {
    let server = FakeServer::start(|_| respond(StatusCode::INTERNAL_SERVER_ERROR, "boom")).await;
    let lp = Layerpipe::start(&format!(r#"{{"registries":{{"{0}":{{"endpoint":"http://{0}"}}}}}}"#, server.addr)).await;
    let got = fetch(&page_url(&lp, &format!("{}/a/b:c", server.addr)), &[]).await;
    assert_eq!(got.status, StatusCode::BAD_GATEWAY);
    assert!(!got.text().contains("boom"), "the registry's body is not shown");
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let lp = Layerpipe::start(&format!(r#"{{"registries":{{"{0}":{{"endpoint":"http://{0}"}}}}}}"#, closed)).await;
    let got = fetch(&page_url(&lp, &format!("{closed}/a/b:c")), &[]).await;
    assert_eq!(got.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn a_registry_that_never_answers_is_a_504() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and then says nothing.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let lp = Layerpipe::start(&format!(
        r#"{{"timeouts":{{"response_headers_secs":0.3}},"registries":{{"{addr}":{{"endpoint":"http://{addr}"}}}}}}"#
    ))
    .await;
    let got = fetch(&page_url(&lp, &format!("{addr}/a/b:c")), &[]).await;
    assert_eq!(got.status, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn a_revoked_token_is_dropped_and_the_request_retried_once() {
    let img = image(|_, _| {}).await;
    let lp = Layerpipe::for_fake(&img.fake, true).await;
    let got = fetch(&lp.url(&link_for(&img, 0)), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(img.fake.token_requests(), 1);
    img.fake.seen.revoked.lock().unwrap().push("token-1".into());
    let got = fetch(&lp.url(&link_for(&img, 0)), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body.unwrap(), img.layers[0]);
    assert_eq!(img.fake.token_requests(), 2);
}

#[tokio::test]
async fn index_pages_link_each_platform() {
    let img = image(|_, _| {}).await;
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
        {{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
        {{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#,
        d = img.manifest_digest
    );
    let mut manifests = HashMap::new();
    manifests.insert("multi".to_owned(), ("application/vnd.oci.image.index.v1+json".to_owned(), Bytes::from(index)));
    manifests.insert(img.manifest_digest.clone(), (OCI_MANIFEST.to_owned(), img.manifest.clone()));
    let blobs = img.layers.iter().map(|l| (digest(l), FakeBlob::new(l.clone()))).collect();
    let fake = FakeRegistry::start(manifests, blobs).await;
    let lp = Layerpipe::for_fake(&fake, true).await;
    let html = fetch(&page_url(&lp, &format!("{}/{REPO}:multi", fake.host())), &[]).await.text();
    assert!(html.contains("linux/amd64") && html.contains("linux/arm64/v8"), "{html}");
    let href = html.split("<a href=\"./?image=").nth(2).unwrap().split('"').next().unwrap().to_owned();
    let platform_page = fetch(&lp.url(&format!("/?image={href}")), &[]).await;
    assert_eq!(platform_page.status, StatusCode::OK);
    let links = download_links(&platform_page.text());
    assert_eq!(links.len(), 3);
    assert!(links[0].contains("%3Amulti%40sha256"), "the tag is kept for naming: {}", links[0]);
    let got = fetch(&lp.url(&format!("/{}", links[2])), &[]).await;
    assert_eq!(got.body.as_ref().unwrap(), &img.layers[2]);
    assert!(got.header("content-disposition").unwrap().contains("filename=\"team-app-multi-3.tar.gzip\""));
    assert_eq!(fake.seen.token_requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn health_unknown_paths_and_methods() {
    let lp = Layerpipe::start("{}").await;
    let got = fetch(&lp.url("/healthz"), &[]).await;
    assert_eq!((got.status, got.text().as_str()), (StatusCode::OK, "ok\n"));
    assert_eq!(fetch(&lp.url("/nope"), &[]).await.status, StatusCode::NOT_FOUND);
    let got = fetch_method("POST", &lp.url("/"), &[]).await;
    assert_eq!(got.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(got.header("allow"), Some("GET, HEAD"));
    let home = fetch(&lp.url("/"), &[]).await;
    assert!(home.text().contains("<form"));
}
