//! A real browser: headless Chromium, driven over WebDriver by chromedriver, opens an
//! image's page on layerpipe, clicks the `[x]` of layer 2, and the file lands in its
//! download folder under layerpipe's name, byte for byte. A screenshot of the page is left
//! at `target/browser-screenshot.png` for a person to look at.
//!
//! A second test walks inside a layer by clicking links only: layer 2's size to its files
//! by size, back, its digest to its folders, into a nested folder (breadcrumbs), a text
//! file's page (its text shown), and that file's save link (the file lands under its own
//! name, byte for byte). Its file page is left at `target/browser-layer-file.png`.
//!
//! A third opens the file list of a 48 MiB layer on its first visit, through nginx running
//! `deploy/nginx.conf`, with the registry behind a 12 MiB/s link: lines of progress show
//! while the layer is read, each over the last, then the list. Its page mid-read is left
//! at `target/browser-progress.png`.
//!
//! A fourth clicks through the whole image: a repository's tag list, a tag, the image's
//! merged filesystem, and the `[save]` of a file that a later layer deleted (struck
//! through), which lands byte for byte. Its merged folder is left at
//! `target/browser-merged-deleted.png`.
//!
//! A fifth starts at an image's page and, by clicks only, follows the config digest in
//! the manifest JSON to the config's contents, then a layer's files, the merged
//! filesystem and the sizes page, leaving a screenshot of each under `target/`:
//! `browser-image.png`, `browser-files.png`, `browser-merged.png`, `browser-sizes.png`
//! (and the layer's marks, `browser-changes.png`).
//!
//! The W3C WebDriver protocol is a few JSON requests over HTTP, sent here with the hyper
//! client the other tests use: new session, navigate, find elements, click, screenshot,
//! and chromedriver's `send_command` for one Chrome DevTools command. No WebDriver crate.
//!
//! Needs Debian's `chromium` and `chromium-driver` and `docker-registry`. Everything
//! listens on 127.0.0.1, and Chromium resolves no host name but localhost.

mod real;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use real::images::{self, sha256_hex, BuiltLayer};
use real::nginx::Nginx;
use real::relay::CountingRelay;
use real::{Layerpipe, RealRegistry};
use serde_json::{json, Value};

/// Debian's Chromium (a launcher script that runs /usr/lib/chromium/chromium).
const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's chromedriver, from `chromium-driver`.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long chromedriver may take to answer `/status` after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one WebDriver command may take (a new session starts Chromium).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the clicked download may take to land.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a clicked link may take to lead to its page.
const NAVIGATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The key of a web element reference in WebDriver's JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

// ---------------------------------------------------------------------------------------
// chromedriver and the WebDriver protocol.

/// Chromium and chromedriver, or the message that says how to install them.
fn browser_binaries() -> (PathBuf, PathBuf) {
    if !Path::new(CHROMIUM).is_file() || !Path::new(CHROMEDRIVER).is_file() {
        panic!("chromium not installed: run apt-get install -y chromium chromium-driver");
    }
    (PathBuf::from(CHROMIUM), PathBuf::from(CHROMEDRIVER))
}

/// chromedriver on a free 127.0.0.1 port, in a process group of its own so that the
/// Chromium it starts goes with it when it is dropped.
struct ChromeDriver {
    child: Child,
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    log: PathBuf,
}

impl ChromeDriver {
    /// Starts chromedriver (log in `dir`) and waits until it is ready for sessions.
    async fn start(binary: &Path, dir: &Path) -> ChromeDriver {
        let client = Client::builder(TokioExecutor::new()).build_http();
        let log = dir.join("chromedriver.log");
        let mut failures = Vec::new();
        // The port was free when asked; if another process takes it first, chromedriver
        // exits, and another port is tried.
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(binary)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            let mut driver = ChromeDriver {
                child,
                client: client.clone(),
                base: format!("http://127.0.0.1:{port}"),
                log: log.clone(),
            };
            match driver.wait_ready().await {
                Ok(()) => return driver,
                Err(why) => {
                    failures.push(format!("port {port}: {why}\n{}", driver.log_tail()));
                    drop(driver);
                }
            }
        }
        panic!("chromedriver did not start:\n{}", failures.join("\n---\n"));
    }

    /// Polls `GET /status` until chromedriver says it is ready.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("chromedriver exited: {status}"));
            }
            if let Ok((StatusCode::OK, answer)) = self.request(Method::GET, "/status", None).await {
                if answer["value"]["ready"] == true {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("chromedriver was not ready within {START_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One HTTP request to chromedriver: the status and the JSON answer.
    async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Result<(StatusCode, Value), String> {
        let url = format!("{}{path}", self.base);
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let request = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header(http::header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(Full::new(body))
            .expect("WebDriver request");
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| format!("{e:?}"))?;
            let status = response.status();
            let bytes = response.into_body().collect().await.map_err(|e| format!("{e:?}"))?.to_bytes();
            let json = serde_json::from_slice(&bytes)
                .map_err(|e| format!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))?;
            Ok((status, json))
        };
        tokio::time::timeout(COMMAND_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {COMMAND_TIMEOUT:?}")))
            .map_err(|e| format!("{method} {url}: {e}"))
    }

    /// A WebDriver command that must succeed: its `value`.
    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let what = format!("{method} {path}");
        match self.request(method, path, body).await {
            Ok((StatusCode::OK, mut answer)) => answer["value"].take(),
            Ok((status, answer)) => {
                panic!("WebDriver {what}: {status} {answer}\nchromedriver log:\n{}", self.log_tail())
            }
            Err(e) => panic!("WebDriver {e}\nchromedriver log:\n{}", self.log_tail()),
        }
    }

    /// The end of chromedriver's log, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // TERM to the whole group (chromedriver and any Chromium it left), then KILL to
        // whatever of that group is still there after 5 s.
        let group = self.child.id();
        let _ = Command::new("kill").arg("-TERM").arg("--").arg(format!("-{group}")).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        let _ = self.child.try_wait();
        while Instant::now() < deadline {
            let _ = self.child.try_wait();
            if group_members(group).is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !group_members(group).is_empty() {
            let _ = Command::new("kill").arg("-KILL").arg("--").arg(format!("-{group}")).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The live processes in process group `group` (zombies excluded).
fn group_members(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
            let Some((_, rest)) = stat.rsplit_once(')') else { return false };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // Fields 3 (state) and 5 (process group).
            fields.first() != Some(&"Z") && fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(group)
        })
        .collect()
}

/// A WebDriver session: one headless Chromium.
struct Session<'a> {
    driver: &'a ChromeDriver,
    id: String,
}

impl<'a> Session<'a> {
    /// Starts headless Chromium with a fresh profile in `profile`, saving downloads to
    /// `downloads` without asking. `page_load` is WebDriver's page load strategy:
    /// `normal` (navigating waits for the page to load) or `none` (it does not, so a
    /// page can be looked at while it streams).
    async fn new(
        driver: &'a ChromeDriver,
        chromium: &Path,
        profile: &Path,
        downloads: &Path,
        page_load: &str,
    ) -> Session<'a> {
        let args = [
            "--headless=new".to_owned(),
            // Root (as in CI) cannot use Chromium's sandbox.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            // No traffic but to layerpipe on 127.0.0.1: no QUIC, no first-run pages, no
            // background fetches, updates or sync, and no host name resolves but localhost.
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1".to_owned(),
            "--window-size=1280,800".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": page_load,
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": args,
                        "prefs": {
                            "download.default_directory": downloads,
                            "download.prompt_for_download": false,
                            "download.directory_upgrade": true,
                            "safebrowsing.enabled": false,
                        },
                    },
                },
            },
        });
        let value = driver.command(Method::POST, "/session", Some(capabilities)).await;
        let id = value["sessionId"].as_str().unwrap_or_else(|| panic!("no sessionId in {value}")).to_owned();
        Session { driver, id }
    }

    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.driver.command(method, &format!("/session/{}{path}", self.id), body).await
    }

    /// Lets the page download files into `downloads` (headless Chromium may otherwise
    /// refuse them), through chromedriver's pass-through to the DevTools protocol.
    async fn allow_downloads(&self, downloads: &Path) {
        let params = json!({"behavior": "allow", "downloadPath": downloads});
        self.command(
            Method::POST,
            "/chromium/send_command",
            Some(json!({"cmd": "Page.setDownloadBehavior", "params": params})),
        )
        .await;
    }

    /// Opens `url` and waits for the page to load.
    async fn navigate(&self, url: &str) {
        self.command(Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// The document's title.
    async fn title(&self) -> String {
        self.command(Method::GET, "/title", None).await.as_str().expect("a title").to_owned()
    }

    /// The page's URL.
    async fn current_url(&self) -> String {
        self.command(Method::GET, "/url", None).await.as_str().expect("a URL").to_owned()
    }

    /// The elements `using` (a WebDriver locator strategy) finds for `value`, in order.
    async fn find_all(&self, using: &str, value: &str) -> Vec<String> {
        let found = self.command(Method::POST, "/elements", Some(json!({"using": using, "value": value}))).await;
        found
            .as_array()
            .expect("a list of elements")
            .iter()
            .map(|e| e[ELEMENT_KEY].as_str().expect("an element reference").to_owned())
            .collect()
    }

    /// An element's attribute or property as the browser sees it.
    async fn property(&self, element: &str, name: &str) -> Value {
        self.command(Method::GET, &format!("/element/{element}/property/{name}"), None).await
    }

    /// The one element `using` finds for `value`; panics (naming `what`) if not exactly one.
    async fn find_one(&self, using: &str, value: &str, what: &str) -> String {
        let found = self.find_all(using, value).await;
        match found.as_slice() {
            [one] => one.clone(),
            _ => panic!("{what}: {} elements for {using} {value:?} on {}", found.len(), self.current_url().await),
        }
    }

    /// An element's rendered text.
    async fn text(&self, element: &str) -> String {
        self.command(Method::GET, &format!("/element/{element}/text"), None).await.as_str().expect("text").to_owned()
    }

    /// Where `element` is drawn: `{x, y, width, height}`.
    async fn rect(&self, element: &str) -> Value {
        self.command(Method::GET, &format!("/element/{element}/rect"), None).await
    }

    /// Clicks `element` as a user would.
    async fn click(&self, element: &str) {
        self.command(Method::POST, &format!("/element/{element}/click"), Some(json!({}))).await;
    }

    /// The browser's back button.
    async fn back(&self) {
        self.command(Method::POST, "/back", Some(json!({}))).await;
    }

    /// Waits until the page's URL satisfies `arrived` (`what` names it for the failure
    /// message), and answers the URL.
    async fn wait_for_url(&self, what: &str, arrived: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + NAVIGATION_TIMEOUT;
        loop {
            let url = self.current_url().await;
            if arrived(&url) {
                return url;
            }
            if Instant::now() > deadline {
                panic!("not at {what} after {NAVIGATION_TIMEOUT:?}; the browser is at {url}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A PNG of the viewport.
    async fn screenshot(&self) -> Vec<u8> {
        let encoded = self.command(Method::GET, "/screenshot", None).await;
        STANDARD.decode(encoded.as_str().expect("base64 PNG")).expect("a base64 screenshot")
    }

    /// Ends the session: chromedriver closes Chromium.
    async fn delete(self) {
        self.driver.command(Method::DELETE, &format!("/session/{}", self.id), None).await;
    }
}

// ---------------------------------------------------------------------------------------
// Files.

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set, else `target/` in the crate.
fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => manifest.join(dir),
        None => manifest.join("target"),
    }
}

/// The names of the files in `dir`.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the download folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Waits until `dir` holds `name` and no partial download (`.crdownload`) is left.
async fn wait_for_download(dir: &Path, name: &str) -> Vec<String> {
    let deadline = Instant::now() + DOWNLOAD_TIMEOUT;
    loop {
        let names = file_names(dir);
        if names.iter().any(|n| n == name) && !names.iter().any(|n| n.ends_with(".crdownload")) {
            return names;
        }
        if Instant::now() > deadline {
            panic!("no {name} in the download folder after {DOWNLOAD_TIMEOUT:?}; it holds {names:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// chromedriver, and a temp folder for Chromium's profile and its downloads.
struct Browser {
    driver: ChromeDriver,
    chromium: PathBuf,
    profile: PathBuf,
    /// Where Chromium saves downloads, without asking.
    downloads: PathBuf,
    _work: tempfile::TempDir,
}

impl Browser {
    async fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        let work = tempfile::Builder::new().prefix("layerpipe-browser-").tempdir().expect("temp dir");
        let (profile, downloads) = (work.path().join("profile"), work.path().join("downloads"));
        std::fs::create_dir(&profile).expect("profile dir");
        std::fs::create_dir(&downloads).expect("download dir");
        let driver = ChromeDriver::start(chromedriver, work.path()).await;
        Browser { driver, chromium: chromium.to_owned(), profile, downloads, _work: work }
    }

    /// A headless Chromium session that saves downloads to [`Browser::downloads`].
    async fn session(&self) -> Session<'_> {
        let session = Session::new(&self.driver, &self.chromium, &self.profile, &self.downloads, "normal").await;
        session.allow_downloads(&self.downloads).await;
        session
    }

    /// A session whose navigation does not wait for the page to load.
    async fn session_not_waiting(&self) -> Session<'_> {
        Session::new(&self.driver, &self.chromium, &self.profile, &self.downloads, "none").await
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_x_in_chromium_downloads_the_layer() {
    let (chromium, chromedriver) = browser_binaries();
    let started = Instant::now();
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("e2e/browser", "v1").await;
    let layerpipe = Layerpipe::start(&registry, true).await;

    let browser = Browser::start(&chromium, &chromedriver).await;
    let session = browser.session().await;
    let downloads = &browser.downloads;
    let browser_up = started.elapsed();

    let url = format!("{}/?image={}", layerpipe.base, layerpipe::query::encode(&image.reference));
    session.navigate(&url).await;
    let title = session.title().await;
    assert_eq!(title, format!("{} · layerpipe", image.reference));

    // One [x] per layer, each a relative link that the browser resolves on layerpipe.
    let links = session.find_all("link text", "[x]").await;
    assert_eq!(links.len(), image.layers.len(), "one [x] per layer");
    let href = session.property(&links[1], "href").await;
    let href = href.as_str().expect("an href");
    assert!(href.starts_with(&format!("{}/download?", layerpipe.base)), "{href}");
    assert!(href.contains(&layerpipe::query::encode(&image.layers[1].digest)), "{href} names layer 2");

    let screenshot = session.screenshot().await;
    assert!(screenshot.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is a PNG");
    let target = target_dir();
    std::fs::create_dir_all(&target).expect("target dir");
    let shot = target.join("browser-screenshot.png");
    std::fs::write(&shot, &screenshot).expect("save the screenshot");
    eprintln!("screenshot of the page: {}", shot.display());

    // Click layer 2's [x]: the file lands in the download folder, named by layerpipe.
    let clicked = Instant::now();
    session.click(&links[1]).await;
    let name = "e2e-browser-v1-2.tar.gzip";
    let names = wait_for_download(downloads, name).await;
    let took = clicked.elapsed();
    assert_eq!(names, [name], "exactly the one file, complete");
    let bytes = std::fs::read(downloads.join(name)).expect("read the downloaded file");
    let layer = &image.layers[1];
    assert_eq!(bytes.len() as u64, layer.size);
    assert_eq!(sha256_hex(&bytes), layer.sha256(), "the downloaded file is layer 2, byte for byte");
    // A download, not a navigation: the page stays.
    assert_eq!(session.current_url().await, url);

    session.delete().await;
    drop(browser);
    eprintln!(
        "browser test: Chromium up in {browser_up:.2?}, download in {took:.2?}, {:.2?} in all",
        started.elapsed()
    );
}

/// The text file of layer 2 in [`clicking_through_a_layer_in_chromium_saves_one_file`].
const NOTES: &str = "Notes from layer 2.\nThis file lives in /opt/app/ and is plain UTF-8 text: café.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_through_a_layer_in_chromium_saves_one_file() {
    let (chromium, chromedriver) = browser_binaries();
    let started = Instant::now();
    let registry = RealRegistry::start();
    // Layer 2: a nested folder with a text file, the largest file, and a small one at the root.
    let data = images::generate(0x0001_a7e2, 6000);
    let readme = b"layer 2 of e2e/browse\n";
    let layer_files: [(&str, &[u8]); 3] =
        [("README", readme), ("opt/app/notes.txt", NOTES.as_bytes()), ("opt/app/data.bin", &data)];
    let layers = vec![
        BuiltLayer::new(images::OCI_LAYER_GZIP, &[("etc/hostname", b"browse\n")]),
        BuiltLayer::new(images::OCI_LAYER_GZIP, &layer_files),
        BuiltLayer::new(images::OCI_LAYER_GZIP, &[("usr/share/browse/more.txt", b"layer 3\n")]),
    ];
    let image = registry
        .pusher("e2e/browse")
        .await
        .push_image(Some("v1"), images::OCI_MANIFEST, images::OCI_CONFIG, "amd64", layers)
        .await;
    let layerpipe = Layerpipe::start(&registry, true).await;

    let browser = Browser::start(&chromium, &chromedriver).await;
    let session = browser.session().await;
    let downloads = &browser.downloads;

    // The only URL typed: the image's page. From here on, every page is a clicked link.
    let image_url = format!("{}/?image={}", layerpipe.base, layerpipe::query::encode(&image.reference));
    session.navigate(&image_url).await;
    assert_eq!(session.title().await, format!("{} · layerpipe", image.reference));
    let layer_title = format!("layer 2 of {}", image.reference);

    // Layer 2's size leads to its files, largest first.
    let size =
        session.find_one("css selector", "#layers tbody tr:nth-child(2) td:nth-child(2) a", "layer 2's size").await;
    session.click(&size).await;
    session.wait_for_url("the file list", |u| u.starts_with(&format!("{}/files?", layerpipe.base))).await;
    assert_eq!(session.title().await, format!("{layer_title} · layerpipe"));
    let paths = session.find_all("css selector", "#files tbody tr td:nth-child(1) a").await;
    let mut shown = Vec::new();
    for path in &paths {
        shown.push(session.text(path).await);
    }
    assert_eq!(shown.first().map(String::as_str), Some("/opt/app/data.bin"), "the largest file first: {shown:?}");
    let mut sizes = Vec::new();
    for cell in session.find_all("css selector", "#files tbody tr td:nth-child(2)").await {
        let title = session.property(&cell, "title").await;
        if let Some(bytes) = title.as_str().and_then(|t| t.strip_suffix(" bytes")) {
            sizes.push(bytes.parse::<u64>().expect("a size in bytes"));
        }
    }
    assert_eq!(
        sizes,
        [data.len() as u64, NOTES.len() as u64, readme.len() as u64],
        "the files, largest first: {shown:?}"
    );

    // Back to the layers; layer 2's digest leads to its root folder.
    session.back().await;
    session.wait_for_url("the image's page", |u| u == image_url).await;
    // The layer table's link (the manifest JSON below links the same digest to its files).
    let in_table = format!("//table[@id='layers']//a[.='{}']", image.layers[1].digest);
    let digest = session.find_one("xpath", &in_table, "layer 2's digest").await;
    session.click(&digest).await;
    session.wait_for_url("the root folder", |u| u.starts_with(&format!("{}/fs/?", layerpipe.base))).await;
    let here = session.find_one("css selector", "#crumbs strong", "the current folder").await;
    assert_eq!(session.text(&here).await, "/");

    // Into opt/, then app/: the breadcrumbs link / and opt, and show app as the place.
    let opt = session.find_one("link text", "opt/", "the opt folder").await;
    session.click(&opt).await;
    session.wait_for_url("/opt/", |u| u.starts_with(&format!("{}/fs/opt/?", layerpipe.base))).await;
    let app = session.find_one("link text", "app/", "the app folder").await;
    session.click(&app).await;
    session.wait_for_url("/opt/app/", |u| u.starts_with(&format!("{}/fs/opt/app/?", layerpipe.base))).await;
    let mut crumbs = Vec::new();
    for crumb in session.find_all("css selector", "#crumbs a").await {
        crumbs.push(session.text(&crumb).await);
    }
    assert_eq!(crumbs, ["/", "opt"], "the breadcrumbs link back to / and /opt");
    let here = session.find_one("css selector", "#crumbs strong", "the current folder").await;
    assert_eq!(session.text(&here).await, "app");
    let mut names = Vec::new();
    for name in session.find_all("css selector", "#dir tbody tr td:nth-child(1) a").await {
        names.push(session.text(&name).await);
    }
    names.sort();
    assert_eq!(names, ["data.bin", "notes.txt"], "the folder's files");

    // The text file: its page shows its text, whole.
    let notes = session.find_one("link text", "notes.txt", "the text file").await;
    session.click(&notes).await;
    let file_url = session
        .wait_for_url("the text file", |u| u.starts_with(&format!("{}/fs/opt/app/notes.txt?", layerpipe.base)))
        .await;
    assert_eq!(session.title().await, format!("/opt/app/notes.txt in {layer_title} · layerpipe"));
    let preview = session.find_one("css selector", "pre#preview", "the file's preview").await;
    assert_eq!(session.property(&preview, "className").await, "text", "shown as text, not hex");
    assert_eq!(session.property(&preview, "textContent").await, NOTES, "the preview is the file's text");
    let here = session.find_one("css selector", "#crumbs strong", "the current file").await;
    assert_eq!(session.text(&here).await, "notes.txt");

    let screenshot = session.screenshot().await;
    assert!(screenshot.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is a PNG");
    let target = target_dir();
    std::fs::create_dir_all(&target).expect("target dir");
    let shot = target.join("browser-layer-file.png");
    std::fs::write(&shot, &screenshot).expect("save the screenshot");
    eprintln!("screenshot of the file page: {}", shot.display());

    // Save: the one file lands under its own name, byte for byte; the page stays.
    let save = session.find_one("css selector", "a#save", "the save link").await;
    assert_eq!(session.text(&save).await, "save this file");
    session.click(&save).await;
    let names = wait_for_download(downloads, "notes.txt").await;
    assert_eq!(names, ["notes.txt"], "exactly the one file, complete");
    let bytes = std::fs::read(downloads.join("notes.txt")).expect("read the saved file");
    assert_eq!(bytes, NOTES.as_bytes(), "the saved file is notes.txt, byte for byte");
    assert_eq!(session.current_url().await, file_url);

    session.delete().await;
    drop(browser);
    eprintln!("browser layer test: {:.2?} in all", started.elapsed());
}

/// Files of the large layer in [`the_first_visit_to_a_large_layer_shows_progress_behind_nginx`].
const PROGRESS_FILES: usize = 384;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_visit_to_a_large_layer_shows_progress_behind_nginx() {
    let (chromium, chromedriver) = browser_binaries();
    let registry = RealRegistry::start();
    // 48 MiB of incompressible files, read through a link of 12 MiB/s: about 4 s.
    let files: Vec<(String, Vec<u8>)> = (0..PROGRESS_FILES)
        .map(|i| (format!("blobs/{i:03}.bin"), images::generate(500 + i as u64, 128 * 1024)))
        .collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (p.as_str(), &c[..])).collect();
    let layer = BuiltLayer::new(images::OCI_LAYER_GZIP, &refs);
    let blob = layer.blob.clone();
    let pusher = registry.pusher("e2e/progress").await;
    let image = pusher.push_image(Some("v1"), images::OCI_MANIFEST, images::OCI_CONFIG, "amd64", vec![layer]).await;
    let relay = CountingRelay::throttled(registry.addr(), Some(12 << 20)).await;
    let layerpipe = Layerpipe::reaching(&registry, &relay.endpoint(), true, Path::new("")).await;
    let upstream: std::net::SocketAddr = layerpipe.base.trim_start_matches("http://").parse().unwrap();
    let nginx = Nginx::start(upstream);

    let browser = Browser::start(&chromium, &chromedriver).await;
    let session = browser.session_not_waiting().await;
    let url = nginx.url(&format!(
        "/explore/files?image={}&digest={}&layer=1&mt={}",
        layerpipe::query::encode(&image.reference),
        layerpipe::query::encode(&blob.digest),
        layerpipe::query::encode(&blob.media_type)
    ));
    session.navigate(&url).await;

    // While the layer is read: a progress line, and no table yet.
    let deadline = Instant::now() + NAVIGATION_TIMEOUT;
    let progress = loop {
        if let Some(last) = session.find_all("css selector", "#progress p").await.last() {
            let text = session.text(last).await;
            if !text.is_empty() {
                break text;
            }
        }
        assert!(Instant::now() < deadline, "no progress line appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(progress.starts_with("Reading the layer for the first time:"), "{progress}");
    assert!(session.find_all("css selector", "#files").await.is_empty(), "the list came before any progress");
    // Lines keep coming, each drawn in the same place as the one before, over it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let lines = session.find_all("css selector", "#progress p").await;
    assert!(lines.len() >= 2, "progress lines keep coming ({})", lines.len());
    assert!(session.find_all("css selector", "#files").await.is_empty(), "the list is still to come");
    let (first, last) = (session.rect(&lines[0]).await, session.rect(lines.last().unwrap()).await);
    assert_eq!((first["x"].clone(), first["y"].clone()), (last["x"].clone(), last["y"].clone()));
    let shot = session.screenshot().await;
    let target = target_dir();
    std::fs::create_dir_all(&target).expect("target dir");
    std::fs::write(target.join("browser-progress.png"), &shot).expect("save the screenshot");

    // Then the list, under the last word on progress.
    let deadline = Instant::now() + Duration::from_secs(120);
    while session.find_all("css selector", "#files").await.is_empty() {
        assert!(Instant::now() < deadline, "the list never came");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = session.find_one("css selector", "#progress-done", "the last progress line").await;
    assert!(session.text(&done).await.contains(&format!("{} entries", PROGRESS_FILES + 1)));
    let rows = session.find_all("css selector", "#files tbody tr").await;
    assert_eq!(rows.len(), PROGRESS_FILES + 1, "every file and the folder");
    session.delete().await;
    drop(browser);
    drop(nginx);
}

/// Issue 10's journey, by clicking only: a repository's tag list, a tag to its image, the
/// image to its merged filesystem, into `etc/`, where `secret.key` (shipped by layer 1,
/// deleted by layer 2) is struck through; its `[save]` link still saves it, byte for byte.
/// The merged folder is left at `target/browser-merged-deleted.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_from_a_tag_list_to_the_merged_view_saves_a_deleted_file() {
    let (chromium, chromedriver) = browser_binaries();
    let registry = RealRegistry::start();
    let layered = registry.push_layered_image("e2e/whole", "v1", 0).await;
    let reference = layered.image.reference.clone();
    let (repository, _) = reference.rsplit_once(':').expect("a tagged reference");
    let layerpipe = Layerpipe::start(&registry, true).await;

    let browser = Browser::start(&chromium, &chromedriver).await;
    let session = browser.session().await;
    let downloads = &browser.downloads;

    // The only URL typed: the repository's tag list.
    session.navigate(&format!("{}/?repo={}", layerpipe.base, layerpipe::query::encode(repository))).await;
    let mut tags = Vec::new();
    for tag in session.find_all("css selector", "#tags a").await {
        tags.push(session.text(&tag).await);
    }
    assert!(tags.contains(&"v1".to_owned()), "the tag list shows v1: {tags:?}");
    let v1 = session.find_one("link text", "v1", "the tag v1").await;
    session.click(&v1).await;
    let image_url = session.wait_for_url("the image's page", |u| u.contains("/?image=")).await;
    assert_eq!(session.title().await, format!("{reference} · layerpipe"));

    // The image's page leads to its merged filesystem.
    let merged = session.find_one("link text", "merged filesystem", "the merged view's link").await;
    session.click(&merged).await;
    session.wait_for_url("the merged root", |u| u.starts_with(&format!("{}/layers/?", layerpipe.base))).await;
    let etc = session.find_one("link text", "etc/", "the etc folder").await;
    session.click(&etc).await;
    session.wait_for_url("/etc/ merged", |u| u.starts_with(&format!("{}/layers/etc/?", layerpipe.base))).await;

    // secret.key is struck through: a later layer deleted it.
    let mut struck = Vec::new();
    for name in session.find_all("css selector", "#merged del a").await {
        struck.push(session.text(&name).await);
    }
    assert!(struck.iter().any(|s| s.ends_with("secret.key")), "secret.key is struck through: {struck:?}");
    let screenshot = session.screenshot().await;
    assert!(screenshot.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is a PNG");
    let target = target_dir();
    std::fs::create_dir_all(&target).expect("target dir");
    std::fs::write(target.join("browser-merged-deleted.png"), &screenshot).expect("save the screenshot");

    // Its [save] link, from the layer that still ships it, saves it whole.
    let save = session
        .find_one(
            "xpath",
            "//table[@id='merged']//tr[.//del//a[contains(., 'secret.key')]]//a[.='[save]']",
            "secret.key's save link",
        )
        .await;
    session.click(&save).await;
    let names = wait_for_download(downloads, "secret.key").await;
    assert_eq!(names, ["secret.key"], "exactly the one file, complete");
    let bytes = std::fs::read(downloads.join("secret.key")).expect("read the saved file");
    assert_eq!(bytes, real::layered::SECRET, "the deleted file, byte for byte");
    assert_ne!(session.current_url().await, image_url);

    session.delete().await;
    drop(browser);
}

/// Saves a screenshot of the page as `target/NAME`.
async fn save_screenshot(session: &Session<'_>, name: &str) {
    let screenshot = session.screenshot().await;
    assert!(screenshot.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is a PNG");
    let target = target_dir();
    std::fs::create_dir_all(&target).expect("target dir");
    let shot = target.join(name);
    std::fs::write(&shot, &screenshot).expect("save the screenshot");
    eprintln!("screenshot: {}", shot.display());
}

/// explore's signature view, by clicks only: the config digest in the image page's
/// manifest JSON leads to the config's contents. Then a layer's files, the merged
/// filesystem and the sizes page, each left as a screenshot under `target/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_the_config_digest_in_the_manifest_json_shows_the_config() {
    let (chromium, chromedriver) = browser_binaries();
    let registry = RealRegistry::start();
    let layered = registry.push_layered_image("e2e/shots", "v1", 0).await;
    let image = &layered.image;
    let layerpipe = Layerpipe::start(&registry, true).await;

    let browser = Browser::start(&chromium, &chromedriver).await;
    let session = browser.session().await;

    // The only URL typed: the image's page.
    let image_url = format!("{}/?image={}", layerpipe.base, layerpipe::query::encode(&image.reference));
    session.navigate(&image_url).await;
    assert_eq!(session.title().await, format!("{} · layerpipe", image.reference));
    save_screenshot(&session, "browser-image.png").await;

    // The config digest, as a link inside the manifest JSON (not the table's), leads to
    // the config page, which shows the config's contents.
    let in_json = format!("//pre[@id='manifest-json']/a[.='{}']", image.config.digest);
    let config = session.find_one("xpath", &in_json, "the config digest in the manifest JSON").await;
    session.click(&config).await;
    session.wait_for_url("the config page", |u| u.starts_with(&format!("{}/config?", layerpipe.base))).await;
    assert_eq!(session.title().await, format!("{} config · layerpipe", image.reference));
    let digest = session.find_one("css selector", "#config-digest", "the config's digest").await;
    assert_eq!(session.text(&digest).await, image.config.digest);
    let cmd = session.find_one("css selector", "#cmd", "the config's Cmd").await;
    assert!(session.text(&cmd).await.contains("/app/main.py"), "the config's Cmd is shown");
    let raw = session.find_one("css selector", "pre#raw", "the config's JSON").await;
    let raw = session.property(&raw, "textContent").await;
    let shown: Value = serde_json::from_str(raw.as_str().expect("text")).expect("the config page shows JSON");
    let pushed: Value = serde_json::from_slice(image.config.bytes().expect("the config's bytes")).unwrap();
    assert_eq!(shown, pushed, "the config page shows the config's contents");

    // Back; layer 2's size leads to its files.
    session.back().await;
    session.wait_for_url("the image's page", |u| u == image_url).await;
    // (Rows of history steps that made no layer sit between the layers' rows.)
    let size = session.find_one("xpath", "//table[@id='layers']//tr[td[1]='2']/td[2]/a", "layer 2's size").await;
    session.click(&size).await;
    session.wait_for_url("the file list", |u| u.starts_with(&format!("{}/files?", layerpipe.base))).await;
    session.find_one("css selector", "#files", "the file list").await;
    save_screenshot(&session, "browser-files.png").await;
    // dive's view: the layer's entries marked against the layers below.
    let marks = session.find_one("css selector", "#changes-link a", "the link to the marks").await;
    session.click(&marks).await;
    session.wait_for_url("the marks", |u| u.starts_with(&format!("{}/changes?", layerpipe.base))).await;
    let removed = session.find_all("css selector", "#changes tr.removed").await;
    assert_eq!(removed.len(), 2, "a whiteout and an opaque folder");
    save_screenshot(&session, "browser-changes.png").await;
    session.back().await;

    // Back; the merged filesystem, then its sizes page.
    session.back().await;
    session.wait_for_url("the image's page", |u| u == image_url).await;
    let merged = session.find_one("link text", "merged filesystem", "the merged view's link").await;
    session.click(&merged).await;
    session.wait_for_url("the merged root", |u| u.starts_with(&format!("{}/layers/?", layerpipe.base))).await;
    session.find_one("css selector", "#merged", "the merged folder").await;
    save_screenshot(&session, "browser-merged.png").await;
    let sizes = session.find_one("xpath", "//nav[@id='image-links']/a[.='sizes']", "the sizes link").await;
    session.click(&sizes).await;
    session.wait_for_url("the sizes page", |u| u.starts_with(&format!("{}/sizes?", layerpipe.base))).await;
    session.find_one("css selector", "#largest", "the largest files").await;
    save_screenshot(&session, "browser-sizes.png").await;

    session.delete().await;
    drop(browser);
}
