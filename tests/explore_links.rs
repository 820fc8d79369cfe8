//! explore's URL forms (issue 23, part 1) against the real registry: each form, with the
//! test registry's host in front of the repository as explore writes it, redirects to
//! the layerpipe page with explore's meaning, and that page answers 200; the seed's two
//! links also through nginx's `/explore/` prefix (`deploy/nginx.conf`).
//!
//! Needs `/usr/bin/docker-registry` and `/usr/sbin/nginx`.

mod real;

use bytes::Bytes;
use http::header;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use layerpipe::query::encode;
use real::images::DOCKER_LAYER_GZIP;
use real::nginx::Nginx;
use real::{Layerpipe, PushedImage, RealRegistry};

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// One answer: its status, `Location` and body.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

async fn get(client: &HttpClient, url: &str) -> Answer {
    let request = Request::get(url).body(Empty::new()).expect("request");
    let response = client.request(request).await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap_or_else(|e| panic!("body of {url}: {e:?}")).to_bytes();
    Answer {
        status: parts.status,
        location: parts.headers.get(header::LOCATION).map(|l| l.to_str().unwrap().to_owned()),
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// `location` resolved against `url` as a browser does; layerpipe's are relative paths.
fn resolve(url: &str, location: &str) -> String {
    assert!(!location.starts_with('/') && !location.contains("://"), "not relative: {location}");
    let (origin, path) = url.split_at(url[7..].find('/').map_or(url.len(), |i| i + 7));
    let path = path.split('?').next().unwrap();
    let mut segments: Vec<&str> = path.split('/').collect();
    segments.pop(); // the last name: what is left is the folder
    let (relative, query) = location.split_once('?').map_or((location, None), |(p, q)| (p, Some(q)));
    let mut parts = relative.split('/').peekable();
    while let Some(part) = parts.next() {
        match part {
            "." => {}
            ".." => {
                assert!(segments.len() > 1, "{location} climbs above the root of {url}");
                segments.pop();
            }
            name => segments.push(name),
        }
        if parts.peek().is_none() && matches!(part, "." | "..") {
            segments.push("");
        }
    }
    let mut resolved = format!("{origin}{}", segments.join("/"));
    if let Some(query) = query {
        resolved.push('?');
        resolved.push_str(query);
    }
    resolved
}

#[test]
fn locations_resolve_as_in_a_browser() {
    let at = "http://h:1/explore/size/a/b@d?mt=x";
    assert_eq!(resolve(at, "../../files?q=1"), "http://h:1/explore/files?q=1");
    assert_eq!(resolve("http://h:1/fs/a/b@d/", "../../../fs/?q"), "http://h:1/fs/?q");
    assert_eq!(resolve("http://h:1/?blob=x", "./files?q"), "http://h:1/files?q");
    assert_eq!(resolve("http://h:1/?blob=x", "./?image=y"), "http://h:1/?image=y");
}

/// Asks for explore's `url`: it must redirect (302) to a layerpipe page, which must
/// answer 200; answers that page's URL and HTML.
async fn follow(client: &HttpClient, url: &str) -> (String, String) {
    let first = get(client, url).await;
    assert_eq!(first.status, StatusCode::FOUND, "{url}:\n{}", first.body);
    let to = resolve(url, first.location.as_deref().expect("a Location"));
    let page = get(client, &to).await;
    assert_eq!(page.status, StatusCode::OK, "{url} -> {to}:\n{}", page.body);
    (to, page.body)
}

/// The seed's repository, with the test registry's host in front.
const REPO: &str = "smoshysmosh/composer";

/// The pushed image (Docker media types, as in the seed) and `HOST/REPO`.
async fn pushed(registry: &RealRegistry) -> (PushedImage, String) {
    let image = registry.push_docker_image(REPO, "latest").await;
    assert_eq!(image.layers[0].media_type, DOCKER_LAYER_GZIP);
    (image, format!("{}/{REPO}", registry.host()))
}

/// The seed's two links for layer `n` of `image`: files by size, and the root folder.
fn seed_links(repo: &str, image: &PushedImage, n: usize) -> (String, String) {
    let layer = &image.layers[n];
    let query = format!("?mt={}&size={}", encode(&layer.media_type), layer.size);
    (format!("/size/{repo}@{}{query}", layer.digest), format!("/fs/{repo}@{}/{query}", layer.digest))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_two_links_answer_the_file_list_and_the_root_folder() {
    let registry = RealRegistry::start();
    let (image, repo) = pushed(&registry).await;
    let layerpipe = Layerpipe::start(&registry, true).await;
    let client = client();
    let (size, fs) = seed_links(&repo, &image, 0);

    let (to, files) = follow(&client, &format!("{}{size}", layerpipe.base)).await;
    assert!(to.starts_with(&format!("{}/files?image=", layerpipe.base)), "{to}");
    assert!(to.contains(&format!("&mt={}", encode(DOCKER_LAYER_GZIP))), "{to}");
    assert!(files.contains("Files of blob sha256:"), "{files}");
    assert!(files.contains("etc/os-release") && files.contains("etc/hostname"), "{files}");
    // Back up goes to the repository's tags, not to an image page that cannot exist.
    assert!(files.contains(&format!("?repo={}\">tags of {repo}<", encode(&repo))), "{files}");

    let (to, root) = follow(&client, &format!("{}{fs}", layerpipe.base)).await;
    assert!(to.starts_with(&format!("{}/fs/?image=", layerpipe.base)), "{to}");
    assert!(root.contains(">etc/<"), "{root}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_two_links_work_behind_the_nginx_prefix() {
    let registry = RealRegistry::start();
    let (image, repo) = pushed(&registry).await;
    let layerpipe = Layerpipe::start(&registry, true).await;
    let nginx = Nginx::start(layerpipe.base.trim_start_matches("http://").parse().unwrap());
    let client = client();
    let (size, fs) = seed_links(&repo, &image, 1);

    let (to, files) = follow(&client, &nginx.url(&format!("/explore{size}"))).await;
    assert!(to.starts_with(&nginx.url("/explore/files?image=")), "{to}");
    assert!(files.contains("usr/local/bin/hello"), "{files}");
    let (to, root) = follow(&client, &nginx.url(&format!("/explore{fs}"))).await;
    assert!(to.starts_with(&nginx.url("/explore/fs/?image=")), "{to}");
    assert!(root.contains(">usr/<"), "{root}");
    let log = nginx.access_log();
    assert!(log.contains("\"GET /explore/size/") && log.contains(" 302 "), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_explore_form_reaches_its_page() {
    let registry = RealRegistry::start();
    let (image, repo) = pushed(&registry).await;
    let layerpipe = Layerpipe::start(&registry, true).await;
    let client = client();
    let base = &layerpipe.base;
    let data = &image.layers[2];

    // /fs/REPO@DIGEST/PATH: a file's preview, and a folder; without mt the type is sniffed.
    let (to, preview) =
        follow(&client, &format!("{base}/fs/{repo}@{}/usr/local/bin/hello", image.layers[1].digest)).await;
    assert!(to.starts_with(&format!("{base}/fs/usr/local/bin/hello?image=")), "{to}");
    assert!(to.ends_with(&format!("&mt={}", encode("application/vnd.oci.image.layer.v1.tar+gzip"))), "{to}");
    assert!(preview.contains("hello from sample on amd64"), "{preview}");
    let (to, folder) = follow(&client, &format!("{base}/fs/{repo}@{}/usr/share/", data.digest)).await;
    assert!(to.starts_with(&format!("{base}/fs/usr/share/?image=")), "{to}");
    assert!(folder.contains(">e2e/<"), "{folder}");

    // /size/REPO@DIGEST without mt: sniffed too.
    let (_, files) = follow(&client, &format!("{base}/size/{repo}@{}", data.digest)).await;
    assert!(files.contains("usr/share/e2e/data.bin"), "{files}");

    // /layers/IMAGE/PATH, by tag and by digest; a file's every version.
    let (to, merged) = follow(&client, &format!("{base}/layers/{repo}:latest/")).await;
    assert_eq!(to, format!("{base}/layers/?image={}", encode(&format!("{repo}:latest"))));
    assert!(merged.contains(">etc/<") && merged.contains(">usr/<"), "{merged}");
    let (to, entry) = follow(&client, &format!("{base}/layers/{repo}@{}/etc/hostname", image.digest)).await;
    assert_eq!(to, format!("{base}/layers/etc/hostname?image={}", encode(&format!("{repo}@{}", image.digest))));
    assert!(entry.contains("layer 1"), "{entry}");

    // /sizes/IMAGE.
    let (to, sizes) = follow(&client, &format!("{base}/sizes/{repo}:latest")).await;
    assert_eq!(to, format!("{base}/sizes?image={}", encode(&format!("{repo}:latest"))));
    assert!(sizes.contains("usr/share/e2e/data.bin"), "{sizes}");

    // /?blob=: a layer is its file list; the config (JSON) is its own page.
    let (to, files) = follow(&client, &format!("{base}/?blob={}", encode(&format!("{repo}@{}", data.digest)))).await;
    assert!(to.starts_with(&format!("{base}/files?")), "{to}");
    assert!(files.contains("usr/share/e2e/data.bin"), "{files}");
    let config = format!("{repo}@{}", image.config.digest);
    let (to, blob) = follow(&client, &format!("{base}/?blob={}", encode(&config))).await;
    assert!(to.ends_with(&format!("&mt={}", encode("application/json"))), "{to}");
    assert!(blob.contains("id=\"not-a-layer\"") && blob.contains("&quot;diff_ids&quot;"), "{blob}");
    let (to, _) =
        follow(&client, &format!("{base}/?blob={}&mt={}", encode(&config), encode(&image.config.media_type))).await;
    assert!(to.ends_with(&format!("&mt={}", encode(&image.config.media_type))), "{to}");

    // /?history= and /?referrers=: the image page, which shows both.
    for name in ["history", "referrers"] {
        let (to, page) = follow(&client, &format!("{base}/?{name}={}", encode(&format!("{repo}:latest")))).await;
        assert_eq!(to, format!("{base}/?image={}", encode(&format!("{repo}:latest"))));
        assert!(page.contains(&image.layers[0].digest), "{page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layerpipes_own_forms_and_bad_explore_links_are_told_apart() {
    let registry = RealRegistry::start();
    let (image, repo) = pushed(&registry).await;
    let layerpipe = Layerpipe::start(&registry, true).await;
    let client = client();
    let base = &layerpipe.base;
    let reference = format!("{repo}:latest");
    let layer = &image.layers[0];
    let blob = format!(
        "image={}&digest={}&layer=1&mt={}",
        encode(&reference),
        encode(&layer.digest),
        encode(&layer.media_type)
    );

    // layerpipe's own /fs/ and /layers/ carry image=, and are served as before.
    let own = get(&client, &format!("{base}/fs/etc/?{blob}")).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert!(own.body.contains("os-release"));
    let own = get(&client, &format!("{base}/layers/etc/?image={}", encode(&reference))).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert!(own.body.contains("hostname"));

    // explore's forms with a bad reference, a missing digest or a missing blob.
    for (path, status) in [
        (format!("/size/{repo}"), StatusCode::BAD_REQUEST),
        (format!("/fs/{repo}:latest/etc/"), StatusCode::BAD_REQUEST),
        (format!("/layers/{repo}/etc/"), StatusCode::BAD_REQUEST),
        (format!("/size/{repo}@sha256:{}", "0".repeat(64)), StatusCode::NOT_FOUND),
    ] {
        let answer = get(&client, &format!("{base}{path}")).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.body);
    }
    // A missing blob with its mt given is found missing on the page it redirects to.
    let missing = format!("/size/{repo}@sha256:{}?mt={}", "0".repeat(64), encode(DOCKER_LAYER_GZIP));
    let first = get(&client, &format!("{base}{missing}")).await;
    assert_eq!(first.status, StatusCode::FOUND);
    let page = get(&client, &resolve(&format!("{base}{missing}"), first.location.as_deref().unwrap())).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);
}

/// `/?blob=` decodes what it can (issue 23, part 2): a DSSE envelope's payload is shown
/// decoded and linked, bytes that are no text as hex, and a Helm chart (a tar.gz under
/// its own media type) is browsed as a layer's files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_named_alone_is_decoded_as_explore_shows_it() {
    use base64::Engine as _;
    use real::images::{gzip, tar_archive, Blob};
    let registry = RealRegistry::start();
    let lp = Layerpipe::start(&registry, true).await;
    let (base, client) = (lp.base.clone(), client());
    let (image, repo) = pushed(&registry).await;
    let pusher = registry.pusher(REPO).await;

    let statement = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"x","digest":{{"sha256":"{}"}}}}]}}"#,
        image.digest.trim_start_matches("sha256:")
    );
    let envelope = serde_json::json!({
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64::engine::general_purpose::STANDARD.encode(&statement),
        "signatures": [{"keyid": "", "sig": "MEUC"}],
    });
    let dsse = Blob::from_bytes("application/vnd.dsse.envelope.v1+json", envelope.to_string().into_bytes());
    pusher.push_blob(&dsse).await;
    let (_, page) = follow(&client, &format!("{base}/?blob={}", encode(&format!("{repo}@{}", dsse.digest)))).await;
    assert!(page.contains("<dd id=\"payload-type\">application/vnd.in-toto+json</dd>"), "{page}");
    let payload = &page[page.find("<pre id=\"payload\">").expect(&page)..];
    assert!(payload.contains("&quot;https://in-toto.io/Statement/v1&quot;"), "{payload}");
    // The subject leads to the image it names.
    let href = format!("./?image={}", encode(&format!("{repo}@{}", image.digest)));
    assert!(payload.contains(&format!("<a href=\"{href}\">")), "{payload}");
    assert!(page.contains("<nav id=\"trail\""), "the blob's page has its breadcrumbs: {page}");

    let binary = Blob::from_bytes("application/octet-stream", b"\x7fELF\x02\x01\x01\x00\x00\xff".to_vec());
    pusher.push_blob(&binary).await;
    let (_, page) = follow(&client, &format!("{base}/?blob={}", encode(&format!("{repo}@{}", binary.digest)))).await;
    assert!(page.contains("<pre id=\"hex\">00000000  7f 45 4c 46 02 01 01 00  00 ff"), "{page}");
    assert!(page.contains("|.ELF......|"), "{page}");

    let chart = tar_archive(&[("mychart/Chart.yaml", b"apiVersion: v2\nname: mychart\n")]);
    let helm = Blob::from_bytes("application/vnd.cncf.helm.chart.content.v1.tar+gzip", gzip(&chart));
    pusher.push_blob(&helm).await;
    let (to, files) = follow(&client, &format!("{base}/?blob={}", encode(&format!("{repo}@{}", helm.digest)))).await;
    assert!(to.starts_with(&format!("{base}/files?")), "{to}");
    assert!(files.contains("mychart/Chart.yaml"), "{files}");
}
