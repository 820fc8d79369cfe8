//! `/secrets` end to end, against the real registry (tests/real/) and the built binary
//! (so its log can be read): the planted secrets are all found, each with its fate:
//! a private key and an AWS key pair in `.env` (both deleted by a later layer), a
//! GitLab token in a file a later layer overwrote, a GitHub token in a file, an npm
//! token in `Env` and a Slack token in a `RUN` step. No value appears whole, nor its
//! first 8 characters, in the page or in layerpipe's log (at debug). A second image
//! sharing the first two layers takes their findings from the catalog, reading only
//! its own layer.
//!
//! Needs `/usr/bin/docker-registry` (`apt-get install -y docker-registry`).

mod real;

use std::time::{Duration, Instant};

use http::StatusCode;
use layerpipe::query::encode;
use real::html::unescape;
use real::http::{get, page};
use real::images::{self, Blob, BuiltLayer};
use real::process::Process;
use real::{PushedImage, RealRegistry};
use serde_json::json;

/// Obviously fake, pattern-valid values, joined at run time so that the repository
/// carries no secret-shaped literal.
struct Fakes;

impl Fakes {
    fn private_key_header() -> String {
        ["-----BEGIN ", "OPENSSH PRIVATE KEY-----"].concat()
    }
    fn aws_key_id() -> String {
        ["AK", "IA", "FAKEFAKEFAKE2345"].concat()
    }
    fn aws_secret() -> String {
        ["fake", &"Xy9/Qz7+Wv".repeat(3), "Fake12"].concat()
    }
    fn github() -> String {
        ["gh", "p_", &"FakeToken0".repeat(3), "abcdef"].concat()
    }
    fn gitlab() -> String {
        ["gl", "pat-", "FakeFakeFakeFake1234"].concat()
    }
    fn npm() -> String {
        ["np", "m_", &"FakeNpm000".repeat(3), "abcdef"].concat()
    }
    fn slack() -> String {
        ["xo", "xb-", "000000000-000000000000-FakeSlackTokenValue"].concat()
    }
    fn all() -> Vec<String> {
        vec![
            Fakes::private_key_header(),
            Fakes::aws_key_id(),
            Fakes::aws_secret(),
            Fakes::github(),
            Fakes::gitlab(),
            Fakes::npm(),
            Fakes::slack(),
        ]
    }
}

/// A finding row: rule, layer, where, line, fate, value; and its preview link.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    cells: [String; 6],
    preview: Option<String>,
}

/// The rows of the findings table.
fn rows(html: &str) -> Vec<Row> {
    html.split("<tr class=\"finding\">")
        .skip(1)
        .map(|row| {
            let row = row.split("</tr>").next().unwrap();
            let cells: Vec<String> = row.split("<td").skip(1).map(|cell| unescape(&text(cell))).collect();
            let preview = row.find("href=\"").map(|at| {
                let rest = &row[at + "href=\"".len()..];
                unescape(&rest[..rest.find('"').unwrap()])
            });
            Row { cells: std::array::from_fn(|i| cells[i].clone()), preview }
        })
        .collect()
}

/// A cell's text without its tags (and without the rest of the opening `<td …>`).
fn text(cell: &str) -> String {
    let cell = &cell[cell.find('>').unwrap() + 1..];
    let mut out = String::new();
    let mut in_tag = false;
    for c in cell.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// The row for `rule` at `place`.
fn find<'a>(rows: &'a [Row], rule: &str, place: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.cells[0] == rule && r.cells[2] == place)
        .unwrap_or_else(|| panic!("no {rule} at {place} in {rows:#?}"))
}

/// The planted image: layer 1 ships the secrets, layer 2 deletes and overwrites some
/// and adds a token of its own; the config's Env and second `RUN` step hold two more.
/// `extra` layers go on top.
async fn push_planted(registry: &RealRegistry, tag: &str, extra: Vec<BuiltLayer>) -> PushedImage {
    let mt = images::OCI_LAYER_GZIP;
    let key = format!("{}\nAAAAfakekeyfakekey\n-----END OPENSSH PRIVATE KEY-----\n", Fakes::private_key_header());
    let env =
        format!("# keys\nAWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n", Fakes::aws_key_id(), Fakes::aws_secret());
    let deploy = format!("#!/bin/sh\nexport GITLAB_TOKEN={}\n", Fakes::gitlab());
    let settings = format!("{{\n  \"name\": \"app\",\n  \"token\": \"{}\"\n}}\n", Fakes::github());
    let mut layers = vec![
        BuiltLayer::new(
            mt,
            &[
                ("etc/os-release", b"ID=secrets\n"),
                ("root/.ssh/id_rsa", key.as_bytes()),
                ("app/.env", env.as_bytes()),
                ("app/deploy.sh", deploy.as_bytes()),
            ],
        ),
        BuiltLayer::new(
            mt,
            &[
                ("root/.ssh/.wh.id_rsa", b""),
                ("app/.wh..env", b""),
                ("app/deploy.sh", b"#!/bin/sh\necho deploy\n"),
                ("app/settings.json", settings.as_bytes()),
            ],
        ),
    ];
    layers.extend(extra);
    let run = format!(
        "/bin/sh -c curl -H 'Authorization: Bearer {}' https://example.invalid/ && rm -f /root/.ssh/id_rsa /app/.env",
        Fakes::slack()
    );
    let mut history = vec![json!({"created_by": "/bin/sh -c #(nop) ADD file:0123 in / "}), json!({"created_by": run})];
    history.extend((2..layers.len()).map(|_| json!({"created_by": "/bin/sh -c #(nop) COPY readme.txt /app/"})));
    let config = json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin", format!("NPM_TOKEN={}", Fakes::npm())]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": history,
    });
    let config = Blob::from_bytes(images::OCI_CONFIG, config.to_string().into_bytes());
    let blobs = layers.into_iter().map(|l| l.blob).collect();
    registry.pusher("secrets/app").await.push_blobs(Some(tag), images::OCI_MANIFEST, "amd64", config, blobs).await
}

/// Asserts no planted value, nor its first 8 characters, is in `text`.
fn no_value_in(what: &str, text: &str) {
    for value in Fakes::all() {
        assert!(!text.contains(&value[..8]), "{:?}… in {what}: {text}", &value[..4]);
    }
}

/// Asserts every planted secret is on `html`, with its place and fate.
fn check_findings(html: &str) {
    let rows = rows(html);
    let cells = |rule: &str, place: &str| {
        let r = find(&rows, rule, place);
        (r.cells[1].as_str(), r.cells[3].as_str(), r.cells[4].as_str(), r.cells[5].as_str())
    };
    let deleted = "deleted by layer 2";
    assert_eq!(cells("private-key-file", "/root/.ssh/id_rsa"), ("1", "its name", deleted, "(the file's name)"));
    assert_eq!(cells("private-key", "/root/.ssh/id_rsa"), ("1", "1", deleted, "----… (35 chars)"));
    assert_eq!(cells("dotenv", "/app/.env"), ("1", "its name", deleted, "(the file's name)"));
    assert_eq!(cells("aws-access-key-id", "/app/.env"), ("1", "2", deleted, "AKIA… (20 chars)"));
    assert_eq!(cells("aws-secret-access-key", "/app/.env"), ("1", "3", deleted, "fake… (40 chars)"));
    assert_eq!(cells("gitlab-token", "/app/deploy.sh"), ("1", "2", "overwritten by layer 2", "glpa… (26 chars)"));
    assert_eq!(cells("github-token", "/app/settings.json"), ("2", "3", "present", "ghp_… (40 chars)"));
    assert_eq!(cells("npm-token", "config Env NPM_TOKEN"), ("", "", "present", "npm_… (40 chars)"));
    assert_eq!(cells("slack-token", "config history step 2"), ("2", "", "present", "xoxb… (47 chars)"));
    // What people believe they removed comes first.
    let hidden = rows.iter().take_while(|r| r.cells[4] != "present").count();
    assert_eq!(hidden, 6, "{rows:#?}");
    assert!(rows[hidden..].iter().all(|r| r.cells[4] == "present"), "{rows:#?}");
    no_value_in("the secrets page", html);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_are_found_with_their_fates_and_never_shown_whole() {
    let registry = RealRegistry::start();
    let v1 = push_planted(&registry, "v1", Vec::new()).await;
    let readme = BuiltLayer::new(images::OCI_LAYER_GZIP, &[("app/readme.txt", b"nothing to see\n")]);
    let v2 = push_planted(&registry, "v2", vec![readme]).await;
    assert_eq!(v1.layers[0].digest, v2.layers[0].digest);
    let dir = tempfile::tempdir().unwrap();
    let lp = Process::start(
        &format!(
            r#"{{"listen": "127.0.0.1:0", "worker_threads": 1, "index": {{"dir": {:?}}},
            "registries": {{"{}": {{"endpoint": "{}"}}}}}}"#,
            dir.path().join("indexes").to_str().unwrap(),
            registry.host(),
            registry.endpoint()
        ),
        "debug",
    );

    let href = |image: &PushedImage| format!("secrets?image={}", encode(&image.reference));
    let image_page = |image: &PushedImage| format!("?image={}", encode(&image.reference));
    // Not scanned yet: the image page links to the scan, with no count.
    let html = page(&lp.base, &image_page(&v1)).await;
    assert!(html.contains(">secrets</a>"), "{html}");
    let html = page(&lp.base, &href(&v1)).await;
    check_findings(&html);
    assert!(html.contains("for 2 layers; 0 layers scanned before"), "{html}");
    assert!(!html.contains("id=\"budget\""), "nothing was left unread: {html}");

    // A finding links to its file's preview in its layer, which shows the file as it is.
    let rows = rows(&html);
    let preview = find(&rows, "github-token", "/app/settings.json").preview.clone().expect("a preview link");
    assert!(preview.starts_with("./fs/app/settings.json?image="), "{preview}");
    assert!(page(&lp.base, &preview).await.contains(&Fakes::github()));

    // Once the catalog has the scans, the same image reads nothing...
    let started = Instant::now();
    loop {
        let html = page(&lp.base, &href(&v1)).await;
        if html.contains("0 files read now for 0 layers; 2 layers scanned before (from the catalog).") {
            check_findings(&html);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the scans never reached the catalog: {html}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same findings as data: all nine, the six hidden ones first, no value whole.
    let json = page(&lp.base, &format!("{}&format=json", href(&v1))).await;
    no_value_in("the JSON answer", &json);
    let answer: serde_json::Value = serde_json::from_str(&json).unwrap();
    let fates: Vec<&str> = answer["findings"].as_array().unwrap().iter().map(|f| f["fate"].as_str().unwrap()).collect();
    assert_eq!(fates.len(), 9, "{answer}");
    assert!(fates[..6].iter().all(|f| *f != "present") && fates[6..].iter().all(|f| *f == "present"), "{fates:?}");
    // And across the catalog, as a page and as data.
    for every in ["search?secrets=1", "search?secrets=1&format=json"] {
        let text = page(&lp.base, every).await;
        assert!(text.contains("app/settings.json"), "{text}");
        no_value_in(every, &text);
    }
    // The image page counts them now, without a scan.
    let html = page(&lp.base, &image_page(&v1)).await;
    assert!(html.contains("id=\"secrets-link\">secrets (9 found)</a>"), "{html}");
    // ...and an image sharing its two layers reads only its own.
    let html = page(&lp.base, &href(&v2)).await;
    assert!(html.contains("1 file read now for 1 layer; 2 layers scanned before (from the catalog)."), "{html}");
    check_findings(&html);

    // Bad input is a clear error, not a panic.
    assert_eq!(get(&format!("{}/secrets", lp.base)).await.0, StatusCode::BAD_REQUEST);

    let log = lp.stop();
    assert!(log.contains("secrets"), "the log has the requests: {log}");
    no_value_in("layerpipe's log", &log);
}
