//! The whole image's answers: a folder of the merged filesystem, every layer's version
//! of one path, a search across every layer, and where the bytes go.

use serde_json::{json, Value};

use super::layer::entry_cost;
use super::{entry, paged, text};
use crate::error::Error;
use crate::image::changes::{self, Change};
use crate::image::merged::{Fate, MergedChild, Version};
use crate::image::search::Search;
use crate::image::sizes;
use crate::layer::entry::Kind;
use crate::layer::link::{Here, LayerPath};
use crate::pages::budget::{page_range, page_starts};
use crate::pages::MergedImage;

/// A fate in the answers: `{"fate": "visible"}`, or `"deleted"` / `"overwritten"` with
/// the layer (from 1) that did it, in `by`.
fn fate(fate: Fate) -> Value {
    match fate {
        Fate::Visible => json!({ "fate": "visible" }),
        Fate::Deleted { by } => json!({ "fate": "deleted", "by": by + 1 }),
        Fate::Overwritten { by } => json!({ "fate": "overwritten", "by": by + 1 }),
        Fate::Marker => json!({ "fate": "marker" }),
    }
}

/// One layer's version of a path: the entry, its layer (from 1), its fate, and links to
/// its page in its layer and (for what has content) its save link.
fn version(image: &MergedImage<'_>, here: Here, v: Version<'_>) -> Value {
    let link = &image.layers[v.layer as usize];
    let path = LayerPath::from_clean(v.entry.path());
    let mut out = entry(&v.entry, Some(here.fs(link, &path, v.entry.entry.kind == Kind::Dir)));
    out["layer"] = link.layer.into();
    out["fate"] = fate(v.fate)["fate"].clone();
    if let Some(by) = v.fate.hidden_by() {
        out["by"] = (by + 1).into();
    }
    if v.entry.entry.kind.has_content() {
        out["save"] = here.save(link, &path).into();
    }
    out
}

/// The page's own header fields.
fn head(image: &MergedImage<'_>) -> Value {
    json!({
        "image": image.reference.to_string(),
        "layers": image.layers.iter().map(|l| l.digest.to_string()).collect::<Vec<_>>(),
    })
}

/// The rows of one name in a folder: what a container sees, then what later layers hid.
fn child_rows(image: &MergedImage<'_>, here: Here, dir: &LayerPath, child: &MergedChild<'_>) -> Vec<Value> {
    let path = dir.join(child.name);
    let mut rows = Vec::new();
    match child.visible() {
        Some(v) => rows.push(version(image, here, v)),
        None if child.visible_below => rows.push(json!({
            "path": text(path.as_bytes()), "kind": "dir", "implied": true, "fate": "visible",
            "href": here.merged(image.reference, &path, true),
        })),
        None => {}
    }
    rows.extend(child.hidden().map(|v| version(image, here, v)));
    if rows.is_empty() {
        rows.push(json!({
            "path": text(path.as_bytes()), "kind": "dir", "implied": true, "fate": "hidden",
            "href": here.merged(image.reference, &path, true),
        }));
    }
    for row in &mut rows {
        row["name"] = text(child.name).into();
    }
    rows
}

/// `layers/DIR/`: one folder, each name with what a container sees and what was hid.
pub fn merged_dir(image: &MergedImage<'_>, dir: &LayerPath, page: usize) -> Result<Value, Error> {
    let here = Here::dir(dir);
    let children = image.fs.children(dir.as_bytes());
    // Cut between names: a name's rows (one per version) go together.
    let cost = |c: &MergedChild<'_>| {
        let versions = c.versions().count().max(1);
        c.versions()
            .map(|v| entry_cost(&v.entry, 600))
            .sum::<usize>()
            .max(versions * (c.name.len() * 6 + dir.as_bytes().len() * 9 + 600))
    };
    let starts = page_starts(children.iter().map(cost));
    let shown = page_range(&starts, children.len(), page)
        .ok_or_else(|| Error::not_found(format!("{} has no page {page}", dir.display())))?;
    let rows: Vec<Value> = children[shown].iter().flat_map(|c| child_rows(image, here, dir, c)).collect();
    let mut v = head(image);
    v["path"] = text(dir.as_bytes()).into();
    v["children"] = rows.into();
    Ok(paged(v, page, starts.len(), |p| format!("{}&page={p}&format=json", here.merged(image.reference, dir, true))))
}

/// `layers/PATH`: every layer's version of one path.
pub fn merged_entry(image: &MergedImage<'_>, path: &LayerPath, page: usize) -> Result<Value, Error> {
    let here = Here::file(path);
    let versions = image.fs.at(path.as_bytes());
    let starts = page_starts(versions.clone().map(|v| entry_cost(&v.entry, 600)));
    let total = versions.clone().count();
    let shown = page_range(&starts, total, page)
        .ok_or_else(|| Error::not_found(format!("{} has no page {page}", path.display())))?;
    let rows: Vec<Value> =
        versions.clone().skip(shown.start).take(shown.len()).map(|v| version(image, here, v)).collect();
    let mut v = head(image);
    v["path"] = text(path.as_bytes()).into();
    v["visible"] = versions.clone().any(|v| v.fate == Fate::Visible).into();
    v["versions"] = rows.into();
    Ok(paged(v, page, starts.len(), |p| format!("{}&page={p}&format=json", here.merged(image.reference, path, false))))
}

/// `layers/?search=TEXT`: the entries of every layer whose path matches, hidden too.
pub fn merged_search(image: &MergedImage<'_>, search: &Search, page: usize) -> Result<Value, Error> {
    let here = Here::dir(&LayerPath::root());
    let (hits, capped) = image.fs.search(search);
    let starts = page_starts(hits.iter().map(|v| entry_cost(&v.entry, 600)));
    let shown = page_range(&starts, hits.len(), page)
        .ok_or_else(|| Error::not_found(format!("the search has no page {page}")))?;
    let mut v = head(image);
    v["search"] = search.text().into();
    v["hits"] = hits.len().into();
    v["capped"] = capped.into();
    v["entries"] = hits[shown].iter().map(|&h| version(image, here, h)).collect::<Vec<_>>().into();
    Ok(paged(v, page, starts.len(), |p| {
        let root = here.merged(image.reference, &LayerPath::root(), true);
        format!("{root}&search={}&page={p}&format=json", search.encoded())
    }))
}

/// `sizes`: the largest files of every layer (hidden ones too), the bytes shipped and
/// wasted, in all and by layer, and dive's efficiency score.
pub fn sizes(image: &MergedImage<'_>, page: usize) -> Result<Value, Error> {
    let here = Here::root();
    let s = sizes::of(image.fs);
    let starts = page_starts(s.largest.iter().map(|v| entry_cost(&v.entry, 600)));
    let shown = page_range(&starts, s.largest.len(), page)
        .ok_or_else(|| Error::not_found(format!("the list of files has no page {page}")))?;
    let mut v = head(image);
    v["files"] = s.files.into();
    v["shipped"] = s.shipped.into();
    v["wasted"] = s.wasted.into();
    v["efficiency"] = s.efficiency().into();
    v["wasted_by_layer"] = image
        .layers
        .iter()
        .zip(&s.wasted_by_layer)
        .map(|(link, &bytes)| json!({ "layer": link.layer, "wasted": bytes }))
        .collect::<Vec<_>>()
        .into();
    v["largest"] = s.largest[shown].iter().map(|&l| version(image, here, l)).collect::<Vec<_>>().into();
    v["largest_folders"] = sizes::largest_folders(image.fs)
        .iter()
        .map(|f| {
            let path = LayerPath::from_clean(f.path);
            json!({ "path": text(f.path), "bytes": f.bytes, "files": f.files, "href": here.merged(image.reference, &path, true) })
        })
        .collect::<Vec<_>>()
        .into();
    Ok(paged(v, page, starts.len(), |p| format!("{}&page={p}&format=json", here.sizes(image.reference))))
}

/// `changes?image=REF&layer=N`: layer N's entries by path, each marked `added`,
/// `modified` (it hides a lower layer's entry at its path) or `removed` (a whiteout or
/// opaque marker, with what it `deletes`), with its fate in the image.
pub fn changes(image: &MergedImage<'_>, layer: u32, page: usize) -> Result<Value, Error> {
    let here = Here::root();
    if layer.checked_sub(1).and_then(|l| image.layers.get(l as usize)).is_none() {
        return Err(Error::not_found(format!("this image has no layer {layer}: it has {}", image.layers.len())));
    }
    let mut marked = changes::of_layer(image.fs, layer - 1);
    marked.sort_by(|(a, _), (b, _)| a.entry.path().cmp(b.entry.path()).then(a.entry.index.cmp(&b.entry.index)));
    let starts = page_starts(marked.iter().map(|(v, _)| entry_cost(&v.entry, 600)));
    let shown = page_range(&starts, marked.len(), page)
        .ok_or_else(|| Error::not_found(format!("the list of changes has no page {page}")))?;
    let tally = |c: Change| marked.iter().filter(|(_, m)| *m == c).count();
    let mut v = head(image);
    v["layer"] = layer.into();
    v["added"] = tally(Change::Added).into();
    v["modified"] = tally(Change::Modified).into();
    v["removed"] = tally(Change::Removed).into();
    v["entries"] = marked[shown]
        .iter()
        .map(|&(version_of, change)| {
            let mut row = version(image, here, version_of);
            row["change"] = change.word().into();
            row
        })
        .collect::<Vec<_>>()
        .into();
    Ok(paged(v, page, starts.len(), |p| format!("{}&page={p}&format=json", here.changes(image.reference, layer))))
}
