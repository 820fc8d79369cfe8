//! Pages have a size budget (issue 12): against the in-process fake registry, layers
//! made to blow pages up (100,000 entries in one folder; 1,000 names of 6 KB) give
//! pages that each stay under `PAGE_BUDGET`, every entry reachable by following the
//! pages' `next` links, and the full name on the entry's own page.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;

use bytes::Bytes;
use http::StatusCode;
use layerpipe::pages::PAGE_BUDGET;
use support::*;

const CONFIG_JSON: &[u8] = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}"#;
const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A gzip-compressed tar with an empty file at each path (PAX names where long).
fn layer(paths: impl Iterator<Item = String>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for path in paths {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        if path.len() > 99 {
            b.append_pax_extensions([("path", path.as_bytes())]).unwrap();
            h.set_path("stand-in").unwrap();
            h.set_cksum();
            b.append(&h, &[][..]).unwrap();
        } else {
            b.append_data(&mut h, &path, &[][..]).unwrap();
        }
    }
    let tar = b.into_inner().unwrap();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(&tar).unwrap();
    e.finish().unwrap()
}

/// `team/app:v1` with that one layer, behind layerpipe; and the query naming it.
async fn serve(blob: Vec<u8>) -> (FakeRegistry, Layerpipe, String) {
    let manifest = oci_manifest(CONFIG_JSON, &[(GZIP_LAYER, &blob[..])]);
    let mut blobs = HashMap::new();
    blobs.insert(digest(CONFIG_JSON), FakeBlob::new(Bytes::from_static(CONFIG_JSON)));
    let query = |host: String| {
        format!(
            "image={}&digest={}&layer=1&mt={}",
            layerpipe::query::encode(&format!("{host}/{REPO}:v1")),
            layerpipe::query::encode(&digest(&blob)),
            layerpipe::query::encode(GZIP_LAYER)
        )
    };
    blobs.insert(digest(&blob), FakeBlob::new(Bytes::from(blob.clone())));
    let mut manifests = HashMap::new();
    manifests.insert("v1".to_owned(), (OCI_MANIFEST.to_owned(), manifest));
    let fake = FakeRegistry::start(manifests, blobs).await;
    let lp = Layerpipe::for_fake(&fake, true).await;
    let query = query(fake.host());
    (fake, lp, query)
}

/// The percent-encoded paths the rows of table `id` link to, relative to `prefix`.
fn linked(html: &str, id: &str, prefix: &str) -> Vec<String> {
    let start = html.find(&format!("<table id=\"{id}\">")).unwrap_or_else(|| panic!("no table {id}"));
    let body = &html[start..html[start..].find("</tbody>").unwrap() + start];
    body.split("<tr>")
        .skip(1)
        .filter_map(|row| {
            let href = row.split_once("href=\"")?.1;
            let href = &href[..href.find('?').unwrap()];
            Some(href.rsplit_once(prefix).map_or(href, |(_, p)| p).to_owned())
        })
        .collect()
}

/// Follows `rel="next"` from `first` (a path and query at layerpipe's root, on a page
/// `depth` folders down), checking each page against the budget; returns the paths
/// linked from table `id` over all pages, and how many pages there were.
async fn walk(lp: &Layerpipe, first: &str, id: &str, prefix: &str) -> (Vec<String>, usize) {
    let (mut url, mut all, mut pages) = (first.to_owned(), Vec::new(), 0);
    loop {
        let got = fetch(&lp.url(&url), &[]).await;
        assert_eq!(got.status, StatusCode::OK, "{url}");
        let html = got.text();
        pages += 1;
        assert!(html.len() <= PAGE_BUDGET, "page {pages} of {first} is {} bytes, over {PAGE_BUDGET}", html.len());
        assert!(html.ends_with("</main></body></html>\n"), "page {pages} arrived whole");
        all.extend(linked(&html, id, prefix));
        let Some((before, _)) = html.split_once("\" rel=\"next\">") else { break };
        let href = before.rsplit_once("href=\"").unwrap().1.replace("&amp;", "&");
        // Links are relative to the page: resolve `./` or `../` against `first`'s folder.
        let folder = &url[..url.find('?').unwrap()];
        let folder = &folder[..folder.rfind('/').unwrap() + 1];
        url = match href.strip_prefix("./") {
            Some(rest) => format!("{folder}{rest}"),
            None => format!("/{}", href.trim_start_matches("../")),
        };
    }
    (all, pages)
}

#[tokio::test]
async fn a_folder_of_100_000_entries_is_paginated_under_the_budget() {
    const COUNT: usize = 100_000;
    let names = (0..COUNT).map(|i| format!("big/file-{i:06}"));
    let (_fake, lp, query) = serve(layer(names)).await;
    // The first visit reads the layer (perhaps streaming progress): then it is indexed.
    let first = fetch(&lp.url(&format!("/files?{query}")), &[]).await;
    assert_eq!(first.status, StatusCode::OK);

    let (folder, pages) = walk(&lp, &format!("/fs/big/?{query}"), "dir", "big/").await;
    assert_eq!(pages, COUNT.div_ceil(layerpipe::pages::ROWS_PER_PAGE));
    let want: BTreeSet<String> = (0..COUNT).map(|i| format!("file-{i:06}")).collect();
    assert_eq!(folder.len(), COUNT, "every entry once");
    assert_eq!(folder.into_iter().collect::<BTreeSet<_>>(), want);

    let (files, _) = walk(&lp, &format!("/files?{query}"), "files", "fs/").await;
    assert_eq!(files.iter().filter(|p| p.starts_with("big/file-")).count(), COUNT);

    // A page past the end is a 404, not an empty page.
    let past = fetch(&lp.url(&format!("/fs/big/?{query}&page={}", pages + 1)), &[]).await;
    assert_eq!(past.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_thousand_names_of_6_kb_are_shortened_paginated_and_whole_on_their_pages() {
    const COUNT: usize = 1_000;
    // Markup, quotes and `&` (escaped 4–6 times over) and then 6 KB of plain letters.
    let name = |i: usize| format!("{i:04}<\"&'{}", "n".repeat(6 * 1024 - 8));
    let (_fake, lp, query) = serve(layer((0..COUNT).map(name))).await;
    let first = fetch(&lp.url(&format!("/files?{query}")), &[]).await;
    assert_eq!(first.status, StatusCode::OK);

    let want: BTreeSet<String> = (0..COUNT).map(|i| layerpipe::query::encode(&name(i))).collect();
    let (files, file_pages) = walk(&lp, &format!("/files?{query}"), "files", "fs/").await;
    assert_eq!(files.into_iter().collect::<BTreeSet<_>>(), want);
    let (root, root_pages) = walk(&lp, &format!("/fs/?{query}"), "dir", "fs/").await;
    assert_eq!(root.len(), COUNT);
    assert_eq!(root.into_iter().collect::<BTreeSet<_>>(), want);
    assert!(file_pages > 1 && root_pages > 1, "the byte budget, not the row count, cut the pages");

    // Tables show a shortened name; the entry's own page shows it whole.
    let page = fetch(&lp.url(&format!("/fs/?{query}")), &[]).await.text();
    assert!(page.contains("0000&lt;&quot;&amp;&#39;nnn"), "shortened names start as the name does");
    assert!(page.contains("nnn…nnn"), "and lose their middle");
    assert!(!page.contains(&format!("{}</a>", "n".repeat(200))), "no name is shown whole in a table");
    let entry = fetch(&lp.url(&format!("/fs/{}?{query}", layerpipe::query::encode(&name(7)))), &[]).await;
    assert_eq!(entry.status, StatusCode::OK);
    let full = format!("0007&lt;&quot;&amp;&#39;{}", "n".repeat(6 * 1024 - 8));
    assert!(entry.text().contains(&format!("<h1><code>/{full}</code> in layer 1 of ")), "the full name");
    assert!(entry.text().len() <= PAGE_BUDGET);
}
