//! The page of a blob that is not a filesystem layer (a config, an SBOM, an
//! attestation, a signature, anything): its digest and download, and what its first
//! bytes decode to, as explore shows a blob:
//! - JSON, indented, each `digest` a link to the image page it names in the repository;
//! - a DSSE envelope (in-toto attestations, cosign) with its payload decoded, as JSON
//!   when it is JSON, under the envelope itself;
//! - text as it is;
//! - anything else as a hex view of its first 4 KiB (`offset  hex  ascii`).
//!
//! Only the blob's first 64 KiB are read (`BlobHead`): a larger blob is shown in part,
//! said so, and never decoded whole; its download is the whole of it. A blob that is a
//! tar (a Helm chart, say) never comes here: it is browsed as a layer's files.

use askama::Template;

use super::json::{self, Piece, Step};
use super::{render, Frame};
use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::error::Error;
use crate::explore::layers::BlobHead;
use crate::image::hexdump::{self, HexRow};
use crate::layer::link::Here;
use crate::manifest::dsse;
use crate::reference::{ImageReference, Repository};

/// What a blob's first bytes were decoded to.
enum Shown {
    /// Why they could not be read.
    Failed(String),
    /// JSON, linked; with a DSSE envelope's payload type, signatures and decoded payload.
    Json { pieces: Vec<Piece>, envelope: Option<Envelope> },
    /// Text that is no JSON (or JSON cut off at 64 KiB).
    Text(String),
    /// Bytes that are no text: their first rows.
    Hex(Vec<HexRow>),
}

/// A DSSE envelope as the page shows it.
struct Envelope {
    payload_type: String,
    signatures: usize,
    payload: Vec<Piece>,
}

#[derive(Template)]
#[template(path = "not_a_layer.html", config = "src/pages/askama.toml")]
struct NotALayer {
    frame: Frame,
    name: String,
    image_href: String,
    up_text: String,
    digest: String,
    media_type: String,
    download_href: String,
    /// Whether the blob was read whole (else its first 64 KiB).
    complete: bool,
    shown: Option<Shown>,
}

/// A blob that is not a layer: no files to show, a download instead, and what its
/// first bytes decode to (see the module docs); `head` is `None` when none were read.
pub fn not_a_layer(link: &DownloadLink, here: Here, head: Option<Result<BlobHead, Error>>) -> String {
    let complete = matches!(&head, Some(Ok(h)) if h.complete);
    let shown = head.map(|read| match read {
        Err(error) => Shown::Failed(error.message().to_owned()),
        Ok(head) => shown(link, here, &head),
    });
    render(&NotALayer {
        frame: Frame {
            title: format!("blob of {}", link.image),
            image: link.image.to_string(),
            command: Some(super::commands::blob_only(link)),
            trail: super::breadcrumbs::layer(here, link),
        },
        name: link.image.to_string(),
        image_href: here.image(link),
        up_text: super::layer::up_text(link),
        digest: link.digest.to_string(),
        media_type: link.media_type.clone(),
        download_href: here.download(link),
        complete,
        shown,
    })
}

/// What `head` decodes to.
fn shown(link: &DownloadLink, here: Here, head: &BlobHead) -> Shown {
    let repository = Repository::from(&link.image);
    let linker = |path: &[Step<'_>], s: &str| digest_link(repository.as_reference(), here, path, s);
    let value = head.complete.then(|| serde_json::from_slice::<serde_json::Value>(&head.bytes).ok()).flatten();
    if let Some(value) = value {
        let envelope = dsse::envelope(&value).map(|e| Envelope {
            payload: match e.payload_json() {
                Some(payload) => json::pieces(&payload, &linker),
                None => json::plain(String::from_utf8_lossy(&e.payload).into_owned()),
            },
            payload_type: e.payload_type,
            signatures: e.signatures,
        });
        return Shown::Json { pieces: json::pieces(&value, &linker), envelope };
    }
    match text(&head.bytes, head.complete) {
        Some(text) => Shown::Text(text.to_owned()),
        None => Shown::Hex(hexdump::rows(&head.bytes)),
    }
}

/// `bytes` as text, when they are: UTF-8 without control characters but whitespace
/// (a cut-off read may end inside a character: that end is dropped).
fn text(bytes: &[u8], complete: bool) -> Option<&str> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) if !complete && e.error_len().is_none() => std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    text.chars().all(|c| !c.is_control() || c.is_whitespace()).then_some(text)
}

/// Where a digest in a blob's JSON leads: the image page of the manifest it names in
/// the blob's repository. Descriptors' `digest` strings, and in-toto subjects'
/// `digest: {"sha256": HEX}`.
fn digest_link(repository: &ImageReference, here: Here, path: &[Step<'_>], s: &str) -> Option<String> {
    let keys = json::keys(path);
    let digest: Digest = match keys.as_slice() {
        [.., Some("digest")] => s.parse().ok()?,
        [.., Some("digest"), Some(algorithm)] => format!("{algorithm}:{s}").parse().ok()?,
        _ => return None,
    };
    Some(here.image_of(&repository.with_digest(digest)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use bytes::Bytes;

    fn link() -> DownloadLink {
        DownloadLink {
            image: "127.0.0.1:5000/team/app:v1".parse().unwrap(),
            digest: format!("sha256:{}", "ab".repeat(32)).parse().unwrap(),
            layer: 2,
            media_type: "application/vnd.dev.cosign.simplesigning.v1+json".to_owned(),
        }
    }

    fn page(bytes: &[u8], complete: bool) -> String {
        let head = BlobHead { bytes: Bytes::copy_from_slice(bytes), complete };
        not_a_layer(&link(), Here::root(), Some(Ok(head)))
    }

    #[test]
    fn a_dsse_envelope_shows_its_payload_decoded_and_linked() {
        let subject = "cd".repeat(32);
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"app","digest":{{"sha256":"{subject}"}}}}],"predicate":"<b>"}}"#
        );
        let envelope = serde_json::json!({
            "payloadType": "application/vnd.in-toto+json",
            "payload": STANDARD.encode(&statement),
            "signatures": [{"sig": "MEUC"}],
        });
        let html = page(envelope.to_string().as_bytes(), true);
        assert!(html.contains("<dd id=\"payload-type\">application/vnd.in-toto+json</dd>"), "{html}");
        assert!(html.contains("<dd id=\"signatures\">1</dd>"), "{html}");
        let payload = &html[html.find("<pre id=\"payload\">").expect(&html)..];
        assert!(payload.contains("&quot;https://in-toto.io/Statement/v1&quot;"), "{payload}");
        // The subject's digest leads to its image page in the blob's repository.
        let href = format!("./?image=127.0.0.1%3A5000%2Fteam%2Fapp%40sha256%3A{subject}");
        assert!(payload.contains(&format!("&quot;<a href=\"{href}\">{subject}</a>&quot;")), "{payload}");
        // A registry's strings stay text.
        assert!(payload.contains("&quot;&lt;b&gt;&quot;") && !payload.contains("<b>"), "{payload}");
    }

    #[test]
    fn json_links_descriptor_digests() {
        let digest = format!("sha256:{}", "ef".repeat(32));
        let html = page(
            format!(
                r#"{{"critical":{{"image":{{"docker-manifest-digest":"x"}}}},"layers":[{{"digest":"{digest}"}}]}}"#
            )
            .as_bytes(),
            true,
        );
        assert!(html.contains("<pre id=\"json\">"), "{html}");
        assert!(html.contains(&format!("%40sha256%3A{}\">{digest}</a>&quot;", "ef".repeat(32))), "{html}");
        assert!(!html.contains("id=\"payload\""), "{html}");
    }

    #[test]
    fn bytes_that_are_no_text_get_a_hex_view() {
        let html = page(b"\x7fELF\x02\x01\x01\x00<\x00", true);
        let row = format!(
            "<pre id=\"hex\">00000000  7f 45 4c 46 02 01 01 00  3c 00{} |.ELF....&lt;.|\n</pre>",
            " ".repeat(19)
        );
        assert!(html.contains(&row), "{html}");
    }

    #[test]
    fn text_cut_off_at_64_kib_says_so() {
        let html = page("é".repeat(10).as_bytes().split_last().unwrap().1, false);
        assert!(html.contains("<h2>The first 64 KiB</h2>"), "{html}");
        assert!(html.contains("<pre id=\"text\">éééééééé"), "{html}");
        assert!(html.contains("is not decoded whole"), "{html}");
    }
}
