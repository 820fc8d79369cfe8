//! Every page's JSON answer, end to end against the real registry (tests/real/): two
//! tags of one repository, asked for as data with `Accept: application/json` or
//! `?format=json`. Each answer is checked for the data its page shows: the image's
//! manifest, layers, history; a repository's tags; a layer's files, a folder and an
//! entry (with its text); the merged folder, one path's versions and a search across
//! layers; the sizes (dive's efficiency against a value worked out by hand); the
//! catalog's search by name and by layer; the secrets (a token found, never whole);
//! the diff; the config and the Dockerfile. Errors are `{"error": …}` with the page's
//! status, a browser's `Accept` still gets the page, and a redirect asked for as JSON
//! leads to JSON.
//!
//! Needs `/usr/bin/docker-registry` (`apt-get install -y docker-registry`).

mod real;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use layerpipe::query::encode;
use real::images::{self, BuiltLayer};
use real::{Layerpipe, RealRegistry};
use serde_json::Value;

/// A GitHub token as its rule finds it, built in pieces so no scanner flags this file.
fn github_token() -> String {
    ["gh", "p_", &"JsonToken0".repeat(3), "abcdef"].concat()
}

/// GET `url` with `accept`; the status, the headers and the body.
async fn get_as(url: &str, accept: &str) -> (StatusCode, http::HeaderMap, String) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::get(url).header(header::ACCEPT, accept).body(Empty::new()).unwrap();
    let response = client.request(request).await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, String::from_utf8_lossy(&body).into_owned())
}

/// The JSON answer at `href` (relative to layerpipe's root), asked for by `Accept`;
/// it must be a 200 of `application/json` that parses.
async fn json(lp: &Layerpipe, href: &str) -> Value {
    let url = lp.url(href.trim_start_matches("./"));
    let (status, headers, body) = get_as(&url, "application/json").await;
    assert_eq!(status, StatusCode::OK, "GET {url}: {body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json", "GET {url}");
    assert_eq!(headers[header::VARY], "accept", "GET {url}: caches must keep HTML and JSON apart");
    let value: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"));
    // The examples in docs/json.md are answers of this test, kept when this is set.
    if let Ok(dir) = std::env::var("LAYERPIPE_JSON_EXAMPLES") {
        use std::io::Write as _;
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(format!("{dir}/examples.txt")).unwrap();
        writeln!(file, "GET {href}\n{}\n", serde_json::to_string_pretty(&value).unwrap()).unwrap();
    }
    value
}

/// The strings at `key` of every object in `list`.
fn strings(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|v| v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}")).to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_answers_as_json() {
    let registry = RealRegistry::start();
    let mt = images::OCI_LAYER_GZIP;
    let base = || {
        BuiltLayer::new(
            mt,
            &[("etc/os-release", b"ID=json\n"), ("etc/remove-me", b"going\n"), ("app/config.txt", b"colour=blue\n")],
        )
    };
    let token = format!("token={}\n", github_token());
    let v1_top = BuiltLayer::new(mt, &[("app/token.txt", token.as_bytes())]);
    let v2_top = BuiltLayer::new(
        mt,
        &[("app/config.txt", b"colour=grey\n"), ("app/new.txt", b"new\n"), ("etc/.wh.remove-me", b"")],
    );
    let pusher = registry.pusher("json/app").await;
    let v1 =
        pusher.push_image(Some("v1"), images::OCI_MANIFEST, images::OCI_CONFIG, "amd64", vec![base(), v1_top]).await;
    let v2 =
        pusher.push_image(Some("v2"), images::OCI_MANIFEST, images::OCI_CONFIG, "amd64", vec![base(), v2_top]).await;
    let index_dir = tempfile::Builder::new().prefix("layerpipe-json-").tempdir().unwrap();
    let lp = Layerpipe::with_index_dir(&registry, true, index_dir.path()).await;
    let (r1, r2) = (encode(&v1.reference), encode(&v2.reference));

    // The image: manifest as fetched, layers with their links, history, the views.
    let image = json(&lp, &format!("?image={r2}")).await;
    assert_eq!(image["kind"], "image", "{image}");
    assert_eq!(image["reference"], v2.reference.as_str());
    assert_eq!(image["digest"], v2.digest.as_str());
    assert_eq!(image["manifest"], serde_json::from_slice::<Value>(&v2.manifest).unwrap());
    assert_eq!(strings(&image["layers"], "digest"), v2.layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>());
    assert_eq!(image["layers"][1]["number"], 2);
    assert_eq!(image["layers"][1]["size"], v2.layers[1].size);
    assert_eq!(image["config"]["digest"], v2.config.digest.as_str());
    assert_eq!((image["page"].as_u64(), image["pages"].as_u64(), image["next"].is_null()), (Some(1), Some(1), true));
    assert!(image["history"].is_array(), "{image}");

    // `?format=json` asks as `Accept` does; a browser's `Accept` gets the page.
    let (status, headers, body) = get_as(&lp.url(&format!("?image={r2}&format=json")), "text/html,*/*").await;
    assert_eq!((status, &headers[header::CONTENT_TYPE]), (StatusCode::OK, &"application/json".parse().unwrap()));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["digest"], v2.digest.as_str());
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,application/json;q=0.8,*/*;q=0.7";
    let (_, headers, body) = get_as(&lp.url(&format!("?image={r2}")), browser).await;
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"), "{body}");

    // The repository's tags.
    let tags = json(&lp, &format!("?repo={}", encode(&format!("{}/json/app", registry.host())))).await;
    assert_eq!(strings(&tags["tags"], "name"), ["v1", "v2"], "{tags}");
    let v1_page = json(&lp, tags["tags"][0]["href"].as_str().unwrap()).await;
    assert_eq!(v1_page["digest"], v1.digest.as_str());

    // A layer's files, largest first, each linked to its page; a folder; an entry.
    let files = json(&lp, image["layers"][1]["files"].as_str().unwrap()).await;
    assert_eq!(files["layer"]["digest"], v2.layers[1].digest.as_str(), "{files}");
    let paths = strings(&files["entries"], "path");
    for path in ["app/config.txt", "app/new.txt", "etc/.wh.remove-me"] {
        assert!(paths.contains(&path.to_owned()), "{path} in {paths:?}");
    }
    let whiteout = files["entries"].as_array().unwrap().iter().find(|e| e["path"] == "etc/.wh.remove-me").unwrap();
    assert_eq!((&whiteout["kind"], &whiteout["deletes"]), (&"whiteout".into(), &"etc/remove-me".into()));
    let config_txt = files["entries"].as_array().unwrap().iter().find(|e| e["path"] == "app/config.txt").unwrap();
    assert_eq!((config_txt["kind"].as_str(), config_txt["size"].as_u64()), (Some("file"), Some(12)));
    let entry = json(&lp, config_txt["href"].as_str().unwrap()).await;
    assert_eq!(entry["entry"]["path"], "app/config.txt", "{entry}");
    assert_eq!(entry["preview"]["text"], "colour=grey\n", "{entry}");
    assert_eq!(entry["preview"]["complete"], true);
    assert!(entry["save"]["href"].as_str().unwrap().contains("save/app/config.txt"), "{entry}");
    let root = json(&lp, image["layers"][1]["browse"].as_str().unwrap()).await;
    assert_eq!(strings(&root["children"], "name"), ["app", "etc"], "{root}");

    // The merged filesystem: a folder with what later layers hid, one path's versions,
    // a search across layers.
    let merged = json(&lp, image["merged"].as_str().unwrap()).await;
    assert_eq!(strings(&merged["children"], "name"), ["app", "etc"], "{merged}");
    let etc = json(&lp, &format!("layers/etc/?image={r2}")).await;
    let fates: Vec<(String, String)> = etc["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["fate"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(fates, [("os-release".to_owned(), "visible".to_owned()), ("remove-me".into(), "deleted".into())]);
    assert_eq!(etc["children"][1]["by"], 2, "{etc}");
    let versions = json(&lp, &format!("layers/app/config.txt?image={r2}")).await;
    let by_layer: Vec<(u64, String)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["layer"].as_u64().unwrap(), v["fate"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(by_layer, [(1, "overwritten".to_owned()), (2, "visible".to_owned())], "{versions}");
    let found = json(&lp, &format!("layers/?image={r2}&search=config")).await;
    assert_eq!(found["hits"], 2, "{found}");

    // Sizes: 42 bytes shipped (8 + 6 + 12 in the base, 12 + 4 on top); the deleted
    // remove-me (6) and the overwritten config.txt (12) are wasted.
    let sizes = json(&lp, image["sizes"].as_str().unwrap()).await;
    assert_eq!((sizes["shipped"].as_u64(), sizes["wasted"].as_u64()), (Some(42), Some(18)), "{sizes}");
    assert!((sizes["efficiency"].as_f64().unwrap() - 24.0 / 42.0).abs() < 1e-9, "{sizes}");
    assert_eq!(sizes["largest"][0]["size"], 12);

    // dive's marks on layer 2, against layer 1; and the largest folders.
    let changes = json(&lp, &format!("changes?image={r2}&layer=2")).await;
    let mark = |path: &str| {
        let entries = changes["entries"].as_array().unwrap();
        let entry = entries.iter().find(|e| e["path"] == path).unwrap_or_else(|| panic!("{path} in {changes}"));
        entry["change"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        [mark("app/config.txt"), mark("app/new.txt"), mark("etc/.wh.remove-me")],
        ["modified", "added", "removed"],
        "{changes}"
    );
    assert_eq!(changes["removed"], 1);
    let folders = strings(&sizes["largest_folders"], "path");
    assert!(folders.contains(&"app".to_owned()), "{sizes}");

    // The config and the Dockerfile.
    let config = json(&lp, image["config"]["href"].as_str().unwrap()).await;
    assert_eq!(config["digest"], v2.config.digest.as_str());
    assert!(config["config"]["rootfs"]["diff_ids"].is_array(), "{config}");
    let dockerfile = json(&lp, image["dockerfile"].as_str().unwrap()).await;
    assert!(dockerfile["lines"].is_array() && dockerfile["text"].is_string(), "{dockerfile}");

    // The diff of the two tags.
    let diff = json(&lp, &format!("diff?a={r1}&b={r2}")).await;
    let rows: Vec<(String, String)> = diff["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["status"].as_str().unwrap().to_owned(), r["path"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        rows,
        [
            ("changed".to_owned(), "app/config.txt".to_owned()),
            ("added".into(), "app/new.txt".into()),
            ("removed".into(), "app/token.txt".into()),
            ("removed".into(), "etc/remove-me".into()),
        ],
        "{diff}"
    );
    assert_eq!(diff["rows"][0]["changes"], serde_json::json!(["content"]));
    assert_eq!(diff["layers"]["first_difference"], 2);
    let offered = json(&lp, &format!("diff?a={r1}")).await;
    assert_eq!(strings(&offered["compare_with"], "tag"), ["v2"], "{offered}");

    // The secrets of v1: the token is found, masked; its value is nowhere in the answer.
    let v1_image = json(&lp, &format!("?image={r1}")).await;
    let secrets = json(&lp, v1_image["secrets"]["href"].as_str().unwrap()).await;
    let finding = &secrets["findings"][0];
    assert_eq!((finding["place"].as_str(), finding["path"].as_str()), (Some("file"), Some("app/token.txt")));
    assert_eq!(finding["value"]["head"], &github_token()[..4], "{secrets}");
    assert_eq!(finding["value"]["length"], github_token().len());
    assert!(!secrets.to_string().contains(&github_token()[..12]), "a secret's value in the JSON: {secrets}");

    // The catalog, across images: by name (its writes are off the request path: wait
    // for them), by layer, and what it holds.
    let deadline = Instant::now() + Duration::from_secs(30);
    let hits = loop {
        let hits = json(&lp, "search?q=token.txt").await;
        if hits["hits"].as_array().is_some_and(|h| !h.is_empty()) || Instant::now() > deadline {
            break hits;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let hit = &hits["hits"][0];
    assert_eq!(
        (hit["path"].as_str(), hit["layer"].as_str()),
        (Some("app/token.txt"), Some(v1.layers[1].digest.as_str()))
    );
    assert_eq!(hit["images"][0]["fate"], "present", "{hits}");
    let preview = json(&lp, hit["images"][0]["preview"].as_str().unwrap()).await;
    assert_eq!(preview["entry"]["path"], "app/token.txt");
    let shared = json(&lp, &format!("search?layer={}", encode(&v1.layers[0].digest))).await;
    assert_eq!(shared["image_count"], 2, "{shared}");
    // Every secret in the catalog: v1's token, in the layer only v1 ships, masked.
    let deadline = Instant::now() + Duration::from_secs(30);
    let all = loop {
        let all = json(&lp, "search?secrets=1").await;
        if all["findings"].as_array().is_some_and(|f| !f.is_empty()) || Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let found = &all["findings"][0];
    assert_eq!(
        (found["path"].as_str(), found["layer"].as_str()),
        (Some("app/token.txt"), Some(v1.layers[1].digest.as_str())),
        "{all}"
    );
    assert_eq!(found["value"]["head"], &github_token()[..4]);
    assert_eq!(
        (found["images"][0]["tags"][0].as_str(), found["images"][0]["fate"].as_str()),
        (Some("v1"), Some("present"))
    );
    let preview = json(&lp, found["images"][0]["preview"].as_str().unwrap()).await;
    assert_eq!(preview["entry"]["path"], "app/token.txt");
    let (status, _, html) = get_as(&lp.url("search?secrets=1"), "text/html").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("app/token.txt") && html.contains(&github_token()[..4]), "{html}");
    for shown in [all.to_string(), html] {
        assert!(!shown.contains(&github_token()[..12]), "a secret's value shown: {shown}");
    }

    let home = json(&lp, "search").await;
    assert!(home["entries"].as_u64().unwrap() >= 7, "{home}");

    // Errors: the message and the status, as JSON.
    let (status, headers, body) = get_as(
        &lp.url(&format!("?image={}", encode(&format!("{}/json/app:nope", registry.host())))),
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["status"], 404);
    assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    let (status, _, body) = get_as(&lp.url("files?image=x&format=json"), "*/*").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string(), "{body}");

    // `/check`, dive's CI mode: 200 within the limits, 422 with one reason per limit
    // passed, 400 for a limit that is not one; JSON whatever the client accepts.
    let check = |q: String| {
        let url = lp.url(&format!("check?{q}"));
        async move {
            let (status, _, body) = get_as(&url, "*/*").await;
            (status, serde_json::from_str::<Value>(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
        }
    };
    let (status, pass) = check(format!("image={r2}&max_wasted_bytes=18&min_efficiency=0.5&no_secrets=1")).await;
    assert_eq!(
        (status, &pass["pass"], &pass["reasons"]),
        (StatusCode::OK, &true.into(), &serde_json::json!([])),
        "{pass}"
    );
    assert_eq!((pass["wasted"].as_u64(), pass["secrets"].as_u64()), (Some(18), Some(0)));
    let (status, fail) = check(format!("image={r2}&max_wasted_bytes=17&min_efficiency=0.6")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{fail}");
    assert_eq!(
        fail["reasons"],
        serde_json::json!([
            "18 wasted bytes, more than the 17 allowed",
            "efficiency 0.5714, less than the 0.6 required"
        ])
    );
    let (status, leaky) = check(format!("image={r1}&no_secrets=1")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{leaky}");
    assert!(leaky["reasons"][0].as_str().unwrap().contains("found"), "{leaky}");
    assert!(!leaky.to_string().contains(&github_token()[..12]));
    let (status, bad) = check(format!("image={r2}&min_efficiency=2")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("from 0 to 1"), "{bad}");
    let (status, _) = check(format!("image={r2}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A folder asked for without its `/` is redirected, still to JSON.
    let (status, headers, _) = get_as(&lp.url(&format!("layers/etc?image={r2}&format=json")), "*/*").await;
    assert!(status.is_redirection(), "{status}");
    assert!(headers[header::LOCATION].to_str().unwrap().ends_with("&format=json"), "{headers:?}");
}
