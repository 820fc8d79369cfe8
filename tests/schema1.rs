//! Schema 1 manifests against an in-process fake: distribution 2.8 refuses schema 1
//! pushes unless it is given a signing key and the deprecated `schema1` compatibility
//! setting, and old images on Docker Hub and Quay cannot be reached from the tests, so
//! the fake serves one as those registries do (`+prettyjws`, top layer first, an empty
//! blob for every step that made no layer).

mod support;

use std::collections::HashMap;
use std::io::Write as _;

use bytes::Bytes;
use http::StatusCode;
use support::*;

/// The empty tar+gzip blob schema 1 lists for steps without a layer.
const EMPTY_LAYER: &str = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";

/// A gzip-compressed tar holding `files`.
fn layer(files: &[(&str, &[u8])]) -> Bytes {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut header, name, *data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    Bytes::from(gz.finish().unwrap())
}

/// One `v1Compatibility` string: a step run by `/bin/sh -c CMD`, and the config on top.
fn v1(cmd: &str, config: &str) -> String {
    let step = serde_json::json!({"container_config": {"Cmd": ["/bin/sh", "-c", cmd]}}).to_string();
    let with_config = match config {
        "" => step,
        // The step's object, its closing brace moved after the config.
        config => format!("{},\"config\":{config},\"os\":\"linux\"}}", &step[..step.len() - 1]),
    };
    serde_json::to_string(&with_config).unwrap()
}

struct Old {
    fake: FakeRegistry,
    base: Bytes,
    app: Bytes,
}

/// `team/app:old`, schema 1: a base layer, an ENV step, an app layer, a CMD step.
async fn old_image() -> Old {
    let base = layer(&[("etc/os-release", b"ID=old\n")]);
    let app = layer(&[("app/run.sh", b"#!/bin/sh\necho old\n")]);
    let manifest = format!(
        r#"{{"schemaVersion":1,"name":"team/app","tag":"old","architecture":"amd64",
        "fsLayers":[{{"blobSum":"{EMPTY_LAYER}"}},{{"blobSum":"{app}"}},{{"blobSum":"{EMPTY_LAYER}"}},{{"blobSum":"{base}"}}],
        "history":[{{"v1Compatibility":{}}},{{"v1Compatibility":{}}},{{"v1Compatibility":{}}},{{"v1Compatibility":{}}}]}}"#,
        v1("#(nop) CMD [\"/app/run.sh\"]", r#"{"Env":["MODE=old"],"Cmd":["/app/run.sh"],"WorkingDir":"/app"}"#),
        v1("cp run.sh /app/", ""),
        v1("#(nop) ENV MODE=old", ""),
        v1("#(nop) ADD file:base in /", ""),
        app = digest(&app),
        base = digest(&base),
    );
    let mut manifests = HashMap::new();
    let media_type = "application/vnd.docker.distribution.manifest.v1+prettyjws".to_owned();
    manifests.insert("old".to_owned(), (media_type, Bytes::from(manifest)));
    let mut blobs = HashMap::new();
    blobs.insert(digest(&base), FakeBlob::new(base.clone()));
    blobs.insert(digest(&app), FakeBlob::new(app.clone()));
    Old { fake: FakeRegistry::start(manifests, blobs).await, base, app }
}

/// The `made by` cells of the layer table, with `-` before a step without a layer.
fn steps(html: &str) -> Vec<String> {
    let table = html.split("<table id=\"layers\">").nth(1).unwrap().split("</table>").next().unwrap();
    table
        .split("<tr")
        .skip(2)
        .map(|row| {
            let step = row.split("<td class=\"step\"><code>").nth(1).unwrap().split("</code>").next().unwrap();
            format!("{}{step}", if row.starts_with(" class=\"empty-layer\"") { "- " } else { "" })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_1_image_shows_its_layers_base_first_and_downloads_them() {
    let old = old_image().await;
    let lp = Layerpipe::for_fake(&old.fake, true).await;
    let image = format!("{}/team/app:old", old.fake.host());
    let page = fetch(&lp.url(&format!("/?image={}", layerpipe::query::encode(&image))), &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    assert!(html.contains("application/vnd.docker.distribution.manifest.v1+prettyjws"), "{html}");
    assert!(html.contains("<p>2 layers, ? in all.</p>"), "{html}");
    assert_eq!(
        steps(&html),
        ["ADD file:base in /", "- ENV MODE=old", "RUN cp run.sh /app/", "- CMD [&quot;/app/run.sh&quot;]"],
        "{html}"
    );
    // Base first, the empty blob left out, each downloadable and verified.
    let links = download_links(&html);
    assert_eq!(links.len(), 2, "{html}");
    for (i, (href, blob)) in links.iter().zip([&old.base, &old.app]).enumerate() {
        assert!(href.contains(&layerpipe::query::encode(&digest(blob))), "layer {}: {href}", i + 1);
        let (status, headers, sha, len) = fetch_hashed(&lp.url(&format!("/{href}"))).await.unwrap();
        assert_eq!((status, sha, len), (StatusCode::OK, sha256_hex(blob), blob.len() as u64));
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(disposition.contains(&format!("filename=\"team-app-old-{}.tar.gzip\"", i + 1)), "{disposition}");
    }
    // The layer's file list reads it like any gzip layer.
    let files = html.split("<a href=\"./files?").nth(2).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let listing = fetch(&lp.url(&format!("/files?{files}")), &[]).await;
    assert_eq!(listing.status, StatusCode::OK);
    assert!(listing.text().contains("app/run.sh"), "{}", listing.text());

    // The config page shows the config made from the history, and says so.
    let config = fetch(&lp.url(&format!("/config?image={}", layerpipe::query::encode(&image))), &[]).await;
    assert_eq!(config.status, StatusCode::OK);
    let config = config.text();
    assert!(config.contains("id=\"config-note\""), "{config}");
    assert!(config.contains("<li><code>MODE=old</code></li>"), "{config}");
    assert!(config.contains("<code id=\"workdir\">/app</code>"), "{config}");
}
