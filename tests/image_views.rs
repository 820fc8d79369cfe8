//! An image's own views against the real registry (issue 23): the Dockerfile rebuilt
//! from history, and the manifest and config JSON with every digest a link.
//!
//! Needs `/usr/bin/docker-registry`.

mod real;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use layerpipe::query::encode;
use real::html::unescape;
use real::{Layerpipe, RealRegistry};

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// The page at `href` (relative to layerpipe's root), checked to be a 200.
async fn page(client: &HttpClient, layerpipe: &Layerpipe, href: &str) -> String {
    let url = layerpipe.url(href);
    let request = Request::get(&url).body(Empty::new()).expect("request");
    let response = client.request(request).await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let status = response.status();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    let html = String::from_utf8(body.to_vec()).expect("UTF-8 page");
    assert_eq!(status, StatusCode::OK, "{url}:\n{html}");
    html
}

/// The `href` of the `<a>` whose `id` is `id`, unescaped.
fn href_of(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}:\n{html}"));
    let tag = &html[html[..at].rfind("<a ").expect("an <a>")..];
    let href = &tag[tag.find("href=\"").unwrap() + 6..];
    unescape(&href[..href.find('"').unwrap()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dockerfile_is_rebuilt_from_env_copy_and_run_steps() {
    let registry = RealRegistry::start();
    let pushed = registry.push_layered_image("views/app", "v1", 0).await;
    let layerpipe = Layerpipe::start(&registry, true).await;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let reference = &pushed.image.reference;

    // Linked from the image page and from the config page, to the same page.
    let image = page(&client, &layerpipe, &format!("?image={}", encode(reference))).await;
    let href = href_of(&image, "dockerfile-link");
    assert_eq!(href, format!("./dockerfile?image={}", encode(reference)));
    let config = page(&client, &layerpipe, &format!("config?image={}", encode(reference))).await;
    assert_eq!(href_of(&config, "dockerfile-link"), href);

    let html = page(&client, &layerpipe, &href).await;
    let text = html.split("<pre id=\"dockerfile\">").nth(1).and_then(|t| t.split("</pre>").next()).expect("the text");
    assert_eq!(
        unescape(text),
        "ADD file:base in /\n\
         ENV APP_MODE=<prod>\n\
         RUN rm /etc/secret.key && useradd app\n\
         COPY main.py /app/\n\
         CMD [\"/app/main.py\"]\n"
    );
    // Each step that made a layer links to that layer's files; the others to none.
    let rows: Vec<&str> = html.split("<tbody>").nth(1).unwrap().split("<tr>").skip(1).collect();
    assert_eq!(rows.len(), 5, "{html}");
    for (row, layer) in rows.iter().zip([Some(0), None, Some(1), Some(2), None]) {
        match layer {
            Some(n) => {
                let digest = &pushed.image.layers[n].digest;
                assert!(row.contains(&format!("&amp;digest={}&amp;layer={}", encode(digest), n + 1)), "{row}");
            }
            None => assert!(!row.contains("<a "), "{row}"),
        }
    }
}

/// The links inside `<pre id="ID">` of a page: (text, href unescaped), in order.
fn json_links(html: &str, id: &str) -> Vec<(String, String)> {
    let start = html.find(&format!("<pre id=\"{id}\">")).unwrap_or_else(|| panic!("no #{id}:\n{html}"));
    let pre = &html[start..start + html[start..].find("</pre>").unwrap()];
    pre.split("<a href=\"")
        .skip(1)
        .map(|a| {
            let (href, rest) = a.split_once("\">").unwrap();
            (unescape(&rest[..rest.find("</a>").unwrap()]), unescape(href))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_digest_in_the_manifest_and_config_json_links_to_its_view() {
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("views/json", "v1").await;
    let index = registry.push_oci_index("views/json", "multi").await;
    // An artifact whose subject is the image, as a signature or an SBOM would be.
    let pusher = registry.pusher("views/json").await;
    let artifact = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": real::images::OCI_MANIFEST,
        "config": image.config.descriptor(),
        "layers": [image.layers[0].descriptor()],
        "subject": {"mediaType": image.media_type, "digest": image.digest, "size": image.manifest.len()},
    });
    pusher.push_manifest("about-v1", real::images::OCI_MANIFEST, artifact.to_string().into()).await;
    let layerpipe = Layerpipe::start(&registry, true).await;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let reference = &image.reference;

    // The image page: the config's digest leads to the config, each layer's to its files.
    let html = page(&client, &layerpipe, &format!("?image={}", encode(reference))).await;
    let links = json_links(&html, "manifest-json");
    assert_eq!(links.len(), 1 + image.layers.len(), "{links:?}");
    assert_eq!(links[0], (image.config.digest.clone(), format!("./config?image={}", encode(reference))));
    for (n, (layer, (text, href))) in image.layers.iter().zip(&links[1..]).enumerate() {
        assert_eq!(text, &layer.digest);
        assert!(href.starts_with("./files?") && href.contains(&format!("&layer={}&", n + 1)), "{href}");
        let files = page(&client, &layerpipe, href).await;
        assert!(files.contains(&layer.digest), "{files}");
    }
    let config = page(&client, &layerpipe, &links[0].1).await;
    assert!(config.contains(&image.config.digest), "{config}");
    // Sizes carry their human units beside them, outside the JSON when copied.
    // Only the data layer (about 194 KiB) is over 1 KiB.
    let notes: Vec<&str> = html.split("<span class=\"human\"> (").skip(1).collect();
    assert_eq!(notes.len(), 1, "{html}");
    assert!(notes[0].starts_with("19") && notes[0].contains(" KiB)</span>"), "{html}");

    // The config page: each diff_id leads to its layer's files.
    let diff_ids = json_links(&config, "raw");
    assert_eq!(diff_ids.len(), image.layers.len(), "{diff_ids:?}");
    for (layer, (_, href)) in image.layers.iter().zip(&diff_ids) {
        assert!(href.contains(&format!("&digest={}&", encode(&layer.digest))), "{href}");
        page(&client, &layerpipe, href).await;
    }

    // An index: each manifest's digest leads to that platform's page.
    let html = page(&client, &layerpipe, &format!("?image={}", encode(&index.reference))).await;
    let links = json_links(&html, "manifest-json");
    assert_eq!(links.len(), index.platforms.len(), "{links:?}");
    for (platform, (text, href)) in index.platforms.iter().zip(&links) {
        assert_eq!(text, &platform.digest);
        let platform_ref = format!("{}@{}", index.reference, platform.digest);
        // The platform's page is told its index, to link back.
        assert_eq!(href, &format!("./?image={}&index={}", encode(&platform_ref), encode(&index.reference)));
        let platform_page = page(&client, &layerpipe, href).await;
        assert!(platform_page.contains(&platform.layers[0].digest), "{platform_page}");
    }

    // A subject leads to the page of the image it is about.
    let about = format!("{}/views/json:about-v1", registry.host());
    let html = page(&client, &layerpipe, &format!("?image={}", encode(&about))).await;
    let subject = json_links(&html, "manifest-json").pop().expect("the subject's link");
    assert_eq!(subject, (image.digest.clone(), format!("./?image={}", encode(&format!("{about}@{}", image.digest)))));
    page(&client, &layerpipe, &subject.1).await;
}
