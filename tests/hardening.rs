//! Faults, bad input, abuse and operations, against in-process fakes (and, for signals
//! and logs, the real binary). Each test names the promise it checks.

mod support;

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use support::*;

/// layerpipe with `fake` listed, plus `extra` top-level config keys (`"k": v,` each).
async fn layerpipe_with(fake_host: &str, extra: &str) -> Layerpipe {
    Layerpipe::start(&format!(r#"{{{extra} "registries":{{"{fake_host}":{{"endpoint":"http://{fake_host}"}}}}}}"#))
        .await
}

/// A fake registry holding one blob (and a manifest for it, tag `v1`).
async fn one_blob(blob: FakeBlob) -> (FakeRegistry, Bytes) {
    let data = blob.data.clone();
    let manifest = oci_manifest(b"{}", &[(GZIP_LAYER, &data)]);
    let mut blobs = HashMap::new();
    blobs.insert(digest(&data), blob);
    let mut manifests = HashMap::new();
    manifests.insert("v1".to_owned(), (OCI_MANIFEST.to_owned(), manifest));
    (FakeRegistry::start(manifests, blobs).await, data)
}

fn download_path(host: &str, data: &[u8]) -> String {
    format!(
        "/download?image={}&digest={}&layer=1&mt={}",
        layerpipe::query::encode(&format!("{host}/{REPO}:v1")),
        digest(data),
        layerpipe::query::encode(GZIP_LAYER)
    )
}

fn page_path(reference: &str) -> String {
    format!("/?image={}", layerpipe::query::encode(reference))
}

/// A registry without auth whose answers for tag `v1`'s manifest come from `answer(n)`
/// for the n-th such request (from 1). What else an image page asks for (its config,
/// its referrers) is a 404, as from a registry without them, and not counted.
async fn scripted_registry(
    answer: impl Fn(usize) -> FakeResponse + Send + Sync + 'static,
) -> (FakeServer, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let server = FakeServer::start(move |req| {
        if req.uri().path() == "/v2/" {
            return respond(StatusCode::OK, "{}");
        }
        if !req.uri().path().ends_with("/manifests/v1") {
            return respond(StatusCode::NOT_FOUND, "");
        }
        answer(seen.fetch_add(1, Ordering::SeqCst) + 1)
    })
    .await;
    (server, count)
}

fn manifest_response() -> FakeResponse {
    let mut r = respond(StatusCode::OK, oci_manifest(b"{}", &[(GZIP_LAYER, b"layer")]));
    r.headers_mut().insert("content-type", HeaderValue::from_static(OCI_MANIFEST));
    r
}

#[tokio::test]
async fn a_registry_that_stalls_mid_stream_aborts_the_download() {
    let mut blob = FakeBlob::new(pseudo_random(1 << 20, 7));
    blob.cut_at = Some((300_000, Cut::Stall));
    let (fake, data) = one_blob(blob).await;
    let lp = layerpipe_with(&fake.host(), r#""timeouts":{"idle_read_secs":0.5},"#).await;
    let got = tokio::time::timeout(Duration::from_secs(20), fetch(&lp.url(&download_path(&fake.host(), &data)), &[]))
        .await
        .expect("the stalled download was not cut off");
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.is_err(), "a stalled download ended cleanly");
    let metrics = fetch(&lp.url("/metrics"), &[]).await.text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("layerpipe_upstream_errors_total{kind=\"timeout\",registry=") && l.ends_with("} 1")),
        "{metrics}"
    );
    // Aborted, not retried behind the client's back: the registry saw one blob request.
    let blob_path = format!("/v2/{REPO}/blobs/{}", digest(&data));
    let requests = fake.seen.registry_requests.lock().unwrap().clone();
    assert_eq!(requests.iter().filter(|(path, _)| *path == blob_path).count(), 1, "{requests:?}");
}

#[tokio::test]
async fn a_busy_registry_is_retried_with_backoff_then_served() {
    let (server, count) = scripted_registry(|n| match n {
        1 => respond(StatusCode::SERVICE_UNAVAILABLE, "busy"),
        2 => respond(StatusCode::BAD_GATEWAY, "busy"),
        _ => manifest_response(),
    })
    .await;
    let lp = layerpipe_with(&server.addr.to_string(), "").await;
    let got = fetch(&lp.url(&page_path(&format!("{}/a/b:v1", server.addr))), &[]).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    // The HEAD (for the tag's digest) is retried twice, then the manifest is fetched.
    assert_eq!(count.load(Ordering::SeqCst), 4);
    // With retries off the first 503 is the answer.
    let (server, count) = scripted_registry(|_| respond(StatusCode::SERVICE_UNAVAILABLE, "busy")).await;
    let lp = layerpipe_with(&server.addr.to_string(), r#""retries":{"attempts":1},"#).await;
    let got = fetch(&lp.url(&page_path(&format!("{}/a/b:v1", server.addr))), &[]).await;
    assert_eq!(got.status, StatusCode::BAD_GATEWAY);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_short_retry_after_is_waited_out_and_a_long_one_passed_on() {
    let (server, count) = scripted_registry(|n| {
        if n == 1 {
            let mut r = respond(StatusCode::TOO_MANY_REQUESTS, "");
            r.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
            r
        } else {
            manifest_response()
        }
    })
    .await;
    let lp = layerpipe_with(&server.addr.to_string(), "").await;
    let got = fetch(&lp.url(&page_path(&format!("{}/a/b:v1", server.addr))), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    // The HEAD waits out the 429, then the manifest is fetched.
    assert_eq!(count.load(Ordering::SeqCst), 3);

    let (server, count) = scripted_registry(|_| {
        let mut r = respond(StatusCode::TOO_MANY_REQUESTS, "");
        r.headers_mut().insert("retry-after", HeaderValue::from_static("3600"));
        r
    })
    .await;
    let lp = layerpipe_with(&server.addr.to_string(), "").await;
    let got = fetch(&lp.url(&page_path(&format!("{}/a/b:v1", server.addr))), &[]).await;
    assert_eq!(got.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(got.header("retry-after"), Some("3600"));
    assert_eq!(count.load(Ordering::SeqCst), 1, "a long Retry-After is not waited out");
}

/// A registry whose challenge sends clients to `realm`.
async fn registry_with_realm(realm: String) -> FakeServer {
    FakeServer::start(move |_| {
        let mut r = respond(StatusCode::UNAUTHORIZED, "");
        let challenge = format!(r#"Bearer realm="{realm}",service="s""#);
        r.headers_mut().insert("www-authenticate", HeaderValue::try_from(challenge).unwrap());
        r
    })
    .await
}

#[tokio::test]
async fn token_server_faults_become_clear_errors() {
    // Bound and never listening, kept for the whole test: connections are refused, and no
    // other test's server can take the port (a listener dropped at once let one do so).
    let closed_socket = tokio::net::TcpSocket::new_v4().unwrap();
    closed_socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = closed_socket.local_addr().unwrap();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let garbage = FakeServer::start(|_| respond(StatusCode::OK, "<html>not json</html>")).await;
    let no_token = FakeServer::start(|_| respond(StatusCode::OK, r#"{"expires_in":300}"#)).await;
    let refusing = FakeServer::start(|_| respond(StatusCode::FORBIDDEN, "")).await;
    for (realm, status, reason) in [
        (format!("http://{closed}/token"), StatusCode::BAD_GATEWAY, "cannot connect"),
        (format!("http://{silent_addr}/token"), StatusCode::GATEWAY_TIMEOUT, "did not answer"),
        (format!("{}/token", garbage.url()), StatusCode::BAD_GATEWAY, "not valid JSON"),
        (format!("{}/token", no_token.url()), StatusCode::BAD_GATEWAY, "neither token nor access_token"),
        (format!("{}/token", refusing.url()), StatusCode::UNAUTHORIZED, "refused to grant pull access"),
    ] {
        let registry = registry_with_realm(realm.clone()).await;
        let lp = layerpipe_with(&registry.addr.to_string(), r#""timeouts":{"response_headers_secs":0.5},"#).await;
        let got = fetch(&lp.url(&page_path(&format!("{}/a/b:v1", registry.addr))), &[]).await;
        assert_eq!(got.status, status, "{realm}: {}", got.text());
        assert!(got.text().contains(reason), "{realm}: {}", got.text());
    }
}

#[tokio::test]
async fn a_redirect_loop_is_a_502() {
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let server = FakeServer::start(move |req| {
        if req.uri().path() == "/v2/" {
            return respond(StatusCode::OK, "{}");
        }
        counted.fetch_add(1, Ordering::SeqCst);
        let mut r = respond(StatusCode::FOUND, "");
        r.headers_mut().insert("location", HeaderValue::try_from(req.uri().path()).unwrap());
        r
    })
    .await;
    let lp = layerpipe_with(&server.addr.to_string(), "").await;
    let got = fetch(&lp.url(&download_path(&server.addr.to_string(), b"x")), &[]).await;
    assert_eq!(got.status, StatusCode::BAD_GATEWAY);
    assert!(got.text().contains("redirected more than 10 times"));
    // The first request and ten redirects, then layerpipe gives up.
    assert_eq!(requests.load(Ordering::SeqCst), 11);
}

#[tokio::test]
async fn a_corrupted_blob_behind_a_redirect_never_arrives_complete() {
    let data = pseudo_random(500_000, 3);
    let mut blob = FakeBlob::new(data.clone());
    let mut bad = data.to_vec();
    bad[1234] ^= 0x40;
    blob.served = Some(bad.into());
    blob.via_cdn = true;
    let (fake, _) = one_blob(blob).await;
    let lp = Layerpipe::for_fake(&fake, true).await;
    let got = fetch(&lp.url(&download_path(&fake.host(), &data)), &[]).await;
    assert!(got.body.is_err(), "a corrupted blob arrived complete");
    assert_eq!(fake.seen.cdn_authorizations.lock().unwrap().len(), 1, "it came from the CDN");
    let metrics = fetch(&lp.url("/metrics"), &[]).await.text();
    assert!(metrics.contains("layerpipe_digest_mismatches_total 1"), "{metrics}");
}

#[tokio::test]
async fn when_the_client_goes_away_the_registry_connection_is_closed_at_once() {
    let (fake, data) = one_blob(FakeBlob::new(pseudo_random(64 << 20, 9))).await;
    let lp = Layerpipe::for_fake(&fake, false).await;
    let url = lp.url(&download_path(&fake.host(), &data));
    let response = client().request(Request::get(&url).body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    let closed_before = fake.registry.closed();
    drop(body); // the client goes away mid-download
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.registry.closed() == closed_before {
        assert!(Instant::now() < deadline, "the registry connection stayed open after the client left");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The download's slot is given back.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = fetch(&lp.url("/metrics"), &[]).await.text();
        if metrics.contains("layerpipe_active_downloads 0") {
            break;
        }
        assert!(Instant::now() < deadline, "the download still counts as active:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The current RSS (VmRSS) or the peak RSS (VmHWM) of `pid`, in KiB.
fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix(field)).unwrap_or_else(|| panic!("no {field}"));
    line.trim().trim_end_matches("kB").trim().parse().unwrap()
}

/// 200 downloads of 4 MiB at once, read slowly, through layerpipe as its own process, so
/// that its memory is measured apart from the test's clients and fake registry (which
/// hold their own buffers for 200 connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_slow_readers_keep_memory_bounded() {
    let (fake, data) = one_blob(FakeBlob::new(pseudo_random(4 << 20, 11))).await;
    let lp = spawn_layerpipe(&format!(r#"{{"registries":{{"{h}":{{"endpoint":"http://{h}"}}}}}}"#, h = fake.host()));
    let url = format!("http://{}{}", lp.addr, download_path(&fake.host(), &data));
    // Warm up (token, pools), then take the baseline and reset the peak to it.
    fetch_hashed(&url).await.unwrap();
    let pid = lp.child.id();
    let baseline = rss_kib(pid, "VmRSS:");
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("resetting layerpipe's peak RSS");
    let expected = sha256_hex(&data);
    let readers: Vec<_> = (0..200)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let response = client().request(Request::get(&url).body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
                let mut body = response.into_body();
                let mut hasher = sha2::Sha256::default();
                while let Some(frame) = body.frame().await {
                    if let Some(d) = frame.unwrap().data_ref() {
                        sha2::Digest::update(&mut hasher, d);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await; // a slow reader
                }
                format!("{:x}", sha2::Digest::finalize(hasher))
            })
        })
        .collect();
    for r in readers {
        assert_eq!(r.await.unwrap(), expected);
    }
    let peak = rss_kib(pid, "VmHWM:");
    let grown_mib = peak.saturating_sub(baseline) as f64 / 1024.0;
    eprintln!("layerpipe's RSS grew from {baseline} KiB by {grown_mib:.1} MiB at its peak during 200 slow downloads");
    // 200 downloads of 4 MiB (800 MiB in all) went through. Measured on the 2-core test
    // machine: 34–45 MiB of growth (the 8 MiB read-buffer pool, and ~0.2 MiB a download),
    // and 242–246 MiB with a 1 MiB leak put in each download. 100 MiB leaves twice the
    // headroom and still fails a leak of 1 MiB a download (or a buffered blob).
    assert!(grown_mib < 100.0, "layerpipe's RSS grew by {grown_mib:.1} MiB during 200 slow downloads");
}

#[tokio::test]
async fn downloads_beyond_the_limit_get_503_with_retry_after() {
    let mut blob = FakeBlob::new(pseudo_random(1 << 20, 5));
    blob.cut_at = Some((100_000, Cut::Stall));
    let (fake, data) = one_blob(blob).await;
    let lp = layerpipe_with(&fake.host(), r#""limits":{"max_concurrent_downloads":1},"#).await;
    let url = lp.url(&download_path(&fake.host(), &data));
    let held = client().request(Request::get(&url).body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
    assert_eq!(held.status(), StatusCode::OK);
    let got = fetch(&url, &[]).await;
    assert_eq!(got.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(got.header("retry-after"), Some("5"));
    assert!(got.text().contains("limit of 1 downloads"));
    // Pages are not downloads: they are still served.
    assert_eq!(fetch(&lp.url("/healthz"), &[]).await.status, StatusCode::OK);
    drop(held);
}

#[tokio::test]
async fn oversized_request_headers_get_431() {
    let lp = Layerpipe::start(r#"{"limits":{"max_request_header_bytes":4096}}"#).await;
    let big = "x".repeat(8192);
    let got = fetch(&lp.url("/healthz"), &[("x-big", &big)]).await;
    assert_eq!(got.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[tokio::test]
async fn unlisted_registries_at_local_addresses_are_refused_in_any_spelling() {
    let (fake, data) = one_blob(FakeBlob::new(Bytes::from_static(b"layer"))).await;
    let lp = Layerpipe::start("{}").await; // nothing listed
    let port = fake.registry.addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("127.0.0.2:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("[::ffff:7f00:1]:{port}"),
        format!("0.0.0.0:{port}"),
        format!("[::]:{port}"),
    ] {
        let got = fetch(&lp.url(&page_path(&format!("{host}/{REPO}:v1"))), &[]).await;
        assert_eq!(got.status, StatusCode::FORBIDDEN, "{host}: {}", got.text());
        let got = fetch(&lp.url(&download_path(&host, &data)), &[]).await;
        assert_eq!(got.status, StatusCode::FORBIDDEN, "{host}");
    }
    assert_eq!(fake.registry.connections(), 0, "a refused registry was connected to");
    let metrics = fetch(&lp.url("/metrics"), &[]).await.text();
    assert_eq!(labelled_sum(&metrics, "layerpipe_upstream_errors_total{kind=\"refused\""), 16, "{metrics}");
}

#[tokio::test]
async fn metrics_count_requests_bytes_and_tokens() {
    let (fake, data) = one_blob(FakeBlob::new(pseudo_random(200_000, 13))).await;
    let lp = Layerpipe::for_fake(&fake, true).await;
    assert_eq!(fetch(&lp.url(&page_path(&format!("{}/{REPO}:v1", fake.host()))), &[]).await.status, StatusCode::OK);
    for _ in 0..2 {
        fetch_hashed(&lp.url(&download_path(&fake.host(), &data))).await.unwrap();
    }
    let got = fetch(&lp.url("/metrics"), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    let text = got.text();
    for line in [
        "layerpipe_requests_total{route=\"page\",status=\"200\"} 1".to_owned(),
        "layerpipe_requests_total{route=\"download\",status=\"200\"} 2".to_owned(),
        format!("layerpipe_download_bytes_total {}", 2 * data.len()),
        "layerpipe_active_downloads 0".to_owned(),
        "layerpipe_download_duration_seconds_count 2".to_owned(),
        "layerpipe_token_cache_misses_total 1".to_owned(),
        // The page's manifest HEAD fetches the token; its GET, its config GET, its five
        // referrer look-ups (API, referrers tag, .sig/.att/.sbom) and the downloads reuse it.
        "layerpipe_token_cache_hits_total 9".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    assert_eq!(labelled_sum(&text, "layerpipe_token_fetches_total{"), 1, "{text}");
}

/// The sum of the samples whose series starts with `series` (a name and its first
/// labels), whatever labels follow: the `registry` label varies with the test's port.
fn labelled_sum(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.strip_prefix(series).is_some_and(|rest| rest.starts_with([',', '}']) || series.ends_with('{')))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn registry_strings_are_escaped_and_tokens_never_reach_a_page() {
    let evil = r#"<script>alert('x')</script>"#;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{evil}","digest":"{d}","size":2}},
        "layers":[{{"mediaType":"{evil}","digest":"{d}","size":2,"annotations":{{"x":"{evil}"}}}}]}}"#,
        d = digest(b"{}")
    );
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{evil}","digest":"{d}","size":2,"platform":{{"os":"{evil}","architecture":"a\"b","variant":"<v>"}}}}]}}"#,
        d = digest(b"{}")
    );
    let mut manifests = HashMap::new();
    manifests.insert("v1".to_owned(), (OCI_MANIFEST.to_owned(), Bytes::from(manifest)));
    manifests.insert("idx".to_owned(), ("application/vnd.oci.image.index.v1+json".to_owned(), Bytes::from(index)));
    let fake = FakeRegistry::start(manifests, HashMap::new()).await;
    let lp = Layerpipe::for_fake(&fake, true).await;
    for tag in ["v1", "idx", "missing"] {
        let html = fetch(&lp.url(&page_path(&format!("{}/{REPO}:{tag}", fake.host()))), &[]).await.text();
        assert!(!html.contains("<script>"), "{tag}: {html}");
        assert!(!html.contains("<v>"), "{tag}: {html}");
        assert!(!html.contains("token-1"), "{tag}: a token reached the page");
    }
}

/// layerpipe as its own process, for signals and logs.
struct Process {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    /// The thread reading stderr; it returns every line once stderr ends.
    reader: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Process {
    /// Waits for layerpipe to exit, then joins the stderr reader, which ends only at the
    /// pipe's end: the log returned is complete, with no sleep to guess when it is.
    fn wait_for_exit(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        let lines = self.reader.take().unwrap().join().unwrap();
        (status, lines.join("\n"))
    }

    /// Kills layerpipe and returns all it logged.
    fn kill_and_read_log(mut self) -> String {
        self.child.kill().unwrap();
        self.wait_for_exit().1
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A test that failed half-way leaves no layerpipe behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_layerpipe(config: &str) -> Process {
    let dir = std::env::temp_dir().join(format!("layerpipe-test-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    std::fs::write(&path, config).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_layerpipe"))
        .args(["--config", path.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "debug")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            // Text logs say `listen=ADDR`, JSON logs `"listen":"ADDR"`.
            if let Some(rest) = line.split("listen=").nth(1).or_else(|| line.split("\"listen\":\"").nth(1)) {
                let addr = rest.split(|c: char| c.is_whitespace() || c == '"').next().unwrap_or("");
                let _ = tx.send(addr.to_owned());
            }
            lines.push(line);
        }
        lines
    });
    let addr = rx.recv_timeout(Duration::from_secs(20)).expect("layerpipe did not say where it listens");
    Process { child, addr: addr.parse().unwrap(), reader: Some(reader) }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_download_in_flight_finish_refuses_new_ones_and_exits_zero() {
    let (fake, data) = one_blob(FakeBlob::new(pseudo_random(24 << 20, 17))).await;
    let password = "s3cret-Passw0rd";
    let lp = spawn_layerpipe(&format!(
        r#"{{"timeouts":{{"shutdown_grace_secs":30}},"registries":{{"{h}":{{"endpoint":"http://{h}","username":"puller","password":"{password}"}}}}}}"#,
        h = fake.host()
    ));
    let url = format!("http://{}{}", lp.addr, download_path(&fake.host(), &data));
    let response = client().request(Request::get(&url).body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut hasher = sha2::Sha256::default();
    let mut got = 0usize;
    // Read a little, then ask layerpipe to stop.
    while got < 1 << 20 {
        let frame = body.frame().await.unwrap().unwrap();
        if let Some(d) = frame.data_ref() {
            sha2::Digest::update(&mut hasher, d);
            got += d.len();
        }
    }
    let status = std::process::Command::new("kill").args(["-TERM", &lp.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(lp.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "layerpipe still accepts connections after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The download in flight completes, whole.
    while let Some(frame) = body.frame().await {
        if let Some(d) = frame.expect("the download in flight was cut off").data_ref() {
            sha2::Digest::update(&mut hasher, d);
            got += d.len();
        }
    }
    assert_eq!(got, data.len());
    assert_eq!(format!("{:x}", sha2::Digest::finalize(hasher)), sha256_hex(&data));
    let (exit, log) = tokio::task::spawn_blocking(move || lp.wait_for_exit()).await.unwrap();
    assert!(exit.success(), "layerpipe exited with {exit}");
    // The logs (at debug level) never hold the password or a token.
    assert!(log.contains("status=200"), "no access line:\n{log}");
    assert!(!log.contains(password), "the password reached the log");
    assert!(!log.contains("token-1"), "a token reached the log");
    assert!(!log.contains("cHVsbGVy"), "Basic credentials reached the log");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let lp = spawn_layerpipe(r#"{"log_format":"json"}"#);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let got = runtime.block_on(fetch(&format!("http://{}/healthz", lp.addr), &[]));
    assert_eq!(got.status, StatusCode::OK);
    let log = lp.kill_and_read_log();
    let log: Vec<&str> = log.lines().collect();
    assert!(log.len() >= 2, "{log:?}");
    for line in &log {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(value.get("level").is_some(), "{line}");
    }
    assert!(log.iter().any(|l| l.contains("\"path\":\"/healthz\"") && l.contains("\"status\":200")), "{log:?}");
}

/// An unlisted registry's token realm and redirects go through the same public-only
/// client as the registry itself (`registry::trust`); that client refuses every local
/// address, over http or https, by literal or by name, before connecting, whether the
/// request is pooled or (a blob) on a dedicated connection.
#[tokio::test]
async fn the_client_for_unlisted_registries_refuses_local_realms_and_redirect_targets() {
    use layerpipe::upstream::{Transport, Trust, Upstream};
    let target = FakeServer::start(|_| respond(StatusCode::OK, r#"{"token":"t"}"#)).await;
    let port = target.addr.port();
    let config = layerpipe::config::Config::default();
    let upstream = Upstream::new(&config, Arc::new(layerpipe::metrics::Metrics::default()));
    let headers = http::HeaderMap::new();
    for url in [
        format!("http://127.0.0.1:{port}/token"),
        format!("https://127.0.0.1:{port}/token"),
        format!("https://localhost:{port}/token"),
        format!("https://[::1]:{port}/token"),
        format!("https://[::ffff:127.0.0.1]:{port}/token"),
        format!("https://0.0.0.0:{port}/token"),
    ] {
        let uri: http::Uri = url.parse().unwrap();
        for transport in [Transport::Pooled, Transport::Dedicated] {
            let sent = upstream.send("127.0.0.1", Trust::PublicOnly, transport, &http::Method::GET, &uri, &headers);
            match sent.await {
                Ok(response) => panic!("{url} over {transport:?} answered {}", response.status()),
                Err(e) => assert_eq!(e.status(), StatusCode::FORBIDDEN, "{url} over {transport:?}: {e}"),
            }
        }
    }
    assert_eq!(target.connections(), 0);
    // The same request for a listed registry goes through.
    let uri: http::Uri = format!("http://127.0.0.1:{port}/token").parse().unwrap();
    for transport in [Transport::Pooled, Transport::Dedicated] {
        let sent = upstream.send("127.0.0.1", Trust::Listed, transport, &http::Method::GET, &uri, &headers);
        assert_eq!(sent.await.map(|r| r.status()).unwrap_or_else(|e| panic!("{transport:?}: {e}")), StatusCode::OK);
    }
}

/// An old GNU sparse entry (`S`) with nothing stored and `real_size` written base-256:
/// the size a listing adds up comes from the header alone.
fn sparse_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, real_size: u64) {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_size(0);
    h.set_mode(0o644);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.realsize = [0; 12];
    gnu.realsize[0] = 0x80;
    gnu.realsize[4..].copy_from_slice(&real_size.to_be_bytes());
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
}

/// Sizes come from the registry (a manifest's layer sizes) and from the layer (tar
/// headers): both are summed saturating, so two sizes that overflow a u64 show as the
/// most there can be, never as a small wrapped-around total.
#[tokio::test]
async fn untrusted_sizes_add_up_saturating_not_wrapping() {
    const TAR_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    let mut b = tar::Builder::new(Vec::new());
    sparse_entry(&mut b, "huge", u64::MAX);
    sparse_entry(&mut b, "two", 2);
    let layer = Bytes::from(b.into_inner().unwrap());
    let d = digest(b"{}");
    let huge = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{d}","size":2}},
        "layers":[{{"mediaType":"{GZIP_LAYER}","digest":"{d}","size":18446744073709551615}},{{"mediaType":"{GZIP_LAYER}","digest":"{d}","size":2}}]}}"#
    );
    let mut manifests = HashMap::new();
    manifests.insert("huge".to_owned(), (OCI_MANIFEST.to_owned(), Bytes::from(huge)));
    let mut blobs = HashMap::new();
    blobs.insert(digest(&layer), FakeBlob::new(layer.clone()));
    let fake = FakeRegistry::start(manifests, blobs).await;
    let lp = Layerpipe::for_fake(&fake, true).await;

    let page = fetch(&lp.url(&page_path(&format!("{}/{REPO}:huge", fake.host()))), &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.text().contains("2 layers, 16.0 EiB in all."), "{}", page.text());

    let files = format!(
        "/files?image={}&digest={}&layer=1&mt={}",
        layerpipe::query::encode(&format!("{}/{REPO}:huge", fake.host())),
        digest(&layer),
        layerpipe::query::encode(TAR_LAYER)
    );
    let got = fetch(&lp.url(&files), &[]).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    assert!(got.text().contains("2 entries, 16.0 EiB in files."), "{}", got.text());
}

/// A registry whose blob GET redirects to a "CDN" URL carrying a pre-signed signature in
/// its query, and a CDN that is busy (503) at first, so layerpipe retries that URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_hold_the_query_of_a_redirect() {
    const SIGNATURE: &str = "X-Amz-Signature=5ec7e75157a7e";
    let data = pseudo_random(10_000, 21);
    let cdn_data = data.clone();
    let cdn_requests = Arc::new(AtomicUsize::new(0));
    let counted = cdn_requests.clone();
    let cdn = FakeServer::start(move |_| match counted.fetch_add(1, Ordering::SeqCst) {
        0 => respond(StatusCode::SERVICE_UNAVAILABLE, "busy"),
        _ => respond(StatusCode::OK, cdn_data.clone()),
    })
    .await;
    let location = format!("{}/blob-store/layer?X-Amz-Credential=AKIA&{SIGNATURE}", cdn.url());
    let registry = FakeServer::start(move |req| {
        if req.uri().path() == "/v2/" {
            return respond(StatusCode::OK, "{}");
        }
        let mut r = respond(StatusCode::TEMPORARY_REDIRECT, "");
        r.headers_mut().insert("location", HeaderValue::try_from(location.as_str()).unwrap());
        r
    })
    .await;
    let host = registry.addr.to_string();
    let lp = spawn_layerpipe(&format!(r#"{{"registries":{{"{host}":{{"endpoint":"http://{host}"}}}}}}"#));
    let got = fetch(&format!("http://{}{}", lp.addr, download_path(&host, &data)), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body.as_ref().unwrap(), &data);
    assert_eq!(cdn_requests.load(Ordering::SeqCst), 2, "the busy CDN was retried");
    let log = tokio::task::spawn_blocking(move || lp.kill_and_read_log()).await.unwrap();
    assert!(log.contains("retrying registry request"), "no retry line at debug level:\n{log}");
    assert!(log.contains("/blob-store/layer"), "the retry line does not say where:\n{log}");
    assert!(!log.contains(SIGNATURE) && !log.contains("AKIA"), "a redirect's query reached the log:\n{log}");
}

/// A registry that answers every blob GET with a 206 for the first `len` bytes, whatever
/// was asked for.
async fn registry_answering_partial(data: Bytes, len: usize) -> FakeServer {
    FakeServer::start(move |req| {
        if req.uri().path() == "/v2/" {
            return respond(StatusCode::OK, "{}");
        }
        let mut r = respond(StatusCode::PARTIAL_CONTENT, data.slice(..len));
        let range = format!("bytes 0-{}/{}", len - 1, data.len());
        r.headers_mut().insert("content-range", HeaderValue::try_from(range).unwrap());
        r.headers_mut().insert("content-length", HeaderValue::from(len));
        r
    })
    .await
}

/// A 206 is passed on only as the answer to the range the client asked for: to a request
/// without `Range`, or with another range, it is the registry's error (502), and none of
/// its bytes reach the client.
#[tokio::test]
async fn a_206_that_answers_no_range_or_another_range_is_a_502() {
    let data = pseudo_random(10_000, 23);
    let registry = registry_answering_partial(data.clone(), 1000).await;
    let host = registry.addr.to_string();
    let lp = layerpipe_with(&host, "").await;
    let url = lp.url(&download_path(&host, &data));
    for (range, what) in [(None, "no Range"), (Some("bytes=1000-1999"), "another range")] {
        let headers: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
        let got = fetch(&url, &headers).await;
        let body = got.body.as_ref().unwrap();
        assert!(!body.windows(16).any(|w| w == &data[..16]), "{what}: the registry's bytes reached the client");
        assert_eq!(got.status, StatusCode::BAD_GATEWAY, "{what}: {}", got.text());
        assert_eq!(got.header("content-range"), None, "{what}");
    }
    // The range asked for, though, is passed on.
    let got = fetch(&url, &[("range", "bytes=0-999")]).await;
    assert_eq!(got.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(got.header("content-range"), Some("bytes 0-999/10000"));
    assert_eq!(got.body.unwrap(), data.slice(..1000));
    let metrics = fetch(&lp.url("/metrics"), &[]).await.text();
    assert_eq!(labelled_sum(&metrics, "layerpipe_upstream_errors_total{kind=\"invalid_response\""), 2, "{metrics}");
}

/// Basic credentials go to a token realm on the registry's own host (any port), and not
/// to one elsewhere, which is still asked for a token, without them (src/auth/realm.rs).
#[tokio::test]
async fn credentials_go_only_to_a_realm_on_the_registry_s_own_host() {
    for (realm_host, sent) in [("127.0.0.1", true), ("localhost", false)] {
        let data = Bytes::from_static(b"layer");
        let mut blobs = HashMap::new();
        blobs.insert(digest(&data), FakeBlob::new(data.clone()));
        let mut manifests = HashMap::new();
        manifests.insert("v1".to_owned(), (OCI_MANIFEST.to_owned(), oci_manifest(b"{}", &[(GZIP_LAYER, &data)])));
        let fake = FakeRegistry::start_with_realm_host(manifests, blobs, realm_host).await;
        let lp = Layerpipe::start(&format!(
            r#"{{"registries":{{"{h}":{{"endpoint":"http://{h}","username":"puller","password":"pw"}}}}}}"#,
            h = fake.host()
        ))
        .await;
        let got = fetch(&lp.url(&page_path(&format!("{}/{REPO}:v1", fake.host()))), &[]).await;
        assert_eq!(got.status, StatusCode::OK, "{realm_host}: {}", got.text());
        let authorizations = fake.seen.token_authorizations.lock().unwrap().clone();
        // "puller:pw" in base64.
        let expected = sent.then(|| "Basic cHVsbGVyOnB3".to_owned());
        assert_eq!(authorizations, vec![expected], "realm on {realm_host}");
    }
}

/// A HEAD on a download sends no body: it is not a download (no slot, not in the download
/// metrics) and its access line says it completed, not that the client went away. The
/// routes inside a layer have their own `route` labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_on_a_download_is_no_download_and_routes_have_their_labels() {
    let (fake, data) = one_blob(FakeBlob::new(pseudo_random(300_000, 25))).await;
    let lp = spawn_layerpipe(&format!(
        r#"{{"limits":{{"max_concurrent_downloads":1}},"registries":{{"{h}":{{"endpoint":"http://{h}"}}}}}}"#,
        h = fake.host()
    ));
    let base = format!("http://{}", lp.addr);
    let got = fetch_method("HEAD", &format!("{base}{}", download_path(&fake.host(), &data)), &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-length"), Some(data.len().to_string().as_str()));
    assert!(got.body.unwrap().is_empty());
    for path in ["/files", "/fs/etc/", "/save/etc/motd"] {
        assert_eq!(fetch(&format!("{base}{path}"), &[]).await.status, StatusCode::BAD_REQUEST, "{path}");
    }
    let metrics = fetch(&format!("{base}/metrics"), &[]).await.text();
    for line in [
        "layerpipe_requests_total{route=\"download\",status=\"200\"} 1",
        "layerpipe_requests_total{route=\"files\",status=\"400\"} 1",
        "layerpipe_requests_total{route=\"browse\",status=\"400\"} 1",
        "layerpipe_requests_total{route=\"save\",status=\"400\"} 1",
        "layerpipe_download_duration_seconds_count 0",
        "layerpipe_download_bytes_total 0",
        "layerpipe_active_downloads 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line:?} in\n{metrics}");
    }
    let log = tokio::task::spawn_blocking(move || lp.kill_and_read_log()).await.unwrap();
    let head = log.lines().find(|l| l.contains("method=HEAD")).unwrap_or_else(|| panic!("no HEAD line:\n{log}"));
    assert!(head.contains("outcome=\"complete\"") || head.contains("outcome=complete"), "{head}");
}

/// A manifest (index or image) padded with spaces to exactly `size` bytes.
fn manifest_of_size(size: usize) -> Bytes {
    let json = oci_manifest(b"{}", &[(GZIP_LAYER, b"layer")]);
    assert!(json.len() <= size);
    let mut padded = json.to_vec();
    padded.resize(size, b' ');
    padded.into()
}

/// `limits.max_manifest_bytes`: a manifest of exactly the limit is read; one byte more is
/// a 502, whether the registry announces its length or sends it chunked.
#[tokio::test]
async fn a_manifest_beyond_the_limit_is_a_502() {
    for (size, announced, status) in [
        (2048, true, StatusCode::OK),
        (2048, false, StatusCode::OK),
        (2049, true, StatusCode::BAD_GATEWAY),
        (2049, false, StatusCode::BAD_GATEWAY),
    ] {
        let (server, _) = scripted_registry(move |_| {
            let mut r = respond(StatusCode::OK, manifest_of_size(size));
            r.headers_mut().insert("content-type", HeaderValue::from_static(OCI_MANIFEST));
            if announced {
                r.headers_mut().insert("content-length", HeaderValue::from(size));
            }
            r
        })
        .await;
        let lp = layerpipe_with(&server.addr.to_string(), r#""limits":{"max_manifest_bytes":2048},"#).await;
        let got = fetch(&lp.url(&page_path(&format!("{}/a/b:v1", server.addr))), &[]).await;
        assert_eq!(got.status, status, "{size} bytes, length announced: {announced}: {}", got.text());
        if status == StatusCode::BAD_GATEWAY {
            assert!(got.text().contains("manifest is larger than 2048 bytes"), "{}", got.text());
        }
    }
}

/// `limits.max_token_response_bytes`: a token server's answer beyond the limit is a 502,
/// announced or chunked.
#[tokio::test]
async fn a_token_response_beyond_the_limit_is_a_502() {
    for (size, announced, status) in [
        (1024, true, StatusCode::OK),
        (1024, false, StatusCode::OK),
        (1025, true, StatusCode::BAD_GATEWAY),
        (1025, false, StatusCode::BAD_GATEWAY),
    ] {
        let token_server = FakeServer::start(move |_| {
            let mut json = br#"{"token":"token-1","expires_in":300}"#.to_vec();
            json.resize(size, b' ');
            let mut r = respond(StatusCode::OK, json);
            if announced {
                r.headers_mut().insert("content-length", HeaderValue::from(size));
            }
            r
        })
        .await;
        let realm = format!("{}/token", token_server.url());
        let registry = FakeServer::start(move |req| {
            if req.headers().get("authorization").is_some_and(|a| a == "Bearer token-1") {
                let mut r = respond(StatusCode::OK, oci_manifest(b"{}", &[(GZIP_LAYER, b"layer")]));
                r.headers_mut().insert("content-type", HeaderValue::from_static(OCI_MANIFEST));
                return r;
            }
            let mut r = respond(StatusCode::UNAUTHORIZED, "");
            let challenge = format!(r#"Bearer realm="{realm}",service="s""#);
            r.headers_mut().insert("www-authenticate", HeaderValue::try_from(challenge).unwrap());
            r
        })
        .await;
        let lp = layerpipe_with(&registry.addr.to_string(), r#""limits":{"max_token_response_bytes":1024},"#).await;
        let got = fetch(&lp.url(&page_path(&format!("{}/a/b:v1", registry.addr))), &[]).await;
        assert_eq!(got.status, status, "{size} bytes, length announced: {announced}: {}", got.text());
        if status == StatusCode::BAD_GATEWAY {
            assert!(got.text().contains("token response is larger than 1024 bytes"), "{}", got.text());
        }
    }
}

/// A loopback address where a TCP connect hangs, for as long as this is kept: a listener
/// with a backlog of one that never accepts, its queue filled by connections held here.
/// Linux drops the SYNs of further connects, which then wait for SYN-ACKs that never come.
struct UnansweredConnects {
    addr: std::net::SocketAddr,
    _listener: tokio::net::TcpListener,
    _filling: Vec<tokio::net::TcpStream>,
}

async fn unanswered_connects() -> UnansweredConnects {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut filling = Vec::new();
    // Connects complete (the kernel answers them) until the accept queue is full.
    loop {
        match tokio::time::timeout(Duration::from_millis(300), tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => filling.push(stream),
            Ok(Err(e)) => panic!("filling the accept queue: {e}"),
            Err(_) => break,
        }
        assert!(filling.len() < 16, "the accept queue never filled");
    }
    UnansweredConnects { addr, _listener: listener, _filling: filling }
}

/// `timeouts.connect_secs`: a registry whose TCP connect never completes is a 504 after
/// the configured time, not after the 30 s the response may take.
#[tokio::test]
async fn a_connect_that_hangs_is_a_504_after_the_connect_timeout() {
    let hanging = unanswered_connects().await;
    let addr = hanging.addr;
    let lp = layerpipe_with(
        &addr.to_string(),
        r#""timeouts":{"connect_secs":0.3,"tls_handshake_secs":0.3},"retries":{"attempts":1},"#,
    )
    .await;
    let got = fetch(&lp.url(&page_path(&format!("{addr}/a/b:v1"))), &[]).await;
    assert_eq!(got.status, StatusCode::GATEWAY_TIMEOUT, "{}", got.text());
    // The connect deadline answered, not the response's own 30 s (which says otherwise).
    assert!(got.text().contains(&format!("connecting to {} timed out", addr.ip())), "{}", got.text());
    let metrics = fetch(&lp.url("/metrics"), &[]).await.text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("layerpipe_upstream_errors_total{kind=\"timeout\",registry=") && l.ends_with("} 1")),
        "{metrics}"
    );
}

/// `timeouts.tls_handshake_secs`: a listed https registry that accepts the connection and
/// never speaks TLS is a 504 once connect and handshake have had their time.
#[tokio::test]
async fn a_tls_handshake_that_hangs_is_a_504_after_the_handshake_timeout() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            held.push(stream); // open, and silent
        }
    });
    let lp = Layerpipe::start(&format!(
        r#"{{"timeouts":{{"connect_secs":0.2,"tls_handshake_secs":0.3}},"retries":{{"attempts":1}},
            "registries":{{"{addr}":{{"endpoint":"https://{addr}"}}}}}}"#
    ))
    .await;
    let got = fetch(&lp.url(&page_path(&format!("{addr}/a/b:v1"))), &[]).await;
    assert_eq!(got.status, StatusCode::GATEWAY_TIMEOUT, "{}", got.text());
    // Connect and handshake share one deadline: the handshake that never ends is reported
    // as the connect that timed out, not as the response's own 30 s.
    assert!(got.text().contains(&format!("connecting to {} timed out", addr.ip())), "{}", got.text());
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "the TCP connection itself was made");
}

/// `timeouts.client_header_read_secs`: a client that sends half a request line and stalls
/// (slowloris) has its connection closed once the limit has passed.
#[tokio::test]
async fn a_client_that_stalls_mid_request_line_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let lp = Layerpipe::start(r#"{"timeouts":{"client_header_read_secs":0.5}}"#).await;
    let mut stream = tokio::net::TcpStream::connect(lp.addr).await.unwrap();
    stream.write_all(b"GET /heal").await.unwrap();
    let mut answer = Vec::new();
    // 10 s is only how long the test waits: the server closes after its 0.5 s limit.
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was still open after 10 s");
    // Whatever hyper says on the way out (a 408, or nothing), it is not an answer to the
    // request, which never arrived.
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"), "{}", String::from_utf8_lossy(&answer));
    // A client that does finish its request in time is served.
    assert_eq!(fetch(&lp.url("/healthz"), &[]).await.status, StatusCode::OK);
}
