//! What the registries people run do that the real `docker-registry` of tests/real cannot
//! be made to do (issue 11): Docker Hub's quota headers, a repository behind its own
//! challenge while `/v2/` is open, a CDN that refuses HEAD, an API under a path prefix,
//! and foreign layers. Each registry here is an in-process fake on 127.0.0.1, listed in
//! layerpipe's config.

mod support;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode};
use hyper::body::Incoming;
use support::*;

/// One request a fake saw: method, path with query, and `Authorization`.
#[derive(Clone, Debug)]
struct Asked {
    method: Method,
    path: String,
    authorization: Option<String>,
}

type Log = Arc<Mutex<Vec<Asked>>>;

/// A fake server answering with `answer`, logging every request it gets.
async fn fake(answer: impl Fn(&Request<Incoming>) -> FakeResponse + Send + Sync + 'static) -> (FakeServer, Log) {
    let log = Log::default();
    let seen = log.clone();
    let server = FakeServer::start(move |request| {
        seen.lock().unwrap().push(Asked {
            method: request.method().clone(),
            path: request.uri().path_and_query().map_or_else(String::new, ToString::to_string),
            authorization: request.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned()),
        });
        answer(&request)
    })
    .await;
    (server, log)
}

/// `response` with the header `name: value`.
fn with(mut response: FakeResponse, name: &'static str, value: &str) -> FakeResponse {
    response.headers_mut().insert(name, HeaderValue::try_from(value).unwrap());
    response
}

/// An OCI manifest of one gzip layer, with its content type.
fn manifest_response(manifest: &Bytes) -> FakeResponse {
    with(respond(StatusCode::OK, manifest.clone()), "content-type", OCI_MANIFEST)
}

/// A manifest of one gzip layer, `layer`.
fn manifest_of(layer: &[u8]) -> Bytes {
    oci_manifest(b"{}", &[(GZIP_LAYER, layer)])
}

/// layerpipe listing `registries` (host → endpoint).
async fn layerpipe_listing(registries: &[(&str, String)]) -> Layerpipe {
    let listed: Vec<String> =
        registries.iter().map(|(host, endpoint)| format!(r#""{host}":{{"endpoint":"{endpoint}"}}"#)).collect();
    Layerpipe::start(&format!(r#"{{"registries":{{{}}}}}"#, listed.join(","))).await
}

/// The image page of `reference`.
async fn page(layerpipe: &Layerpipe, reference: &str) -> Fetched {
    fetch(&layerpipe.url(&format!("/?image={}", layerpipe::query::encode(reference))), &[]).await
}

/// The one-line reason of an error page.
fn reason(html: &str) -> &str {
    let from = html.find("id=\"reason\">").expect("an error reason") + "id=\"reason\">".len();
    &html[from..from + html[from..].find("</p>").unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_s_quota_headers_are_shown_on_the_page() {
    let manifest = manifest_of(b"layer");
    let by_digest = format!("/v2/library/app/manifests/{}", digest(&manifest));
    let (hub, _) = fake(move |request| match request.uri().path() {
        "/v2/" => respond(StatusCode::OK, "{}"),
        path if path == "/v2/library/app/manifests/v1" || path == by_digest => {
            let response = with(manifest_response(&manifest), "docker-content-digest", &digest(&manifest));
            let response = with(response, "ratelimit-limit", "100;w=21600");
            with(response, "ratelimit-remaining", "87;w=21600")
        }
        _ => respond(StatusCode::NOT_FOUND, ""),
    })
    .await;
    // docker.io itself, listed with the fake as its endpoint.
    let layerpipe = layerpipe_listing(&[("docker.io", hub.url())]).await;
    let page = page(&layerpipe, "app:v1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(
        page.text().contains(
            r#"<dt>pull quota</dt><dd id="pull-quota">Docker Hub: 87 of 100 pulls left for this address (per 6 h)</dd>"#
        ),
        "{}",
        page.text()
    );

    // A registry that sends no quota headers gets no line.
    let (plain, _) = fake(|request| match request.uri().path() {
        "/v2/" => respond(StatusCode::OK, "{}"),
        "/v2/team/app/manifests/v1" => manifest_response(&manifest_of(b"layer")),
        _ => respond(StatusCode::NOT_FOUND, ""),
    })
    .await;
    let host = plain.addr.to_string();
    let layerpipe = layerpipe_listing(&[(&host, plain.url())]).await;
    let page = self::page(&layerpipe, &format!("{host}/team/app:v1")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(!page.text().contains("pull quota"), "{}", page.text());
}

/// The relative URL of the download of `layer` (of `reference`'s repository) as layer 1.
fn download_of(reference: &str, layer: &[u8]) -> String {
    use layerpipe::query::encode;
    format!("/download?image={}&digest={}&layer=1&mt={}", encode(reference), encode(&digest(layer)), encode(GZIP_LAYER))
}

/// `data` as a blob server answers a GET: whole, or the one range `bytes=a-b` asked for.
fn blob_answer(request: &Request<Incoming>, data: &Bytes) -> FakeResponse {
    let range = request.headers().get("range").map(|v| v.to_str().unwrap().trim_start_matches("bytes=").to_owned());
    let Some((a, b)) = range.as_deref().and_then(|r| r.split_once('-')) else {
        return with(respond(StatusCode::OK, data.clone()), "content-length", &data.len().to_string());
    };
    let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse::<usize>().unwrap().min(data.len() - 1));
    let response = respond(StatusCode::PARTIAL_CONTENT, data.slice(a..=b));
    with(response, "content-range", &format!("bytes {a}-{b}/{}", data.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_on_a_download_needs_no_head_from_the_cdn() {
    let layer = pseudo_random(300_000, 7);
    // A CDN whose signed URLs are good for GET only, as S3's are.
    let cdn_layer = layer.clone();
    let (cdn, cdn_log) = fake(move |request| match *request.method() {
        Method::GET => blob_answer(request, &cdn_layer),
        _ => respond(StatusCode::FORBIDDEN, "<Error><Code>SignatureDoesNotMatch</Code></Error>"),
    })
    .await;
    let (cdn_url, blob_path) = (cdn.url(), format!("/v2/team/app/blobs/{}", digest(&layer)));
    let (registry, registry_log) = fake(move |request| match request.uri().path() {
        "/v2/" => respond(StatusCode::OK, "{}"),
        path if path == blob_path => {
            with(respond(StatusCode::TEMPORARY_REDIRECT, ""), "location", &format!("{cdn_url}/blob?sig=abc"))
        }
        _ => respond(StatusCode::NOT_FOUND, ""),
    })
    .await;
    let host = registry.addr.to_string();
    let layerpipe = layerpipe_listing(&[(&host, registry.url())]).await;
    let url = layerpipe.url(&download_of(&format!("{host}/team/app:v1"), &layer));

    let head = fetch_method("HEAD", &url, &[]).await;
    assert_eq!(head.status, StatusCode::OK, "{:?}", head.body);
    assert_eq!(head.header("content-length"), Some(layer.len().to_string().as_str()));
    assert_eq!(head.header("content-range"), None);
    assert!(head.header("content-disposition").unwrap().contains("team-app-v1-1.tar.gzip"));
    assert!(head.body.unwrap().is_empty());
    // Neither the registry nor the CDN was sent a HEAD.
    let asked: Vec<Asked> =
        registry_log.lock().unwrap().iter().chain(cdn_log.lock().unwrap().iter()).cloned().collect();
    assert!(asked.iter().all(|a| a.method == Method::GET), "{asked:?}");

    // A HEAD with a range answers what its GET would: the 206's headers.
    let head = fetch_method("HEAD", &url, &[("range", "bytes=100-199")]).await;
    assert_eq!(head.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(head.header("content-range"), Some(format!("bytes 100-199/{}", layer.len()).as_str()));
    assert!(head.body.unwrap().is_empty());

    // And the download itself still comes whole from the CDN.
    let got = fetch(&url, &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body.unwrap(), layer);
}

/// `Basic user:secret`, as layerpipe sends the configured credentials.
const BASIC: &str = "Basic dXNlcjpzZWNyZXQ=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_s_own_challenge_is_answered_though_v2_is_open() {
    let layer = pseudo_random(50_000, 11);
    let manifest = manifest_of(&layer);
    let token_realm = Arc::new(Mutex::new(String::new()));
    let (realm, served) = (token_realm.clone(), layer.clone());
    let (registry, log) = fake(move |request| {
        let auth = request.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned());
        let path = request.uri().path();
        if path == "/v2/" {
            return respond(StatusCode::OK, "{}");
        }
        if path == "/token" {
            return respond(StatusCode::OK, r#"{"token":"repo-token","expires_in":300}"#);
        }
        // zot's per-repository policy: `basic/…` wants Basic, `bearer/…` a token.
        let (repository, challenge, expected) = if let Some(rest) = path.strip_prefix("/v2/basic/app/") {
            (rest, r#"Basic realm="zot""#.to_owned(), BASIC)
        } else if let Some(rest) = path.strip_prefix("/v2/bearer/app/") {
            let challenge =
                format!(r#"Bearer realm="{}",service="zot",scope="repository:bearer/app:pull""#, realm.lock().unwrap());
            (rest, challenge, "Bearer repo-token")
        } else {
            return respond(StatusCode::NOT_FOUND, "");
        };
        if auth.as_deref() != Some(expected) {
            return with(
                respond(StatusCode::UNAUTHORIZED, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#),
                "www-authenticate",
                &challenge,
            );
        }
        match repository {
            "manifests/v1" => manifest_response(&manifest),
            r if r == format!("blobs/{}", digest(&served)) => blob_answer(request, &served),
            _ => respond(StatusCode::NOT_FOUND, ""),
        }
    })
    .await;
    *token_realm.lock().unwrap() = format!("{}/token", registry.url());
    let host = registry.addr.to_string();
    let layerpipe = Layerpipe::start(&format!(
        r#"{{"registries":{{"{host}":{{"endpoint":"http://{host}","username":"user","password":"secret"}}}}}}"#
    ))
    .await;
    for repository in ["basic/app", "bearer/app"] {
        let reference = format!("{host}/{repository}:v1");
        let page = page(&layerpipe, &reference).await;
        assert_eq!(page.status, StatusCode::OK, "{repository}: {}", page.text());
        let got = fetch(&layerpipe.url(&download_of(&reference, &layer)), &[]).await;
        assert_eq!(got.status, StatusCode::OK, "{repository}");
        assert_eq!(got.body.unwrap(), layer, "{repository}");
    }
    let log = log.lock().unwrap().clone();
    // The token was asked for the repository's scope, with the credentials (same host).
    let token = log.iter().find(|a| a.path.starts_with("/token")).expect("a token request");
    assert!(token.path.contains("scope=repository%3Abearer%2Fapp%3Apull"), "{token:?}");
    assert_eq!(token.authorization.as_deref(), Some(BASIC));
    // Each repository's challenge is met once; later requests carry credentials at once.
    for repository in ["basic/app", "bearer/app"] {
        let refused = log
            .iter()
            .filter(|a| a.path.starts_with(&format!("/v2/{repository}/")))
            .filter(|a| a.authorization.is_none())
            .count();
        assert_eq!(refused, 1, "{repository}: {log:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_s_401_for_a_repository_says_it_may_not_exist() {
    let token_realm = Arc::new(Mutex::new(String::new()));
    let realm = token_realm.clone();
    // Docker Hub grants a token for any repository and then answers 401 for one that
    // does not exist, as for a private one.
    let (hub, _) = fake(move |request| match request.uri().path() {
        "/token" => respond(StatusCode::OK, r#"{"token":"t","expires_in":300}"#),
        _ => {
            let challenge = format!(
                r#"Bearer realm="{}",service="registry.docker.io",scope="repository:library/nope:pull",error="insufficient_scope""#,
                realm.lock().unwrap()
            );
            with(respond(StatusCode::UNAUTHORIZED, ""), "www-authenticate", &challenge)
        }
    })
    .await;
    *token_realm.lock().unwrap() = format!("{}/token", hub.url());
    let layerpipe = layerpipe_listing(&[("docker.io", hub.url())]).await;
    let page = page(&layerpipe, "nope").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.text());
    assert_eq!(reason(&page.text()), "manifest nope not found, or needs credentials");

    // Elsewhere a 401 is what it says.
    let (other, _) =
        fake(|_| with(respond(StatusCode::UNAUTHORIZED, ""), "www-authenticate", r#"Basic realm="private""#)).await;
    let host = other.addr.to_string();
    let layerpipe = layerpipe_listing(&[(&host, other.url())]).await;
    let page = self::page(&layerpipe, &format!("{host}/team/app:v1")).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.text());
    assert_eq!(reason(&page.text()), "the registry refused the request: authentication required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_with_a_path_prefix_serves_every_request() {
    const PREFIX: &str = "/artifactory/api/docker/docker-remote";
    let layer = pseudo_random(40_000, 13);
    let manifest = manifest_of(&layer);
    let token_realm = Arc::new(Mutex::new(String::new()));
    let (realm, served, served_manifest) = (token_realm.clone(), layer.clone(), manifest.clone());
    let (artifactory, log) = fake(move |request| {
        // The token realm is outside the prefix, as Artifactory's is.
        if request.uri().path() == "/artifactory/api/docker/token" {
            return respond(StatusCode::OK, r#"{"token":"art","expires_in":300}"#);
        }
        let Some(path) = request.uri().path().strip_prefix(PREFIX) else {
            return respond(StatusCode::NOT_FOUND, "not under the prefix");
        };
        if request.headers().get("authorization").is_none_or(|v| v != "Bearer art") {
            let challenge = format!(r#"Bearer realm="{}",service="artifactory""#, realm.lock().unwrap());
            return with(respond(StatusCode::UNAUTHORIZED, ""), "www-authenticate", &challenge);
        }
        match path {
            "/v2/" => respond(StatusCode::OK, "{}"),
            "/v2/team/app/manifests/v1" => manifest_response(&served_manifest),
            "/v2/team/app/tags/list" => respond(StatusCode::OK, r#"{"name":"team/app","tags":["v1"]}"#),
            p if p == format!("/v2/team/app/blobs/{}", digest(&served)) => blob_answer(request, &served),
            _ => respond(StatusCode::NOT_FOUND, ""),
        }
    })
    .await;
    *token_realm.lock().unwrap() = format!("{}/artifactory/api/docker/token", artifactory.url());
    let host = artifactory.addr.to_string();
    let layerpipe = layerpipe_listing(&[(&host, format!("{}{PREFIX}/", artifactory.url()))]).await;
    let reference = format!("{host}/team/app:v1");
    let page = page(&layerpipe, &reference).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let url = layerpipe.url(&download_of(&reference, &layer));
    let got = fetch(&url, &[]).await;
    assert_eq!(got.body.unwrap(), layer);
    let head = fetch_method("HEAD", &url, &[]).await;
    assert_eq!(head.header("content-length"), Some(layer.len().to_string().as_str()));
    // Tags and referrers, which no page of this branch asks for yet, from the client.
    let config = layerpipe::config::Config::parse(&format!(
        r#"{{"registries":{{"{host}":{{"endpoint":"{}{PREFIX}"}}}}}}"#,
        artifactory.url()
    ))
    .unwrap();
    let client = layerpipe::registry::RegistryClient::new(Arc::new(config), Arc::default());
    let image: layerpipe::reference::ImageReference = reference.parse().unwrap();
    assert_eq!(client.tags(&image, 10, None).await.unwrap().tags, vec!["v1".to_owned()]);
    let manifest_digest: layerpipe::digest::Digest = digest(&manifest).parse().unwrap();
    assert!(client.referrers(&image, &manifest_digest).await.is_empty());
    // Every registry request went under the prefix; only the realm is outside it.
    let log = log.lock().unwrap().clone();
    for asked in [
        format!("{PREFIX}/v2/"),
        format!("{PREFIX}/v2/team/app/tags/list?n=10"),
        format!("{PREFIX}/v2/team/app/referrers/{}", digest(&manifest)),
    ] {
        assert!(log.iter().any(|a| a.path == asked), "{asked} not in {log:?}");
    }
    assert!(
        log.iter().all(|a| a.path.starts_with(PREFIX) || a.path.starts_with("/artifactory/api/docker/token?")),
        "{log:?}"
    );
}

/// Docker's foreign layer type, for Windows base layers.
const FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_layer_comes_from_its_urls_and_is_always_verified() {
    let (good, bad) = (pseudo_random(70_000, 17), pseudo_random(1_000_000, 19));
    let (forged, good_for_served) = (pseudo_random(1_000_000, 23), good.clone());
    // Where the manifest says the layers are: one path missing, one good, one forged.
    let (cdn, cdn_log) = fake(move |request| match request.uri().path() {
        "/good" => blob_answer(request, &good_for_served),
        "/forged" => blob_answer(request, &forged),
        _ => respond(StatusCode::NOT_FOUND, ""),
    })
    .await;
    // A host that is not listed: only https to public addresses would do.
    let (elsewhere, elsewhere_log) = fake(|_| respond(StatusCode::OK, "")).await;
    let cdn_url = cdn.url();
    let elsewhere_url = format!("http://localhost:{}/layer", elsewhere.addr.port());
    let descriptor = |data: &Bytes, urls: &[String]| serde_json::json!({"mediaType": FOREIGN_LAYER, "digest": digest(data), "size": data.len(), "urls": urls});
    let unreachable = pseudo_random(1000, 29);
    let manifest = Bytes::from(
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest(b"{}"), "size": 2},
            "layers": [
                descriptor(&good, &[format!("{cdn_url}/missing"), format!("{cdn_url}/good")]),
                descriptor(&bad, &[format!("{cdn_url}/forged")]),
                descriptor(&unreachable, &[elsewhere_url]),
            ],
        })
        .to_string(),
    );
    let (registry, _) = fake(move |request| match request.uri().path() {
        "/v2/" => respond(StatusCode::OK, "{}"),
        "/v2/win/app/manifests/v1" => with(respond(StatusCode::OK, manifest.clone()), "content-type", DOCKER_MANIFEST),
        // The registry holds no foreign blob, as Docker Hub does not.
        _ => respond(StatusCode::NOT_FOUND, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#),
    })
    .await;
    let (host, cdn_host) = (registry.addr.to_string(), cdn.addr.to_string());
    // Digests are checked for the foreign layer even with verify_digests off. The CDN is
    // listed, which is how a test (or an operator) lets layerpipe reach a loopback host.
    let layerpipe = Layerpipe::start(&format!(
        r#"{{"verify_digests":false,"registries":{{"{host}":{{"endpoint":"http://{host}"}},"{cdn_host}":{{"endpoint":"http://{cdn_host}"}}}}}}"#
    ))
    .await;
    let reference = format!("{host}/win/app:v1");

    let got = fetch(&layerpipe.url(&download_of(&reference, &good)), &[("range", "bytes=0-9")]).await;
    assert_eq!(got.status, StatusCode::OK, "whole, so that it can be verified");
    assert_eq!(got.body.unwrap(), good);
    let head = fetch_method("HEAD", &layerpipe.url(&download_of(&reference, &good)), &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), Some(good.len().to_string().as_str()));

    let forged = fetch(&layerpipe.url(&download_of(&reference, &bad)), &[]).await;
    assert_eq!(forged.status, StatusCode::OK, "the headers went before the bytes were in");
    assert!(forged.body.is_err(), "a forged foreign layer is aborted, not completed");

    let refused = fetch(&layerpipe.url(&download_of(&reference, &unreachable)), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert!(elsewhere_log.lock().unwrap().is_empty());

    // A blob the manifest does not list with URLs is the registry's 404.
    let missing = fetch(&layerpipe.url(&download_of(&reference, b"not a layer")), &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // Nothing went to the foreign URLs with credentials.
    assert!(cdn_log.lock().unwrap().iter().all(|a| a.authorization.is_none()));
}
