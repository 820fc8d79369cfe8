//! End to end against a real registry: Debian's `docker-registry` (distribution 2.8.2)
//! with token auth from the in-process issuer of `tests/real/`, images pushed through the
//! registry API, and layerpipe serving in-process on 127.0.0.1, asked over HTTP like a
//! browser would.
//!
//! Needs `/usr/bin/docker-registry` (`apt-get install -y docker-registry`).

mod real;

use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use real::html::{download_links, unescape};
use real::images::{hex, sha256_hex};
use real::{Blob, Layerpipe, PushedImage, RealRegistry};

/// The large layer's size; `LAYERPIPE_E2E_LARGE_MIB` overrides the 256 MiB.
fn large_layer_size() -> u64 {
    let mib = std::env::var("LAYERPIPE_E2E_LARGE_MIB").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(256);
    mib << 20
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get(client: &HttpClient, url: &str, headers: HeaderMap) -> Response<Incoming> {
    let mut request = Request::get(url).body(Empty::new()).expect("request");
    *request.headers_mut() = headers;
    client.request(request).await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"))
}

async fn get_bytes(client: &HttpClient, url: &str, headers: HeaderMap) -> (Response<()>, Bytes) {
    let response = get(client, url, headers).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap_or_else(|e| panic!("body of {url}: {e:?}")).to_bytes();
    (Response::from_parts(parts, ()), bytes)
}

/// Reads a response body frame by frame, hashing as it goes: (length, sha256 hex).
async fn stream_sha256(response: Response<Incoming>) -> (u64, String) {
    let mut body = response.into_body();
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    let mut length = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("download frame");
        if let Ok(data) = frame.into_data() {
            length += data.len() as u64;
            hasher.update(&data);
        }
    }
    (length, hex(hasher.finish().as_ref()))
}

/// The image page for `reference`, checked to be a 200 HTML page.
async fn page(client: &HttpClient, layerpipe: &Layerpipe, reference: &str) -> String {
    let url = layerpipe.url(&format!("?image={}", layerpipe::query::encode(reference)));
    page_at(client, &url).await
}

async fn page_at(client: &HttpClient, url: &str) -> String {
    let (response, body) = get_bytes(client, url, HeaderMap::new()).await;
    let html = String::from_utf8(body.to_vec()).expect("UTF-8 page");
    assert_eq!(response.status(), StatusCode::OK, "{url}:\n{html}");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    html
}

/// The platform links of an index page: (href, link text).
fn platform_links(html: &str) -> Vec<(String, String)> {
    const START: &str = "<a href=\"./?image=";
    // The manifest JSON links each manifest's digest too; the platform list is before it.
    let html = html.split("<pre id=\"manifest-json\">").next().unwrap_or_default();
    html.match_indices(START)
        .map(|(i, _)| {
            let from = i + "<a href=\"".len();
            let len = html[from..].find('"').expect("closing quote");
            let text_from = from + len + 2;
            let text_len = html[text_from..].find("</a>").expect("</a>");
            (unescape(&html[from..from + len]), unescape(&html[text_from..text_from + text_len]))
        })
        .collect()
}

/// `repository-path-with-dashes-TAG-N.tar.gzip`, as layerpipe names layer N.
fn expected_file_name(repository: &str, tag: &str, layer: usize) -> String {
    format!("{}-{tag}-{layer}.tar.gzip", repository.replace('/', "-"))
}

/// Checks an image page against what was pushed, and downloads every layer through its
/// `[x]` link: exact bytes, length and file name (`tag` is the one the page shows).
async fn check_image_page_and_downloads(
    client: &HttpClient,
    layerpipe: &Layerpipe,
    html: &str,
    image: &PushedImage,
    tag: &str,
) {
    assert!(
        html.contains(&format!("<code id=\"manifest-digest\">{}</code>", image.digest)),
        "manifest digest on the page:\n{html}"
    );
    // The config digest is shown (as a link to the config's own page).
    let config = html.split("<code id=\"config-digest\">").nth(1).and_then(|rest| rest.split("</code>").next());
    assert!(
        config.is_some_and(|c| c.contains(&format!(">{}<", image.config.digest))),
        "config digest on the page:\n{html}"
    );
    assert!(html.contains(&format!("<p>{} layers,", image.layers.len())));
    let links = download_links(html);
    assert_eq!(links.len(), image.layers.len(), "one [x] per layer:\n{html}");
    for (i, (href, layer)) in links.iter().zip(&image.layers).enumerate() {
        assert!(
            href.contains(&format!("digest={}", layerpipe::query::encode(&layer.digest))),
            "link {} names layer {}'s digest: {href}",
            i + 1,
            layer.digest
        );
        assert!(html.contains(&format!("<td>{}</td>", layer.media_type)));
        let url = layerpipe.url(href);
        let (response, body) = get_bytes(client, &url, HeaderMap::new()).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}: {body:?}");
        let name = expected_file_name(&image.repository, tag, i + 1);
        let disposition = response.headers()[header::CONTENT_DISPOSITION].to_str().unwrap();
        assert!(
            disposition.starts_with(&format!("attachment; filename=\"{name}\"")),
            "layer {}: Content-Disposition {disposition:?}, expected file {name}",
            i + 1
        );
        assert_eq!(response.headers()[header::CONTENT_LENGTH], layer.size.to_string().as_str());
        assert_eq!(body.len() as u64, layer.size);
        assert_eq!(sha256_hex(&body), layer.sha256(), "layer {} bytes", i + 1);
        assert_eq!(Some(&body), layer.bytes(), "layer {} bytes", i + 1);
    }
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// Checks layerpipe's page for a pushed `image` and every download from it, and that
/// layerpipe asked the issuer for one pull token for all of it.
async fn image_round_trip(registry: &RealRegistry, image: PushedImage) {
    let layerpipe = Layerpipe::start(registry, true).await;
    let client = client();
    let html = page(&client, &layerpipe, &image.reference).await;
    assert!(html.contains(&format!("<dd>{}</dd>", image.media_type)));
    let tag = image.tag.clone().expect("pushed by tag");
    check_image_page_and_downloads(&client, &layerpipe, &html, &image, &tag).await;
    assert_eq!(
        registry.issuer().token_requests(&pull_scope(&image.repository)),
        1,
        "one pull token for the page and all downloads: {:?}",
        registry.issuer().token_requests_by_scope()
    );
}

#[tokio::test]
async fn oci_image_layers_download_through_layerpipe() {
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("e2e/oci/app", "v1.0").await;
    assert_eq!(image.media_type, real::images::OCI_MANIFEST);
    assert_eq!(image.layers.len(), 3);
    assert!(image.layers.iter().all(|l| l.media_type == real::images::OCI_LAYER_GZIP));
    image_round_trip(&registry, image).await;
}

#[tokio::test]
async fn docker_v2_image_layers_download_through_layerpipe() {
    let registry = RealRegistry::start();
    let image = registry.push_docker_image("e2e/docker-app", "latest").await;
    assert_eq!(image.media_type, real::images::DOCKER_MANIFEST);
    assert!(image.layers.iter().all(|l| l.media_type == real::images::DOCKER_LAYER_GZIP));
    image_round_trip(&registry, image).await;
}

#[tokio::test]
async fn index_lists_platforms_whose_pages_and_downloads_work() {
    let registry = RealRegistry::start();
    let index = registry.push_oci_index("e2e/multi", "2024").await;
    let layerpipe = Layerpipe::start(&registry, true).await;
    let client = client();

    let html = page(&client, &layerpipe, &index.reference).await;
    assert!(html.contains(&format!("<code id=\"manifest-digest\">{}</code>", index.digest)));
    assert!(html.contains("<p>An index of 2 manifests"), "{html}");
    assert!(download_links(&html).is_empty());
    let links = platform_links(&html);
    let names: Vec<&str> = links.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(names, ["linux/amd64", "linux/arm64"], "{html}");

    for ((href, _), image) in links.iter().zip(&index.platforms) {
        assert!(href.contains(&layerpipe::query::encode(&image.digest)), "{href} names {}", image.digest);
        let platform_page = page_at(&client, &layerpipe.url(href)).await;
        // The platform page keeps the index's tag, so its files are named by it.
        check_image_page_and_downloads(&client, &layerpipe, &platform_page, image, &index.tag).await;
    }
    let amd64 = &index.platforms[0].layers;
    let arm64 = &index.platforms[1].layers;
    assert!(amd64.iter().zip(arm64).all(|(a, b)| a.digest != b.digest));
    assert_eq!(
        registry.issuer().token_requests(&pull_scope(&index.repository)),
        1,
        "one pull token for the index, both platforms and six downloads: {:?}",
        registry.issuer().token_requests_by_scope()
    );
}

/// Downloads `layer` (a generated one) from layerpipe's `url`, hashing as it streams.
async fn download_large(client: &HttpClient, url: &str, layer: &Blob, file_name: &str) {
    let started = Instant::now();
    let response = get(client, url, HeaderMap::new()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_LENGTH], layer.size.to_string().as_str());
    let disposition = response.headers()[header::CONTENT_DISPOSITION].to_str().unwrap().to_owned();
    assert!(disposition.starts_with(&format!("attachment; filename=\"{file_name}\"")), "{disposition}");
    let (length, sha256) = stream_sha256(response).await;
    assert_eq!(length, layer.size);
    assert_eq!(sha256, layer.sha256());
    eprintln!("downloaded {} MiB through layerpipe in {:.2?}", layer.size >> 20, started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_layer_streams_whole_and_in_ranges() {
    let size = large_layer_size();
    let registry = RealRegistry::start();
    let started = Instant::now();
    let image = registry.push_large_layer_image("e2e/large", "big", size, 0x5eed).await;
    eprintln!("generated, hashed and pushed {} MiB in {:.2?}", size >> 20, started.elapsed());
    let layer = &image.layers[0];
    assert!(layer.bytes().is_none(), "the large layer is never held");
    let file_name = expected_file_name(&image.repository, "big", 1);
    let client = client();

    for verify_digests in [true, false] {
        let layerpipe = Layerpipe::start(&registry, verify_digests).await;
        let html = page(&client, &layerpipe, &image.reference).await;
        let links = download_links(&html);
        assert_eq!(links.len(), 1, "{html}");
        let url = layerpipe.url(&links[0]);
        download_large(&client, &url, layer, &file_name).await;

        // HEAD: the headers of the whole download, and no body.
        let request = Request::head(&url).body(Empty::new()).unwrap();
        let response = client.request(request).await.expect("HEAD");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_LENGTH], size.to_string().as_str());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(body.is_empty());

        let mut range = HeaderMap::new();
        range.insert(header::RANGE, HeaderValue::from_static("bytes=1000-1999"));
        let (response, body) = get_bytes(&client, &url, range).await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "verify_digests {verify_digests}: {body:?}");
        assert_eq!(response.headers()[header::CONTENT_RANGE], format!("bytes 1000-1999/{size}").as_str());
        assert_eq!(body.len(), 1000);
        assert_eq!(body, layer.range(1000, 1999));
    }
    // Each layerpipe (a fresh token cache) asked once, for page, download and range.
    assert_eq!(
        registry.issuer().token_requests(&pull_scope(&image.repository)),
        2,
        "{:?}",
        registry.issuer().token_requests_by_scope()
    );
}

/// A cold layerpipe hit with the page and every download at once still asks the issuer
/// once: concurrent misses for the same token wait for one fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_share_one_token() {
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("e2e/concurrent", "v1").await;
    let layerpipe = Layerpipe::start(&registry, true).await;
    let client = client();
    let encoded = layerpipe::query::encode(&image.reference);
    let mut urls = vec![layerpipe.url(&format!("?image={encoded}"))];
    for (i, layer) in image.layers.iter().enumerate() {
        urls.push(layerpipe.url(&format!(
            "download?image={encoded}&digest={}&layer={}&mt={}",
            layerpipe::query::encode(&layer.digest),
            i + 1,
            layerpipe::query::encode(&layer.media_type)
        )));
    }
    let requests: Vec<_> = urls
        .into_iter()
        .map(|url| {
            let client = client.clone();
            tokio::spawn(async move { get_bytes(&client, &url, HeaderMap::new()).await })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.expect("request task"));
    }
    assert_eq!(answers[0].0.status(), StatusCode::OK);
    for ((response, body), layer) in answers[1..].iter().zip(&image.layers) {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(Some(body), layer.bytes());
    }
    assert_eq!(
        registry.issuer().token_requests(&pull_scope(&image.repository)),
        1,
        "{:?}",
        registry.issuer().token_requests_by_scope()
    );
}

/// distribution 2.8 answers an unsatisfiable range with 416 and `Content-Range: bytes
/// */SIZE`, but also with `Content-Length: SIZE` (set before Go's `http.ServeContent`
/// wrote its short error text), so its own 416 body is cut short. layerpipe must not pass
/// that on: the browser gets a clean 416 with `Content-Range` and nothing else.
#[tokio::test]
async fn unsatisfiable_range_is_a_clean_416() {
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("e2e/range", "v1").await;
    let layerpipe = Layerpipe::start(&registry, true).await;
    let client = client();
    let html = page(&client, &layerpipe, &image.reference).await;
    let url = layerpipe.url(&download_links(&html)[0]);
    let size = image.layers[0].size;

    let mut range = HeaderMap::new();
    range.insert(header::RANGE, HeaderValue::try_from(format!("bytes={}-", size + 100)).unwrap());
    let response = get(&client, &url, range).await;
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(response.headers()[header::CONTENT_RANGE], format!("bytes */{size}").as_str());
    let announced = response.headers().get(header::CONTENT_LENGTH).map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let body = response.into_body().collect().await;
    assert!(body.is_ok(), "the 416 announced Content-Length {announced:?} and ended early: {body:?}");
}

/// The support itself, against the real registry: anonymous callers get pull-only
/// tokens, push needs the push credentials, and distribution 2.8 hides OCI manifests
/// from clients that do not accept their media type.
#[tokio::test]
async fn registry_and_issuer_behave_as_the_tests_assume() {
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("e2e/policy", "v1").await;
    let client = client();
    let manifest_url = format!("{}/v2/e2e/policy/manifests/v1", registry.endpoint());
    let upload_url = format!("{}/v2/e2e/policy/blobs/uploads/", registry.endpoint());
    let token_url = format!(
        "{}?service={}&scope={}",
        registry.issuer().realm(),
        layerpipe::query::encode(real::SERVICE),
        layerpipe::query::encode("repository:e2e/policy:pull,push")
    );

    // Without a token: 401 and the challenge that sends clients to the issuer.
    let (response, _) = get_bytes(&client, &manifest_url, HeaderMap::new()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with(&format!("Bearer realm=\"{}\"", registry.issuer().realm())), "{challenge}");
    assert!(challenge.contains("scope=\"repository:e2e/policy:pull\""), "{challenge}");

    // Wrong credentials: the issuer refuses.
    let mut wrong = HeaderMap::new();
    wrong.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic ZTJlLXB1c2hlcjpub3Bl"));
    let (response, _) = get_bytes(&client, &token_url, wrong).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Anonymous: a token that pulls but does not push.
    let (response, body) = get_bytes(&client, &token_url, HeaderMap::new()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["expires_in"], real::issuer::TOKEN_LIFETIME_SECS);
    let bearer = HeaderValue::try_from(format!("Bearer {}", answer["token"].as_str().unwrap())).unwrap();

    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, bearer.clone());
    headers.insert(header::ACCEPT, HeaderValue::from_static(real::images::OCI_MANIFEST));
    let (response, body) = get_bytes(&client, &manifest_url, headers).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, image.manifest);
    assert_eq!(response.headers()["docker-content-digest"], image.digest.as_str());

    // Without the OCI media type in Accept, distribution 2.8 says the manifest is unknown.
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, bearer.clone());
    let (response, body) = get_bytes(&client, &manifest_url, headers).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("MANIFEST_UNKNOWN"), "{body:?}");

    let mut post = Request::post(&upload_url).body(Empty::new()).unwrap();
    post.headers_mut().insert(header::AUTHORIZATION, bearer);
    let response = client.request(post).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "an anonymous token must not push");

    assert_eq!(registry.issuer().token_requests("repository:e2e/policy:pull,push"), 3);
}
