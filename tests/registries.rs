//! The registries people really run (issue 11): HTTPS on a private CA, and credentials
//! where docker keeps them. A real `docker-registry` serves over TLS with a certificate
//! from a CA each test makes; layerpipe runs in-process on 127.0.0.1.
//!
//! Needs `/usr/bin/docker-registry` (`apt-get install -y docker-registry`).

mod real;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use layerpipe::config::Config;
use real::html::{download_links, unescape};
use real::images::sha256_hex;
use real::tls::{TestCa, TlsRegistry, HTPASSWD_PASSWORD, HTPASSWD_USER};
use real::{Layerpipe, PushedImage, RealRegistry};
use serde_json::json;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get(client: &HttpClient, url: &str) -> (Response<()>, Bytes) {
    let request = Request::get(url).body(Empty::new()).expect("request");
    let response = client.request(request).await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap_or_else(|e| panic!("body of {url}: {e:?}")).to_bytes();
    (Response::from_parts(parts, ()), bytes)
}

/// The image page of `reference`: status and HTML.
async fn page(client: &HttpClient, layerpipe: &Layerpipe, reference: &str) -> (StatusCode, String) {
    let url = layerpipe.url(&format!("?image={}", layerpipe::query::encode(reference)));
    let (response, body) = get(client, &url).await;
    (response.status(), String::from_utf8(body.to_vec()).expect("UTF-8 page"))
}

/// The one-line reason of an error page, unescaped.
fn reason(html: &str) -> String {
    let from = html.find("id=\"reason\">").map(|i| i + "id=\"reason\">".len()).expect("an error reason");
    unescape(&html[from..from + html[from..].find("</p>").expect("</p>")])
}

/// layerpipe listing `registries` (JSON object by host), layer indexes in memory.
async fn layerpipe_with(registries: serde_json::Value) -> Layerpipe {
    let config = json!({"index": {"dir": ""}, "registries": registries});
    Layerpipe::with_config(Config::parse(&config.to_string()).expect("layerpipe config")).await
}

/// Downloads every layer through the page's `[x]` links and checks each byte for byte.
async fn download_all_layers(client: &HttpClient, layerpipe: &Layerpipe, html: &str, image: &PushedImage) {
    let links = download_links(html);
    assert_eq!(links.len(), image.layers.len(), "one [x] per layer:\n{html}");
    for (href, layer) in links.iter().zip(&image.layers) {
        let (response, body) = get(client, &layerpipe.url(href)).await;
        assert_eq!(response.status(), StatusCode::OK, "{href}: {body:?}");
        assert_eq!(body.len() as u64, layer.size);
        assert_eq!(sha256_hex(&body), layer.sha256(), "bytes of {}", layer.digest);
    }
}

/// The download URL of `image`'s first layer, as the page would link it.
fn first_layer_download(reference: &str, image: &PushedImage) -> String {
    let layer = &image.layers[0];
    format!(
        "download?image={}&digest={}&layer=1&mt={}",
        layerpipe::query::encode(reference),
        layerpipe::query::encode(&layer.digest),
        layerpipe::query::encode(&layer.media_type)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_on_a_private_ca_is_a_clear_502_until_its_ca_file_is_set() {
    let plain = RealRegistry::start();
    let image = plain.push_oci_image("tls/app", "v1").await;
    let ca = TestCa::new();
    let registry = TlsRegistry::serve(&plain, &ca, false);
    let reference = registry.reference(&image);
    let client = client();

    // Listed, but without its CA: the page and a download (its own connection) both say
    // what failed and what to set.
    let untrusted = layerpipe_with(json!({registry.host(): {"endpoint": registry.endpoint()}})).await;
    let expected = format!(
        "certificate for {host} is not trusted: unknown issuer; to trust a private CA, set registries.\"{host}\".ca_file to its PEM file",
        host = registry.host()
    );
    let (status, html) = page(&client, &untrusted, &reference).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{html}");
    assert_eq!(reason(&html), expected);
    let (response, body) = get(&client, &untrusted.url(&first_layer_download(&reference, &image))).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(reason(&String::from_utf8_lossy(&body)), expected);

    // With ca_file: the page (pooled connections) and every layer (dedicated ones).
    let trusted =
        layerpipe_with(json!({registry.host(): {"endpoint": registry.endpoint(), "ca_file": ca.pem_path()}})).await;
    let (status, html) = page(&client, &trusted, &reference).await;
    assert_eq!(status, StatusCode::OK, "{html}\n{}", registry.log());
    assert!(html.contains(&image.digest), "{html}");
    download_all_layers(&client, &trusted, &html, &image).await;
    let log = registry.log();
    for layer in &image.layers {
        assert!(log.contains(&format!("GET /v2/tls/app/blobs/{}", layer.digest)), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_registry_s_ca_is_not_trusted_for_another() {
    let plain = RealRegistry::start();
    let image = plain.push_oci_image("tls/other", "v1").await;
    let (ca_a, ca_b) = (TestCa::new(), TestCa::new());
    let a = TlsRegistry::serve(&plain, &ca_a, false);
    let b = TlsRegistry::serve(&plain, &ca_b, false);
    let layerpipe = layerpipe_with(json!({
        a.host(): {"endpoint": a.endpoint(), "ca_file": ca_a.pem_path()},
        b.host(): {"endpoint": b.endpoint(), "ca_file": ca_a.pem_path()},
    }))
    .await;
    let client = client();
    let (status, html) = page(&client, &layerpipe, &a.reference(&image)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let (status, html) = page(&client, &layerpipe, &b.reference(&image)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{html}");
    assert!(reason(&html).starts_with(&format!("certificate for {} is not trusted: unknown issuer", b.host())));
}

#[test]
fn an_unusable_ca_file_stops_start_up_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let config = json!({"registries": {"r.example:5443": {"endpoint": "https://r.example:5443", "ca_file": empty}}});
    let e = Config::parse(&config.to_string()).unwrap_err();
    assert!(e.starts_with(r#"registries."r.example:5443".ca_file: "#), "{e}");
}

/// A docker `config.json` in a temp dir.
fn docker_config(dir: &std::path::Path, config: serde_json::Value) -> std::path::PathBuf {
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).expect("write config.json");
    path
}

/// layerpipe listing the TLS `registry` (trusting `ca`) without credentials of its own,
/// with `docker_config` and helpers from `helper_dir`.
async fn layerpipe_with_docker_config(
    registry: &TlsRegistry,
    ca: &TestCa,
    docker_config: &std::path::Path,
    helper_dir: Option<&std::path::Path>,
) -> Layerpipe {
    let config = json!({
        "index": {"dir": ""},
        "docker_config": docker_config,
        "registries": {registry.host(): {"endpoint": registry.endpoint(), "ca_file": ca.pem_path()}},
    });
    let mut config = Config::parse(&config.to_string()).expect("layerpipe config");
    config.credential_helper_dir = helper_dir.map(std::path::Path::to_path_buf);
    Layerpipe::with_config(config).await
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_from_a_docker_config_s_auths_and_a_wrong_password_is_a_401() {
    let plain = RealRegistry::start();
    let image = plain.push_oci_image("private/app", "v1").await;
    let ca = TestCa::new();
    let registry = TlsRegistry::serve(&plain, &ca, true);
    let reference = registry.reference(&image);
    let dir = tempfile::tempdir().unwrap();
    let client = client();

    // Without credentials the registry refuses.
    let anonymous =
        layerpipe_with(json!({registry.host(): {"endpoint": registry.endpoint(), "ca_file": ca.pem_path()}})).await;
    let (status, html) = page(&client, &anonymous, &reference).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{html}");

    // `auth` as base64 user:password, under an `https://` key as docker writes it.
    let path = docker_config(
        dir.path(),
        json!({"auths": {format!("https://{}", registry.host()): {"auth": base64(&format!("{HTPASSWD_USER}:{HTPASSWD_PASSWORD}"))}}}),
    );
    let layerpipe = layerpipe_with_docker_config(&registry, &ca, &path, None).await;
    let (status, html) = page(&client, &layerpipe, &reference).await;
    assert_eq!(status, StatusCode::OK, "{html}\n{}", registry.log());
    download_all_layers(&client, &layerpipe, &html, &image).await;

    // `username`/`password`, wrong: the registry's 401 reaches the user, no secret does.
    let dir = tempfile::tempdir().unwrap();
    let path = docker_config(
        dir.path(),
        json!({"auths": {registry.host(): {"username": HTPASSWD_USER, "password": "wrong-password"}}}),
    );
    let wrong = layerpipe_with_docker_config(&registry, &ca, &path, None).await;
    let (status, html) = page(&client, &wrong, &reference).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{html}");
    assert!(!html.contains("wrong-password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_from_a_credential_helper_named_in_cred_helpers() {
    let plain = RealRegistry::start();
    let image = plain.push_oci_image("private/helped", "v1").await;
    let ca = TestCa::new();
    let registry = TlsRegistry::serve(&plain, &ca, true);
    let dir = tempfile::tempdir().unwrap();
    // The helper records what it was asked, and answers only for this registry.
    let asked = dir.path().join("asked");
    let script = dir.path().join("docker-credential-test");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nread server\necho \"$1 $server\" >> {asked}\n\
             if [ \"$server\" = {host} ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{HTPASSWD_USER}\",\"Secret\":\"{HTPASSWD_PASSWORD}\"}}' \"$server\"\n\
             else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
            asked = asked.display(),
            host = registry.host(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = docker_config(dir.path(), json!({"credHelpers": {registry.host(): "test"}}));
    let layerpipe = layerpipe_with_docker_config(&registry, &ca, &path, Some(dir.path())).await;
    let client = client();
    let (status, html) = page(&client, &layerpipe, &registry.reference(&image)).await;
    assert_eq!(status, StatusCode::OK, "{html}\n{}", registry.log());
    download_all_layers(&client, &layerpipe, &html, &image).await;
    let asked = std::fs::read_to_string(&asked).unwrap();
    assert!(asked.lines().all(|line| line == format!("get {}", registry.host())), "{asked}");
    // Cached: one run for the page and all the downloads.
    assert_eq!(asked.lines().count(), 1, "{asked}");
}

/// What an in-process fake server saw: method, path, `Authorization` and body.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String, String)>>>;

/// An HTTP server on 127.0.0.1 answering with `answer(method, path, authorization,
/// body)`: status, content type, body. It reads whole request bodies, which the shared
/// fakes of tests/support do not.
async fn fake(
    answer: impl Fn(&str, &str, &str, &str) -> (StatusCode, Vec<(&'static str, String)>, String) + Send + Sync + 'static,
) -> (std::net::SocketAddr, Seen) {
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let answer = std::sync::Arc::new(answer);
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (answer, log) = (answer.clone(), log.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let (answer, log) = (answer.clone(), log.clone());
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = String::from_utf8_lossy(&body.collect().await?.to_bytes()).into_owned();
                        let auth = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                        let (method, path) = (parts.method.to_string(), parts.uri.path().to_owned());
                        let (status, headers, text) = answer(&method, &path, auth, &body);
                        log.lock().unwrap().push((method, path, auth.to_owned(), body));
                        let mut response = Response::new(http_body_util::Full::new(Bytes::from(text)));
                        *response.status_mut() = status;
                        for (name, value) in headers {
                            response.headers_mut().insert(name, value.parse().unwrap());
                        }
                        Ok::<_, hyper::Error>(response)
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_token_is_exchanged_with_the_refresh_token_post() {
    const REFRESH: &str = "refresh+token/with=odd chars";
    let (realm, realm_seen) = fake(|method, _, _, body| {
        let form: Vec<&str> = body.split('&').collect();
        let expected = format!("refresh_token={}", layerpipe::query::encode(REFRESH));
        if method == "POST" && form.contains(&"grant_type=refresh_token") && form.contains(&expected.as_str()) {
            (StatusCode::OK, vec![], r#"{"access_token":"from-refresh","expires_in":300}"#.into())
        } else {
            (StatusCode::UNAUTHORIZED, vec![], String::new())
        }
    })
    .await;
    let config = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.config.v1+json"}"#;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(),
                   "digest": format!("sha256:{}", sha256_hex(config))},
        "layers": [],
    })
    .to_string();
    let challenge = format!(r#"Bearer realm="http://{realm}/token",service="fake-registry""#);
    let (registry, registry_seen) = fake(move |_, path, auth, _| {
        if auth != "Bearer from-refresh" {
            return (StatusCode::UNAUTHORIZED, vec![("www-authenticate", challenge.clone())], String::new());
        }
        match path {
            "/v2/" => (StatusCode::OK, vec![], "{}".into()),
            "/v2/id/app/manifests/v1" => (
                StatusCode::OK,
                vec![("content-type", "application/vnd.oci.image.manifest.v1+json".into())],
                manifest.clone(),
            ),
            _ => (StatusCode::NOT_FOUND, vec![], String::new()),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = docker_config(dir.path(), json!({"auths": {registry.to_string(): {"identitytoken": REFRESH}}}));
    let config = json!({"index": {"dir": ""}, "docker_config": path,
                        "registries": {registry.to_string(): {"endpoint": format!("http://{registry}")}}});
    let layerpipe = Layerpipe::with_config(Config::parse(&config.to_string()).unwrap()).await;
    let (status, html) = page(&client(), &layerpipe, &format!("{registry}/id/app:v1")).await;
    assert_eq!(status, StatusCode::OK, "{html}");

    let realm_seen = realm_seen.lock().unwrap().clone();
    assert_eq!(realm_seen.len(), 1, "{realm_seen:?}");
    let (method, path, auth, body) = &realm_seen[0];
    assert_eq!((method.as_str(), path.as_str(), auth.as_str()), ("POST", "/token", ""));
    let mut form: Vec<&str> = body.split('&').collect();
    form.sort_unstable();
    let refresh = format!("refresh_token={}", layerpipe::query::encode(REFRESH));
    let mut expected = vec![
        "client_id=layerpipe",
        "grant_type=refresh_token",
        refresh.as_str(),
        "scope=repository%3Aid%2Fapp%3Apull",
        "service=fake-registry",
    ];
    expected.sort_unstable();
    assert_eq!(form, expected);
    // The refresh token itself never went to the registry.
    assert!(registry_seen
        .lock()
        .unwrap()
        .iter()
        .all(|(_, _, auth, _)| !auth.contains("refresh+token") && !auth.starts_with("Basic")));
}
