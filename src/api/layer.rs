//! One layer's answers: its files by size, a folder, one entry.

use base64::Engine;
use serde_json::{json, Value};

use super::{entry, paged, text};
use crate::download::DownloadLink;
use crate::error::Error;
use crate::explore::layers::{BlobHead, Preview};
use crate::image::search::Search;
use crate::layer::entry::Kind;
use crate::layer::link::{Here, LayerPath};
use crate::layer::listing::{EntryRef, Listing};
use crate::layer::preview;
use crate::pages::budget::{page_range, page_starts};

/// The bytes one entry's row can take as JSON: every byte of its names escaped as
/// `\u00XX` at worst, and the fixed fields and link.
pub(super) fn entry_cost(e: &EntryRef<'_>, href_bytes: usize) -> usize {
    let names = e.path().len() + e.link().len() + e.raw_name().map_or(0, <[u8]>::len);
    names.saturating_mul(6).saturating_add(href_bytes).saturating_add(400)
}

/// The layer a page is about.
fn layer(link: &DownloadLink, listing: &Listing) -> Value {
    let s = &listing.summary;
    json!({
        "image": link.image.to_string(),
        "number": link.layer,
        "digest": link.digest.to_string(),
        "media_type": link.media_type,
        "entries": listing.len(),
        "file_bytes": listing.file_bytes(),
        "compressed_bytes": s.compressed_bytes,
        "tar_bytes": s.tar_bytes,
        "compression": s.compression.map(|c| c.name()),
        "stopped": s.stopped,
        "download": Here::root().download(link),
    })
}

/// `files`: the layer's entries, largest first (those `search` finds, with one).
pub fn layer_files(
    link: &DownloadLink,
    listing: &Listing,
    page: usize,
    search: Option<&Search>,
) -> Result<Value, Error> {
    let here = Here::root();
    let listed = || listing.by_size().filter(|e| search.is_none_or(|s| s.matches(e.path())));
    let to_root = here.fs(link, &LayerPath::root(), true).len();
    let starts = page_starts(listed().map(|e| entry_cost(&e, to_root + 3 * e.path().len())));
    let matching = listed().count();
    let shown = page_range(&starts, matching, page)
        .ok_or_else(|| Error::not_found(format!("the list of files has no page {page}")))?;
    let rows: Vec<Value> =
        listed().skip(shown.start).take(shown.len()).map(|e| entry(&e, Some(entry_href(link, here, &e)))).collect();
    let mut v = json!({ "layer": layer(link, listing), "entries": rows });
    if let Some(search) = search {
        v["search"] = search.text().into();
        v["matching"] = matching.into();
    }
    Ok(paged(v, page, starts.len(), |p| {
        let files = here.files(link, p);
        match search {
            Some(s) => format!("{files}&search={}&format=json", s.encoded()),
            None => format!("{files}&format=json"),
        }
    }))
}

/// The link to an entry's own page (a whiteout's is its own, too).
fn entry_href(link: &DownloadLink, here: Here, e: &EntryRef<'_>) -> String {
    here.fs(link, &LayerPath::from_clean(e.path()), e.entry.kind == Kind::Dir)
}

/// `fs/DIR/`: the names in one directory of the layer.
pub fn layer_dir(link: &DownloadLink, listing: &Listing, dir: &LayerPath, page: usize) -> Result<Value, Error> {
    let here = Here::dir(dir);
    let children = listing.children(dir.as_bytes());
    let to_dir = here.fs(link, dir, true).len();
    let starts = page_starts(children.iter().map(|c| match &c.entry {
        Some(e) => entry_cost(e, to_dir + 3 * c.name.len()),
        None => c.name.len().saturating_mul(9).saturating_add(to_dir + 200),
    }));
    let shown = page_range(&starts, children.len(), page)
        .ok_or_else(|| Error::not_found(format!("{} has no page {page}", dir.display())))?;
    let rows: Vec<Value> = children[shown]
        .iter()
        .map(|c| {
            let path = dir.join(c.name);
            let href = here.fs(link, &path, c.is_dir());
            match &c.entry {
                Some(e) => {
                    let mut v = entry(e, Some(href));
                    v["name"] = text(c.name).into();
                    v
                }
                // A directory only deeper paths imply: no entry of its own.
                None => json!({ "name": text(c.name), "path": text(path.as_bytes()), "kind": "dir", "implied": true, "href": href }),
            }
        })
        .collect();
    let v = json!({
        "layer": layer(link, listing),
        "path": text(dir.as_bytes()),
        "opaque": listing.is_opaque(dir.as_bytes()),
        "children": rows,
    });
    Ok(paged(v, page, starts.len(), |p| format!("{}&page={p}&format=json", here.fs(link, dir, true))))
}

/// `fs/PATH`: one entry, its save link, and for a file its first bytes (text as text,
/// anything else as base64) or why they could not be read.
pub fn layer_file(
    link: &DownloadLink,
    listing: &Listing,
    e: EntryRef<'_>,
    path: &LayerPath,
    preview: Option<Result<Preview, Error>>,
) -> Value {
    let here = Here::file(path);
    let mut v = json!({ "layer": layer(link, listing), "entry": entry(&e, None) });
    if let Some(content) = listing.content_of(e.index) {
        v["save"] = json!({ "href": here.save(link, path), "size": content.entry.size });
    }
    if let Some(preview) = preview {
        v["preview"] = match preview {
            Err(error) => json!({ "error": error.message() }),
            Ok(p) => match preview::as_text(&p.bytes, p.complete) {
                Some(text) => json!({ "complete": p.complete, "bytes": p.bytes.len(), "text": text }),
                None => json!({
                    "complete": p.complete,
                    "bytes": p.bytes.len(),
                    "base64": base64::engine::general_purpose::STANDARD.encode(&p.bytes),
                }),
            },
        };
    }
    v
}

/// A blob that is not a layer: its digest, media type and download, and for JSON (a
/// config, an attestation) the JSON itself, or its first bytes as text.
pub fn not_a_layer(link: &DownloadLink, here: Here, head: Option<Result<BlobHead, Error>>) -> Value {
    let mut v = json!({
        "image": link.image.to_string(),
        "digest": link.digest.to_string(),
        "media_type": link.media_type,
        "layer": false,
        "download": here.download(link),
    });
    match head {
        None => {}
        Some(Err(e)) => v["error"] = e.message().into(),
        Some(Ok(head)) => {
            let parsed = head.complete.then(|| serde_json::from_slice::<Value>(&head.bytes).ok()).flatten();
            v["complete"] = head.complete.into();
            match parsed {
                Some(json) => {
                    // A DSSE envelope's payload, decoded: what an attestation says.
                    if let Some(e) = crate::manifest::dsse::envelope(&json) {
                        let payload = e.payload_json().unwrap_or_else(|| text(&e.payload).into());
                        v["dsse"] =
                            json!({ "payload_type": e.payload_type, "signatures": e.signatures, "payload": payload });
                    }
                    v["json"] = json;
                }
                None => v["text"] = text(&head.bytes).into(),
            }
        }
    }
    v
}
