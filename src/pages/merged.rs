//! The pages about the whole image's filesystem: a folder of the merged view, one path
//! of it with every layer's version, a search across every layer, and the choice of a
//! platform when the image is an index.
//!
//! A row is one version of a path: one entry of one layer. What a later layer deleted
//! or overwrote keeps its row, struck through (`<del>`) with the layer that hid it, and
//! its layer and `[save]` links still lead to that layer's entry and bytes.

use askama::Template;

use super::budget::{encoded_len, page_range, page_starts, row_cost, shorten};
use super::parts::{kind_text, mode, Crumbs, PageNav};
use super::text::{display_name, display_path, human_size};
use super::{render, Frame};
use crate::download::DownloadLink;
use crate::error::Error;
use crate::image::merged::{Fate, MergedChild, MergedFs, Version};
use crate::image::search::{Search, MAX_HITS};
use crate::layer::entry::Kind;
use crate::layer::link::{Here, LayerPath};
use crate::manifest::ImageIndex;
use crate::reference::ImageReference;

/// An image's merged filesystem with what its pages link to: the image as asked for,
/// and each layer's link (`layers[n]` is layer `n + 1` of the image page).
pub struct MergedImage<'a> {
    /// The image, as the request named it.
    pub reference: &'a ImageReference,
    /// Each layer's link, base first.
    pub layers: &'a [DownloadLink],
    /// The layers applied.
    pub fs: &'a MergedFs,
}

/// A merged row's markup beyond what [`row_cost`] counts for a layer's row: the layer
/// and save links' cell, the fate cell, `<del>`, and the escaped `&` of two more links.
const MORE_MARKUP: usize = 240;

impl MergedImage<'_> {
    /// How many bytes a row about a path can take on a page at `here`, given the path
    /// and the names the row shows: three links (the name's, the layer's, the save
    /// link), each at most as long as the longest layer link with the path in it.
    pub(super) fn row_costs(&self, here: Here) -> impl Fn(&[u8], &[&[u8]]) -> usize {
        let longest = self.layers.iter().map(|l| here.save(l, &LayerPath::root()).len()).max().unwrap_or(0);
        move |path, shown| {
            let href = longest.saturating_add(encoded_len(path)).saturating_add(16);
            row_cost(href.saturating_mul(3).saturating_add(MORE_MARKUP), shown)
        }
    }
}

/// The heading, links and search box every whole-image page starts with
/// (`whole_header.html`).
pub(super) struct WholeHead {
    /// What the page is, when it is not about one path: `The merged filesystem`.
    pub(super) what: &'static str,
    /// The path the page is about, for people.
    pub(super) path: Option<String>,
    pub(super) name: String,
    pub(super) image_href: String,
    pub(super) root_href: String,
    pub(super) sizes_href: String,
    pub(super) search_action: String,
    /// The search as typed back into its box.
    pub(super) search: String,
}

impl WholeHead {
    pub(super) fn new(
        reference: &ImageReference,
        here: Here,
        what: &'static str,
        path: Option<&LayerPath>,
        search: Option<&Search>,
    ) -> WholeHead {
        WholeHead {
            what,
            path: path.map(LayerPath::display),
            name: reference.to_string(),
            image_href: here.image_of(reference),
            root_href: here.merged(reference, &LayerPath::root(), true),
            sizes_href: here.sizes(reference),
            search_action: here.merged_search(),
            search: search.map(Search::text).unwrap_or_default(),
        }
    }
}

/// The layer a row's entry is in, linked to its entry page, and its save link.
pub(super) struct Source {
    pub(super) number: u32,
    pub(super) href: String,
    pub(super) save: Option<String>,
}

/// One row of a merged table (`merged_row.html`).
pub(super) struct VersionRow {
    pub(super) href: String,
    pub(super) text: String,
    /// A later layer hid it: struck through.
    pub(super) hidden: bool,
    /// `in the image`, `deleted by layer 3`, …
    pub(super) fate: String,
    pub(super) size: Option<(u64, String)>,
    pub(super) kind: String,
    pub(super) mode: Option<(String, String)>,
    pub(super) source: Option<Source>,
}

/// What became of an entry, for people; layers numbered from 1 as the image page does.
fn fate_text(fate: Fate) -> String {
    match fate {
        Fate::Visible => "in the image".to_owned(),
        Fate::Deleted { by } => format!("deleted by layer {}", by + 1),
        Fate::Overwritten { by } => format!("overwritten by layer {}", by + 1),
        Fate::Marker => "a whiteout marker".to_owned(),
    }
}

/// A version's row named by its whole path (shortened) and linked to that path in the
/// merged view: the rows of a search, and of the largest files.
pub(super) fn path_row(image: &MergedImage<'_>, here: Here, v: Version<'_>) -> VersionRow {
    let path = LayerPath::from_clean(v.entry.path());
    let text = shorten(&display_path(v.entry.path())).into_owned();
    let dir = v.entry.entry.kind == Kind::Dir;
    version_row(image, here, v, here.merged(image.reference, &path, dir), text)
}

/// The row of one version, its name linking to `href` and reading `text`.
pub(super) fn version_row(
    image: &MergedImage<'_>,
    here: Here,
    v: Version<'_>,
    href: String,
    text: String,
) -> VersionRow {
    let link = &image.layers[v.layer as usize];
    let path = LayerPath::from_clean(v.entry.path());
    let save = image.fs.layers()[v.layer as usize].content_of(v.entry.index).map(|_| here.save(link, &path));
    let size = matches!(v.entry.entry.kind, Kind::File | Kind::Sparse | Kind::Other(_))
        .then(|| (v.entry.entry.size, human_size(v.entry.entry.size)));
    VersionRow {
        href,
        text,
        hidden: v.fate.hidden_by().is_some(),
        fate: fate_text(v.fate),
        size,
        kind: kind_text(&v.entry),
        mode: Some(mode(&v.entry)),
        source: Some(Source { number: link.layer, href: here.fs(link, &path, v.entry.entry.kind == Kind::Dir), save }),
    }
}

/// The row of a directory no layer has an entry for, only entries below it.
fn implied_dir_row(href: String, name: &str, hidden: bool) -> VersionRow {
    VersionRow {
        href,
        text: format!("{name}/"),
        hidden,
        fate: if hidden { "hidden by later layers".to_owned() } else { "in the image".to_owned() },
        size: None,
        kind: "dir (no entry of its own)".to_owned(),
        mode: None,
        source: None,
    }
}

/// The link to a version's path in the merged view, and its text: `name/` for a
/// directory.
fn merged_link(reference: &ImageReference, here: Here, path: &LayerPath, text: &str, dir: bool) -> (String, String) {
    let text = if dir { format!("{text}/") } else { text.to_owned() };
    (here.merged(reference, path, dir), text)
}

/// One row of a name in a folder, before it is made.
#[derive(Clone, Copy)]
enum ChildRow<'a> {
    /// What a container sees there.
    Seen(Version<'a>),
    /// A version a later layer hid.
    Hidden(Version<'a>),
    /// A directory with no entry of its own, only entries below it (all hidden or not).
    Implied { hidden: bool },
}

/// The rows of one name in a folder: what a container sees there, then each version a
/// later layer hid. Lazy, so that a page of a name with a million versions makes only
/// the rows it shows.
fn child_rows<'a>(child: &MergedChild<'a>) -> impl Iterator<Item = ChildRow<'a>> + 'a {
    let first = match child.visible() {
        Some(v) => Some(ChildRow::Seen(v)),
        None if child.visible_below => Some(ChildRow::Implied { hidden: false }),
        None => None,
    };
    let hidden = child.hidden();
    // Only hidden entries below it, none of its own.
    let only_below = (first.is_none() && hidden.clone().next().is_none()).then_some(ChildRow::Implied { hidden: true });
    first.into_iter().chain(hidden.map(ChildRow::Hidden)).chain(only_below)
}

/// The row [`child_rows`] described, made.
fn make_child_row(
    image: &MergedImage<'_>,
    here: Here,
    dir: &LayerPath,
    child: &MergedChild<'_>,
    row: ChildRow<'_>,
) -> VersionRow {
    let path = dir.join(child.name);
    let name = shorten(&display_name(child.name)).into_owned();
    match row {
        ChildRow::Seen(v) => {
            let (href, text) = merged_link(image.reference, here, &path, &name, child.is_visible_dir());
            version_row(image, here, v, href, text)
        }
        ChildRow::Hidden(v) => {
            let (href, text) = merged_link(image.reference, here, &path, &name, v.entry.entry.kind == Kind::Dir);
            version_row(image, here, v, href, text)
        }
        ChildRow::Implied { hidden } => implied_dir_row(here.merged(image.reference, &path, true), &name, hidden),
    }
}

#[derive(Template)]
#[template(path = "merged_dir.html", config = "src/pages/askama.toml")]
struct MergedDir {
    frame: Frame,
    head: WholeHead,
    crumbs: Crumbs,
    nav: Option<PageNav>,
    rows: Vec<VersionRow>,
}

/// The frame of a whole-image page.
fn whole_frame(reference: &ImageReference, here: Here, title: String) -> Frame {
    Frame {
        title: format!("{title} of {reference}"),
        image: reference.to_string(),
        command: Some(super::commands::merged(reference)),
        trail: super::breadcrumbs::merged(here, reference),
    }
}

/// `layers/DIR/`: one folder of the merged filesystem, with what later layers hid in
/// it struck through; page `page` from 1 (404 past the last).
pub fn merged_dir(image: &MergedImage<'_>, dir: &LayerPath, page: usize) -> Result<String, Error> {
    let here = Here::dir(dir);
    let children = image.fs.children(dir.as_bytes());
    let cost = image.row_costs(here);
    // Pages are cut between rows, not names: every version of one name costs its row.
    let costs = children.iter().flat_map(|c| {
        let path = dir.join(c.name);
        let cost = &cost;
        child_rows(c).map(move |row| match row {
            ChildRow::Seen(v) | ChildRow::Hidden(v) => cost(path.as_bytes(), &[c.name, c.name, v.entry.link()]),
            ChildRow::Implied { .. } => cost(path.as_bytes(), &[c.name, c.name]),
        })
    });
    let starts = page_starts(costs);
    let total: usize = children.iter().map(|c| child_rows(c).count()).sum();
    let shown = page_range(&starts, total, page)
        .ok_or_else(|| Error::not_found(format!("{} has no page {page}", dir.display())))?;
    let rows = children
        .iter()
        .flat_map(|c| child_rows(c).map(move |row| (c, row)))
        .skip(shown.start)
        .take(shown.len())
        .map(|(c, row)| make_child_row(image, here, dir, c, row))
        .collect();
    let page_href = |p: usize| {
        let href = here.merged(image.reference, dir, true);
        if p > 1 {
            format!("{href}&page={p}")
        } else {
            href
        }
    };
    Ok(render(&MergedDir {
        frame: whole_frame(image.reference, here, dir.display()),
        // The root's heading says what the view is; a folder's, where it is.
        head: WholeHead::new(image.reference, here, "The merged filesystem", (!dir.is_root()).then_some(dir), None),
        crumbs: Crumbs::to(dir, |d| here.merged(image.reference, d, true)),
        nav: PageNav::new(page, starts.len(), page_href),
        rows,
    }))
}

#[derive(Template)]
#[template(path = "merged_entry.html", config = "src/pages/askama.toml")]
struct MergedEntry {
    frame: Frame,
    head: WholeHead,
    crumbs: Crumbs,
    /// A container sees this path.
    visible: bool,
    nav: Option<PageNav>,
    rows: Vec<VersionRow>,
}

/// `layers/PATH`: every layer's version of one path, what a container sees and what
/// was hid, each linked to its layer's entry page (which previews it) and saved from
/// its layer; page `page` from 1 (404 past the last), since one layer can hold the same
/// path a million times. The caller has checked that some layer has an entry there.
pub fn merged_entry(image: &MergedImage<'_>, path: &LayerPath, page: usize) -> Result<String, Error> {
    let here = Here::file(path);
    let versions = image.fs.at(path.as_bytes());
    let cost = image.row_costs(here);
    let starts = page_starts(versions.clone().map(|v| {
        let number = image.layers[v.layer as usize].layer.to_string();
        cost(path.as_bytes(), &[number.as_bytes(), path.as_bytes(), v.entry.link()])
    }));
    let total = versions.clone().count();
    let shown = page_range(&starts, total, page)
        .ok_or_else(|| Error::not_found(format!("{} has no page {page}", path.display())))?;
    let rows = versions
        .clone()
        .skip(shown.start)
        .take(shown.len())
        .map(|v| {
            let link = &image.layers[v.layer as usize];
            let text = format!("layer {}", link.layer);
            version_row(image, here, v, here.fs(link, path, v.entry.entry.kind == Kind::Dir), text)
        })
        .collect();
    let page_href = |p: usize| {
        let href = here.merged(image.reference, path, false);
        if p > 1 {
            format!("{href}&page={p}")
        } else {
            href
        }
    };
    Ok(render(&MergedEntry {
        frame: whole_frame(image.reference, here, path.display()),
        head: WholeHead::new(image.reference, here, "The merged filesystem", Some(path), None),
        crumbs: Crumbs::to(path, |d| here.merged(image.reference, d, true)),
        visible: versions.clone().any(|v| v.fate == Fate::Visible),
        nav: PageNav::new(page, starts.len(), page_href),
        rows,
    }))
}

#[derive(Template)]
#[template(path = "merged_search.html", config = "src/pages/askama.toml")]
struct MergedSearch {
    frame: Frame,
    head: WholeHead,
    hits: usize,
    /// The search stopped at [`MAX_HITS`].
    capped: bool,
    max_hits: usize,
    nav: Option<PageNav>,
    rows: Vec<VersionRow>,
}

/// `layers/?search=TEXT`: the entries of every layer whose path matches, hidden ones
/// too, by path then layer, at most [`MAX_HITS`]; page `page` from 1 (404 past the last).
pub fn merged_search(image: &MergedImage<'_>, search: &Search, page: usize) -> Result<String, Error> {
    let here = Here::dir(&LayerPath::root());
    let (hits, capped) = image.fs.search(search);
    let cost = image.row_costs(here);
    let starts = page_starts(hits.iter().map(|v| {
        let path = v.entry.path();
        cost(path, &[path, path, v.entry.link()])
    }));
    let shown = page_range(&starts, hits.len(), page)
        .ok_or_else(|| Error::not_found(format!("the search has no page {page}")))?;
    let rows = hits[shown].iter().map(|&v| path_row(image, here, v)).collect();
    let page_href = |p: usize| {
        let href = format!("{}&search={}", here.merged(image.reference, &LayerPath::root(), true), search.encoded());
        if p > 1 {
            format!("{href}&page={p}")
        } else {
            href
        }
    };
    Ok(render(&MergedSearch {
        frame: whole_frame(image.reference, here, format!("Search for {}", search.text())),
        head: WholeHead::new(image.reference, here, "Search in every layer", None, Some(search)),
        hits: hits.len(),
        capped,
        max_hits: MAX_HITS,
        nav: PageNav::new(page, starts.len(), page_href),
        rows,
    }))
}

/// One platform to choose from.
struct PlatformChoice {
    href: String,
    platform: String,
    digest: String,
}

#[derive(Template)]
#[template(path = "choose_platform.html", config = "src/pages/askama.toml")]
struct ChoosePlatform {
    frame: Frame,
    name: String,
    what: &'static str,
    platforms: Vec<PlatformChoice>,
}

/// The page asking which platform of the index `reference` to show `what` of (`the
/// merged filesystem`, `the sizes`); `href` links to a platform's page of it.
pub fn choose_platform(
    reference: &ImageReference,
    index: &ImageIndex,
    what: &'static str,
    href: impl Fn(&ImageReference) -> String,
) -> String {
    let platforms = index
        .manifests
        .iter()
        .map(|m| PlatformChoice {
            href: href(&reference.with_digest(m.digest.clone())),
            platform: m.platform.as_ref().map_or_else(|| "unknown platform".to_owned(), ToString::to_string),
            digest: m.digest.to_string(),
        })
        .collect();
    render(&ChoosePlatform {
        frame: Frame {
            title: format!("Pick a platform of {reference}"),
            image: reference.to_string(),
            command: None,
            trail: super::breadcrumbs::image(Here::root(), reference),
        },
        name: reference.to_string(),
        what,
        platforms,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::layer::listing::tests::listing_of;
    use crate::layer::tar::TypeFlag::{Dir, File};

    /// Markup and both quotes, without a `/`.
    pub const EVIL: &str = "<script>alert(\"x\")'";

    /// Two layers: the second deletes `etc/secret`, overwrites `etc/passwd` and adds
    /// a file with a registry-chosen name.
    pub fn two_layers() -> (ImageReference, Vec<DownloadLink>, MergedFs) {
        let evil = format!("etc/{EVIL}");
        let fs = MergedFs::new(vec![
            Arc::new(listing_of(&[
                ("etc/", Dir, 0, ""),
                ("etc/passwd", File, 100, ""),
                ("etc/secret", File, 40, ""),
                ("big", File, 9000, ""),
            ])),
            Arc::new(listing_of(&[
                ("etc/.wh.secret", File, 0, ""),
                ("etc/passwd", File, 120, ""),
                (&evil, File, 5, ""),
            ])),
        ])
        .unwrap();
        let reference: ImageReference = "r.io/a/b:v1".parse().unwrap();
        let layers = (1..=2)
            .map(|n| DownloadLink {
                image: reference.clone(),
                digest: crate::digest::Digest::of(crate::digest::Algorithm::Sha256, &[n]),
                layer: n as u32,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            })
            .collect();
        (reference, layers, fs)
    }

    /// No markup from [`EVIL`] survives, and links carry `&` escaped once.
    pub fn assert_escaped(html: &str) {
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("&amp;amp;"), "{html}");
        for href in html.split("href=\"").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]) {
            assert!(!href.contains('<') && !href.contains('\''), "{href}");
            assert!(href.replace("&amp;", "").find('&').is_none(), "{href}");
        }
    }

    #[test]
    fn a_folder_strikes_through_what_later_layers_hid_with_their_layer() {
        let (reference, layers, fs) = two_layers();
        let image = MergedImage { reference: &reference, layers: &layers, fs: &fs };
        let html = merged_dir(&image, &LayerPath::from_clean(b"etc"), 1).unwrap();
        assert_escaped(&html);
        assert!(html.contains("<table id=\"merged\">"), "{html}");
        // The secret: struck through, deleted by layer 2, its layer's entry and bytes linked.
        let q1 = crate::layer::link::blob_query(&layers[0]).replace('&', "&amp;");
        let secret = "<tr class=\"hidden\"><td class=\"p\"><del><a href=\"../../layers/etc/secret?image=r.io%2Fa%2Fb%3Av1\">secret</a></del></td>";
        assert!(html.contains(secret), "{html}");
        assert!(html.contains(&format!("<a href=\"../../fs/etc/secret?{q1}\">layer 1</a> <a href=\"../../save/etc/secret?{q1}\">[save]</a></td><td>deleted by layer 2</td>")), "{html}");
        // passwd: layer 2's is seen, layer 1's overwritten.
        assert!(html.contains("<td>overwritten by layer 2</td>"), "{html}");
        assert_eq!(html.matches("<del>").count(), 2, "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        let root = merged_dir(&image, &LayerPath::root(), 1).unwrap();
        assert!(root.contains("<a href=\"../layers/etc/?image=r.io%2Fa%2Fb%3Av1\">etc/</a>"), "{root}");
        assert!(root.contains("<h1>The merged filesystem of <code>r.io/a/b:v1</code></h1>"), "{root}");
        assert!(html.contains("<h1><code>/etc</code> in <code>r.io/a/b:v1</code></h1>"), "{html}");
        assert!(root.contains("<form method=\"get\" action=\"../layers/\""), "{root}");
        assert_eq!(merged_dir(&image, &LayerPath::root(), 2).unwrap_err().status(), http::StatusCode::NOT_FOUND);
    }

    #[test]
    fn an_entry_page_lists_every_layers_version() {
        let (reference, layers, fs) = two_layers();
        let image = MergedImage { reference: &reference, layers: &layers, fs: &fs };
        let html = merged_entry(&image, &LayerPath::from_clean(b"etc/passwd"), 1).unwrap();
        assert_escaped(&html);
        assert!(html.contains("<table id=\"versions\">"), "{html}");
        assert_eq!(html.matches("[save]").count(), 2, "{html}");
        assert!(html.contains("overwritten by layer 2") && html.contains("in the image"), "{html}");
        assert!(html.contains("<a href=\"../../layers/etc/?image=r.io%2Fa%2Fb%3Av1\">etc</a>"), "{html}");
    }

    #[test]
    fn a_search_finds_hidden_versions_in_every_layer() {
        let (reference, layers, fs) = two_layers();
        let image = MergedImage { reference: &reference, layers: &layers, fs: &fs };
        let html = merged_search(&image, &Search::parse("SECRET").unwrap(), 1).unwrap();
        assert_escaped(&html);
        assert!(html.contains("<p id=\"hits\">1 entry matches"), "{html}");
        assert!(html.contains("deleted by layer 2") && html.contains(">layer 1</a>"), "{html}");
        assert!(html.contains("value=\"secret\""), "{html}");
        let html = merged_search(&image, &Search::parse("script").unwrap(), 1).unwrap();
        assert_escaped(&html);
        assert!(html.contains("&lt;script&gt;") && html.contains(">layer 2</a>"), "{html}");
    }

    #[test]
    fn an_index_asks_for_a_platform() {
        let json = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
          {"mediaType":"x","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":7,
           "platform":{"architecture":"\"><script>","os":"linux"}}]}"#;
        let (_, manifest) = crate::manifest::parse(None, json.as_bytes()).unwrap();
        let crate::manifest::Manifest::Index(index) = manifest else { panic!("not an index") };
        let reference: ImageReference = "r.io/a/b:v1".parse().unwrap();
        let html = choose_platform(&reference, &index, "the merged filesystem", |r| {
            Here::root().merged(r, &LayerPath::root(), true)
        });
        assert_escaped(&html);
        assert!(html.contains("<a href=\"./layers/?image=r.io%2Fa%2Fb%3Av1%40sha256%3A3333"), "{html}");
    }
}
