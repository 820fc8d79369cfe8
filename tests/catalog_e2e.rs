//! The catalog end to end, against the real registry (tests/real/): after three images
//! are looked at, `/search` finds a name only one of them has and links to its preview,
//! finds a file a later layer deleted and says so, and lists both repositories that
//! ship a shared layer; after a restart, with the registry gone, SQLite still answers
//! all of that. Two layerpipe processes (one in this test, one the built binary) that
//! share a real PostgreSQL each see what the other catalogued.
//!
//! Needs `/usr/bin/docker-registry` and `initdb` (`apt-get install -y docker-registry
//! postgresql`).

mod real;

use std::process::Command;
use std::time::{Duration, Instant};

use http::StatusCode;
use layerpipe::config::Config;
use layerpipe::query::encode;
use real::html::unescape;
use real::http::{get, page};
use real::images::{self, BuiltLayer};
use real::layered::layered_layers;
use real::postgres::RealPostgres;
use real::process::Process;
use real::{Layerpipe, PushedImage, RealRegistry};

/// The name only the second image ships.
const UNIQUE: &str = "opt/only-in-two/needle-7f3.txt";
const UNIQUE_CONTENT: &[u8] = b"only the second image has me\n";
/// How long a sighting may take to reach the catalog before a test gives up: writes are
/// off the request path, so pages come back before their catalog rows are in.
const CATALOGUED_WITHIN: Duration = Duration::from_secs(60);

/// The search page for `q`, once it has a hit whose row contains `needle`.
async fn search_until(base: &str, q: &str, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let html = page(base, &format!("search?q={}", encode(q))).await;
        if html.contains(needle) {
            return html;
        }
        assert!(started.elapsed() < CATALOGUED_WITHIN, "/search?q={q} never showed {needle}: {html}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `<tr class="hit">` rows of a search page.
fn hit_rows(html: &str) -> Vec<&str> {
    html.split("<tr class=\"hit\">").skip(1).map(|row| row.split("</tr>").next().unwrap()).collect()
}

/// The `href` of the link with class `class` in `html`.
fn link(html: &str, class: &str) -> String {
    let end = html.find(&format!("\" class=\"{class}\"")).unwrap_or_else(|| panic!("no {class} link in {html}"));
    let start = html[..end].rfind("href=\"").unwrap() + "href=\"".len();
    unescape(&html[start..end])
}

/// Three images: the layered one (`cat/one:v1`, whose second layer deletes
/// `etc/secret.key`), one sharing its base layer plus a name of its own
/// (`cat/two:v2`), and an unrelated one (`cat/three:v1`).
async fn push_three(registry: &RealRegistry) -> [PushedImage; 3] {
    let one = registry.push_layered_image("cat/one", "v1", 0).await.image;
    let base = layered_layers().remove(0);
    let own = BuiltLayer::new(images::OCI_LAYER_GZIP, &[(UNIQUE, UNIQUE_CONTENT)]);
    let two = registry
        .pusher("cat/two")
        .await
        .push_image(Some("v2"), images::OCI_MANIFEST, images::OCI_CONFIG, "amd64", vec![base, own])
        .await;
    let three = registry.push_oci_image("cat/three", "v1").await;
    [one, two, three]
}

/// Each image's page and its merged view: what a person looking at it opens.
async fn visit(base: &str, images: &[PushedImage]) {
    for image in images {
        page(base, &format!("?image={}", encode(&image.reference))).await;
        page(base, &format!("layers/?image={}", encode(&image.reference))).await;
    }
}

fn config(registry: &RegistryAt, extra: &str) -> Config {
    Config::parse(&format!(
        r#"{{"registries": {{"{host}": {{"endpoint": "{endpoint}"}}}}, {extra}}}"#,
        host = registry.host,
        endpoint = registry.endpoint,
    ))
    .expect("layerpipe config")
}

struct RegistryAt {
    host: String,
    endpoint: String,
}

/// What the search pages must say after the three images were looked at.
/// What search answers after the three images were visited; with `registry_up`, the
/// preview a hit links to is opened too (with the registry gone it cannot show bytes).
async fn check_search(base: &str, images: &[PushedImage; 3], registry_up: bool) {
    let [one, two, _] = images;
    // A name only one image has, linking to its preview (which shows the file).
    let html = search_until(base, "NEEDLE-7F3", "needle-7f3.txt").await;
    let rows = hit_rows(&html);
    let files: Vec<&&str> = rows.iter().filter(|r| r.contains("needle-7f3.txt</code>")).collect();
    assert_eq!(files.len(), 1, "{html}");
    assert!(files[0].contains("cat/two") && files[0].contains("<code>v2</code>"), "{html}");
    assert!(!files[0].contains("cat/one") && !files[0].contains("cat/three"), "{html}");
    assert!(files[0].contains("layer 2: <span class=\"fate\">present</span>"), "{html}");
    let preview = link(files[0], "preview");
    assert!(preview.starts_with(&format!("./fs/{UNIQUE}?image=")), "{preview}");
    if registry_up {
        let shown = page(base, &preview).await;
        assert!(shown.contains("only the second image has me"), "{shown}");
    }
    assert!(files[0].contains("class=\"save\"") && files[0].contains("class=\"merged\""), "{html}");

    // A file a later layer deleted: deleted in cat/one, still there in cat/two.
    let html = search_until(base, "secret.key", "deleted by layer 2").await;
    let row = hit_rows(&html).into_iter().find(|r| r.contains("/etc/secret.key</code>")).expect("the file's row");
    assert!(row.contains("layer 1: <span class=\"fate warn\">deleted by layer 2</span>"), "{row}");
    let in_one = row.split("<li>").find(|li| li.contains("cat/one")).unwrap();
    assert!(in_one.contains("deleted by layer 2"), "{row}");
    let in_two = row.split("<li>").find(|li| li.contains("cat/two")).unwrap();
    assert!(in_two.contains("present"), "{row}");

    // The shared layer lists both repositories, with their tags.
    let shared: &str = one.layers[0].sha256();
    assert_eq!(two.layers[0].sha256(), shared);
    let html = page(base, &format!("search?layer=sha256:{shared}")).await;
    assert!(html.contains("2 images ship it"), "{html}");
    for needle in ["cat/one</td>", "cat/two</td>", ">v1</a>", ">v2</a>"] {
        assert!(html.contains(needle), "{needle} in {html}");
    }
    assert!(!html.contains("cat/three"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_across_three_images_and_after_a_restart() {
    let registry = RealRegistry::start();
    let images = push_three(&registry).await;
    let at = RegistryAt { host: registry.host(), endpoint: registry.endpoint() };
    let dir = tempfile::tempdir().unwrap();
    let indexes = dir.path().join("indexes");
    // The default catalog: SQLite beside the layer indexes.
    let lp =
        Layerpipe::with_config(config(&at, &format!(r#""index": {{"dir": {:?}}}"#, indexes.to_str().unwrap()))).await;
    visit(&lp.base, &images).await;
    check_search(&lp.base, &images, true).await;
    assert!(indexes.join("catalog.sqlite").exists());
    drop(lp);

    // Restarted, with the registry gone and no layer index to read: the catalog alone
    // answers (a page that needed a layer would now fail).
    drop(registry);
    let catalog = indexes.join("catalog.sqlite");
    let lp = Layerpipe::with_config(config(
        &at,
        &format!(r#""index": {{"dir": ""}}, "catalog": {{"url": "sqlite:{}"}}"#, catalog.to_str().unwrap()),
    ))
    .await;
    let gone = get(&format!(
        "{}/files?image={}&digest=sha256:{}&layer=1&mt=application%2Fvnd.oci.image.layer.v1.tar%2Bgzip",
        lp.base,
        encode(&images[0].reference),
        images[0].layers[0].sha256()
    ))
    .await;
    assert_ne!(gone.0, StatusCode::OK, "the registry is gone: {}", gone.1);
    check_search(&lp.base, &images, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_postgres_catalog() {
    let postgres = RealPostgres::start();
    let registry = RealRegistry::start();
    let images = push_three(&registry).await;
    let at = RegistryAt { host: registry.host(), endpoint: registry.endpoint() };
    let catalog = format!(r#""index": {{"dir": ""}}, "catalog": {{"url": "{}"}}"#, postgres.url());
    let here = Layerpipe::with_config(config(&at, &catalog)).await;
    let there = Process::start(
        &format!(
            r#"{{"listen": "127.0.0.1:0", "worker_threads": 1, "registries": {{"{}": {{"endpoint": "{}"}}}}, {catalog}}}"#,
            at.host, at.endpoint
        ),
        "info",
    );
    // One process looks at two images, the other at the third: each searches all three.
    visit(&here.base, &images[..2]).await;
    visit(&there.base, &images[2..]).await;
    check_search(&there.base, &images, true).await;
    search_until(&here.base, "usr/local/bin/hello", "cat/three").await;
    check_search(&here.base, &images, true).await;
}

#[test]
fn a_catalog_that_cannot_be_opened_stops_start_up() {
    let postgres_nowhere =
        r#"{"listen": "127.0.0.1:0", "catalog": {"url": "postgres://lp:hunter2@127.0.0.1:1/lp?connect_timeout=2"}}"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let sqlite_blocked =
        format!(r#"{{"listen": "127.0.0.1:0", "catalog": {{"url": "sqlite:{}/catalog.sqlite"}}}}"#, file.display());
    for (json, needle) in [
        (postgres_nowhere.to_owned(), "cannot open the catalog postgres://lp:***@127.0.0.1:1/lp?…"),
        (sqlite_blocked, "cannot open the catalog sqlite:"),
    ] {
        let config = dir.path().join("config.json");
        std::fs::write(&config, &json).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_layerpipe")).arg("--config").arg(&config).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(needle), "{needle} in {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}
