//! Inside a layer, against the in-process fake registry: the file list, the folders,
//! a file's page and saving one file, on real archives built here with the `tar` crate
//! (gzip, zstd, plain, multi-member), and on broken ones. Each test names its promise.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use support::*;

const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const TAR_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG_JSON: &[u8] =
    br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin"]},"rootfs":{"type":"layers"}}"#;

const MOTD: &[u8] = b"Welcome to <layerpipe> & friends\n";

// ---- archives -------------------------------------------------------------------------

/// A ustar header with `name` written as is (the `tar` crate would clean `./` and
/// refuse `..`, and tests need both).
fn raw_header(name: &[u8], kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_cksum();
    h
}

fn add(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, mode: u32, data: &[u8]) {
    b.append(&raw_header(name.as_bytes(), kind, data.len() as u64, mode), data).unwrap();
}

fn add_link(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, target: &str) {
    let mut h = raw_header(name.as_bytes(), kind, 0, 0o777);
    h.set_link_name(target).unwrap();
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
}

/// 100 KiB that start like an ELF binary.
fn binary() -> Vec<u8> {
    let mut data = b"\x7fELF\x02\x01\x01\0".to_vec();
    data.extend_from_slice(&pseudo_random(100 * 1024 - 8, 7));
    data
}

fn gnu_long_name() -> String {
    format!("usr/share/gnu/{}.txt", "g".repeat(120))
}

fn pax_long_name() -> String {
    format!("usr/share/pax/{}.txt", "p".repeat(150))
}

/// Nested directories (some only implied), symlinks, a hard link, GNU and PAX long
/// names, a whiteout and an opaque directory, empty files, a fifo, a device, and a name
/// with a space and an accent.
fn rich_tar() -> Vec<u8> {
    use tar::EntryType::*;
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "./", Directory, 0o755, b"");
    add(&mut b, "./etc/", Directory, 0o755, b"");
    add(&mut b, "./etc/motd", Regular, 0o644, MOTD);
    add(&mut b, "./etc/empty", Regular, 0o600, b"");
    add(&mut b, "./etc/.wh.old.conf", Regular, 0o644, b"");
    add(&mut b, "./usr/", Directory, 0o755, b"");
    add(&mut b, "./usr/bin/", Directory, 0o755, b"");
    add(&mut b, "./usr/bin/tool", Regular, 0o4755, &binary());
    add_link(&mut b, "./usr/bin/tool-again", Link, "./usr/bin/tool");
    add_link(&mut b, "./usr/bin/sh", Symlink, "tool");
    add_link(&mut b, "./bin", Symlink, "usr/bin");
    add(&mut b, "./usr/share/doc/a/b/c/deep.txt", Regular, 0o644, b"deep\n");
    // A GNU header with a long path: `tar` writes an `L` record before it.
    let mut h = tar::Header::new_gnu();
    h.set_size(9);
    h.set_mode(0o644);
    h.set_entry_type(Regular);
    b.append_data(&mut h, gnu_long_name(), &b"gnu long\n"[..]).unwrap();
    // A PAX `path` record before a header with a stand-in name.
    b.append_pax_extensions([("path", pax_long_name().as_bytes())]).unwrap();
    add(&mut b, "pax-stand-in", Regular, 0o644, b"pax long\n");
    add(&mut b, "./var/cache/.wh..wh..opq", Regular, 0o644, b"");
    add(&mut b, "./docs/read me é.txt", Regular, 0o644, b"spaces and an accent\n");
    add(&mut b, "./run/pipe", Fifo, 0o600, b"");
    let mut h = raw_header(b"./dev/null", Char, 0, 0o666);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

// ---- serving ---------------------------------------------------------------------------

struct Served {
    fake: FakeRegistry,
    lp: Layerpipe,
    /// (media type, blob) of each layer, in manifest order.
    layers: Vec<(String, Bytes)>,
}

/// `team/app:v1` with these layers (and a small JSON config), behind layerpipe.
async fn serve(layers: Vec<(&str, Vec<u8>)>) -> Served {
    serve_with(layers, |_, _| {}).await
}

async fn serve_with(layers: Vec<(&str, Vec<u8>)>, tweak: impl Fn(usize, &mut FakeBlob)) -> Served {
    let layers: Vec<(String, Bytes)> = layers.into_iter().map(|(mt, b)| (mt.to_owned(), Bytes::from(b))).collect();
    let refs: Vec<(&str, &[u8])> = layers.iter().map(|(mt, b)| (mt.as_str(), &b[..])).collect();
    let manifest = oci_manifest(CONFIG_JSON, &refs);
    let mut blobs = HashMap::new();
    blobs.insert(digest(CONFIG_JSON), FakeBlob::new(Bytes::from_static(CONFIG_JSON)));
    for (i, (_, blob)) in layers.iter().enumerate() {
        let mut fake_blob = FakeBlob::new(blob.clone());
        tweak(i, &mut fake_blob);
        blobs.insert(digest(blob), fake_blob);
    }
    let mut manifests = HashMap::new();
    manifests.insert("v1".to_owned(), (OCI_MANIFEST.to_owned(), manifest));
    let fake = FakeRegistry::start(manifests, blobs).await;
    let lp = Layerpipe::for_fake(&fake, true).await;
    Served { fake, lp, layers }
}

impl Served {
    fn image(&self) -> String {
        format!("{}/{REPO}:v1", self.fake.host())
    }

    /// The query naming layer `n` (from 1).
    fn query(&self, n: usize) -> String {
        let (mt, blob) = &self.layers[n - 1];
        format!(
            "image={}&digest={}&layer={n}&mt={}",
            layerpipe::query::encode(&self.image()),
            layerpipe::query::encode(&digest(blob)),
            layerpipe::query::encode(mt)
        )
    }

    async fn get(&self, path_and_query: &str) -> Fetched {
        fetch(&self.lp.url(path_and_query), &[]).await
    }

    async fn files(&self, n: usize) -> Fetched {
        self.get(&format!("/files?{}", self.query(n))).await
    }

    async fn fs(&self, n: usize, path: &str) -> Fetched {
        self.get(&format!("/fs/{path}?{}", self.query(n))).await
    }

    /// Requests for blob `n` that reached the registry.
    fn blob_requests(&self, n: usize) -> usize {
        let digest = digest(&self.layers[n - 1].1);
        self.fake.seen.registry_requests.lock().unwrap().iter().filter(|(p, _)| p.ends_with(&digest)).count()
    }
}

// ---- reading pages ---------------------------------------------------------------------

/// A relative `href` (as written in HTML) resolved against the path of the page it is on.
fn resolve(page_path: &str, href: &str) -> String {
    let href = href.replace("&amp;", "&");
    let (path, query) = match href.split_once('?') {
        Some((p, q)) => (p.to_owned(), format!("?{q}")),
        None => (href.clone(), String::new()),
    };
    let mut segments: Vec<String> = page_path.split('/').map(str::to_owned).collect();
    segments.pop();
    let parts: Vec<&str> = path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        match *part {
            ".." => {
                if segments.len() > 1 {
                    segments.pop();
                }
                if last {
                    segments.push(String::new());
                }
            }
            "." if last => segments.push(String::new()),
            "." => {}
            p => segments.push(p.to_owned()),
        }
    }
    format!("{}{query}", segments.join("/"))
}

/// The `href` of the link whose text is exactly `text`.
fn href_by_text(html: &str, text: &str) -> Option<String> {
    let end = format!("\">{text}</a>");
    let at = html.find(&end)?;
    let start = html[..at].rfind("href=\"")? + "href=\"".len();
    Some(html[start..at].to_owned())
}

/// The `href` of the link with `id`.
fn href_by_id(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("<a id=\"{id}\" href=\""))? + format!("<a id=\"{id}\" href=\"").len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// The rows of the table with `id`.
fn rows<'a>(html: &'a str, id: &str) -> Vec<&'a str> {
    let start = html.find(&format!("<table id=\"{id}\">")).unwrap_or_else(|| panic!("no table {id}: {html}"));
    let body = &html[start..];
    let body = &body[body.find("<tbody>").unwrap()..body.find("</tbody>").unwrap()];
    body.split("<tr>").skip(1).collect()
}

/// The exact size in a row (`title="N bytes"`), 0 when it has none.
fn row_size(row: &str) -> u64 {
    row.split_once("title=\"").and_then(|(_, rest)| rest.split_once(" bytes\"")).map_or(0, |(n, _)| n.parse().unwrap())
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// The text of the `<pre id="preview" …>`.
fn preview(html: &str) -> (String, String) {
    let start = html.find("<pre id=\"preview\" class=\"").unwrap_or_else(|| panic!("no preview: {html}"));
    let rest = &html[start + "<pre id=\"preview\" class=\"".len()..];
    let (class, rest) = rest.split_once("\">").unwrap();
    let (text, _) = rest.split_once("</pre>").unwrap();
    (class.to_owned(), unescape(text))
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- the layer table -------------------------------------------------------------------

#[tokio::test]
async fn layer_table_links_size_to_the_file_list_and_digest_to_the_folders() {
    let s = serve(vec![(GZIP_LAYER, gzip(&rich_tar()))]).await;
    let page = s.get(&format!("/?image={}", layerpipe::query::encode(&s.image()))).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    let size = layerpipe::pages::human_size(s.layers[0].1.len() as u64);
    let files = href_by_text(&html, &size).expect("the size is a link");
    assert_eq!(files.replace("&amp;", "&"), format!("./files?{}", s.query(1)));
    let browse = href_by_text(&html, &digest(&s.layers[0].1)).expect("the digest is a link");
    assert_eq!(browse.replace("&amp;", "&"), format!("./fs/?{}", s.query(1)));
    // Both resolve, from the page, to working pages; the [x] still downloads.
    assert_eq!(s.get(&resolve("/", &files)).await.status, StatusCode::OK);
    assert_eq!(s.get(&resolve("/", &browse)).await.status, StatusCode::OK);
    assert_eq!(download_links(&html).len(), 1);
}

// ---- the file list ---------------------------------------------------------------------

#[tokio::test]
async fn file_list_has_every_entry_largest_first_with_types_modes_and_whiteouts() {
    let s = serve(vec![(GZIP_LAYER, gzip(&rich_tar()))]).await;
    let page = s.files(1).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    let rows = rows(&html, "files");
    assert_eq!(rows.len(), 18, "every entry, one row each");
    let sizes: Vec<u64> = rows.iter().map(|r| row_size(r)).collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "sorted by size: {sizes:?}");
    assert!(rows[0].contains(">/usr/bin/tool</a>"), "the largest first: {}", rows[0]);
    assert!(rows[0].contains("title=\"102400 bytes\">100.0 KiB<"), "{}", rows[0]);
    assert!(rows[0].contains("<code title=\"4755\">-rwsr-xr-x</code>"), "{}", rows[0]);
    assert!(rows[1].contains(">/etc/motd</a>") && rows[1].contains("title=\"33 bytes\""), "{}", rows[1]);
    for expected in [
        "symlink → usr/bin",
        "symlink → tool",
        "hard link → ./usr/bin/tool",
        "char device 1,3",
        "<td>fifo</td>",
        "<td>dir</td>",
        "<del title=\"/etc/.wh.old.conf\">/etc/old.conf</del>",
        "deleted (whiteout)",
        "<del title=\"/var/cache/.wh..wh..opq\">/var/cache/</del>",
        "opaque dir (hides lower layers)",
        "<code title=\"0600\">-rw-------</code>",
        "<code title=\"0777\">lrwxrwxrwx</code>",
    ] {
        assert!(html.contains(expected), "{expected} in {html}");
    }
    // Long names arrive whole; special characters are escaped in text and encoded in links.
    assert!(html.contains(&format!(">/{}</a>", gnu_long_name())), "GNU long name");
    assert!(html.contains(&format!(">/{}</a>", pax_long_name())), "PAX long name");
    assert!(html.contains("fs/docs/read%20me%20%C3%A9.txt?"), "{html}");
    assert!(html.contains("<p id=\"summary\">18 entries"), "{html}");
    assert!(!html.contains("id=\"stopped\""));
}

#[tokio::test]
async fn zstd_plain_and_multi_member_gzip_layers_list_the_same() {
    let tar = rich_tar();
    let mut multi = gzip(&tar[..tar.len() / 2]);
    multi.extend(gzip(&tar[tar.len() / 2..]));
    let s =
        serve(vec![(GZIP_LAYER, gzip(&tar)), (ZSTD_LAYER, zstd(&tar)), (TAR_LAYER, tar.clone()), (GZIP_LAYER, multi)])
            .await;
    let reference = rows(&s.files(1).await.text(), "files").iter().map(|r| r.to_string()).collect::<Vec<_>>();
    for n in 2..=4 {
        let html = s.files(n).await.text();
        let got: Vec<String> =
            rows(&html, "files").iter().map(|r| r.replace(&s.query(n).replace('&', "&amp;"), "")).collect();
        let want: Vec<String> = reference.iter().map(|r| r.replace(&s.query(1).replace('&', "&amp;"), "")).collect();
        assert_eq!(got, want, "layer {n}");
        assert!(!html.contains("id=\"stopped\""), "layer {n}");
    }
}

#[tokio::test]
async fn a_mislabelled_layer_is_read_as_what_it_is() {
    // Labelled gzip, but a plain tar: Docker and containerd read it by its magic number.
    let s = serve(vec![(GZIP_LAYER, rich_tar())]).await;
    let html = s.files(1).await.text();
    assert_eq!(rows(&html, "files").len(), 18);
    assert!(html.contains("The media type says gzip, but the blob has no compression"), "{html}");
}

#[tokio::test]
async fn ten_thousand_entries_are_listed_by_size_over_two_pages_and_read_once() {
    use tar::EntryType::*;
    let mut b = tar::Builder::new(Vec::new());
    for d in 0..100 {
        add(&mut b, &format!("d{d:02}/"), Directory, 0o755, b"");
        for f in 0..100 {
            let n = d * 100 + f;
            // Sizes shuffled against archive order (a multiplicative permutation).
            let size = (n * 7919) % 10_000;
            add(&mut b, &format!("d{d:02}/f{f:02}"), Regular, 0o644, &vec![b'x'; size]);
        }
    }
    let s = serve(vec![(GZIP_LAYER, gzip(&b.into_inner().unwrap()))]).await;
    let first = s.files(1).await.text();
    assert!(first.contains("<p id=\"summary\">10,100 entries"), "10,000 files and 100 dirs");
    let page1 = rows(&first, "files");
    assert_eq!(page1.len(), 10_000);
    let second = s.get(&format!("/files?{}&page=2", s.query(1))).await.text();
    let page2 = rows(&second, "files");
    assert_eq!(page2.len(), 100);
    let sizes: Vec<u64> = page1.iter().chain(&page2).map(|r| row_size(r)).collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "sorted by size across pages");
    assert_eq!(sizes[0], 9_999);
    assert!(first.contains("rel=\"next\">next</a>") && second.contains("rel=\"prev\">previous</a>"));
    assert_eq!(s.get(&format!("/files?{}&page=3", s.query(1))).await.status, StatusCode::NOT_FOUND);
    // Both pages and a folder came from one read of the blob: the listing is cached.
    assert_eq!(rows(&s.fs(1, "d42/").await.text(), "dir").len(), 100);
    assert_eq!(s.blob_requests(1), 1);
}

// ---- browsing --------------------------------------------------------------------------

#[tokio::test]
async fn browse_lists_a_directory_with_breadcrumbs_whose_links_resolve() {
    let s = serve(vec![(GZIP_LAYER, gzip(&rich_tar()))]).await;
    let root = s.fs(1, "").await;
    assert_eq!(root.status, StatusCode::OK);
    let html = root.text();
    let names: Vec<String> = rows(&html, "dir")
        .iter()
        .map(|r| {
            let link = &r[r.find("<a href=\"").unwrap()..];
            unescape(&link[link.find("\">").unwrap() + 2..link.find("</a>").unwrap()])
        })
        .collect();
    assert_eq!(names, ["dev/", "docs/", "etc/", "run/", "usr/", "var/", "bin"], "{html}");

    // Down into an implied directory: usr/share/doc/a/b/ has no entry of its own.
    let path = "/fs/usr/share/doc/a/b/";
    let page = s.get(&format!("{path}?{}", s.query(1))).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    let crumbs = &html[html.find("<nav id=\"crumbs\">").unwrap()..];
    let crumbs = &crumbs[..crumbs.find("</nav>").unwrap()];
    for (text, target) in
        [("/", "/fs/"), ("usr", "/fs/usr/"), ("share", "/fs/usr/share/"), ("a", "/fs/usr/share/doc/a/")]
    {
        let href = href_by_text(crumbs, text).unwrap_or_else(|| panic!("crumb {text}: {crumbs}"));
        assert_eq!(resolve(path, &href), format!("{target}?{}", s.query(1)), "crumb {text}");
        assert_eq!(s.get(&resolve(path, &href)).await.status, StatusCode::OK);
    }
    assert!(crumbs.ends_with(" › <strong>b</strong>"), "{crumbs}");
    let child = href_by_text(&html, "c/").expect("the child directory");
    assert_eq!(resolve(path, &child), format!("/fs/usr/share/doc/a/b/c/?{}", s.query(1)));
    let deeper = s.get(&resolve(path, &child)).await.text();
    let file = href_by_text(&deeper, "deep.txt").expect("the file");
    let file_page = s.get(&resolve("/fs/usr/share/doc/a/b/c/", &file)).await;
    assert_eq!(preview(&file_page.text()), ("text".to_owned(), "deep\n".to_owned()));
    // The layer table is one link away from anywhere.
    let back = href_by_text(&html, &format!("layers of {}", s.image())).unwrap();
    assert_eq!(resolve(path, &back), format!("/?image={}", layerpipe::query::encode(&s.image())));

    // Whiteouts show as deletions, opaque directories say so.
    let etc = s.fs(1, "etc/").await.text();
    assert!(etc.contains("<del title=\".wh.old.conf\">old.conf</del>"), "{etc}");
    let cache = s.fs(1, "var/cache/").await.text();
    assert!(cache.contains("id=\"opaque\""), "{cache}");
    assert!(cache.contains("id=\"empty\""), "{cache}");
}

#[tokio::test]
async fn directories_without_their_slash_and_files_with_one_are_redirected_relatively() {
    let s = serve(vec![(GZIP_LAYER, gzip(&rich_tar()))]).await;
    let got = s.fs(1, "usr/bin").await;
    assert_eq!(got.status, StatusCode::MOVED_PERMANENTLY);
    let location = got.header("location").unwrap();
    assert_eq!(resolve("/fs/usr/bin", location), format!("/fs/usr/bin/?{}", s.query(1)));
    let got = s.fs(1, "etc/motd/").await;
    assert_eq!(got.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(resolve("/fs/etc/motd/", got.header("location").unwrap()), format!("/fs/etc/motd?{}", s.query(1)));
    let got = s.get(&format!("/fs?{}", s.query(1))).await;
    assert_eq!(resolve("/fs", got.header("location").unwrap()), format!("/fs/?{}", s.query(1)));
}

// ---- a file's page and saving it -------------------------------------------------------

#[tokio::test]
async fn a_file_page_previews_text_escaped_and_binary_as_hex() {
    let s = serve(vec![(GZIP_LAYER, gzip(&rich_tar()))]).await;
    let motd = s.fs(1, "etc/motd").await;
    assert_eq!(motd.status, StatusCode::OK);
    let html = motd.text();
    assert!(html.contains("&lt;layerpipe&gt; &amp; friends"), "escaped");
    assert_eq!(preview(&html), ("text".to_owned(), String::from_utf8(MOTD.to_vec()).unwrap()));
    assert!(html.contains("<dt>modified</dt><dd>2023-11-14 22:13:20 UTC</dd>"), "{html}");
    assert!(html.contains("<dt>owner</dt><dd>1000:1000</dd>"));

    let tool = s.fs(1, "usr/bin/tool").await.text();
    let (class, dump) = preview(&tool);
    assert_eq!(class, "hex");
    assert!(dump.starts_with("00000000  7f 45 4c 46 02 01 01 00"), "{dump}");
    assert!(tool.contains("<h2>The first 64.0 KiB, in hex</h2>"), "only the first 64 KiB of 100 KiB");
    assert_eq!(dump.lines().count(), 64 * 1024 / 16);

    // A symlink's page points to its target; a hard link's shows the file it shares.
    let sh = s.fs(1, "usr/bin/sh").await.text();
    let target = href_by_text(&sh, "/usr/bin/tool").unwrap();
    assert_eq!(resolve("/fs/usr/bin/sh", &target), format!("/fs/usr/bin/tool?{}", s.query(1)));
    let again = s.fs(1, "usr/bin/tool-again").await.text();
    assert_eq!(preview(&again).0, "hex");
    assert!(again.contains("The same file as <a href="));
    let empty = s.fs(1, "etc/empty").await.text();
    assert!(!empty.contains("id=\"preview\""), "nothing to preview");
    assert_eq!(s.fs(1, "etc/nope").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn save_gives_the_exact_bytes_under_the_files_own_name_with_its_length() {
    let s = serve(vec![(GZIP_LAYER, gzip(&rich_tar())), (ZSTD_LAYER, zstd(&rich_tar()))]).await;
    let (pax, pax_name) = (pax_long_name(), format!("{}.txt", "p".repeat(150)));
    for n in [1, 2] {
        for (path, name, bytes) in [
            ("usr/bin/tool", "tool", binary()),
            ("usr/bin/tool-again", "tool-again", binary()),
            ("etc/motd", "motd", MOTD.to_vec()),
            (pax.as_str(), pax_name.as_str(), b"pax long\n".to_vec()),
        ] {
            // Follow the page's own link.
            let page_path = format!("/fs/{path}");
            let html = s.get(&format!("{page_path}?{}", s.query(n))).await.text();
            let save = href_by_id(&html, "save").unwrap_or_else(|| panic!("a save link on {path}"));
            let got = s.get(&resolve(&page_path, &save)).await;
            assert_eq!(got.status, StatusCode::OK, "{path}");
            assert_eq!(got.body.as_ref().unwrap()[..], bytes[..], "layer {n}: {path}");
            assert_eq!(got.header("content-length"), Some(bytes.len().to_string().as_str()));
            assert_eq!(
                got.header("content-disposition"),
                Some(format!("attachment; filename=\"{name}\"; filename*=UTF-8''{name}").as_str())
            );
            assert_eq!(got.header("content-type"), Some("application/octet-stream"));
        }
    }
    // A name with a space and an accent: sanitised, and whole in filename*.
    let got = s.get(&format!("/save/docs/read%20me%20%C3%A9.txt?{}", s.query(1))).await;
    assert_eq!(
        got.header("content-disposition"),
        Some("attachment; filename=\"read_me__.txt\"; filename*=UTF-8''read%20me%20%C3%A9.txt")
    );
    assert_eq!(got.body.unwrap(), &b"spaces and an accent\n"[..]);
    // HEAD: the headers alone.
    let head = fetch_method("HEAD", &s.lp.url(&format!("/save/usr/bin/tool?{}", s.query(1))), &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), Some("102400"));
    // Only files can be saved.
    for path in ["usr/bin/sh", "usr/bin/", "dev/null", "etc/.wh.old.conf"] {
        let got = s.get(&format!("/save/{path}?{}", s.query(1))).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{path}");
    }
}

#[tokio::test]
async fn a_preview_and_a_save_stop_reading_the_blob_once_they_have_their_bytes() {
    use tar::EntryType::*;
    // An 8 MiB incompressible file first, then 24 MiB more.
    let mut b = tar::Builder::new(Vec::new());
    let first = pseudo_random(8 << 20, 1);
    add(&mut b, "first.bin", Regular, 0o644, &first);
    add(&mut b, "rest.bin", Regular, 0o644, &pseudo_random(24 << 20, 2));
    let s = serve(vec![(TAR_LAYER, b.into_inner().unwrap())]).await;
    assert_eq!(s.files(1).await.status, StatusCode::OK);
    let closed = s.fake.registry.closed();
    // The preview reads 64 KiB of the first file; the registry connection is then cut
    // (a connection whose body was not read to its end cannot go back to the pool).
    let page = s.fs(1, "first.bin").await.text();
    assert_eq!(preview(&page).0, "hex");
    eventually("the preview's registry connection closes", || s.fake.registry.closed() > closed).await;
    let closed = s.fake.registry.closed();
    let got = s.get(&format!("/save/first.bin?{}", s.query(1))).await;
    assert_eq!(got.body.unwrap(), first);
    eventually("the save's registry connection closes", || s.fake.registry.closed() > closed).await;
}

/// A layer of `count` incompressible files of 256 KiB, named `f0000.bin`…, and the
/// contents of each: several MiB of gzip, so its index has many resume points.
fn many_files(count: usize) -> (Vec<u8>, Vec<Bytes>) {
    let mut b = tar::Builder::new(Vec::new());
    let files: Vec<Bytes> = (0..count).map(|i| pseudo_random(256 << 10, 100 + i as u64)).collect();
    for (i, data) in files.iter().enumerate() {
        add(&mut b, &format!("f{i:04}.bin"), tar::EntryType::Regular, 0o644, data);
    }
    (b.into_inner().unwrap(), files)
}

#[tokio::test]
async fn after_a_listing_a_file_is_one_range_read_of_little_more_than_itself() {
    let (tar, files) = many_files(40);
    for (mt, blob) in [(GZIP_LAYER, gzip(&tar)), (ZSTD_LAYER, zstd_frames(&tar, 1 << 20)), (TAR_LAYER, tar.clone())] {
        let s = serve(vec![(mt, blob.clone())]).await;
        assert_eq!(s.files(1).await.status, StatusCode::OK);
        assert_eq!(s.blob_requests(1), 1);
        for i in [39, 0, 20] {
            let got = s.get(&format!("/save/f{i:04}.bin?{}", s.query(1))).await;
            assert_eq!(got.body.unwrap(), files[i], "{mt}: file {i}");
        }
        // Each save was one request, for a range; none read the blob whole.
        let requests = s.fake.seen.blob_ranges(&digest(&blob));
        assert_eq!(requests.len(), 4, "{mt}: {requests:?}");
        assert_eq!(requests[0], None, "{mt}: the listing reads it all");
        for range in &requests[1..] {
            let (a, b) = range.as_deref().and_then(parse_range).unwrap_or_else(|| panic!("{mt}: {requests:?}"));
            let b = b.unwrap_or(blob.len() as u64 - 1);
            assert!(b - a < 3 << 20, "{mt}: fetched {} bytes for a 256 KiB file", b - a + 1);
        }
    }
}

#[tokio::test]
async fn a_registry_that_ignores_range_still_gets_the_right_bytes() {
    let (tar, files) = many_files(24);
    let s = serve_with(vec![(GZIP_LAYER, gzip(&tar))], |_, blob| blob.ranges = Ranges::Ignored).await;
    assert_eq!(s.files(1).await.status, StatusCode::OK);
    for i in [23, 11, 0] {
        let got = s.get(&format!("/save/f{i:04}.bin?{}", s.query(1))).await;
        assert_eq!(got.body.unwrap(), files[i], "file {i}");
        let page = s.fs(1, &format!("f{i:04}.bin")).await;
        assert_eq!(page.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn previews_beyond_the_limit_get_503_with_retry_after() {
    let (tar, _) = many_files(8);
    let s = serve_with(vec![(GZIP_LAYER, gzip(&tar))], |_, blob| blob.ranges = Ranges::Cut(Cut::Stall)).await;
    assert_eq!(s.files(1).await.status, StatusCode::OK);
    let blob_digest = digest(&s.layers[0].1);
    // Every preview slot held by a read the registry never finishes.
    let limit = layerpipe::explore::layers::MAX_CONCURRENT_EXTRACTS;
    let stuck: Vec<_> = (0..limit)
        .map(|i| {
            let url = s.lp.url(&format!("/fs/f{:04}.bin?{}", i % 8, s.query(1)));
            tokio::spawn(async move { fetch(&url, &[]).await })
        })
        .collect();
    // The listing, then a stalled range read for each slot.
    let all_held = s.fake.seen.blob_gets(&blob_digest, 1 + limit);
    tokio::time::timeout(Duration::from_secs(60), all_held).await.expect("every slot holds a stalled range read");
    let busy = s.fs(1, "f0000.bin").await;
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE, "{}", busy.text());
    assert_eq!(busy.header("retry-after"), Some("5"));
    let busy = s.get(&format!("/save/f0001.bin?{}", s.query(1))).await;
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
    for task in stuck {
        task.abort();
    }
}

/// At most 4 layers are read for their listing at once: a fifth gets 503 with
/// `Retry-After`, while pages of a layer already listed (and its files' previews, which
/// have slots of their own) are still served.
#[tokio::test]
async fn listings_beyond_the_limit_get_503_with_retry_after() {
    use tar::EntryType::Regular;
    let limit = layerpipe::explore::layers::MAX_CONCURRENT_LISTINGS;
    // Layers 1 to `limit` stall mid-blob; the next one is never reached; the last is listed first.
    let layers: Vec<_> = (0..limit + 2)
        .map(|i| {
            let mut b = tar::Builder::new(Vec::new());
            add(&mut b, "motd", Regular, 0o644, MOTD);
            // Seeds differ in more than their lowest bit: six blobs, six digests.
            add(&mut b, "data.bin", Regular, 0o644, &pseudo_random(256 << 10, 2 * i as u64 + 100));
            (GZIP_LAYER, gzip(&b.into_inner().unwrap()))
        })
        .collect();
    let s = serve_with(layers, |i, blob| {
        if i < limit {
            blob.cut_at = Some((100_000, Cut::Stall));
        }
    })
    .await;
    let listed = limit + 2;
    assert_eq!(s.files(listed).await.status, StatusCode::OK);
    let stuck: Vec<_> = (1..=limit)
        .map(|n| {
            let url = s.lp.url(&format!("/files?{}", s.query(n)));
            tokio::spawn(async move { fetch(&url, &[]).await })
        })
        .collect();
    for n in 1..=limit {
        let blob_digest = digest(&s.layers[n - 1].1);
        let reading = s.fake.seen.blob_gets(&blob_digest, 1);
        tokio::time::timeout(Duration::from_secs(60), reading).await.expect("each listing slot holds a stalled read");
    }
    let busy = s.files(limit + 1).await;
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE, "{}", busy.text());
    assert_eq!(busy.header("retry-after"), Some("5"));
    assert!(busy.text().contains("limit of layer listings"), "{}", busy.text());
    let busy = s.fs(limit + 1, "").await;
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(s.blob_requests(limit + 1), 0, "the busy layer was not read");
    // What needs no listing slot goes on.
    assert_eq!(s.files(listed).await.status, StatusCode::OK);
    let page = s.fs(listed, "motd").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(preview(&page.text()).1, String::from_utf8_lossy(MOTD));
    for task in stuck {
        task.abort();
    }
}

#[tokio::test]
async fn a_registry_that_trickles_frees_the_slot_within_the_rate_window() {
    let (tar, _) = many_files(8);
    let blob = gzip(&tar);
    let blob_digest = digest(&blob);
    let mut blobs = HashMap::new();
    blobs.insert(digest(CONFIG_JSON), FakeBlob::new(Bytes::from_static(CONFIG_JSON)));
    let mut fake_blob = FakeBlob::new(blob.clone());
    fake_blob.ranges = Ranges::Cut(Cut::Trickle);
    blobs.insert(blob_digest.clone(), fake_blob);
    let mut manifests = HashMap::new();
    manifests.insert("v1".to_owned(), (OCI_MANIFEST.to_owned(), oci_manifest(CONFIG_JSON, &[(GZIP_LAYER, &blob)])));
    let fake = FakeRegistry::start(manifests, blobs).await;
    // One byte every 100 ms never trips the idle timeout, only the minimum rate.
    let lp = Layerpipe::start(&format!(
        r#"{{"timeouts":{{"idle_read_secs":30,"explorer_rate_window_secs":0.5}},
            "limits":{{"explorer_min_bytes_per_sec":1024}},
            "registries":{{"{0}":{{"endpoint":"http://{0}"}}}}}}"#,
        fake.host()
    ))
    .await;
    let s = Served { fake, lp, layers: vec![(GZIP_LAYER.to_owned(), Bytes::from(blob))] };
    assert_eq!(s.files(1).await.status, StatusCode::OK);
    let page = s.fs(1, "f0003.bin").await;
    assert_eq!(page.status, StatusCode::OK, "the entry page itself is fine");
    assert!(page.text().contains("slower than 1 KiB/s over 0.5 s"), "{}", page.text());
    let saved = s.get(&format!("/save/f0003.bin?{}", s.query(1))).await;
    assert_eq!(saved.status, StatusCode::BAD_GATEWAY);
    assert!(saved.text().contains("slower than 1 KiB/s"), "{}", saved.text());
    assert_eq!(s.fake.seen.blob_ranges(&blob_digest).len(), 3);
}

/// `Range: bytes=a-b` as (a, b), `b` absent for `a-`.
fn parse_range(range: &str) -> Option<(u64, Option<u64>)> {
    let (a, b) = range.strip_prefix("bytes=")?.split_once('-')?;
    Some((a.parse().ok()?, if b.is_empty() { None } else { Some(b.parse().ok()?) }))
}

/// zstd in frames of `frame` input bytes each, as a seekable zstd writer makes them.
fn zstd_frames(data: &[u8], frame: usize) -> Vec<u8> {
    data.chunks(frame).flat_map(zstd).collect()
}

/// A zstd layer of `count` empty files, `f/0000000` on: 512 bytes of tar each, which
/// compress to almost nothing, built as a stream (the tar itself is never held).
fn empty_files_zstd(count: usize) -> Vec<u8> {
    let mut out = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(0);
    header.set_mode(0o644);
    let mut chunk = Vec::with_capacity(1 << 20);
    for i in 0..count {
        header.set_path(format!("f/{i:07}")).unwrap();
        header.set_cksum();
        chunk.extend_from_slice(header.as_bytes());
        if chunk.len() >= 1 << 20 {
            out.write_all(&chunk).unwrap();
            chunk.clear();
        }
    }
    chunk.extend_from_slice(&[0; 1024]);
    out.write_all(&chunk).unwrap();
    out.finish().unwrap()
}

/// A listing holds at most 1,000,000 entries: a layer of one more is listed up to the
/// limit, its page says where and why the listing stops, the last entry listed has its
/// page, and the one beyond is not in the layer as far as layerpipe can tell.
#[tokio::test]
async fn a_listing_stops_at_a_million_entries_and_says_so() {
    let max = layerpipe::layer::listing::MAX_ENTRIES;
    assert_eq!(max, 1_000_000, "docs/routes.md promises a million");
    let s = serve(vec![(ZSTD_LAYER, empty_files_zstd(max + 1))]).await;
    let page = s.files(1).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    let note =
        format!("The listing stops after {max} entries: layerpipe lists at most {max} entries and 64 MiB of names.");
    assert!(html.contains(&note), "no note in the page's first 2000 bytes: {}", &html[..2000.min(html.len())]);
    assert_eq!(s.blob_requests(1), 1);
    let last = s.fs(1, &format!("f/{:07}", max - 1)).await;
    assert_eq!(last.status, StatusCode::OK, "{}", last.text());
    let beyond = s.fs(1, &format!("f/{max:07}")).await;
    assert_eq!(beyond.status, StatusCode::NOT_FOUND);
    assert!(beyond.text().contains("is not in this layer (in the part of it that could be read)"), "{}", beyond.text());
    assert_eq!(s.blob_requests(1), 1, "the entries' pages come from the listing");
}

// ---- broken layers ---------------------------------------------------------------------

/// The listing of a broken layer: 200, the entries read so far, and a note.
async fn broken(blob: Vec<u8>) -> String {
    let s = serve(vec![(GZIP_LAYER, blob)]).await;
    let page = s.files(1).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    page.text()
}

fn stopped_note(html: &str) -> String {
    let start = html.find("<p class=\"error\" id=\"stopped\">").unwrap_or_else(|| panic!("no note: {html}"));
    let rest = &html[start..];
    unescape(&rest[..rest.find("</p>").unwrap()])
}

#[tokio::test]
async fn a_truncated_layer_lists_what_was_read_and_says_where_it_ends() {
    let blob = gzip(&rich_tar());
    let html = broken(blob[..blob.len() * 2 / 3].to_vec()).await;
    let note = stopped_note(&html);
    assert!(note.contains("the gzip data ends early"), "{note}");
    assert!(rows(&html, "files").len() >= 5, "the entries before the cut are listed");
    // A plain tar cut inside a file's data.
    let tar = rich_tar();
    let s = serve(vec![(TAR_LAYER, tar[..5608].to_vec())]).await;
    let note = stopped_note(&s.files(1).await.text());
    assert!(note.contains("the archive ends inside the data of entry 8"), "{note}");
}

#[tokio::test]
async fn corrupt_gzip_is_reported_not_a_panic() {
    let mut blob = gzip(&rich_tar());
    let middle = blob.len() / 2;
    for b in &mut blob[middle..middle + 64] {
        *b ^= 0x5a;
    }
    let note = stopped_note(&broken(blob).await);
    assert!(note.contains("gzip data is corrupt") || note.contains("damaged"), "{note}");
    // Not gzip past its magic number.
    let mut blob = vec![0x1f, 0x8b];
    blob.extend_from_slice(&pseudo_random(10_000, 3));
    assert!(stopped_note(&broken(blob).await).contains("gzip data is corrupt"));
}

#[tokio::test]
async fn absurd_sizes_bad_checksums_and_escaping_names_are_reported() {
    use tar::EntryType::*;
    // A header claiming a terabyte, followed by a few kilobytes.
    let mut tar = raw_header(b"ok", Regular, 2, 0o644).as_bytes().to_vec();
    tar.extend_from_slice(&[b'k'; 512]);
    tar.extend_from_slice(raw_header(b"huge", Regular, 1 << 40, 0o644).as_bytes());
    tar.extend_from_slice(&[0; 8192]);
    let html = broken(gzip(&tar)).await;
    assert!(stopped_note(&html).contains("ends inside the data of entry 2"), "{}", stopped_note(&html));
    assert!(html.contains("title=\"1099511627776 bytes\">1.0 TiB<"), "the claim is shown as read");

    // A PAX header claiming 100 GiB of records.
    let mut h = raw_header(b"pax", XHeader, 100 << 30, 0o644);
    h.set_cksum();
    let html = broken(gzip(h.as_bytes())).await;
    assert!(stopped_note(&html).contains("extended header claims 107374182400 bytes"), "{html}");

    // A damaged header after two good entries.
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "one", Regular, 0o644, b"1");
    add(&mut b, "two", Regular, 0o644, b"2");
    add(&mut b, "three", Regular, 0o644, b"3");
    let mut tar = b.into_inner().unwrap();
    tar[2048 + 3] ^= 1;
    let html = broken(gzip(&tar)).await;
    assert_eq!(rows(&html, "files").len(), 2);
    assert!(stopped_note(&html).contains("bad header checksum"), "{}", stopped_note(&html));
    assert!(stopped_note(&html).contains("at byte 2048 of the archive"), "{}", stopped_note(&html));

    // Names that climb out or are absolute: listed where they land, and flagged.
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "../../etc/evil", Regular, 0o644, b"x");
    add(&mut b, "/abs/path", Regular, 0o644, b"y");
    add(&mut b, "fine", Regular, 0o644, b"z");
    let s = serve(vec![(GZIP_LAYER, gzip(&b.into_inner().unwrap()))]).await;
    let html = s.files(1).await.text();
    assert!(html.contains("id=\"odd-names\">2 entries"), "{html}");
    assert!(
        html.contains(">/etc/evil</a> <span class=\"warn\" title=\"name climbs out of the layer: ../../etc/evil\">")
    );
    assert!(html.contains(">/abs/path</a> <span class=\"warn\" title=\"absolute name: /abs/path\">"));
    let page = s.fs(1, "etc/evil").await.text();
    assert!(page.contains("<dt>name in the archive</dt><dd class=\"warn\"><code>../../etc/evil</code>"), "{page}");
}

#[tokio::test]
async fn a_blob_that_does_not_match_its_digest_is_refused() {
    let tar = rich_tar();
    let s =
        serve_with(vec![(GZIP_LAYER, gzip(&tar))], |_, blob| blob.served = Some(gzip(&tar[..tar.len() - 1024]).into()))
            .await;
    let page = s.files(1).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(page.text().contains("whose digest is"), "{}", page.text());

    // A JSON blob shown whole is checked too.
    let config_mt = "application/vnd.oci.image.config.v1+json";
    let s = serve_with(vec![(config_mt, CONFIG_JSON.to_vec())], |_, blob| {
        blob.served = Some(Bytes::from_static(br#"{"architecture":"arm64"}"#))
    })
    .await;
    let page = s.files(1).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.text());
    assert!(page.text().contains("whose digest is"), "{}", page.text());
}

/// What a client got of a response whose body may break: status, `Content-Length`, the
/// body bytes that came, and whether the body ended in an error.
async fn fetch_partial(url: &str) -> (StatusCode, Option<u64>, Vec<u8>, bool) {
    try_fetch_partial(url).await.unwrap()
}

/// [`fetch_partial`], or the error of a connection that closed before any response.
async fn try_fetch_partial(
    url: &str,
) -> Result<(StatusCode, Option<u64>, Vec<u8>, bool), hyper_util::client::legacy::Error> {
    use http_body_util::BodyExt;
    let request = http::Request::get(url).body(http_body_util::Empty::<Bytes>::new()).unwrap();
    let response = client().request(request).await?;
    let length = response.headers().get("content-length").map(|v| v.to_str().unwrap().parse().unwrap());
    let (status, mut body) = (response.status(), response.into_body());
    let mut got = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => got.extend_from_slice(frame.data_ref().map_or(&[][..], |d| &d[..])),
            Err(_) => return Ok((status, length, got, true)),
        }
    }
    Ok((status, length, got, false))
}

/// `z.txt` (small), `big.bin` (300 KiB), `last.bin` (under 64 KiB), incompressible,
/// gzipped: a small file whose range read stops at a mark, and a last file whose preview
/// and save both run from the layer's first (and only) resume point to the blob's end.
fn changing_layer(first_name: &str, last: &[u8]) -> Vec<u8> {
    use tar::EntryType::Regular;
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, first_name, Regular, 0o644, MOTD);
    add(&mut b, "big.bin", Regular, 0o644, &pseudo_random(300 << 10, 61));
    add(&mut b, "last.bin", Regular, 0o644, last);
    gzip(&b.into_inner().unwrap())
}

/// Previews and saves that read the blob from its first byte to its end check it against
/// the digest: a registry whose blob changed after it was listed (and verified) gets
/// neither a preview (502) nor a whole saved file (the body breaks before its last
/// bytes) through, whether the index's range read reaches the blob's end or the entry
/// met is not the one promised and the layer is read afresh to find the file again.
#[tokio::test]
async fn a_blob_that_changed_after_its_listing_is_never_shown_or_saved_whole() {
    let last = pseudo_random(40 << 10, 62);
    let good = changing_layer("z.txt", &last);
    let replaced = std::sync::Arc::new(std::sync::Mutex::new(None::<Bytes>));
    let handle = replaced.clone();
    let s = serve_with(vec![(GZIP_LAYER, good.clone())], move |_, blob| blob.replaced = handle.clone()).await;
    let blob_digest = digest(&good);
    let ranges_since = |n: usize| s.fake.seen.blob_ranges(&blob_digest)[n..].to_vec();
    let save_url = |name: &str| s.lp.url(&format!("/save/{name}?{}", s.query(1)));
    assert_eq!(s.files(1).await.status, StatusCode::OK);

    // The good blob: the last file's range read is the whole blob, checked, and the
    // held-back last piece goes out.
    let (status, length, got, broke) = fetch_partial(&save_url("last.bin")).await;
    assert_eq!((status, length, broke), (StatusCode::OK, Some(last.len() as u64), false));
    assert!(got == last, "the saved file differs");
    assert_eq!(ranges_since(1), [Some("bytes=0-".to_owned())]);

    // The same entries, other bytes in the last file: the range read's header checks
    // pass, the digest does not.
    *replaced.lock().unwrap() = Some(changing_layer("z.txt", &pseudo_random(40 << 10, 70)).into());
    let page = s.fs(1, "last.bin").await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.text());
    assert!(page.text().contains("whose digest is sha256:"), "{}", page.text());
    assert!(page.text().contains(&format!("not {blob_digest}")), "{}", page.text());
    // The whole last file is the held-back piece, so the body may fail before hyper has
    // flushed the head: a connection closed with no response is as safe as a 200 whose
    // body breaks. What must never happen is a clean end.
    if let Ok((status, length, got, broke)) = try_fetch_partial(&save_url("last.bin")).await {
        assert_eq!((status, length), (StatusCode::OK, Some(last.len() as u64)));
        assert!(broke, "the save of a mismatching blob ended cleanly");
        assert!(got.len() < last.len(), "the client has all {} bytes", got.len());
    }
    assert_eq!(ranges_since(2), [Some("bytes=0-".to_owned()), Some("bytes=0-".to_owned())]);

    // The first entry renamed: its range read (which stops at a mark, short of the
    // blob's end) meets another entry, so the index is dropped and the layer read
    // afresh to find z.txt again; that read is checked whole, before any header.
    *replaced.lock().unwrap() = Some(changing_layer("y.txt", &last).into());
    let (status, _, got, _) = fetch_partial(&save_url("z.txt")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{}", String::from_utf8_lossy(&got));
    assert!(String::from_utf8_lossy(&got).contains("whose digest is"), "{}", String::from_utf8_lossy(&got));
    let ranges = ranges_since(4);
    assert!(matches!(&ranges[..], [Some(r), None] if !r.ends_with('-')), "{ranges:?}");
    // That dropped the index: the good blob is listed again, then changes again.
    *replaced.lock().unwrap() = None;
    assert_eq!(s.files(1).await.status, StatusCode::OK);
    *replaced.lock().unwrap() = Some(changing_layer("y.txt", &last).into());
    let page = s.fs(1, "z.txt").await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.text());
    assert!(page.text().contains("whose digest is"), "{}", page.text());
    let ranges = ranges_since(6);
    assert!(matches!(&ranges[..], [None, Some(_), None]), "{ranges:?}");

    let metrics = s.get("/metrics").await.text();
    assert!(metrics.contains("layerpipe_digest_mismatches_total 4"), "{metrics}");
}

// ---- blobs that are not layers, and bad URLs --------------------------------------------

#[tokio::test]
async fn blobs_that_are_not_layers_get_a_page_saying_so_and_json_is_shown() {
    let config_mt = "application/vnd.oci.image.config.v1+json";
    let s =
        serve(vec![(config_mt, CONFIG_JSON.to_vec()), ("application/octet-stream", b"\x00\x01binary".to_vec())]).await;
    for path in ["/files", "/fs/", "/fs/etc/motd"] {
        let page = s.get(&format!("{path}?{}", s.query(1))).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let html = page.text();
        assert!(html.contains("This blob is not a filesystem layer"), "{path}: {html}");
        assert!(html.contains("&quot;architecture&quot;: &quot;amd64&quot;,\n"), "pretty-printed: {html}");
        let download = href_by_text(&html, "download it").unwrap();
        assert!(resolve(path, &download).starts_with("/download?"), "{download}");
    }
    let html = s.files(2).await.text();
    assert!(html.contains("This blob is not a filesystem layer"));
    // A binary blob's first bytes, as hex.
    assert!(html.contains("<pre id=\"hex\">00000000  00 01 62 69 6e 61 72 79 "), "{html}");
    assert_eq!(s.get(&format!("/save/x?{}", s.query(2))).await.status, StatusCode::BAD_REQUEST);
    // The image page links its config to the same kind of page.
    let image = s.get(&format!("/?image={}", layerpipe::query::encode(&s.image()))).await.text();
    let config = href_by_text(&image, &digest(CONFIG_JSON)).expect("the config digest is a link");
    let config_page = s.get(&resolve("/", &config)).await.text();
    assert!(config_page.contains("&quot;os&quot;: &quot;linux&quot;"), "{config_page}");
}

#[tokio::test]
async fn bad_urls_are_refused_without_reaching_the_registry() {
    let s = serve(vec![(GZIP_LAYER, gzip(&rich_tar()))]).await;
    let q = s.query(1);
    for bad in [
        format!("/fs/%2E%2E/etc/passwd?{q}"),
        format!("/fs/etc/./motd?{q}"),
        format!("/fs/etc//motd?{q}"),
        format!("/fs/a%00b?{q}"),
        format!("/fs/%zz?{q}"),
        format!("/save/..?{q}"),
        format!("/files?{}", q.replace("layer=1", "layer=0")),
        format!("/files?{}", q.replace("digest=sha256%3A", "digest=sha256%3Axyz")),
        format!("/files?{}&mt=a%2Fb%0D%0AX-Injected%3A%20yes", q.split("&mt=").next().unwrap()),
        format!("/files?{q}&page=0"),
        format!("/files?{q}&page=x"),
    ] {
        let got = s.get(&bad).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(got.header("x-injected").is_none());
    }
    assert_eq!(s.blob_requests(1), 0, "nothing bad reached the registry");
}
