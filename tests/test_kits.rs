//! The test kits' own tests: the helpers of tests/real and tests/common, checked once
//! here rather than again in every test binary that includes a kit.

mod real;

use real::common::digest::{hex, sha256_hex};
use real::common::html::{download_links, unescape};
use real::images::{generate, sample_layers, Blob, CHUNK, OCI_LAYER_GZIP};
use real::issuer::{parse_query, parse_scope, rfc3339};

#[test]
fn generated_streams_are_reproducible_prefixes() {
    let whole = generate(7, CHUNK + 21);
    assert_eq!(whole.len(), CHUNK + 21);
    assert_eq!(generate(7, 13), whole[..13]);
    assert_ne!(generate(8, 13), whole[..13]);
    let blob = Blob::generated(OCI_LAYER_GZIP, 7, CHUNK as u64 + 21);
    assert_eq!(blob.range(1000, 1999), whole[1000..2000]);
    assert_eq!(blob.range(CHUNK as u64 - 3, CHUNK as u64 + 20), whole[CHUNK - 3..]);
    assert_eq!(blob.sha256(), sha256_hex(&whole));
    // Each chunk has its own keystream, and none is mostly zeros.
    assert_ne!(whole[..21], whole[CHUNK..]);
    assert!(whole.iter().filter(|&&b| b == 0).count() < whole.len() / 100);
}

#[test]
fn layers_are_real_gzipped_tars() {
    let layers = sample_layers(OCI_LAYER_GZIP, "x", "amd64");
    assert_eq!(layers.len(), 3);
    let gz = layers[0].blob.bytes().unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&gz[..]));
    let paths: Vec<String> =
        archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    assert_eq!(paths, ["etc/", "etc/os-release", "etc/hostname"]);
    // Same input, same bytes.
    let again = sample_layers(OCI_LAYER_GZIP, "x", "amd64");
    assert_eq!(again[2].blob.digest, layers[2].blob.digest);
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_714_564_800), "2024-05-01T12:00:00Z");
}

#[test]
fn scopes_and_queries() {
    let a = parse_scope("repository:127.0.0.1:5000/a/b:pull,push").unwrap();
    assert_eq!(a.name, "127.0.0.1:5000/a/b");
    assert_eq!(a.actions, ["pull", "push"]);
    assert!(parse_scope("repository:pull").is_none());
    assert_eq!(
        parse_query("scope=repository%3Aa%2Fb%3Apull&service=x+y&bad=%zz%4%+1"),
        [
            ("scope".to_owned(), "repository:a/b:pull".to_owned()),
            ("service".to_owned(), "x y".to_owned()),
            ("bad".to_owned(), "%zz%4% 1".to_owned()),
        ]
    );
}

#[test]
fn sha256_hex_is_the_known_digest_in_lower_case() {
    assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
}

#[test]
fn download_links_are_the_x_links_in_page_order_unescaped() {
    let html = r#"<td><a href="./files?a=1">12 B</a></td><td><a href="download?image=a&amp;digest=sha256:1&amp;layer=1">[x]</a></td>
<a href="./?image=x">image</a> <a href="download?image=a&amp;digest=sha256:2&amp;mt=&quot;q&quot;">[x]</a>"#;
    assert_eq!(
        download_links(html),
        ["download?image=a&digest=sha256:1&layer=1", "download?image=a&digest=sha256:2&mt=\"q\""]
    );
    assert!(download_links("<p>no layers</p>").is_empty());
    assert_eq!(unescape("&lt;a&gt; &amp;amp; &#39;"), "<a> &amp; '");
}

#[test]
#[should_panic(expected = "a download link that is not [x]")]
fn a_download_link_without_the_x_is_a_failure_not_a_missing_link() {
    download_links(r#"<a href="download?image=a&amp;layer=1">download</a>"#);
}
