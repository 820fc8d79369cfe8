//! layerpipe behind nginx, as `deploy/nginx.conf` sets it up: under the prefix
//! `/explore/`, streaming, with a real registry behind it.
//!
//! Everything here is a real program: Debian's `docker-registry` with token auth (see
//! `tests/real/`), the `layerpipe` binary this build made (the release build under
//! `cargo test --release`), and Debian's nginx running `deploy/nginx.conf` with only two
//! ports changed, its files in a temp dir (`-p`). All of it listens on 127.0.0.1.
//!
//! Needs `/usr/sbin/nginx` (`apt-get install -y nginx-light`) and
//! `/usr/bin/docker-registry` (`apt-get install -y docker-registry`).

mod real;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
use real::nginx::*;
use real::{PushedImage, RealRegistry};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long layerpipe and nginx may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long any one request through nginx may take (the large download included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The most memory (peak RSS) an nginx worker may reach while streaming a large layer.
/// An idle worker is a few MiB; one that buffered the layer would be hundreds.
const NGINX_WORKER_MAX_RSS_KIB: u64 = 32 * 1024;

/// The large layer's size; `LAYERPIPE_E2E_LARGE_MIB` overrides the 256 MiB, as in
/// tests/e2e_registry.rs.
fn large_layer_size() -> u64 {
    let mib = std::env::var("LAYERPIPE_E2E_LARGE_MIB").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(256);
    mib << 20
}

// ---------------------------------------------------------------------------------------
// The layerpipe binary.

/// The `layerpipe` binary, running until dropped, its stderr (the log) collected.
struct LayerpipeProcess {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    /// The thread reading stderr; it ends when layerpipe exits.
    reader: Option<std::thread::JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl LayerpipeProcess {
    /// Runs `layerpipe --config FILE --listen 127.0.0.1:0` with `registry` listed, and
    /// learns the port from its start-up log line `layerpipe serving listen=ADDR`.
    fn start(registry: &RealRegistry) -> LayerpipeProcess {
        let dir = tempfile::Builder::new().prefix("layerpipe-bin-").tempdir().expect("temp dir for layerpipe");
        let config = dir.path().join("layerpipe.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"index":{{"dir":"{index}"}},"registries":{{"{host}":{{"endpoint":"{endpoint}"}}}}}}"#,
                index = dir.path().join("index").display(),
                host = registry.host(),
                endpoint = registry.endpoint()
            ),
        )
        .expect("write layerpipe's config");
        let binary = env!("CARGO_BIN_EXE_layerpipe");
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg("127.0.0.1:0")
            // The start-up line is logged at info; a RUST_LOG from outside must not hide it.
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
        // Read stderr to its end on a thread of its own: a full pipe would stall layerpipe.
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, listening) = std::sync::mpsc::channel();
        let collected = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = serving_address(&line) {
                    let _ = found.send(addr);
                }
                let mut log = collected.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        match listening.recv_timeout(START_TIMEOUT) {
            Ok(addr) => LayerpipeProcess { child, addr, log, reader: Some(reader), dir },
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "layerpipe did not log `layerpipe serving listen=ADDR` within {START_TIMEOUT:?} \
                     (exit: {status:?}); its log:\n{}",
                    log.lock().unwrap()
                );
            }
        }
    }

    /// Everything layerpipe has logged so far.
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Stops layerpipe as a service manager would (SIGTERM: it finishes what is in
    /// flight, logging each request as it ends) and answers its whole log, read to the
    /// end: no access line can still be on its way.
    fn stop(&mut self) -> String {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + START_TIMEOUT;
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("layerpipe did not exit within {START_TIMEOUT:?} of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the log reader thread");
        }
        self.log()
    }

    /// Its `index.dir`, a folder of its temp dir.
    fn index_dir(&self) -> PathBuf {
        self.dir.path().join("index")
    }
}

impl Drop for LayerpipeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in layerpipe's start-up line, text format without colours (stderr is a
/// pipe): `… INFO layerpipe: layerpipe serving listen=127.0.0.1:PORT registries=1`.
fn serving_address(line: &str) -> Option<SocketAddr> {
    if !line.contains("layerpipe serving") {
        return None;
    }
    line.split_whitespace().find_map(|word| word.strip_prefix("listen="))?.parse().ok()
}

#[test]
fn serving_line_is_parsed() {
    let line = "2025-01-02T03:04:05.123456Z  INFO layerpipe: layerpipe serving listen=127.0.0.1:40123 registries=1";
    assert_eq!(serving_address(line), Some("127.0.0.1:40123".parse().unwrap()));
    assert_eq!(serving_address("INFO access: method=GET path=/ listen=1.2.3.4:5"), None);
}

// ---------------------------------------------------------------------------------------
// HTTP, and reading layerpipe's pages.

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get(client: &HttpClient, url: &str, headers: HeaderMap) -> Response<Incoming> {
    let mut request = Request::get(url).body(Empty::new()).expect("request");
    *request.headers_mut() = headers;
    tokio::time::timeout(REQUEST_TIMEOUT, client.request(request))
        .await
        .unwrap_or_else(|_| panic!("GET {url}: no answer within {REQUEST_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("GET {url}: {e:?}"))
}

async fn get_bytes(client: &HttpClient, url: &str) -> (Response<()>, Bytes) {
    let response = get(client, url, HeaderMap::new()).await;
    let (parts, body) = response.into_parts();
    let bytes = tokio::time::timeout(REQUEST_TIMEOUT, body.collect())
        .await
        .unwrap_or_else(|_| panic!("body of {url}: not done within {REQUEST_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("body of {url}: {e:?}"))
        .to_bytes();
    (Response::from_parts(parts, ()), bytes)
}

/// A page through nginx, checked to be a 200 HTML page.
async fn page_at(client: &HttpClient, url: &str) -> String {
    let (response, body) = get_bytes(client, url).await;
    let html = String::from_utf8(body.to_vec()).expect("UTF-8 page");
    assert_eq!(response.status(), StatusCode::OK, "{url}:\n{html}");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    html
}

/// The platform links of an index page (`<a href="./?image=…">`), unescaped.
fn platform_links(html: &str) -> Vec<String> {
    const START: &str = "<a href=\"./?image=";
    // The manifest JSON links each manifest's digest too; the platform list is before it.
    let html = html.split("<pre id=\"manifest-json\">").next().unwrap_or_default();
    html.match_indices(START)
        .map(|(i, _)| {
            let from = i + "<a href=\"".len();
            let len = html[from..].find('"').expect("closing quote");
            unescape(&html[from..from + len])
        })
        .collect()
}

/// `repository-path-with-dashes-TAG-N.tar.gzip`, as layerpipe names layer N.
fn expected_file_name(repository: &str, tag: &str, layer: usize) -> String {
    format!("{}-{tag}-{layer}.tar.gzip", repository.replace('/', "-"))
}

/// Checks an image page served through nginx and downloads every layer through its
/// `[x]` link under `/explore/`: exact bytes and the right file name.
async fn check_page_and_downloads(client: &HttpClient, nginx: &Nginx, html: &str, image: &PushedImage, tag: &str) {
    assert!(html.contains(&format!("<code id=\"manifest-digest\">{}</code>", image.digest)), "{html}");
    let links = download_links(html);
    assert_eq!(links.len(), image.layers.len(), "one [x] per layer:\n{html}");
    for (i, (href, layer)) in links.iter().zip(&image.layers).enumerate() {
        let url = nginx.resolve(href);
        assert!(url.starts_with(&nginx.url("/explore/download?")), "{url}");
        let (response, body) = get_bytes(client, &url).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}: {body:?}\nnginx: {}", nginx.error_log());
        let name = expected_file_name(&image.repository, tag, i + 1);
        let disposition = response.headers()[header::CONTENT_DISPOSITION].to_str().unwrap();
        assert!(
            disposition.starts_with(&format!("attachment; filename=\"{name}\"")),
            "layer {}: Content-Disposition {disposition:?}, expected the file {name}",
            i + 1
        );
        assert_eq!(response.headers()[header::CONTENT_LENGTH], layer.size.to_string().as_str());
        assert_eq!(body.len() as u64, layer.size);
        assert_eq!(sha256_hex(&body), layer.sha256(), "layer {} through nginx", i + 1);
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

/// The file as shipped is a valid, complete configuration: `nginx -t` with a temp prefix.
#[test]
fn deploy_nginx_conf_passes_nginx_t() {
    let binary = nginx_binary();
    let dir = tempfile::Builder::new().prefix("layerpipe-nginx-t-").tempdir().expect("temp dir");
    let output = Command::new(&binary)
        .arg("-t")
        .arg("-p")
        .arg(format!("{}/", dir.path().display()))
        .arg("-c")
        .arg(deploy_conf_path())
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .stdin(Stdio::null())
        .output()
        .expect("run nginx -t");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "nginx -t deploy/nginx.conf failed:\n{said}");
    assert!(said.contains("test is successful"), "{said}");
    // Relative paths land in the prefix, not in /var/lib/nginx or /var/log/nginx.
    for made in ["proxy_temp", "client_body_temp", "access.log"] {
        assert!(dir.path().join(made).exists(), "{made} should be under the prefix: {said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_links_and_downloads_work_under_explore() {
    let started = Instant::now();
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("e2e/nginx/app", "v1").await;
    let index = registry.push_oci_index("e2e/nginx-multi", "2024").await;
    let layerpipe = LayerpipeProcess::start(&registry);
    let nginx = Nginx::start(layerpipe.addr);
    let client = client();

    // Without the slash: to the directory, so that relative links resolve under it.
    let (response, _) = get_bytes(&client, &nginx.url("/explore")).await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.headers()[header::LOCATION], "/explore/");
    let encoded = layerpipe::query::encode(&image.reference);
    let (response, _) = get_bytes(&client, &nginx.url(&format!("/explore?image={encoded}"))).await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.headers()[header::LOCATION], format!("/explore/?image={encoded}").as_str());

    let (response, body) = get_bytes(&client, &nginx.url("/explore/healthz")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, "ok\n");
    // The form at /explore/ itself.
    let home = page_at(&client, &nginx.url("/explore/")).await;
    assert!(home.contains("action=\"./\""), "{home}");
    // Nothing outside the prefix.
    let (response, _) = get_bytes(&client, &nginx.url("/healthz")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // The image: every layer listed, every [x] downloads exact bytes under its name.
    let html = page_at(&client, &nginx.url(&format!("/explore/?image={encoded}"))).await;
    assert!(html.contains(&format!("<p>{} layers,", image.layers.len())), "{html}");
    check_page_and_downloads(&client, &nginx, &html, &image, "v1").await;

    // The index: each platform link opens that platform's page through the prefix.
    let html =
        page_at(&client, &nginx.url(&format!("/explore/?image={}", layerpipe::query::encode(&index.reference)))).await;
    let links = platform_links(&html);
    assert_eq!(links.len(), index.platforms.len(), "{html}");
    for (href, platform) in links.iter().zip(&index.platforms) {
        let url = nginx.resolve(href);
        assert!(url.starts_with(&nginx.url("/explore/?image=")), "{url}");
        let html = page_at(&client, &url).await;
        check_page_and_downloads(&client, &nginx, &html, platform, &index.tag).await;
    }

    // layerpipe saw the paths without the prefix; nginx logged them with it.
    let log = layerpipe.log();
    assert!(log.contains("path=/download?"), "layerpipe's log:\n{log}");
    assert!(!log.contains("path=/explore"), "layerpipe's log:\n{log}");
    assert!(nginx.access_log().contains("\"GET /explore/download?"), "{}", nginx.access_log());
    eprintln!("pages, links and 9 downloads through nginx: {:.2?} in all", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_layer_streams_through_nginx_in_little_memory() {
    let size = large_layer_size();
    let registry = RealRegistry::start();
    let started = Instant::now();
    let image = registry.push_large_layer_image("e2e/nginx/large", "big", size, 0x6e67_696e).await;
    eprintln!("generated, hashed and pushed {} MiB in {:.2?}", size >> 20, started.elapsed());
    let layer = &image.layers[0];
    let layerpipe = LayerpipeProcess::start(&registry);
    let nginx = Nginx::start(layerpipe.addr);
    let client = client();

    let encoded = layerpipe::query::encode(&image.reference);
    let html = page_at(&client, &nginx.url(&format!("/explore/?image={encoded}"))).await;
    let links = download_links(&html);
    assert_eq!(links.len(), 1, "{html}");
    let url = nginx.resolve(&links[0]);

    let workers = nginx.workers();
    assert!(!workers.is_empty(), "nginx has no worker processes");
    let reset = workers.iter().all(|&w| reset_peak_rss(w)) && reset_peak_rss(layerpipe.child.id());
    let started = Instant::now();
    let response = get(&client, &url, HeaderMap::new()).await;
    assert_eq!(response.status(), StatusCode::OK, "nginx: {}", nginx.error_log());
    assert_eq!(response.headers()[header::CONTENT_LENGTH], size.to_string().as_str());
    let disposition = response.headers()[header::CONTENT_DISPOSITION].to_str().unwrap().to_owned();
    let name = expected_file_name(&image.repository, "big", 1);
    assert!(disposition.starts_with(&format!("attachment; filename=\"{name}\"")), "{disposition}");
    // Read a little, then stop reading for a while as a slow browser would: nginx must not
    // read ahead into a temp file (buffering off), nor keep anything it spooled.
    let mut body = response.into_body();
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    let mut length = 0u64;
    let mut paused = false;
    let proxy_temp = nginx.dir.path().join("proxy_temp");
    let read = async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("download frame").into_data() {
                length += data.len() as u64;
                hasher.update(&data);
            }
            if !paused && length >= 4 << 20 {
                paused = true;
                tokio::time::sleep(Duration::from_secs(1)).await;
                // nginx unlinks its temp files as it opens them: look at the open files.
                let spooled: Vec<PathBuf> =
                    workers.iter().flat_map(|&w| open_files(w)).filter(|f| f.starts_with(&proxy_temp)).collect();
                assert!(spooled.is_empty(), "nginx spooled the layer to disk: {spooled:?}");
            }
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read).await.expect("the download ends in time");
    let sha256 = hex(hasher.finish().as_ref());
    let took = started.elapsed();
    assert_eq!(length, size);
    assert_eq!(sha256, layer.sha256(), "the large layer through nginx");

    let worker_peaks: Vec<u64> = workers.iter().map(|&w| peak_rss_kib(w)).collect();
    let layerpipe_peak = peak_rss_kib(layerpipe.child.id());
    eprintln!(
        "downloaded {} MiB through nginx and layerpipe in {took:.2?} with a 1 s pause \
         ({:.0} MiB/s reading); peak RSS{}: \
         nginx workers {worker_peaks:?} KiB, layerpipe {layerpipe_peak} KiB",
        size >> 20,
        (size >> 20) as f64 / (took.as_secs_f64() - 1.0).max(0.001),
        if reset { " during the download" } else { " since start" },
    );
    for peak in worker_peaks {
        assert!(
            peak < NGINX_WORKER_MAX_RSS_KIB,
            "an nginx worker peaked at {peak} KiB streaming {} MiB: it buffered the layer",
            size >> 20
        );
    }
}

/// What the upstream receives: the path without the prefix and the query untouched, the
/// forwarded headers, HTTP/1.1 without `Connection: close`, and one kept-alive connection
/// for consecutive requests. A stand-in upstream records the requests.
#[tokio::test]
async fn upstream_gets_forwarded_headers_and_kept_alive_connections() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the stand-in upstream");
    let upstream = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::<(usize, String)>::new()));
    let recorded = heads.clone();
    tokio::spawn(async move {
        let mut connection = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            connection += 1;
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                    buffer.drain(..end + 4);
                    recorded.lock().unwrap().push((connection, head));
                    if stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let nginx = Nginx::start(upstream);
    let client = client();

    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
    let url = nginx.url("/explore/download?image=a%2Fb%3Ac&layer=2");
    let response = get(&client, &url, headers).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", nginx.error_log());
    let _ = response.into_body().collect().await;
    let (response, _) = get_bytes(&client, &nginx.url("/explore/")).await;
    assert_eq!(response.status(), StatusCode::OK);

    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
    let (first_connection, first) = &heads[0];
    let lines: Vec<&str> = first.split("\r\n").collect();
    assert_eq!(lines[0], "GET /download?image=a%2Fb%3Ac&layer=2 HTTP/1.1");
    let header = |name: &str| -> Vec<String> {
        lines[1..]
            .iter()
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    };
    assert_eq!(header("host"), ["127.0.0.1"]);
    assert_eq!(header("x-forwarded-for"), ["203.0.113.7, 127.0.0.1"]);
    assert_eq!(header("x-forwarded-proto"), ["http"]);
    assert_eq!(header("x-forwarded-prefix"), ["/explore"]);
    assert!(header("connection").is_empty(), "no Connection header to the upstream: {first}");
    let (second_connection, second) = &heads[1];
    assert!(second.starts_with("GET / HTTP/1.1\r\n"), "{second}");
    assert_eq!(first_connection, second_connection, "the second request reuses the kept-alive connection");
}

// ---------------------------------------------------------------------------------------
// Two replicas behind the example upstream.

/// Tiny layers pushed with the large one, so that both replicas get layers to hold:
/// consistent hashing puts each on either replica with odds near 1/2, so all of them on
/// one replica would be a 1-in-8-million (2^-23) chance.
const SMALL_LAYERS: usize = 24;
/// Files of incompressible data in the large layer: 32 of 128 KiB, a 4 MiB layer.
const DATA_FILES: usize = 32;
const DATA_FILE_BYTES: usize = 128 * 1024;
/// The file previewed and saved: text, after all the data.
const NOTES: &str = "usr/share/doc/replica/notes.txt";

fn notes() -> Vec<u8> {
    (0..200).flat_map(|line| format!("line {line} of the notes, read on one replica\n").into_bytes()).collect()
}

/// The `href`s on `html` that start with `prefix`, unescaped, in page order.
fn hrefs(html: &str, prefix: &str) -> Vec<String> {
    let start = format!("href=\"{prefix}");
    html.match_indices(&start)
        .map(|(i, _)| {
            let from = i + "href=\"".len();
            let len = html[from..].find('"').expect("closing quote");
            unescape(&html[from..from + len])
        })
        .collect()
}

/// The URL a browser makes of the relative `href` on the page at `page`.
fn resolve_from(page: &str, href: &str) -> String {
    let path = page.split_once('?').map_or(page, |(path, _)| path);
    let mut base: Vec<&str> = path.split('/').collect();
    base.pop();
    let mut rest = href;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            base.pop();
            rest = r;
        } else {
            break;
        }
    }
    format!("{}/{rest}", base.join("/"))
}

#[test]
fn relative_links_resolve_as_a_browser_does() {
    let page = "http://h:1/explore/fs/usr/share/notes.txt?image=a&digest=b";
    assert_eq!(
        resolve_from(page, "../../../save/usr/share/notes.txt?x"),
        "http://h:1/explore/save/usr/share/notes.txt?x"
    );
    assert_eq!(resolve_from("http://h:1/explore/?image=a", "./files?q"), "http://h:1/explore/files?q");
}

/// One replica's counters, from its own `/metrics` (asked directly, not through nginx).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counters {
    /// `layerpipe_layer_blob_bytes_total`: blob bytes read to list, preview or save.
    blob_bytes: u64,
    /// `layerpipe_index_reads_total`: files read by the index (one `Range` read each).
    index_reads: u64,
    /// Image pages (`/?image=`) answered 200.
    pages: u64,
}

async fn counters(client: &HttpClient, replica: &LayerpipeProcess) -> Counters {
    let (response, body) = get_bytes(client, &format!("http://{}/metrics", replica.addr)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(body.to_vec()).expect("UTF-8 metrics");
    let value = |name: &str| -> u64 {
        text.lines().filter_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<u64>().ok()).sum()
    };
    Counters {
        blob_bytes: value("layerpipe_layer_blob_bytes_total"),
        index_reads: value("layerpipe_index_reads_total"),
        pages: value("layerpipe_requests_total{route=\"page\",status=\"200\"}"),
    }
}

/// `sha256-HEX.idx`, the store's file for a blob (src/index/store.rs).
fn index_file(blob: &real::Blob) -> String {
    format!("sha256-{}.idx", blob.sha256())
}

/// How many access lines of `log` are requests to `route` (`/files?`, `/fs/`, `/save/`)
/// for the blob `hex`.
fn requests_for(log: &str, route: &str, hex: &str) -> usize {
    log.lines().filter(|l| l.contains(&format!("path={route}")) && l.contains(hex)).count()
}

/// The example upstream of `deploy/nginx.conf`, enabled, in front of two layerpipes with
/// an index store each: every layer's requests go to one replica, which reads the layer
/// once; the second visit to a layer, its file pages and saves all land on the replica
/// that holds its index, and the other replica never hears of that layer. Requests
/// without a digest (the image page) still go to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_behind_nginx_each_layer_is_read_by_one_replica() {
    use real::images::{self, BuiltLayer};

    let registry = RealRegistry::start();
    let data: Vec<(String, Vec<u8>)> = (0..DATA_FILES)
        .map(|i| (format!("data/file-{i:02}.bin"), images::generate(7100 + i as u64, DATA_FILE_BYTES)))
        .collect();
    let notes = notes();
    let mut files: Vec<(&str, &[u8])> = data.iter().map(|(p, c)| (p.as_str(), &c[..])).collect();
    files.push((NOTES, &notes));
    let mut layers = vec![BuiltLayer::new(images::OCI_LAYER_GZIP, &files)];
    let small: Vec<(String, String)> =
        (0..SMALL_LAYERS).map(|i| (format!("small/layer-{i:02}.txt"), format!("tiny layer {i}\n"))).collect();
    layers.extend(small.iter().map(|(p, c)| BuiltLayer::new(images::OCI_LAYER_GZIP, &[(p.as_str(), c.as_bytes())])));
    let pusher = registry.pusher("e2e/nginx/replicas").await;
    let image = pusher.push_image(Some("v1"), images::OCI_MANIFEST, images::OCI_CONFIG, "amd64", layers).await;
    let main = &image.layers[0];
    assert!(main.size >= 4 << 20, "the large layer is {} bytes", main.size);

    let replicas = [LayerpipeProcess::start(&registry), LayerpipeProcess::start(&registry)];
    let nginx = Nginx::start_replicas(&[replicas[0].addr, replicas[1].addr]);
    let client = client();

    // The image page: no digest, so round robin. Each nginx worker keeps its own round
    // robin, and the client may open a second connection (to the other worker), so two
    // requests need not reach two replicas; a few more must.
    let page = nginx.url(&format!("/explore/?image={}", layerpipe::query::encode(&image.reference)));
    let html = page_at(&client, &page).await;
    let mut pages = [0, 0];
    for _ in 0..20 {
        page_at(&client, &page).await;
        pages = [counters(&client, &replicas[0]).await.pages, counters(&client, &replicas[1]).await.pages];
        if pages.iter().all(|&n| n > 0) {
            break;
        }
    }
    assert!(pages.iter().all(|&n| n > 0), "the image page without a digest goes to both replicas: {pages:?}");

    // First visit: every layer's file list. Each layer is read once, by one replica.
    let files_hrefs = hrefs(&html, "./files?");
    let files_links: Vec<String> = image
        .layers
        .iter()
        .map(|layer| {
            let digest = format!("&digest=sha256%3A{}&", layer.sha256());
            let href = files_hrefs.iter().find(|h| h.contains(&digest)).expect("a file list link per layer");
            resolve_from(&page, href)
        })
        .collect();
    for url in &files_links {
        let listing = page_at(&client, url).await;
        assert!(listing.contains("<table id=\"files\">"), "{url}:\n{listing}");
    }
    let held: Vec<Vec<bool>> = replicas
        .iter()
        .map(|r| image.layers.iter().map(|l| r.index_dir().join(index_file(l)).is_file()).collect())
        .collect();
    for (i, layer) in image.layers.iter().enumerate() {
        assert!(held[0][i] != held[1][i], "layer {} is indexed by exactly one replica: {held:?}", layer.digest);
    }
    assert!(held.iter().all(|h| h.contains(&true)), "both replicas hold layers: {held:?}");
    let holder = if held[0][0] { 0 } else { 1 };
    let other = 1 - holder;
    let listed = [counters(&client, &replicas[0]).await, counters(&client, &replicas[1]).await];
    for r in 0..2 {
        // Each replica read exactly the blobs it indexes, each whole, once.
        let own: u64 = image.layers.iter().zip(&held[r]).filter(|(_, &h)| h).map(|(l, _)| l.size).sum();
        assert_eq!(listed[r].blob_bytes, own, "replica {r} read its own layers' blobs once each");
        assert_eq!(listed[r].index_reads, 0);
    }
    assert_eq!(listed[0].blob_bytes + listed[1].blob_bytes, image.layers.iter().map(|l| l.size).sum::<u64>());
    assert!(listed[holder].blob_bytes >= main.size && listed[other].blob_bytes < main.size);

    // Second visit to the large layer: its file list, the notes' page, the notes saved.
    let again = page_at(&client, &files_links[0]).await;
    let after_listing = [counters(&client, &replicas[0]).await, counters(&client, &replicas[1]).await];
    assert_eq!(after_listing, listed, "the second listing reads no blob, on either replica");
    let fs_hrefs = hrefs(&again, &format!("./fs/{NOTES}?"));
    assert_eq!(fs_hrefs.len(), 1, "{again}");
    let fs_url = resolve_from(&files_links[0], &fs_hrefs[0]);
    let file_page = page_at(&client, &fs_url).await;
    assert!(file_page.contains("line 199 of the notes, read on one replica"), "{file_page}");
    let save = file_page
        .split_once("<a id=\"save\" href=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(href, _)| unescape(href))
        .unwrap_or_else(|| panic!("a save link on the file's page:\n{file_page}"));
    let save_url = resolve_from(&fs_url, &save);
    assert!(save_url.starts_with(&nginx.url(&format!("/explore/save/{NOTES}?"))), "{save_url}");
    let (response, saved) = get_bytes(&client, &save_url).await;
    assert_eq!(response.status(), StatusCode::OK, "{save_url}");
    assert!(saved[..] == notes[..], "the notes saved exactly");

    let visited = [counters(&client, &replicas[0]).await, counters(&client, &replicas[1]).await];
    assert_eq!(visited[other], listed[other], "the other replica read nothing for the large layer");
    assert_eq!(visited[holder].index_reads, 2, "the preview and the save each read by the holder's index");
    // The preview's bytes are counted before its page is sent; the save's when its read
    // ends, which may be just after its last byte reached us: so at least the preview's.
    let ranges = visited[holder].blob_bytes - listed[holder].blob_bytes;
    assert!(ranges > 0 && ranges < main.size, "the preview and the save read {ranges} blob bytes");
    eprintln!(
        "large layer {} bytes, on replica {holder}; its preview (and save) read {ranges} blob bytes; \
         replica blob bytes {:?}; layers held {:?}",
        main.size,
        visited.map(|c| c.blob_bytes),
        held.iter().map(|h| h.iter().filter(|&&x| x).count()).collect::<Vec<_>>()
    );

    // Every request for the large layer reached its holder; the other never saw it.
    let hex = main.sha256();
    let mut replicas = replicas;
    let logs: Vec<String> = replicas.iter_mut().map(LayerpipeProcess::stop).collect();
    let holder_log = &logs[holder];
    assert_eq!(requests_for(holder_log, "/files?", hex), 2, "{holder_log}");
    assert_eq!(requests_for(holder_log, "/fs/", hex), 1, "{holder_log}");
    assert_eq!(requests_for(holder_log, "/save/", hex), 1, "{holder_log}");
    let other_log = &logs[other];
    assert!(!other_log.contains(hex), "the other replica got a request for the large layer:\n{other_log}");
    assert!(replicas[holder].index_dir().join(index_file(main)).is_file());
    assert!(!replicas[other].index_dir().join(index_file(main)).exists());
}

#[test]
fn replica_example_renders_to_a_hashed_upstream_of_the_replicas() {
    let conf = std::fs::read_to_string(deploy_conf_path()).expect("read deploy/nginx.conf");
    let replicas: [SocketAddr; 2] = ["127.0.0.1:4001".parse().unwrap(), "127.0.0.1:4002".parse().unwrap()];
    let rendered = render_replicas(&conf, &replicas, 4000);
    let upstream: Vec<&str> = rendered
        .lines()
        .skip_while(|l| *l != "    upstream layerpipe {")
        .take_while(|l| *l != "    }")
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert_eq!(
        upstream,
        [
            "upstream layerpipe {",
            "hash $arg_digest consistent;",
            "server 127.0.0.1:4001;",
            "server 127.0.0.1:4002;",
            "keepalive 32;"
        ],
        "{rendered}"
    );
    assert_eq!(rendered.matches("upstream layerpipe {").count(), 1, "{rendered}");
    assert!(!rendered.lines().any(|l| l.trim_start().starts_with("#|")), "{rendered}");
    assert!(!rendered.contains("server 127.0.0.1:8042"), "{rendered}");
    assert!(!rendered.contains("server 10.0.0."), "{rendered}");
}
