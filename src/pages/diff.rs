//! The diff of two images (`/diff?a=&b=`): where their layer lists part, then every path
//! that was added, removed or changed, a page at a time, each side linking to its own
//! version of the file; and, when only `a` is given, the form that asks what to compare
//! it with.

use askama::Template;

use super::budget::shorten;
use super::text::{count, display_path, human_size};
use super::{render, Frame};
use crate::download::DownloadLink;
use crate::image::diff::{LayerSummary, Row, Status};
use crate::image::merged::Version;
use crate::layer::entry;
use crate::layer::link::{Here, LayerPath};
use crate::query::encode;
use crate::reference::ImageReference;

/// Rows a diff page shows: paths can be long, and each row links twice.
pub const DIFF_ROWS_PER_PAGE: usize = 500;

/// One image of a diff, as the page names and links it.
pub struct DiffSide<'a> {
    /// The image as asked for (its platform's manifest when an index was asked for).
    pub reference: &'a ImageReference,
    /// Its layers' links, base first.
    pub layers: &'a [DownloadLink],
}

/// Everything a diff page shows.
pub struct DiffView<'a> {
    /// The first image.
    pub a: DiffSide<'a>,
    /// The second image.
    pub b: DiffSide<'a>,
    /// Which platform was compared, when an index was asked for.
    pub platform_note: Option<String>,
    /// How the layer lists compare.
    pub layers: &'a LayerSummary,
    /// The paths that differ, by path.
    pub rows: &'a [Row<'a>],
    /// Pairs of files whose bytes were not compared, and why.
    pub unread: Option<(usize, String)>,
    /// The page asked for, from 1.
    pub page: usize,
}

struct Named {
    name: String,
    href: String,
}

struct LayerRow {
    number: usize,
    a: Option<String>,
    b: Option<String>,
    shared_a: bool,
    shared_b: bool,
}

struct SideCell {
    layer: u32,
    href: String,
    mode: String,
    size: String,
    target: Option<String>,
}

struct DiffRow {
    class: &'static str,
    change: String,
    path: String,
    a: Option<SideCell>,
    b: Option<SideCell>,
}

#[derive(Template)]
#[template(path = "diff.html", config = "src/pages/askama.toml")]
struct DiffPage {
    frame: Frame,
    a: Named,
    b: Named,
    platform_note: Option<String>,
    layer_summary: String,
    layers: Vec<LayerRow>,
    file_summary: String,
    unread_note: Option<String>,
    rows: Vec<DiffRow>,
    prev: Option<String>,
    next: Option<String>,
}

/// How many pages `rows` take.
pub fn diff_pages(rows: usize) -> usize {
    rows.div_ceil(DIFF_ROWS_PER_PAGE).max(1)
}

/// The diff page; `view.page` must be within [`diff_pages`].
pub fn diff(view: &DiffView<'_>) -> String {
    let (a_name, b_name) = (view.a.reference.to_string(), view.b.reference.to_string());
    let query = |page: usize| {
        let page = if page > 1 { format!("&page={page}") } else { String::new() };
        format!("./diff?a={}&b={}{page}", encode(&a_name), encode(&b_name))
    };
    let start = (view.page - 1) * DIFF_ROWS_PER_PAGE;
    let shown = view.rows.iter().skip(start).take(DIFF_ROWS_PER_PAGE);
    let rows = shown.map(|r| diff_row(r, &view.a, &view.b)).collect();
    let pages = diff_pages(view.rows.len());
    render(&DiffPage {
        frame: Frame {
            title: format!("diff of {a_name} and {b_name}"),
            image: b_name.clone(),
            command: Some(super::commands::diff(view.a.reference, view.b.reference)),
            trail: Vec::new(),
        },
        a: Named { href: Here::root().image_of(view.a.reference), name: a_name.clone() },
        b: Named { href: Here::root().image_of(view.b.reference), name: b_name.clone() },
        platform_note: view.platform_note.clone(),
        layer_summary: layer_summary(view.layers),
        layers: layer_rows(&view.a, &view.b, view.layers),
        file_summary: file_summary(view.rows),
        unread_note: view.unread.as_ref().map(|(n, why)| {
            format!(
                "{} of the files of the same size and mode were not compared byte for byte: {why}.",
                count(*n, "pair")
            )
        }),
        rows,
        prev: (view.page > 1).then(|| query(view.page - 1)),
        next: (view.page < pages).then(|| query(view.page + 1)),
    })
}

/// "3 layers shared; they part at layer 4." and the like.
fn layer_summary(layers: &LayerSummary) -> String {
    let shared = match layers.shared.len() {
        0 => "No layer is shared".to_owned(),
        n => format!("{} shared", count(n, "layer")),
    };
    match layers.first_difference {
        None => format!("{shared}: the images have the same layers."),
        Some(0) => format!("{shared}; they differ from the first layer."),
        Some(n) => format!("{shared}; the first layer that differs is layer {}.", n + 1),
    }
}

/// Each position's layer on both sides, marking those the other image ships too.
fn layer_rows(a: &DiffSide<'_>, b: &DiffSide<'_>, summary: &LayerSummary) -> Vec<LayerRow> {
    let rows = a.layers.len().max(b.layers.len());
    (0..rows)
        .map(|i| LayerRow {
            number: i + 1,
            a: a.layers.get(i).map(|l| l.digest.to_string()),
            b: b.layers.get(i).map(|l| l.digest.to_string()),
            shared_a: summary.shared.iter().any(|&(x, _)| x == i),
            shared_b: summary.shared.iter().any(|&(_, y)| y == i),
        })
        .collect()
}

/// "2 added, 1 removed, 3 changed."
fn file_summary(rows: &[Row<'_>]) -> String {
    let tally = |f: fn(&Status) -> bool| rows.iter().filter(|r| f(&r.status)).count();
    let (added, removed) = (tally(|s| *s == Status::Added), tally(|s| *s == Status::Removed));
    let changed = tally(|s| matches!(s, Status::Changed(_)));
    if rows.is_empty() {
        return "No file differs.".to_owned();
    }
    let mut text = format!("{added} added, {removed} removed, {changed} changed");
    let unknown = tally(|s| *s == Status::Unknown);
    if unknown > 0 {
        text.push_str(&format!(", {unknown} not compared"));
    }
    text.push('.');
    text
}

fn diff_row(row: &Row<'_>, a: &DiffSide<'_>, b: &DiffSide<'_>) -> DiffRow {
    let (class, change) = match row.status {
        Status::Added => ("added", "added".to_owned()),
        Status::Removed => ("removed", "removed".to_owned()),
        Status::Changed(c) => ("changed", format!("changed: {}", c.words().join(", "))),
        Status::Unknown => ("unknown", "not compared".to_owned()),
    };
    DiffRow {
        class,
        change,
        path: shorten(&display_path(row.path)).into_owned(),
        a: row.a.map(|v| side_cell(&v, a)),
        b: row.b.map(|v| side_cell(&v, b)),
    }
}

/// One side's version of a path: its layer (linked to the file in that layer), mode,
/// size and link target.
fn side_cell(v: &Version<'_>, side: &DiffSide<'_>) -> SideCell {
    let e = v.entry;
    let path = LayerPath::from_clean(e.path());
    let href = match side.layers.get(v.layer as usize) {
        Some(link) => Here::root().fs(link, &path, e.entry.kind == entry::Kind::Dir),
        None => Here::root().merged(side.reference, &path, false),
    };
    let target = (!e.link().is_empty()).then(|| shorten(&String::from_utf8_lossy(e.link())).into_owned());
    SideCell {
        layer: v.layer + 1,
        href,
        mode: entry::mode_string(e.entry.kind, e.entry.mode),
        size: if e.entry.kind == entry::Kind::File { human_size(e.entry.size) } else { String::new() },
        target,
    }
}

#[derive(Template)]
#[template(path = "diff_choose.html", config = "src/pages/askama.toml")]
struct Choose {
    frame: Frame,
    a: String,
    a_href: String,
    tags: Vec<Named>,
}

/// The page asking what to compare `a` with, offering its repository's `tags`.
pub fn diff_choose(a: &ImageReference, tags: &[String]) -> String {
    let name = a.to_string();
    let repo = format!("{}/{}", a.registry(), a.repository());
    let tags = tags
        .iter()
        .filter(|t| a.tag() != Some(t.as_str()))
        .map(|t| Named {
            name: t.clone(),
            href: format!("./diff?a={}&b={}", encode(&name), encode(&format!("{repo}:{t}"))),
        })
        .collect();
    render(&Choose {
        frame: Frame { title: format!("compare {name}"), image: name.clone(), command: None, trail: Vec::new() },
        a_href: Here::root().image_of(a),
        a: name,
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_agree_with_their_counts() {
        let one = LayerSummary { shared: vec![(0, 0)], first_difference: Some(1) };
        assert_eq!(layer_summary(&one), "1 layer shared; the first layer that differs is layer 2.");
        let none = LayerSummary { shared: vec![], first_difference: Some(0) };
        assert_eq!(layer_summary(&none), "No layer is shared; they differ from the first layer.");
        let same = LayerSummary { shared: vec![(0, 0), (1, 1)], first_difference: None };
        assert_eq!(layer_summary(&same), "2 layers shared: the images have the same layers.");
        assert_eq!(file_summary(&[]), "No file differs.");
        assert_eq!(diff_pages(0), 1);
        assert_eq!(diff_pages(DIFF_ROWS_PER_PAGE + 1), 2);
    }

    #[test]
    fn the_choice_offers_the_other_tags_escaped() {
        let a: ImageReference = "127.0.0.1:5000/team/app:v1".parse().unwrap();
        let html = diff_choose(&a, &["v1".into(), "v2".into(), "\"><script>".into()]);
        assert!(
            html.contains("./diff?a=127.0.0.1%3A5000%2Fteam%2Fapp%3Av1&amp;b=127.0.0.1%3A5000%2Fteam%2Fapp%3Av2"),
            "{html}"
        );
        assert!(!html.contains(">v1</a>"), "a is not offered against itself: {html}");
        assert!(!html.contains("<script>"), "{html}");
    }
}
