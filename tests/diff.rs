//! `/diff` end to end, against the real registry (tests/real/): two tags of one
//! repository that share a base layer. The diff lists an added file, a file removed by
//! leaving it out and one removed by a whiteout, and a file whose bytes changed at the
//! same size and mode; files that are the same (in the shared layer, or the same bytes
//! in a rebuilt layer) are left out. With `a` alone, the page offers the other tag.
//!
//! Needs `/usr/bin/docker-registry` (`apt-get install -y docker-registry`).

mod real;

use http::StatusCode;
use layerpipe::query::encode;
use real::html::unescape;
use real::http::get;
use real::images::{self, BuiltLayer};
use real::{Layerpipe, RealRegistry};

/// The rows of the diff table: `(change, path)`.
fn rows(html: &str) -> Vec<(String, String)> {
    let Some(start) = html.find("<table id=\"diff\">") else { return Vec::new() };
    let table = &html[start..html[start..].find("</table>").map_or(html.len(), |e| start + e)];
    table
        .split("<tr class=\"")
        .skip(1)
        .map(|row| {
            let cells: Vec<&str> = row.split("<td").skip(1).collect();
            let text = |cell: &str| {
                let inner = &cell[cell.find('>').unwrap() + 1..];
                let inner = inner.trim_start_matches("<code>");
                unescape(&inner[..inner.find('<').unwrap()])
            };
            (text(cells[0]), text(cells[1]))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tags_differ_by_what_was_added_removed_and_rewritten() {
    let registry = RealRegistry::start();
    let mt = images::OCI_LAYER_GZIP;
    let base = || {
        BuiltLayer::new(mt, &[("etc/os-release", b"ID=diff\n"), ("etc/keep", b"kept\n"), ("etc/remove-me", b"going\n")])
    };
    let v1_top = BuiltLayer::new(
        mt,
        &[("app/config.txt", b"colour=blue\n"), ("app/old.txt", b"old\n"), ("app/same.txt", b"unchanged\n")],
    );
    // Rebuilt: same.txt has the same bytes in another layer; config.txt has other bytes
    // at the same size and mode.
    let v2_top = BuiltLayer::new(
        mt,
        &[
            ("app/config.txt", b"colour=grey\n"),
            ("app/new.txt", b"new\n"),
            ("app/same.txt", b"unchanged\n"),
            ("etc/.wh.remove-me", b""),
        ],
    );
    let pusher = registry.pusher("diff/app").await;
    let v1 =
        pusher.push_image(Some("v1"), images::OCI_MANIFEST, images::OCI_CONFIG, "amd64", vec![base(), v1_top]).await;
    let v2 =
        pusher.push_image(Some("v2"), images::OCI_MANIFEST, images::OCI_CONFIG, "amd64", vec![base(), v2_top]).await;
    let lp = Layerpipe::start(&registry, true).await;

    let url = lp.url(&format!("diff?a={}&b={}", encode(&v1.reference), encode(&v2.reference)));
    let (status, html) = get(&url).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(
        rows(&html),
        [
            ("changed: content".to_owned(), "/app/config.txt".to_owned()),
            ("added".to_owned(), "/app/new.txt".to_owned()),
            ("removed".to_owned(), "/app/old.txt".to_owned()),
            ("removed".to_owned(), "/etc/remove-me".to_owned()),
        ],
        "{html}"
    );
    assert!(html.contains("1 layer shared; the first layer that differs is layer 2."), "{html}");
    assert!(html.contains("1 added, 2 removed, 1 changed."), "{html}");

    // Each side of a changed file links to its own layer's version: the previews differ.
    let row = &html[html.find("<tr class=\"changed\">").unwrap()..];
    let links: Vec<String> =
        row.split("<a href=\"").skip(1).take(2).map(|s| unescape(&s[..s.find('"').unwrap()])).collect();
    let (_, a_file) = get(&lp.url(&links[0])).await;
    let (_, b_file) = get(&lp.url(&links[1])).await;
    assert!(a_file.contains("colour=blue") && !a_file.contains("colour=grey"), "{a_file}");
    assert!(b_file.contains("colour=grey"), "{b_file}");

    // The same diff again reads no file: the hashes are remembered.
    let saves = registry.requests("GET", "/blobs/");
    assert_eq!(get(&url).await.0, StatusCode::OK);
    assert_eq!(registry.requests("GET", "/blobs/"), saves, "a second diff read blobs again");

    // a alone: the other tag is offered.
    let (status, html) = get(&lp.url(&format!("diff?a={}", encode(&v1.reference)))).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let offered = format!("./diff?a={}&amp;b={}", encode(&v1.reference), encode(&v2.reference));
    assert!(html.contains(&offered), "{offered} in {html}");

    // The tag list offers the comparison too.
    let (_, tags) = get(&lp.url(&format!("?repo={}", encode(&format!("{}/diff/app", registry.host()))))).await;
    assert!(tags.contains(&format!("./diff?a={}", encode(&v1.reference))), "{tags}");

    // Bad input is a clear error, not a panic.
    let (status, html) = get(&lp.url("diff?b=x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
}
