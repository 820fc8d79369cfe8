//! dive's view of one layer, as a whole-image page: every entry of the layer marked
//! added, modified or removed against the layers below (`crate::image::changes`).
//!
//! It lives beside the merged pages rather than on a layer's own file list because only
//! the merged view knows the layers below; the file list links here when its layer is
//! one of an image's.

use std::collections::HashMap;

use askama::Template;

use super::budget::{page_range, page_starts, shorten};
use super::merged::{path_row, MergedImage, VersionRow, WholeHead};
use super::parts::PageNav;
use super::text::display_path;
use super::{render, Frame};
use crate::error::Error;
use crate::image::changes::{self, Change};
use crate::layer::entry::{self, Kind};
use crate::layer::link::{Here, LayerPath};

/// One marked entry: its mark and its merged row.
struct Marked {
    mark: &'static str,
    row: VersionRow,
}

#[derive(Template)]
#[template(path = "changes.html", config = "src/pages/askama.toml")]
struct ChangesPage {
    frame: Frame,
    head: WholeHead,
    layer: u32,
    layers: usize,
    counts: changes::Counts,
    /// The files of the layer, by size (its own file list).
    files_href: String,
    nav: Option<PageNav>,
    rows: Vec<Marked>,
}

/// `changes?image=REF&layer=N`: layer `layer` (from 1) of the image, its entries by
/// path, each marked; page `page` from 1 (404 past the last, or for no such layer).
pub fn changes(image: &MergedImage<'_>, layer: u32, page: usize) -> Result<String, Error> {
    let here = Here::root();
    let count = image.layers.len();
    let Some(link) = layer.checked_sub(1).and_then(|l| image.layers.get(l as usize)) else {
        let have = if count == 1 { "1 layer".to_owned() } else { format!("{count} layers") };
        return Err(Error::not_found(format!("this image has no layer {layer}: it has {have}")));
    };
    let mut marked = changes::of_layer(image.fs, layer - 1);
    marked.sort_by(|(a, _), (b, _)| a.entry.path().cmp(b.entry.path()).then(a.entry.index.cmp(&b.entry.index)));
    let mut counts = changes::Counts::default();
    for (_, change) in &marked {
        match change {
            Change::Added => counts.added += 1,
            Change::Modified => counts.modified += 1,
            Change::Removed => counts.removed += 1,
        }
    }
    let cost = image.row_costs(here);
    let starts = page_starts(marked.iter().map(|(v, _)| {
        let path = v.entry.path();
        cost(path, &[path, path])
    }));
    let shown = page_range(&starts, marked.len(), page)
        .ok_or_else(|| Error::not_found(format!("the list of changes has no page {page}")))?;
    // Whether a marker's target is a directory, asked once per target: a page of
    // markers may all name one path with a million versions below.
    let mut dirs: HashMap<Vec<u8>, bool> = HashMap::new();
    let rows = marked[shown]
        .iter()
        .map(|&(v, change)| {
            let mut row = path_row(image, here, v);
            if let Some(target) = entry::whiteout_target(v.entry.entry.kind, v.entry.path()) {
                // A marker reads as what it removes, and leads to it in the merged view,
                // where the versions it hid are struck through.
                let opaque = v.entry.entry.kind == Kind::Opaque;
                let shown = shorten(&display_path(&target)).into_owned();
                row.text = if opaque { format!("everything in {}/", shown.trim_end_matches('/')) } else { shown };
                let dir = opaque || *dirs.entry(target.clone()).or_insert_with(|| image.fs.is_dir(&target));
                row.href = here.merged(image.reference, &LayerPath::from_clean(&target), dir);
            }
            Marked { mark: change.word(), row }
        })
        .collect();
    let page_href = |p: usize| {
        let href = here.changes(image.reference, layer);
        if p > 1 {
            format!("{href}&page={p}")
        } else {
            href
        }
    };
    Ok(render(&ChangesPage {
        frame: Frame {
            title: format!("Changes in layer {layer} of {}", image.reference),
            image: image.reference.to_string(),
            command: Some(super::commands::dive(image.reference)),
            trail: super::breadcrumbs::image_page(
                here,
                image.reference,
                &format!("layer {layer} changes"),
                here.changes(image.reference, layer),
            ),
        },
        head: WholeHead::new(image.reference, here, "Layer changes", None, None),
        layer,
        layers: count,
        counts,
        files_href: here.files(link, 1),
        nav: PageNav::new(page, starts.len(), page_href),
        rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::merged::tests::{assert_escaped, two_layers};
    use super::*;

    #[test]
    fn each_entry_of_the_layer_is_marked_against_the_layers_below() {
        let (reference, layers, fs) = two_layers();
        let image = MergedImage { reference: &reference, layers: &layers, fs: &fs };
        let html = changes(&image, 2, 1).unwrap();
        assert_escaped(&html);
        let rows: Vec<&str> = html.lines().filter(|l| l.starts_with("<tr class=\"")).collect();
        assert!(!rows.is_empty(), "{html}");
        for row in &rows {
            let mark = ["added", "modified", "removed"].iter().find(|m| row.starts_with(&format!("<tr class=\"{m}\"")));
            assert!(mark.is_some(), "{row}");
        }
        assert!(rows.iter().any(|r| r.starts_with("<tr class=\"removed\"")), "{html}");
        assert_eq!(changes(&image, 3, 1).unwrap_err().status(), http::StatusCode::NOT_FOUND);
        assert_eq!(changes(&image, 0, 1).unwrap_err().status(), http::StatusCode::NOT_FOUND);
        assert_eq!(changes(&image, 2, 9).unwrap_err().status(), http::StatusCode::NOT_FOUND);
    }
}
