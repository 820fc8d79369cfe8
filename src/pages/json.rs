//! JSON as explore shows it: indented, every digest a link to what it names, each
//! `size` with its human units beside it.
//!
//! The document becomes a list of [`Piece`]s that a template prints one by one, each
//! escaped like any other value (no template marks anything safe): a registry's strings
//! can no more become markup here than anywhere else. What a string links to is the
//! caller's to say ([`Linker`]), by the string's place in the document: a manifest's
//! `config.digest` leads elsewhere than an index's `manifests[0].digest`.

use serde_json::Value;

use super::text::human_size;
use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::explore::images::layer_links;
use crate::layer::link::Here;
use crate::manifest::{FetchedManifest, Manifest};
use crate::reference::ImageReference;

/// Largest manifest shown as linked JSON on its page: 256 KiB, a few times any real
/// image's, and well within the page budget once indented and linked.
pub const MAX_LINKED_MANIFEST: usize = 256 * 1024;

/// The manifest (or index) of `reference` as fetched, linked: the config's digest to
/// the config page, each layer's to its files, an index's manifests and a `subject` to
/// their image pages (in the same repository).
pub fn manifest(reference: &ImageReference, fetched: &FetchedManifest) -> Vec<Piece> {
    if fetched.raw.len() > MAX_LINKED_MANIFEST {
        // Indented and linked, a 4 MiB manifest (a schema 1 one with tens of thousands
        // of layers) alone would pass the page budget; the layer table is paginated.
        return plain(format!(
            "The manifest is {} bytes, more than the {} shown here; its layers are in the table above.",
            fetched.raw.len(),
            MAX_LINKED_MANIFEST
        ));
    }
    let Ok(value) = serde_json::from_slice::<Value>(&fetched.raw) else {
        return plain(String::from_utf8_lossy(&fetched.raw).into_owned());
    };
    let links = match &fetched.manifest {
        Manifest::Image(manifest) => layer_links(reference, manifest),
        Manifest::Index(_) => Vec::new(),
    };
    let files = |link: &DownloadLink| Here::root().files(link, 1);
    let link = |path: &[Step<'_>], s: &str| match keys(path).as_slice() {
        [Some("config"), Some("digest")] => Some(super::config_href(reference)),
        [Some("layers"), None, Some("digest")] => links.get(last_index(path)?).map(files),
        // Schema 1 lists its layers top first, and the empty one many times.
        [Some("fsLayers"), None, Some("blobSum")] => links.iter().find(|l| l.digest.as_str() == s).map(files),
        [Some("manifests"), None, Some("digest")] => Some(Here::root().platform_of(reference, &s.parse().ok()?)),
        [Some("subject"), Some("digest")] => {
            let digest: Digest = s.parse().ok()?;
            Some(Here::root().image_of(&reference.with_digest(digest)))
        }
        _ => None,
    };
    pieces(&value, &link)
}

/// An image config's JSON, each of `rootfs.diff_ids` linked to the files of the layer
/// it is the uncompressed digest of (`layers`, the manifest's) when the counts agree.
pub fn config(raw: &[u8], layers: &[DownloadLink]) -> Vec<Piece> {
    let Ok(value) = serde_json::from_slice::<Value>(raw) else {
        return plain(String::from_utf8_lossy(raw).into_owned());
    };
    let diff_ids = value.pointer("/rootfs/diff_ids").and_then(Value::as_array).map_or(0, Vec::len);
    let link = |path: &[Step<'_>], _: &str| match keys(path).as_slice() {
        [Some("rootfs"), Some("diff_ids"), None] if diff_ids == layers.len() => {
            layers.get(last_index(path)?).map(|l| Here::root().files(l, 1))
        }
        _ => None,
    };
    pieces(&value, &link)
}

/// One step down a JSON document: an object's key or an array's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// A key of an object.
    Key(&'a str),
    /// An index of an array.
    Index(usize),
}

/// Where the string at `path` (the steps from the root) with `value` leads, if anywhere.
pub type Linker<'a> = dyn Fn(&[Step<'_>], &str) -> Option<String> + 'a;

/// A run of the rendered text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The text, JSON as written (not yet HTML-escaped).
    pub text: String,
    /// Where it links to, for a linked string.
    pub href: Option<String>,
    /// Set for a note beside the JSON (a size's human units), not part of it.
    pub note: bool,
}

/// `value` indented by two spaces a level, as `serde_json`'s pretty printer writes it,
/// in pieces; strings `link` answers for are links.
pub fn pieces(value: &Value, link: &Linker<'_>) -> Vec<Piece> {
    let mut out = Pieces(Vec::new());
    let mut path = Vec::new();
    write(&mut out, value, &mut path, 0, link);
    out.0
}

/// The pieces of a document that is not JSON after all: its text, as it is.
pub fn plain(text: String) -> Vec<Piece> {
    vec![Piece { text, href: None, note: false }]
}

/// The pieces, adjacent plain text merged (a document is mostly plain text).
struct Pieces(Vec<Piece>);

impl Pieces {
    fn text(&mut self, text: &str) {
        match self.0.last_mut() {
            Some(last) if last.href.is_none() && !last.note => last.text.push_str(text),
            _ => self.0.push(Piece { text: text.to_owned(), href: None, note: false }),
        }
    }

    fn push(&mut self, text: String, href: Option<String>, note: bool) {
        if href.is_none() && !note {
            self.text(&text);
        } else {
            self.0.push(Piece { text, href, note });
        }
    }
}

fn write<'v>(out: &mut Pieces, value: &'v Value, path: &mut Vec<Step<'v>>, depth: usize, link: &Linker<'_>) {
    let indent = |depth: usize| "  ".repeat(depth);
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.text("{\n");
            for (i, (key, value)) in map.iter().enumerate() {
                out.text(&format!("{}{}: ", indent(depth + 1), quoted(key)));
                path.push(Step::Key(key));
                write(out, value, path, depth + 1, link);
                path.pop();
                out.text(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            out.text(&format!("{}}}", indent(depth)));
        }
        Value::Array(items) if !items.is_empty() => {
            out.text("[\n");
            for (i, item) in items.iter().enumerate() {
                out.text(&indent(depth + 1));
                path.push(Step::Index(i));
                write(out, item, path, depth + 1, link);
                path.pop();
                out.text(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.text(&format!("{}]", indent(depth)));
        }
        Value::String(s) => match link(&path[..], s) {
            // The quotes stay outside the link: the link is the digest itself.
            Some(href) => {
                out.text("\"");
                let quoted = quoted(s);
                out.push(quoted[1..quoted.len() - 1].to_owned(), Some(href), false);
                out.text("\"");
            }
            None => out.text(&quoted(s)),
        },
        Value::Number(n) => {
            out.text(&n.to_string());
            let is_size = matches!(path.last(), Some(Step::Key("size")));
            if let Some(bytes) = n.as_u64().filter(|&b| is_size && b >= 1024) {
                out.push(format!(" ({})", human_size(bytes)), None, true);
            }
        }
        // Empty objects and arrays, booleans and null print as they are.
        other => out.text(&other.to_string()),
    }
}

/// A string as JSON writes it, with its quotes.
fn quoted(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// The steps of `path`, for a [`Linker`] to match: keys as `Some(key)`, indexes as `None`.
pub fn keys<'p>(path: &'p [Step<'_>]) -> Vec<Option<&'p str>> {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => Some(*k),
            Step::Index(_) => None,
        })
        .collect()
}

/// The index of the last array step in `path`, if any.
pub fn last_index(path: &[Step<'_>]) -> Option<usize> {
    path.iter().rev().find_map(|s| match s {
        Step::Index(i) => Some(*i),
        Step::Key(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const C: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const L: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const M: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    fn fetched(value: &Value) -> FetchedManifest {
        let raw = bytes::Bytes::from(value.to_string());
        let (media_type, manifest) = crate::manifest::parse(None, &raw).unwrap();
        FetchedManifest { media_type, digest: Digest::of(crate::digest::Algorithm::Sha256, &raw), manifest, raw }
    }

    fn links(pieces: &[Piece]) -> Vec<(String, String)> {
        pieces.iter().filter_map(|p| Some((p.text.clone(), p.href.clone()?))).collect()
    }

    #[test]
    fn a_manifest_too_large_to_show_linked_is_named_not_shown() {
        let layers: Vec<Value> = (0..3000)
            .map(|_| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": L, "size": 1}))
            .collect();
        let value = json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": C, "size": 7},
            "layers": layers,
        });
        let fetched = fetched(&value);
        assert!(fetched.raw.len() > MAX_LINKED_MANIFEST);
        let pieces = manifest(&"r.io/a/b:v1".parse().unwrap(), &fetched);
        assert_eq!(pieces.len(), 1);
        assert!(
            pieces[0].href.is_none() && pieces[0].text.contains("more than the 262144 shown"),
            "{}",
            pieces[0].text
        );
    }

    #[test]
    fn a_manifest_links_its_config_layers_and_subject() {
        let value = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": C, "size": 7},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": L, "size": 26470178}],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": M, "size": 9},
            "annotations": {"note": "<b>\"quoted\"</b>", "other": L}
        });
        let reference: ImageReference = "r.io/a/b:v1".parse().unwrap();
        let pieces = manifest(&reference, &fetched(&value));
        let layer = "./files?image=r.io%2Fa%2Fb%3Av1&digest=sha256%3A2222222222222222222222222222222222222222222222222222222222222222&layer=1&mt=application%2Fvnd.oci.image.layer.v1.tar%2Bgzip";
        assert_eq!(
            links(&pieces),
            [
                (C.to_owned(), "./config?image=r.io%2Fa%2Fb%3Av1".to_owned()),
                (L.to_owned(), layer.to_owned()),
                (M.to_owned(), format!("./?image=r.io%2Fa%2Fb%3Av1%40sha256%3A{}", &M[7..])),
            ]
        );
        assert!(pieces.iter().any(|p| p.note && p.text == " (25.2 MiB)"));
        // The text is the JSON, quotes and markup as JSON writes them (the template escapes).
        let text: String = pieces.iter().filter(|p| !p.note).map(|p| p.text.as_str()).collect();
        assert!(text.contains(r#""note": "<b>\"quoted\"</b>""#), "{text}");
    }

    #[test]
    fn an_index_links_its_manifests_and_a_config_its_diff_ids() {
        let value = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": M, "size": 500,
                           "platform": {"os": "linux", "architecture": "arm64"}}]
        });
        let reference: ImageReference = "app:v1".parse().unwrap();
        let pieces = manifest(&reference, &fetched(&value));
        // The platform's page is told its index, to link back.
        let platform = format!("./?image=app%3Av1%40sha256%3A{}&index=app%3Av1", &M[7..]);
        assert_eq!(links(&pieces), [(M.to_owned(), platform)]);

        let layer = DownloadLink {
            image: reference.clone(),
            digest: L.parse().unwrap(),
            layer: 1,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        };
        let raw = json!({"rootfs": {"type": "layers", "diff_ids": [C]}, "history": [{"created_by": C}]}).to_string();
        let pieces = config(raw.as_bytes(), std::slice::from_ref(&layer));
        assert_eq!(links(&pieces), [(C.to_owned(), Here::root().files(&layer, 1))]);
        // Counts that disagree link nothing; text that is not JSON is shown as it is.
        assert!(links(&config(raw.as_bytes(), &[layer.clone(), layer])).is_empty());
        assert_eq!(config(b"not json", &[]), plain("not json".into()));
    }

    fn joined(pieces: &[Piece]) -> String {
        pieces.iter().map(|p| if p.note { "" } else { p.text.as_str() }).collect()
    }

    #[test]
    fn the_text_is_serde_jsons_pretty_print() {
        let value = json!({"a": [1, "x\"<y>", {"b": null, "c": []}], "d": {}, "e": true, "size": 2048});
        let pieces = pieces(&value, &|_, _| None);
        assert_eq!(joined(&pieces), serde_json::to_string_pretty(&value).unwrap());
        // The one note is the size's human units, right after the number.
        let notes: Vec<&Piece> = pieces.iter().filter(|p| p.note).collect();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].text, " (2.0 KiB)");
    }

    #[test]
    fn strings_link_where_the_linker_says_by_their_place() {
        let value = json!({
            "config": {"digest": "sha256:c", "size": 10},
            "layers": [{"digest": "sha256:l0"}, {"digest": "sha256:l1"}],
            "annotations": {"digest": "sha256:not-a-link"}
        });
        let link = |path: &[Step<'_>], s: &str| match keys(path).as_slice() {
            [Some("config"), Some("digest")] => Some(format!("config/{s}")),
            [Some("layers"), None, Some("digest")] => Some(format!("layer/{}", last_index(path).unwrap())),
            _ => None,
        };
        let pieces = pieces(&value, &link);
        let links: Vec<(&str, &str)> =
            pieces.iter().filter_map(|p| Some((p.text.as_str(), p.href.as_deref()?))).collect();
        assert_eq!(links, [("sha256:c", "config/sha256:c"), ("sha256:l0", "layer/0"), ("sha256:l1", "layer/1")]);
        assert_eq!(joined(&pieces), serde_json::to_string_pretty(&value).unwrap());
        // Small sizes need no note.
        assert!(!pieces.iter().any(|p| p.note));
    }
}
