//! The page of where an image's bytes go: its largest files in every layer, and the
//! bytes later layers delete or overwrite while earlier layers still ship them.

use askama::Template;

use super::budget::shorten;
use super::budget::{page_range, page_starts};
use super::merged::{path_row, MergedImage, VersionRow, WholeHead};
use super::parts::PageNav;
use super::text::display_path;
use super::text::human_size;
use super::{render, Frame};
use crate::error::Error;
use crate::image::changes;
use crate::image::sizes::{self, MAX_LARGEST};
use crate::layer::link::{Here, LayerPath};

/// One layer's wasted bytes, and how many of its entries it adds, modifies and removes.
struct LayerWaste {
    number: u32,
    /// The layer's files, largest first.
    href: String,
    bytes: u64,
    human: String,
    counts: changes::Counts,
    /// The layer's entries, marked against the layers below.
    changes_href: String,
}

/// One of the largest folders of the merged filesystem.
struct FolderRow {
    href: String,
    text: String,
    bytes: u64,
    human: String,
    files: usize,
}

#[derive(Template)]
#[template(path = "sizes.html", config = "src/pages/askama.toml")]
struct SizesPage {
    frame: Frame,
    head: WholeHead,
    files: usize,
    shipped: u64,
    shipped_human: String,
    wasted: u64,
    wasted_human: String,
    /// dive's efficiency score as a percentage, and the bytes a container sees.
    efficiency: String,
    seen: u64,
    layers: Vec<LayerWaste>,
    folders: Vec<FolderRow>,
    /// More files than the list holds.
    capped: bool,
    max_largest: usize,
    nav: Option<PageNav>,
    rows: Vec<VersionRow>,
}

/// `sizes`: the image's files, largest first (at most [`MAX_LARGEST`], hidden ones
/// too, struck through), and its wasted bytes, in all and by layer; page `page` of the
/// list from 1 (404 past the last).
pub fn sizes(image: &MergedImage<'_>, page: usize) -> Result<String, Error> {
    let here = Here::root();
    let s = sizes::of(image.fs);
    let cost = image.row_costs(here);
    let starts = page_starts(s.largest.iter().map(|v| {
        let path = v.entry.path();
        cost(path, &[path, path])
    }));
    let shown = page_range(&starts, s.largest.len(), page)
        .ok_or_else(|| Error::not_found(format!("the list of files has no page {page}")))?;
    let rows = s.largest[shown].iter().map(|&v| path_row(image, here, v)).collect();
    let counts = changes::counts(image.fs);
    let layers = image
        .layers
        .iter()
        .zip(&s.wasted_by_layer)
        .zip(counts)
        .map(|((link, &bytes), counts)| LayerWaste {
            number: link.layer,
            href: here.files(link, 1),
            bytes,
            human: human_size(bytes),
            counts,
            changes_href: here.changes(image.reference, link.layer),
        })
        .collect();
    let folders = sizes::largest_folders(image.fs)
        .into_iter()
        .map(|f| FolderRow {
            href: here.merged(image.reference, &LayerPath::from_clean(f.path), true),
            text: format!("{}/", shorten(&display_path(f.path))),
            bytes: f.bytes,
            human: human_size(f.bytes),
            files: f.files,
        })
        .collect();
    let page_href = |p: usize| {
        let href = here.sizes(image.reference);
        if p > 1 {
            format!("{href}&page={p}")
        } else {
            href
        }
    };
    Ok(render(&SizesPage {
        frame: Frame {
            title: format!("Sizes of {}", image.reference),
            image: image.reference.to_string(),
            command: Some(super::commands::dive(image.reference)),
            trail: super::breadcrumbs::image_page(here, image.reference, "sizes", here.sizes(image.reference)),
        },
        head: WholeHead::new(image.reference, here, "Sizes", None, None),
        files: s.files,
        shipped: s.shipped,
        shipped_human: human_size(s.shipped),
        wasted: s.wasted,
        wasted_human: human_size(s.wasted),
        efficiency: efficiency_text(s.efficiency()),
        seen: s.shipped - s.wasted.min(s.shipped),
        layers,
        folders,
        capped: s.files > MAX_LARGEST,
        max_largest: MAX_LARGEST,
        nav: PageNav::new(page, starts.len(), page_href),
        rows,
    }))
}

/// dive's efficiency score as people read it: a percentage with two decimals, never
/// rounded up to 100% while some byte is wasted.
fn efficiency_text(score: f64) -> String {
    let hundredths = (score * 10_000.0).floor() as u64;
    format!("{}.{:02}%", hundredths / 100, hundredths % 100)
}

#[cfg(test)]
mod tests {
    use super::super::merged::tests::{assert_escaped, two_layers};
    use super::*;

    #[test]
    fn the_largest_file_comes_first_and_wasted_bytes_are_counted_by_layer() {
        let (reference, layers, fs) = two_layers();
        let image = MergedImage { reference: &reference, layers: &layers, fs: &fs };
        let html = sizes(&image, 1).unwrap();
        assert_escaped(&html);
        // The secret (40) and the first passwd (100) are shipped by layer 1 and hidden.
        assert!(html.contains("<dd id=\"wasted\">140 B (140 bytes)</dd>"), "{html}");
        assert!(html.contains("<dd id=\"shipped\">9.0 KiB (9,265 bytes)</dd>"), "{html}");
        assert!(html.contains("<dd id=\"files\">5</dd>"), "{html}");
        let largest = &html[html.find("<table id=\"largest\">").unwrap()..];
        let first_row = &largest[largest.find("<tbody>").unwrap()..];
        assert!(first_row.starts_with("<tbody>\n<tr><td class=\"p\"><a href=\"./layers/big?image="), "{first_row}");
        assert!(html.contains("<td class=\"n\" title=\"140 bytes\">140 B</td>"), "{html}");
        // 9,125 of 9,265 bytes seen.
        assert!(html.contains("<dd id=\"efficiency\" title=\"9125 of 9265 bytes\">98.48%</dd>"), "{html}");
        assert_eq!(sizes(&image, 2).unwrap_err().status(), http::StatusCode::NOT_FOUND);
    }
}

#[cfg(test)]
mod efficiency_tests {
    use super::efficiency_text;

    #[test]
    fn the_score_is_a_percentage_never_rounded_up() {
        assert_eq!(efficiency_text(1.0), "100.00%");
        assert_eq!(efficiency_text(0.999_99), "99.99%");
        assert_eq!(efficiency_text(88.0 / 65687.0), "0.13%");
        assert_eq!(efficiency_text(0.0), "0.00%");
    }
}
