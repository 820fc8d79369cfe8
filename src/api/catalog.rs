//! The catalog's answers (what `/search` finds across every image ever indexed) and an
//! image's secrets.

use serde_json::{json, Value};

use super::text;
use crate::catalog::fate::Fate;
use crate::catalog::search::{Hit, HitPage, LayerUsage, NameSearch, SecretPage};
use crate::catalog::{kind_name, ImageRow, Totals};
use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::explore::secrets::{ImageScan, Place, Placed};
use crate::image::merged;
use crate::layer::link::{Here, LayerPath};
use crate::query::encode;
use crate::reference::ImageReference;
use crate::secrets::mask::Masked;

/// `/search`: what the catalog holds.
pub fn search_home(totals: Totals) -> Value {
    json!({ "layers": totals.layers, "entries": totals.entries, "images": totals.images })
}

/// A fate in one image: `present`, or `deleted` / `overwritten` with the layer (from 1).
fn fate(fate: Fate) -> Value {
    match fate {
        Fate::Present => json!({ "fate": "present" }),
        Fate::DeletedBy(n) => json!({ "fate": "deleted", "by": n }),
        Fate::OverwrittenBy(n) => json!({ "fate": "overwritten", "by": n }),
    }
}

/// One image as the catalog has it.
fn image(image: &ImageRow) -> Value {
    json!({
        "registry": image.registry,
        "repository": image.repository,
        "tags": image.tags,
        "manifest_digest": image.manifest_digest,
        "config_digest": image.config_digest,
        "platform": image.platform,
        "created": image.created,
        "layers": image.layers.len(),
        "href": image.reference().map(|r| Here::root().image_of(&r)),
    })
}

/// `/search?q=TEXT`: a page of entries found, each with the images that ship its layer,
/// its fate in each, and links to its preview, save and merged view there.
pub fn search_hits(search: &NameSearch, page: &HitPage) -> Value {
    json!({
        "q": search.text(),
        "hits": page.hits.iter().map(hit).collect::<Vec<_>>(),
        "next": page.next.map(|after| format!("./search?q={}&after={after}&format=json", encode(&search.text()))),
    })
}

fn hit(hit: &Hit) -> Value {
    let here = Here::root();
    let e = &hit.entry;
    let path = LayerPath::from_clean(&e.path);
    let dir = e.kind == crate::layer::entry::Kind::Dir;
    let digest: Option<Digest> = e.layer.parse().ok();
    let link_in = |image: ImageReference, layer: u32| {
        digest.clone().map(|digest| DownloadLink { image, digest, layer, media_type: e.media_type.clone() })
    };
    let images: Vec<Value> = hit
        .images
        .iter()
        .map(|seen| {
            let r = seen.image.reference();
            let link = r.clone().and_then(|r| link_in(r, seen.layer));
            let mut v = image(&seen.image);
            v["layer"] = seen.layer.into();
            v["fate"] = fate(seen.fate)["fate"].clone();
            if let Some(by) = fate(seen.fate).get("by") {
                v["by"] = by.clone();
            }
            v["preview"] = link.as_ref().map(|l| here.fs(l, &path, dir)).into();
            v["save"] = link.as_ref().filter(|_| e.kind.has_content()).map(|l| here.save(l, &path)).into();
            v["merged"] = r.as_ref().map(|r| here.merged(r, &path, dir)).into();
            v
        })
        .collect();
    let sources: Vec<Value> = hit
        .sources
        .iter()
        .map(|s| {
            let link = s.image.parse().ok().and_then(|r| link_in(r, s.layer));
            json!({
                "registry": s.registry,
                "repository": s.repository,
                "image": s.image,
                "layer": s.layer,
                "preview": link.as_ref().map(|l| here.fs(l, &path, dir)),
            })
        })
        .collect();
    json!({
        "path": text(&e.path),
        "kind": kind_name(e.kind),
        "size": e.size,
        "mode": format!("{:04o}", e.mode),
        "link": e.link,
        "layer": e.layer,
        "layer_href": format!("./search?layer={}", encode(&e.layer)),
        "images": images,
        "image_count": hit.image_count,
        "sources": sources,
    })
}

/// `/search?secrets=1`: a page of every finding stored in the catalog, each with the
/// images that ship its layer and the file's fate in each.
pub fn search_secrets(page: &SecretPage) -> Value {
    let here = Here::root();
    let findings: Vec<Value> = page
        .hits
        .iter()
        .map(|hit| {
            let f = &hit.finding;
            let digest: Option<Digest> = f.key.layer.parse().ok();
            let path = LayerPath::from_clean(f.row.path.as_bytes());
            let images: Vec<Value> = hit
                .images
                .iter()
                .map(|seen| {
                    let mut v = image(&seen.image);
                    let media_type = seen.image.layer_media_type(seen.layer).unwrap_or_default().to_owned();
                    let link = seen.image.reference().zip(digest.clone()).map(|(image, digest)| DownloadLink {
                        image,
                        digest,
                        layer: seen.layer,
                        media_type,
                    });
                    v["layer"] = seen.layer.into();
                    v["fate"] = fate(seen.fate)["fate"].clone();
                    if let Some(by) = fate(seen.fate).get("by") {
                        v["by"] = by.clone();
                    }
                    v["preview"] = link.map(|l| here.fs(&l, &path, false)).into();
                    v
                })
                .collect();
            json!({
                "layer": f.key.layer,
                "path": f.row.path,
                "line": f.row.line,
                "rule": f.row.rule,
                "value": (f.row.line > 0).then(|| masked(&f.row.value)),
                "images": images,
                "image_count": hit.image_count,
            })
        })
        .collect();
    json!({
        "findings": findings,
        "next": page.next.as_ref().map(|k| {
            format!("./search?secrets=1&after_layer={}&after={}&format=json", encode(&k.layer), k.idx)
        }),
    })
}

/// `/search?layer=DIGEST`: the layer, and the images that ship it.
pub fn layer_usage(digest: &Digest, usage: &LayerUsage) -> Value {
    json!({
        "digest": digest.to_string(),
        "layer": usage.layer.as_ref().map(|l| json!({
            "size": l.size,
            "media_type": l.media_type,
            "entries": l.entries,
            "complete": l.complete,
            "sources": l.sources.iter().map(|s| json!({
                "registry": s.registry, "repository": s.repository, "image": s.image, "layer": s.layer,
            })).collect::<Vec<_>>(),
        })),
        "images": usage.images.iter().map(|i| {
            let mut v = image(i);
            v["layer"] = i.layers.iter().rposition(|l| l.digest == digest.as_str()).map(|n| n + 1).into();
            v
        }).collect::<Vec<_>>(),
        "image_count": usage.image_count,
    })
}

/// A masked value: never more than its first characters and its length.
pub(super) fn masked(value: &Masked) -> Value {
    json!({ "head": value.head(), "length": value.len() })
}

/// `/secrets?image=REF`: each finding's rule, place, fate and masked value, deleted and
/// overwritten first, and what the scan read.
pub fn secrets(reference: &ImageReference, layers: &[DownloadLink], scan: &ImageScan, catalog: bool) -> Value {
    json!({
        "image": reference.to_string(),
        "findings": scan.findings.iter().map(|f| finding(f, layers)).collect::<Vec<_>>(),
        "hidden": scan.findings.iter().filter(|f| f.hidden()).count(),
        "files_read": scan.files_read,
        "layers_scanned_now": scan.scanned_now.len(),
        "layers_scanned_before": scan.from_before,
        "files_left_out": scan.left_out,
        "partial_layers": scan.partial_layers.iter().map(|l| l + 1).collect::<Vec<_>>(),
        "failed": scan.failed.as_ref().map(|(n, why)| json!({ "files": n, "first_error": why })),
        "catalog": catalog,
    })
}

fn finding(f: &Placed, layers: &[DownloadLink]) -> Value {
    let mut v = json!({
        "rule": f.rule,
        "value": f.value.as_ref().map(masked),
        "fate": match f.fate {
            merged::Fate::Deleted { .. } => "deleted",
            merged::Fate::Overwritten { .. } => "overwritten",
            merged::Fate::Visible | merged::Fate::Marker => "present",
        },
    });
    if let Some(by) = f.fate.hidden_by() {
        v["by"] = (by + 1).into();
    }
    match &f.place {
        Place::File { layer, path, line } => {
            v["place"] = "file".into();
            v["layer"] = (layer + 1).into();
            v["path"] = path.as_str().into();
            v["line"] = (*line).into();
            v["preview"] = layers
                .get(*layer as usize)
                .map(|link| Here::root().fs(link, &LayerPath::from_clean(path.as_bytes()), false))
                .into();
        }
        Place::Env { name } => {
            v["place"] = "env".into();
            v["name"] = name.as_str().into();
        }
        Place::Label { key } => {
            v["place"] = "label".into();
            v["name"] = key.as_str().into();
        }
        Place::History { step, layer } => {
            v["place"] = "history".into();
            v["step"] = (step + 1).into();
            v["layer"] = layer.map(|l| l + 1).into();
        }
    }
    v
}
