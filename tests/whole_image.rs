//! The whole-image building blocks against the real registry: tags a page at a time,
//! referrers by the tag schemes distribution 2.8 can hold, the config with its history,
//! and the merged filesystem of a layered image.

mod real;

use std::sync::Arc;

use layerpipe::config::Config;
use layerpipe::explore::images::ImageLoader;
use layerpipe::explore::layers::Inspector;
use layerpipe::image::history::{self, Step};
use layerpipe::image::merged::Fate;
use layerpipe::image::sizes;
use layerpipe::manifest::Manifest;
use layerpipe::metrics::Metrics;
use layerpipe::reference::ImageReference;
use layerpipe::registry::{Referrer, RegistryClient};
use layerpipe::upstream::multipart::Multipart;
use real::RealRegistry;

struct Clients {
    registry: Arc<RegistryClient>,
    inspector: Arc<Inspector>,
}

fn clients(registry: &RealRegistry) -> Clients {
    let config = Arc::new(
        Config::parse(&format!(
            r#"{{"index": {{"dir": ""}}, "registries": {{"{}": {{"endpoint": "{}"}}}}}}"#,
            registry.host(),
            registry.endpoint()
        ))
        .unwrap(),
    );
    let metrics = Arc::new(Metrics::default());
    let registry = Arc::new(RegistryClient::new(config.clone(), metrics.clone()));
    let multipart = Multipart::new(&config);
    Clients { inspector: Arc::new(Inspector::new(&config, metrics, registry.clone(), multipart)), registry }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_come_a_page_at_a_time() {
    let registry = RealRegistry::start();
    let pushed = registry.push_layered_image("whole/tags", "latest", 5).await;
    let c = clients(&registry);
    let repo: ImageReference = format!("{}/whole/tags", registry.host()).parse().unwrap();
    let mut seen = Vec::new();
    let mut last: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = c.registry.tags(&repo, 2, last.as_deref()).await.unwrap();
        assert!(page.tags.len() <= 2);
        seen.extend(page.tags.iter().cloned());
        pages += 1;
        match page.next {
            Some(next) => last = Some(next),
            None => break,
        }
        assert!(pages < 10, "pagination does not end: {seen:?}");
    }
    // The referrers' tags are tags too, and lexical order puts them after `latest`.
    let subject = pushed.image.digest.replace(':', "-");
    let sig = pushed.signature_tag.clone();
    assert_eq!(seen, ["latest", &subject, &sig, "t0000", "t0001", "t0002", "t0003", "t0004"]);
    assert!(pages >= 3);
    let missing: ImageReference = format!("{}/whole/none", registry.host()).parse().unwrap();
    assert_eq!(c.registry.tags(&missing, 2, None).await.unwrap_err().status(), http::StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_history_and_the_merged_filesystem() {
    let registry = RealRegistry::start();
    let pushed = registry.push_layered_image("whole/app", "v1", 0).await;
    let c = clients(&registry);
    let image: ImageReference = pushed.image.reference.parse().unwrap();
    let fetched = c.registry.manifest(&image).await.unwrap();
    let Manifest::Image(manifest) = &fetched.manifest else { panic!("not an image manifest") };

    // distribution 2.8 has no referrers API: the tag schemes find both.
    let referrers = c.registry.referrers(&image, &fetched.digest).await;
    assert!(referrers.contains(&Referrer::Tag(pushed.signature_tag.clone())), "{referrers:?}");
    assert!(referrers.iter().any(|r| matches!(r, Referrer::Manifest { digest, artifact_type }
        if digest.as_str() == pushed.sbom_digest && artifact_type == "application/spdx+json")));
    // An image nothing refers to has none, and no error.
    let plain = registry.push_oci_image("whole/plain", "v1").await;
    let plain_ref: ImageReference = plain.reference.parse().unwrap();
    let plain_digest = plain.digest.parse().unwrap();
    assert_eq!(c.registry.referrers(&plain_ref, &plain_digest).await, []);

    let loader = ImageLoader::default();
    let config = loader.config(&c.registry, &image, &manifest.config).await.unwrap();
    let timeline = history::pair(&manifest.layers, &config.config.history);
    assert_eq!(timeline.mismatch, None);
    let rows: Vec<String> = timeline
        .steps
        .iter()
        .map(|s| match s {
            Step::Layer { index, history, .. } => {
                format!("{index}: {}", history::command(history.unwrap().created_by.as_deref().unwrap()))
            }
            Step::Empty(h) => format!("-: {}", history::command(h.created_by.as_deref().unwrap())),
        })
        .collect();
    assert_eq!(
        rows,
        [
            "0: ADD file:base in /",
            "-: ENV APP_MODE=<prod>",
            "1: RUN rm /etc/secret.key && useradd app",
            "2: COPY main.py /app/",
            "-: CMD [\"/app/main.py\"]",
        ]
    );
    assert_eq!(config.config.config.as_ref().unwrap().working_dir, "/app");

    let merged = loader.merged(&c.registry, &c.inspector, &image, &fetched.digest, manifest).await.unwrap();
    let fates = |path: &str| -> Vec<(u32, Fate)> { merged.at(path.as_bytes()).map(|v| (v.layer, v.fate)).collect() };
    assert_eq!(fates("etc/secret.key"), [(0, Fate::Deleted { by: 1 })]);
    assert_eq!(fates("etc/passwd"), [(0, Fate::Overwritten { by: 1 }), (1, Fate::Visible)]);
    assert_eq!(fates("var/cache/apt/pkg.deb"), [(0, Fate::Deleted { by: 1 })]);
    assert_eq!(fates("opt/tool/run"), [(0, Fate::Overwritten { by: 1 })]);
    assert_eq!(fates("app/main.py"), [(2, Fate::Visible)]);
    let s = sizes::of(&merged);
    assert_eq!(s.largest[0].entry.path(), b"var/cache/apt/pkg.deb");
    // The deleted secret, the hidden package, the first passwd and the replaced tool.
    let wasted = (layered_secret_len() + 64 * 1024 + 26 + 10) as u64;
    assert_eq!(s.wasted, wasted);
    assert_eq!(s.wasted_by_layer, [wasted, 0, 0]);
}

fn layered_secret_len() -> usize {
    real::layered::SECRET.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_of_a_tag_cost_one_manifest_get() {
    let registry = RealRegistry::start();
    let pushed = registry.push_oci_image("whole/quota", "v1").await;
    let c = clients(&registry);
    let image: ImageReference = pushed.reference.parse().unwrap();
    for _ in 0..3 {
        let fetched = c.registry.manifest(&image).await.unwrap();
        assert_eq!(fetched.digest.as_str(), pushed.digest);
    }
    // By digest, as platform pages and layer pages address it: no request at all.
    let by_digest: ImageReference =
        format!("{}@{}", pushed.reference.split(':').take(2).collect::<Vec<_>>().join(":"), pushed.digest)
            .parse()
            .unwrap();
    c.registry.manifest(&by_digest).await.unwrap();
    assert_eq!(registry.requests("GET", "/manifests/"), 1, "{}", registry.log_tail());
    assert_eq!(registry.requests("HEAD", "/manifests/v1"), 3, "{}", registry.log_tail());
    assert_eq!(c.registry.pull_quota(&registry.host()).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_by_digest_say_they_never_change() {
    use http_body_util::{BodyExt as _, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let registry = RealRegistry::start();
    let pushed = registry.push_oci_image("whole/cache", "v1").await;
    let lp = real::Layerpipe::start(&registry, true).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let cache_control = |reference: String| {
        let client = client.clone();
        let url = lp.url(&format!("?image={}", layerpipe::query::encode(&reference)));
        async move {
            let response = client.get(url.parse().unwrap()).await.unwrap();
            let status = response.status();
            let value = response.headers().get(http::header::CACHE_CONTROL).unwrap().to_str().unwrap().to_owned();
            response.into_body().collect().await.unwrap();
            (status, value)
        }
    };
    let by_digest = format!("{}/whole/cache@{}", registry.host(), pushed.digest);
    assert_eq!(cache_control(by_digest).await, (http::StatusCode::OK, "max-age=31536000, immutable".to_owned()));
    assert_eq!(cache_control(pushed.reference.clone()).await, (http::StatusCode::OK, "no-store".to_owned()));
    // Two page views, config and referrers included, made one manifest GET: the referrers
    // tag is looked for with a HEAD, which Docker Hub does not count as a pull.
    assert_eq!(registry.requests("GET", "/manifests/"), 1, "{}", registry.log_tail());
    let missing = format!("{}/whole/cache@sha256:{}", registry.host(), "0".repeat(64));
    assert_eq!(cache_control(missing).await.1, "no-store");
}

/// One answer of layerpipe: status, `Location` (for redirects) and body.
struct Page {
    status: http::StatusCode,
    location: Option<String>,
    body: bytes::Bytes,
}

impl Page {
    fn html(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("pages are UTF-8")
    }
}

/// GETs `href` (relative to layerpipe's root), following no redirect.
async fn get(lp: &real::Layerpipe, href: &str) -> Page {
    use http_body_util::{BodyExt as _, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let response = client.get(lp.url(href).parse().unwrap()).await.unwrap();
    let status = response.status();
    let location = response.headers().get(http::header::LOCATION).map(|l| l.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Page { status, location, body }
}

/// The `<tr>…</tr>` of `html` that holds `needle` (the first one).
fn row_with<'a>(html: &'a str, needle: &str) -> &'a str {
    let at = html.find(needle).unwrap_or_else(|| panic!("no {needle:?} in {html}"));
    let start = html[..at].rfind("<tr").expect("a row");
    let end = at + html[at..].find("</tr>").expect("the row's end") + "</tr>".len();
    &html[start..end]
}

/// The `href` of the link in `row` whose text is `text`, unescaped, relative to the
/// page at `page_dir` (the folder part of the page's URL, below layerpipe's root).
fn link_in(row: &str, text: &str, page_dir: &str) -> String {
    let end = row.find(&format!("\">{text}</a>")).unwrap_or_else(|| panic!("no link {text:?} in {row}"));
    let start = row[..end].rfind("href=\"").expect("an href") + "href=\"".len();
    let href = real::html::unescape(&row[start..end]);
    // Resolve `../` against the page's folder, as a browser does.
    let mut dir: Vec<&str> = page_dir.split('/').filter(|s| !s.is_empty()).collect();
    let mut rest = href.as_str();
    loop {
        if let Some(r) = rest.strip_prefix("../") {
            dir.pop();
            rest = r;
        } else if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else {
            break;
        }
    }
    dir.push(rest);
    dir.join("/")
}

fn encoded(s: &str) -> String {
    layerpipe::query::encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merged_filesystem_strikes_through_what_later_layers_hid() {
    let registry = RealRegistry::start();
    let pushed = registry.push_layered_image("whole/merged", "v1", 0).await;
    let lp = real::Layerpipe::start(&registry, true).await;
    let image = encoded(&pushed.image.reference);

    // The image page leads to the merged view and the sizes.
    let page = get(&lp, &format!("?image={image}")).await.html();
    assert!(page.contains(&format!("<a href=\"./layers/?image={image}\">merged filesystem</a>")), "{page}");
    assert!(page.contains(&format!("<a href=\"./sizes?image={image}\">")), "{page}");

    let root = get(&lp, &format!("layers/?image={image}")).await;
    assert_eq!(root.status, http::StatusCode::OK);
    let root = root.html();
    assert!(root.contains("<table id=\"merged\">"), "{root}");
    for dir in ["app", "etc", "opt", "var"] {
        let row = row_with(&root, &format!(">{dir}/</a>"));
        assert!(!row.contains("<del>") && row.contains("in the image"), "{row}");
    }
    // app/ comes from layer 3.
    assert!(row_with(&root, ">app/</a>").contains(">layer 3</a>"), "{root}");

    // etc/: the secret, deleted by layer 2, still listed and saved from layer 1.
    let etc = get(&lp, &format!("layers/etc/?image={image}")).await.html();
    let secret = row_with(&etc, ">secret.key</a></del>");
    assert!(secret.contains("<td>deleted by layer 2</td>") && secret.contains(">layer 1</a>"), "{secret}");
    let save = link_in(secret, "[save]", "layers/etc/");
    assert!(save.starts_with("save/etc/secret.key?"), "{save}");
    let saved = get(&lp, &save).await;
    assert_eq!(saved.status, http::StatusCode::OK);
    assert_eq!(&saved.body[..], real::layered::SECRET);
    // Its layer link is that layer's entry page, which previews it.
    let preview = get(&lp, &link_in(secret, "layer 1", "layers/etc/")).await.html();
    assert!(preview.contains("AKIA-layerpipe-test-secret"), "{preview}");
    // passwd: layer 2's is seen, layer 1's overwritten by it.
    let seen = row_with(&etc, ">passwd</a></td>");
    assert!(seen.contains(">layer 2</a>") && seen.contains("in the image") && seen.contains("56 B"), "{seen}");
    let old = row_with(&etc, ">passwd</a></del>");
    assert!(old.contains(">layer 1</a>") && old.contains("<td>overwritten by layer 2</td>"), "{old}");

    // var/cache/ is opaque in layer 2: what layer 1 had below it is deleted.
    let cache = get(&lp, &format!("layers/var/cache/?image={image}")).await.html();
    assert!(row_with(&cache, ">apt/</a></del>").contains("deleted by layer 2"), "{cache}");
    assert!(row_with(&cache, ">fresh</a>").contains("in the image"), "{cache}");
    let apt = get(&lp, &format!("layers/var/cache/apt/?image={image}")).await.html();
    let deb = row_with(&apt, ">pkg.deb</a></del>");
    assert!(deb.contains("deleted by layer 2") && deb.contains("[save]"), "{deb}");

    // opt/tool: a file of layer 2 over a directory of layer 1; each URL shows its own.
    let opt = get(&lp, &format!("layers/opt/?image={image}")).await.html();
    assert!(row_with(&opt, ">tool</a></td>").contains(">layer 2</a>"), "{opt}");
    assert!(row_with(&opt, ">tool/</a></del>").contains("overwritten by layer 2"), "{opt}");
    let tool = get(&lp, &format!("layers/opt/tool?image={image}")).await.html();
    assert!(tool.contains("<table id=\"versions\">") && tool.contains("overwritten by layer 2"), "{tool}");
    let hidden_dir = get(&lp, &format!("layers/opt/tool/?image={image}")).await.html();
    assert!(row_with(&hidden_dir, ">run</a></del>").contains("overwritten by layer 2"), "{hidden_dir}");

    // An entry's page lists every layer's version.
    let passwd = get(&lp, &format!("layers/etc/passwd?image={image}")).await.html();
    assert!(passwd.contains("<table id=\"versions\">"), "{passwd}");
    assert_eq!(passwd.matches("[save]").count(), 2, "{passwd}");

    // Folders without their slash, and files with one, are redirected.
    let to_dir = get(&lp, &format!("layers/etc?image={image}")).await;
    assert_eq!(to_dir.status, http::StatusCode::MOVED_PERMANENTLY);
    assert_eq!(to_dir.location.unwrap(), format!("../layers/etc/?image={image}"));
    let to_file = get(&lp, &format!("layers/etc/passwd/?image={image}")).await;
    assert_eq!(to_file.location.unwrap(), format!("../../../layers/etc/passwd?image={image}"));
    assert_eq!(get(&lp, &format!("layers?image={image}")).await.location.unwrap(), format!("./layers/?image={image}"));

    // Bad input: the right status and a page saying why.
    for (href, status) in [
        (format!("layers/nothing/here?image={image}"), http::StatusCode::NOT_FOUND),
        (format!("layers/etc/?image={image}&page=2"), http::StatusCode::NOT_FOUND),
        (format!("layers/?image={image}&page=0"), http::StatusCode::BAD_REQUEST),
        (format!("layers/a//b/?image={image}"), http::StatusCode::BAD_REQUEST),
        (format!("layers/%zz?image={image}"), http::StatusCode::BAD_REQUEST),
        ("layers/".to_owned(), http::StatusCode::BAD_REQUEST),
        ("sizes?image=Bad%20Ref".to_owned(), http::StatusCode::BAD_REQUEST),
        (
            format!("sizes?image={}", encoded(&format!("{}/whole/none:v1", registry.host()))),
            http::StatusCode::NOT_FOUND,
        ),
    ] {
        let page = get(&lp, &href).await;
        assert_eq!(page.status, status, "{href}: {}", page.html());
        assert!(page.html().contains("<p class=\"error\" id=\"reason\">"), "{href}: {}", page.html());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_files_in_a_layer_and_across_the_image() {
    let registry = RealRegistry::start();
    let pushed = registry.push_layered_image("whole/search", "v1", 0).await;
    let lp = real::Layerpipe::start(&registry, true).await;
    let image = encoded(&pushed.image.reference);

    // In one layer's file list.
    let base = &pushed.image.layers[0];
    let layer = format!("image={image}&digest={}&layer=1&mt={}", encoded(&base.digest), encoded(&base.media_type));
    let files = get(&lp, &format!("files?{layer}&search=SECRET")).await.html();
    assert!(files.contains("<p id=\"hits\">1 entry matches <code>secret</code>.</p>"), "{files}");
    assert!(files.contains(">/etc/secret.key</a>") && !files.contains("passwd</a>"), "{files}");
    assert!(files.contains("<input type=\"hidden\" name=\"digest\""), "{files}");

    // Across the image: the hit's layer and fate, hidden versions too.
    let hits = get(&lp, &format!("layers/?image={image}&search=secret")).await.html();
    assert!(hits.contains("<p id=\"hits\">1 entry matches"), "{hits}");
    let secret = row_with(&hits, ">/etc/secret.key</a></del>");
    assert!(secret.contains(">layer 1</a>") && secret.contains("deleted by layer 2"), "{secret}");
    let passwd = get(&lp, &format!("layers/?image={image}&search=PASSWD")).await.html();
    assert!(passwd.contains("<p id=\"hits\">2 entries match"), "{passwd}");
    let app = get(&lp, &format!("layers/?image={image}&search=%5E%2Fapp")).await.html();
    assert!(app.contains("<p id=\"hits\">2 entries match"), "{app}");
    assert!(row_with(&app, ">/app/main.py</a>").contains(">layer 3</a>"), "{app}");
    // A search from a folder is the image's search, at the merged root.
    let from_etc = get(&lp, &format!("layers/etc/?image={image}&search=x")).await;
    assert_eq!(from_etc.location.unwrap(), format!("../../layers/?image={image}&search=x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_put_the_largest_file_first_and_count_the_wasted_bytes() {
    let registry = RealRegistry::start();
    let pushed = registry.push_layered_image("whole/sizes", "v1", 0).await;
    let lp = real::Layerpipe::start(&registry, true).await;
    let image = encoded(&pushed.image.reference);
    let page = get(&lp, &format!("sizes?image={image}")).await;
    assert_eq!(page.status, http::StatusCode::OK);
    let html = page.html();
    // Layer 1 ships the secret (27), the package (64 KiB), passwd (26) and the tool (10)
    // that later layers hide; the image ships those, passwd again (56), fresh (6), the
    // new tool (11) and main.py (15).
    let wasted = real::layered::SECRET.len() + 64 * 1024 + 26 + 10;
    assert_eq!(wasted, 65_599);
    assert!(html.contains("<dd id=\"files\">8</dd>"), "{html}");
    // Shown with thousands separators.
    assert!(html.contains("<dd id=\"wasted\">64.1 KiB (65,599 bytes)</dd>"), "{html}");
    assert_eq!(wasted + 56 + 6 + 11 + 15, 65_687);
    assert!(html.contains("(65,687 bytes)</dd>"), "{html}");
    let by_layer = &html[html.find("<table id=\"wasted-by-layer\">").unwrap()..];
    let titles: Vec<&str> = by_layer.split("title=\"").skip(1).take(3).map(|t| &t[..t.find('"').unwrap()]).collect();
    assert_eq!(titles, [format!("{wasted} bytes"), "0 bytes".to_owned(), "0 bytes".to_owned()]);
    let largest = &html[html.find("<table id=\"largest\">").unwrap()..];
    let first = row_with(largest, "<td class=\"p\">");
    assert!(first.contains("<del>") && first.contains(">/var/cache/apt/pkg.deb</a>"), "{first}");
    assert!(first.contains("title=\"65536 bytes\"") && first.contains("deleted by layer 2"), "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_asks_which_platform_to_merge() {
    let registry = RealRegistry::start();
    let index = registry.push_oci_index("whole/index", "v1").await;
    let lp = real::Layerpipe::start(&registry, true).await;
    let page = get(&lp, &format!("layers/?image={}", encoded(&index.reference))).await;
    assert_eq!(page.status, http::StatusCode::OK);
    let html = page.html();
    assert!(html.contains("<table id=\"platforms\">"), "{html}");
    let arm = row_with(&html, ">linux/arm64</a>");
    let merged = get(&lp, &link_in(arm, "linux/arm64", "layers/")).await;
    assert_eq!(merged.status, http::StatusCode::OK);
    let merged = merged.html();
    assert!(merged.contains(&index.platforms[1].digest) && merged.contains(">usr/</a>"), "{merged}");
    let sizes = get(&lp, &format!("sizes?image={}", encoded(&index.reference))).await.html();
    assert!(sizes.contains("<a href=\"./sizes?image="), "{sizes}");
}

/// GETs one of layerpipe's relative links: its status and page.
async fn page(lp: &real::Layerpipe, href: &str) -> (http::StatusCode, String) {
    use http_body_util::{BodyExt as _, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let response = client.get(lp.url(href).parse().unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// The `href`s and texts of the links in the element that starts with `start`, unescaped.
fn links_in(html: &str, start: &str) -> Vec<(String, String)> {
    let Some(table) = html.split(start).nth(1).and_then(|t| t.split("</table>").next()) else { return Vec::new() };
    table
        .split("<a href=\"")
        .skip(1)
        .map(|piece| {
            let (href, rest) = piece.split_once("\">").unwrap();
            let text = rest.split("</a>").next().unwrap();
            (real::html::unescape(href), real::html::unescape(text))
        })
        .collect()
}

/// The `rel="next"` link of a page, unescaped.
fn next_link(html: &str) -> Option<String> {
    let before = html.split("\" rel=\"next\"").next().filter(|b| b.len() < html.len())?;
    Some(real::html::unescape(before.rsplit("<a href=\"").next().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tag_list_pages_through_every_tag_to_its_images() {
    let registry = RealRegistry::start();
    // 120 more tags, the signature's and the referrers' tags: two pages of 100.
    let pushed = registry.push_layered_image("whole/tagpages", "latest", 120).await;
    let lp = real::Layerpipe::start(&registry, true).await;
    let repo = format!("{}/whole/tagpages", registry.host());

    let (status, home) = page(&lp, "./").await;
    assert_eq!(status, http::StatusCode::OK);
    assert!(home.contains("<input name=\"repo\""), "{home}");

    let mut href = format!("./?repo={}", layerpipe::query::encode(&repo));
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, html) = page(&lp, &href).await;
        assert_eq!(status, http::StatusCode::OK, "{href}: {html}");
        pages += 1;
        // Each tag's row: its image, then "compare with…" (a diff from that image).
        for (link, text) in links_in(&html, "<table id=\"tags\">") {
            if text == "compare with…" {
                let tag = seen.last().expect("a tag's link comes first");
                let image = layerpipe::query::encode(&format!("{repo}:{tag}"));
                assert_eq!(link, format!("./diff?a={image}\" class=\"compare"));
                continue;
            }
            assert_eq!(link, format!("./?image={}", layerpipe::query::encode(&format!("{repo}:{text}"))));
            seen.push(text);
        }
        match next_link(&html) {
            Some(next) => href = next,
            None => break,
        }
        assert!(pages < 5, "pagination does not end: {seen:?}");
    }
    assert_eq!(pages, 2);
    let subject = pushed.image.digest.replace(':', "-");
    let mut expected: Vec<String> = (0..120).map(|n| format!("t{n:04}")).collect();
    expected.extend(["latest".to_owned(), subject, pushed.signature_tag.clone()]);
    expected.sort();
    assert_eq!(seen, expected);

    // A tag's link leads to its image.
    let (status, image) = page(&lp, &format!("./?image={}", layerpipe::query::encode(&format!("{repo}:t0007")))).await;
    assert_eq!(status, http::StatusCode::OK);
    assert!(image.contains(&format!("<code id=\"manifest-digest\">{}</code>", pushed.image.digest)), "{image}");

    // A bad repository is the user's mistake; one that does not exist is the registry's 404.
    let (status, html) = page(&lp, "./?repo=Not%20A%20Repo").await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST, "{html}");
    let (status, html) = page(&lp, &format!("./?repo={}:v1", layerpipe::query::encode(&repo))).await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("not a repository"), "{html}");
    let missing = format!("./?repo={}", layerpipe::query::encode(&format!("{}/whole/none", registry.host())));
    let (status, html) = page(&lp, &missing).await;
    assert_eq!(status, http::StatusCode::NOT_FOUND, "{html}");
    assert!(html.contains("repository whole/none not found"), "{html}");
}

/// The `made by` cells of the layer table, with `-` before a step without a layer.
fn steps(html: &str) -> Vec<String> {
    let table = html.split("<table id=\"layers\">").nth(1).unwrap().split("</table>").next().unwrap();
    table
        .split("<tr")
        .skip(2)
        .map(|row| {
            let step = row.split("<td class=\"step\"><code>").nth(1).unwrap().split("</code>").next().unwrap();
            let step = real::html::unescape(step);
            if row.starts_with(" class=\"empty-layer\"") {
                format!("- {step}")
            } else {
                step
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_page_shows_history_referrers_and_the_config() {
    let registry = RealRegistry::start();
    let pushed = registry.push_layered_image("whole/page", "v1", 0).await;
    let lp = real::Layerpipe::start(&registry, true).await;
    let (status, html) = page(&lp, &format!("./?image={}", layerpipe::query::encode(&pushed.image.reference))).await;
    assert_eq!(status, http::StatusCode::OK, "{html}");

    // Each layer beside its step, the steps without a layer between them.
    assert_eq!(
        steps(&html),
        [
            "ADD file:base in /",
            "- ENV APP_MODE=<prod>",
            "RUN rm /etc/secret.key && useradd app",
            "COPY main.py /app/",
            "- CMD [\"/app/main.py\"]",
        ],
        "{html}"
    );
    assert!(!html.contains("history-note"), "{html}");
    assert_eq!(real::html::download_links(&html).len(), 3);

    // The signature tag and the SBOM the referrers tag lists, each leading to its manifest.
    let referrers = links_in(&html, "<table id=\"referrers\">");
    let repo = format!("{}/whole/page", registry.host());
    let sig = (
        format!("./?image={}", layerpipe::query::encode(&format!("{repo}:{}", pushed.signature_tag))),
        pushed.signature_tag.clone(),
    );
    let sbom = (
        format!("./?image={}", layerpipe::query::encode(&format!("{repo}@{}", pushed.sbom_digest))),
        pushed.sbom_digest.clone(),
    );
    assert!(referrers.contains(&sig) && referrers.contains(&sbom), "{referrers:?}\n{html}");
    assert!(html.contains("<tr><td>application/spdx+json</td>"), "{html}");
    assert!(html.contains("<tr><td>signature (cosign)</td>"), "{html}");
    for (href, _) in &referrers {
        let (status, manifest) = page(&lp, href).await;
        assert_eq!(status, http::StatusCode::OK, "{href}: {manifest}");
    }
    // The SBOM itself has no referrers: no heading.
    let (_, sbom_page) = page(&lp, &sbom.0).await;
    assert!(!sbom_page.contains("Referrers"), "{sbom_page}");

    // The config digest leads to the config page.
    let config_href = html.split("<code id=\"config-digest\"><a href=\"").nth(1).unwrap().split('"').next().unwrap();
    let config_href = real::html::unescape(config_href);
    assert_eq!(config_href, format!("./config?image={}", layerpipe::query::encode(&pushed.image.reference)));
    let (status, config) = page(&lp, &config_href).await;
    assert_eq!(status, http::StatusCode::OK, "{config}");
    for field in [
        "<li><code>PATH=/usr/local/bin:/usr/bin:/bin</code></li>",
        "<li><code>APP_MODE=&lt;prod&gt;</code></li>",
        "<code id=\"entrypoint\">[&quot;/usr/bin/python3&quot;]</code>",
        "<code id=\"cmd\">[&quot;/app/main.py&quot;]</code>",
        "<code id=\"workdir\">/app</code>",
        "<code id=\"user\">app</code>",
        "<li><code>8080/tcp</code></li>",
        "<td><code>org.opencontainers.image.source</code></td><td><code>https://example.invalid/app</code></td>",
        "<dd>linux/amd64</dd>",
        "<pre id=\"raw\">{\n  &quot;architecture&quot;: &quot;amd64&quot;,",
    ] {
        assert!(config.contains(field), "{field} missing:\n{config}");
    }
    assert!(!config.contains("<prod>"), "{config}");
    // An index has no config of its own; a missing image is the registry's 404.
    let (status, _) = page(&lp, "./config?image=").await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST);
    let missing = format!("./config?image={}", layerpipe::query::encode(&format!("{repo}:nope")));
    assert_eq!(page(&lp, &missing).await.0, http::StatusCode::NOT_FOUND);
}

/// The `href` of the first link after `marker` in `html`, unescaped.
fn href_after(html: &str, marker: &str) -> String {
    let rest = &html[html.find(marker).unwrap_or_else(|| panic!("no {marker:?} in {html}"))..];
    let start = rest.find("href=\"").expect("a link") + "href=\"".len();
    real::html::unescape(&rest[start..start + rest[start..].find('"').unwrap()])
}

/// dive's view, on the layered image (overwrites, a whiteout, an opaque folder, a folder
/// replaced by a file): a layer's file list leads to its entries marked against the
/// layers below, and the sizes page scores the image and names its largest folders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_layers_entries_are_marked_and_the_image_is_scored() {
    let registry = RealRegistry::start();
    let pushed = registry.push_layered_image("whole/dive", "v1", 0).await;
    let lp = real::Layerpipe::start(&registry, true).await;
    let image = encoded(&pushed.image.reference);

    // From the image page to layer 2's files, and from there to its marks.
    let page = get(&lp, &format!("?image={image}")).await.html();
    let layer2 = row_with(&page, "<td class=\"n\">2</td>");
    let files = href_after(layer2, "<td class=\"n\" title=");
    let files = get(&lp, &files).await.html();
    let marks_href = href_after(&files, "<p id=\"changes-link\">");
    assert_eq!(marks_href, format!("./changes?image={image}&layer=2"));
    let marks = get(&lp, &marks_href).await;
    assert_eq!(marks.status, http::StatusCode::OK);
    let marks = marks.html();
    let rows: Vec<(String, String)> = marks
        .split("<tr class=\"")
        .skip(1)
        .map(|row| {
            let mark = row[..row.find('"').unwrap()].to_owned();
            let name = row.split("<td class=\"p\">").nth(1).unwrap();
            let name = name[name.find("\">").unwrap() + 2..name.find("</a>").unwrap()].to_owned();
            (mark, real::html::unescape(&name))
        })
        .collect();
    let expected = [
        ("modified", "/etc"),
        ("removed", "/etc/secret.key"),
        ("modified", "/etc/passwd"),
        ("modified", "/opt"),
        ("modified", "/opt/tool"),
        ("modified", "/var"),
        ("modified", "/var/cache"),
        ("removed", "everything in /var/cache/"),
        ("added", "/var/cache/fresh"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(rows, expected, "{marks}");
    assert!(marks.contains("<span id=\"added\">1 added</span>, <span id=\"modified\">6 modified</span>, <span id=\"removed\">2 removed</span>"), "{marks}");
    // The base layer adds everything; a layer the image does not have is a 404.
    let base = get(&lp, &format!("changes?image={image}&layer=1")).await.html();
    assert_eq!(base.matches("<tr class=\"added\">").count(), 10, "{base}");
    assert!(!base.contains("<tr class=\"modified\">") && !base.contains("<tr class=\"removed\">"), "{base}");
    assert_eq!(get(&lp, &format!("changes?image={image}&layer=4")).await.status, http::StatusCode::NOT_FOUND);

    // The score, by hand: a container sees passwd (56), fresh (6), the tool (11) and
    // main.py (15), 88 bytes of the 65,687 that the layers ship.
    let seen = 56 + 6 + 11 + 15;
    let shipped = real::layered::SECRET.len() + 64 * 1024 + 26 + 10 + seen;
    assert_eq!((seen, shipped), (88, 65_687));
    let percent = seen as f64 * 100.0 / shipped as f64;
    assert_eq!(format!("{percent:.2}%"), "0.13%");
    let sizes = get(&lp, &format!("sizes?image={image}")).await.html();
    assert!(
        sizes.contains(&format!("<dd id=\"efficiency\" title=\"{seen} of {shipped} bytes\">0.13%</dd>")),
        "{sizes}"
    );
    // Each layer's counts, linked to its marks.
    let by_layer = &sizes[sizes.find("<table id=\"wasted-by-layer\">").unwrap()..];
    let counts = |n: u32| {
        let row = row_with(by_layer, &format!(">{n}</a></td>"));
        let cells: Vec<&str> = row.split("<td class=\"n\">").skip(2).map(|c| &c[..c.find("</td>").unwrap()]).collect();
        (cells.join(" "), row.contains(&format!("layer={n}\">changes</a>")))
    };
    assert_eq!(counts(1), ("10 0 0".to_owned(), true));
    assert_eq!(counts(2), ("1 6 2".to_owned(), true));
    assert_eq!(counts(3), ("2 0 0".to_owned(), true));
    // The largest folders: what a container sees below each.
    let folders: Vec<String> = links_in(&sizes, "<table id=\"folders\">").into_iter().map(|(_, text)| text).collect();
    assert_eq!(folders, ["/etc/", "/app/", "/opt/", "/var/", "/var/cache/"]);
    assert!(row_with(&sizes, ">/etc/</a>").contains("title=\"56 bytes\""), "{sizes}");
}

/// The `<p id="reason">` of an error page.
fn reason(html: &str) -> &str {
    let start = html.find("<p class=\"error\" id=\"reason\">").expect("an error page") + 29;
    &html[start..start + html[start..].find("</p>").unwrap()]
}

/// Issue 23 part 5: a platform page names its platform and links back to its index;
/// counts agree with their words; a missing repository and a missing tag say which, the
/// tag's linking to the repository's tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_links_to_its_index_and_a_missing_tag_to_the_tags() {
    let registry = RealRegistry::start();
    let index = registry.push_oci_index("whole/plat", "v1").await;
    let lp = real::Layerpipe::start(&registry, true).await;
    let index_ref = encoded(&index.reference);

    // The index page's platform links say which index they came from.
    let html = get(&lp, &format!("?image={index_ref}")).await.html();
    assert!(html.contains("<p>An index of 2 manifests: pick a platform.</p>"), "{html}");
    let links = links_in(&html, "<table id=\"platforms\">");
    assert_eq!(links.len(), 2, "{html}");
    let (href, text) = &links[1];
    assert_eq!(text, "linux/arm64");
    assert!(href.ends_with(&format!("&index={index_ref}")), "{href}");
    let platform = get(&lp, href).await;
    assert_eq!(platform.status, http::StatusCode::OK);
    let platform = platform.html();
    assert!(platform.contains("<dd id=\"platform\">linux/arm64</dd>"), "{platform}");
    let back = format!(
        "a platform of <a href=\"./?image={index_ref}\" id=\"index-link\"><code>{}</code></a>",
        index.reference
    );
    assert!(platform.contains(&back), "{platform}");
    assert!(platform.contains(&index.platforms[1].digest), "{platform}");
    // An index of another repository is not linked.
    let other = encoded(&format!("{}/whole/other:v1", registry.host()));
    let elsewhere = get(&lp, &format!("{}&index={other}", href.split("&index=").next().unwrap())).await.html();
    assert!(elsewhere.contains("<dd id=\"platform\">linux/arm64</dd>") && !elsewhere.contains("id=\"index-link\""));

    // One tag: "1 tag", not "1 tags".
    let repo = encoded(&format!("{}/whole/plat", registry.host()));
    let tags = get(&lp, &format!("?repo={repo}")).await.html();
    assert!(tags.contains("<p>1 tag; each leads"), "{tags}");

    // A missing repository, then a missing tag and digest in one that exists.
    let missing_repo = get(&lp, &format!("?image={}", encoded(&format!("{}/whole/none:v1", registry.host())))).await;
    assert_eq!(missing_repo.status, http::StatusCode::NOT_FOUND);
    let html = missing_repo.html();
    assert_eq!(reason(&html), format!("repository {}/whole/none not found", registry.host()));
    assert!(!html.contains("id=\"tags-link\""), "{html}");
    let missing_tag = get(&lp, &format!("?image={}", encoded(&format!("{}/whole/plat:nope", registry.host())))).await;
    assert_eq!(missing_tag.status, http::StatusCode::NOT_FOUND);
    let html = missing_tag.html();
    assert_eq!(reason(&html), format!("tag nope not found in repository {}/whole/plat", registry.host()));
    let tags_link =
        format!("<a href=\"./?repo={repo}\" id=\"tags-link\">the tags of {}/whole/plat</a>", registry.host());
    assert!(html.contains(&tags_link), "{html}");
    assert_eq!(get(&lp, &format!("?repo={repo}")).await.status, http::StatusCode::OK, "the link leads to the tags");
    let zeros = format!("sha256:{}", "0".repeat(64));
    let missing_digest =
        get(&lp, &format!("?image={}", encoded(&format!("{}/whole/plat@{zeros}", registry.host())))).await;
    assert_eq!(missing_digest.status, http::StatusCode::NOT_FOUND);
    let html = missing_digest.html();
    assert_eq!(reason(&html), format!("manifest {zeros} not found in repository {}/whole/plat", registry.host()));
    assert!(html.contains(&tags_link), "{html}");
}
