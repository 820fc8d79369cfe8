//! The pages about one layer: its files by size, one folder, one entry, and the page of
//! a blob that is not a layer. The four pages share their head, notes, rows and
//! budgets, so they stay together; the widgets other pages share too are in `parts.rs`.

use askama::Template;

use super::budget::{self, encoded_len, page_range, page_starts, row_cost, shorten};
use super::parts::{kind_text, mode, Crumbs, PageNav};
use super::text::{display_name, display_path, human_size, utc};
use super::{render, Frame};
use crate::download::DownloadLink;
use crate::error::Error;
use crate::explore::layers::Preview;
use crate::image::search::Search;
use crate::layer::decompress::Compression;
use crate::layer::entry::{self, Kind, NameIssue};
use crate::layer::link::{names_blob_alone, Here, LayerPath};
use crate::layer::listing::{Child, EntryRef, Listing, Lookup};
use crate::layer::preview::{self, PREVIEW_BYTES};
use crate::reference::Repository;

/// Most rows on one page of a layer's file list or a folder (fewer where the rows
/// would pass the page's byte budget).
pub const FILES_PER_PAGE: usize = budget::ROWS_PER_PAGE;

/// The title of a layer's page streamed on a first visit.
pub fn reading_title(link: &DownloadLink) -> String {
    layer_title(link)
}

/// A layer's name for headings: `layer 2 of team/app:v1`, or for a blob named alone
/// (explore's links) `blob sha256:0b342bf7e74f of team/app`.
fn layer_title(link: &DownloadLink) -> String {
    if names_blob_alone(link) {
        let short = &link.digest.as_str()[..link.digest.as_str().len().min(19)];
        return format!("blob {short} of {}", Repository::from(&link.image));
    }
    format!("layer {} of {}", link.layer, link.image)
}

/// The text of the link back up from a layer's pages: to the image's layers, or for a
/// blob named alone to its repository's tags.
pub(super) fn up_text(link: &DownloadLink) -> String {
    if names_blob_alone(link) {
        return format!("tags of {}", Repository::from(&link.image));
    }
    format!("layers of {}", link.image)
}

/// The heading of a layer's page.
enum Heading {
    /// `Files of layer 2 of team/app:v1`.
    Files(String),
    /// `/etc/motd in layer 2 of team/app:v1`.
    Entry { path: String, title: String },
}

/// The heading and links every page about a layer starts with (`layer_header.html`).
struct LayerHead {
    heading: Heading,
    image_href: String,
    /// The text of the link to `image_href`.
    up_text: String,
    files_href: String,
    browse_href: String,
    download_href: String,
    digest: String,
    media_type: String,
}

impl LayerHead {
    fn new(link: &DownloadLink, here: Here, heading: Heading) -> LayerHead {
        LayerHead {
            heading,
            image_href: here.image(link),
            up_text: up_text(link),
            files_href: here.files(link, 1),
            browse_href: here.fs(link, &LayerPath::root(), true),
            download_href: here.download(link),
            digest: link.digest.to_string(),
            media_type: link.media_type.clone(),
        }
    }
}

/// Notes on how reading the layer went (`listing_notes.html`): where it stopped, a
/// compression other than declared, names that had to be changed.
struct Notes {
    stopped: Option<String>,
    entries: usize,
    /// The compression declared and the one found, when they differ.
    compression: Option<(&'static str, &'static str)>,
    odd_names: usize,
}

impl Notes {
    fn new(link: &DownloadLink, listing: &Listing) -> Notes {
        let summary = &listing.summary;
        let declared = Compression::declared(link.format());
        let compression = match (declared, summary.compression) {
            (Some(declared), Some(found)) if declared != found => Some((declared.name(), found.name())),
            _ => None,
        };
        Notes {
            stopped: summary.stopped.clone(),
            entries: listing.len(),
            compression,
            odd_names: listing.odd_name_count(),
        }
    }
}

/// The name cell of a row.
enum Cell {
    /// A link to the entry's page.
    Link { href: String, text: String },
    /// A whiteout or opaque marker: what it deletes, its own name on hover.
    Deleted { title: String, text: String },
}

/// One row of the file list or a folder (`row.html`).
struct Row {
    cell: Cell,
    /// Why the raw name had to be changed, and the raw name (the ⚠'s hover).
    warn: Option<String>,
    /// Exact and human size, for what has a size.
    size: Option<(u64, String)>,
    /// The type column.
    kind: String,
    /// The mode, octal and `-rwxr-xr-x`; none for a folder without an entry.
    mode: Option<(String, String)>,
}

impl Row {
    fn new(cell: Cell, e: &EntryRef<'_>) -> Row {
        let size = matches!(e.entry.kind, Kind::File | Kind::Sparse | Kind::Other(_))
            .then(|| (e.entry.size, human_size(e.entry.size)));
        Row { cell, warn: name_warning(e), size, kind: kind_text(e), mode: Some(mode(e)) }
    }
}

/// The hover of the ⚠ after an entry whose raw name had to be changed.
fn name_warning(e: &EntryRef<'_>) -> Option<String> {
    let why = match e.entry.issue {
        NameIssue::None => return None,
        NameIssue::Absolute => "absolute name",
        NameIssue::ClimbsOut => "name climbs out of the layer",
    };
    let raw = e.raw_name().map_or_else(String::new, |raw| String::from_utf8_lossy(raw).into_owned());
    Some(format!("{why}: {}", shorten(&raw)))
}

#[derive(Template)]
#[template(path = "layer_files.html", config = "src/pages/askama.toml")]
struct LayerFiles {
    frame: Frame,
    head: LayerHead,
    notes: Notes,
    nav: Option<PageNav>,
    entries: usize,
    file_bytes: String,
    blob_bytes: String,
    compression: &'static str,
    tar_bytes: String,
    rows: Vec<Row>,
    /// The search, when the list is one.
    search: Option<FileSearch>,
    /// The hidden fields of the search form.
    query: BlobFields,
    /// Where the search form submits to.
    files_action: String,
    /// The layer's entries marked added, modified or removed against the layers below:
    /// a whole-image page, since only the merged view knows those layers.
    changes_href: Option<String>,
}

/// A search in a layer's file list: the text typed back, and how many entries match.
struct FileSearch {
    text: String,
    matching: usize,
}

/// The fields that name a blob, for a GET form's hidden inputs.
struct BlobFields {
    image: String,
    digest: String,
    layer: u32,
    mt: String,
}

impl BlobFields {
    fn of(link: &DownloadLink) -> BlobFields {
        BlobFields {
            image: link.image.to_string(),
            digest: link.digest.to_string(),
            layer: link.layer,
            mt: link.media_type.clone(),
        }
    }
}

/// The most bytes the row of entry `e` can take, its link from `here` included.
fn entry_cost(link: &DownloadLink, here: Here, e: &EntryRef<'_>) -> usize {
    let to_root = here.fs(link, &LayerPath::root(), true).len();
    row_cost(to_root + encoded_len(e.path()) + 1, &[e.path(), e.path(), e.link(), e.raw_name().unwrap_or_default()])
}

/// The entries of a layer's file list, largest first: all, or those `search` finds.
fn listed<'a>(listing: &'a Listing, search: Option<&'a Search>) -> impl Iterator<Item = EntryRef<'a>> + 'a {
    listing.by_size().filter(move |e| search.is_none_or(|s| s.matches(e.path())))
}

/// Where each page of a layer's file list starts, and how many entries it lists.
fn file_page_starts(link: &DownloadLink, listing: &Listing, search: Option<&Search>) -> (Vec<usize>, usize) {
    let mut count = 0;
    let starts = page_starts(listed(listing, search).map(|e| {
        count += 1;
        entry_cost(link, Here::root(), &e)
    }));
    (starts, count)
}

/// How many pages a layer's file list has (of the entries `search` finds, with one).
pub fn file_pages(link: &DownloadLink, listing: &Listing, search: Option<&Search>) -> usize {
    file_page_starts(link, listing, search).0.len()
}

/// `files`: every entry of a layer, largest first, [`FILES_PER_PAGE`] to a page (fewer
/// where they would pass the page's byte budget); page `page` from 1. With `search`,
/// only the entries whose path it matches.
pub fn layer_files(link: &DownloadLink, listing: &Listing, page: usize, search: Option<&Search>) -> String {
    let here = Here::root();
    let title = layer_title(link);
    let s = &listing.summary;
    let (starts, matching) = file_page_starts(link, listing, search);
    let rows = page_range(&starts, matching, page).unwrap_or_default();
    let rows = listed(listing, search)
        .skip(rows.start)
        .take(rows.len())
        .map(|e| {
            let cell = match e.entry.kind {
                Kind::Whiteout | Kind::Opaque => {
                    let target = entry::whiteout_target(e.entry.kind, e.path()).unwrap_or_default();
                    let slash = if e.entry.kind == Kind::Opaque && !target.is_empty() { "/" } else { "" };
                    Cell::Deleted {
                        title: shorten(&display_path(e.path())).into_owned(),
                        text: format!("{}{slash}", shorten(&display_path(&target))),
                    }
                }
                kind => Cell::Link {
                    href: here.fs(link, &LayerPath::from_clean(e.path()), kind == Kind::Dir),
                    text: shorten(&display_path(e.path())).into_owned(),
                },
            };
            Row::new(cell, &e)
        })
        .collect();
    render(&LayerFiles {
        frame: Frame {
            title: title.clone(),
            image: link.image.to_string(),
            command: Some(super::commands::layer_files(link)),
            trail: super::breadcrumbs::layer(here, link),
        },
        head: LayerHead::new(link, here, Heading::Files(title)),
        notes: Notes::new(link, listing),
        nav: PageNav::new(page, starts.len(), |p| match search {
            Some(search) => format!("{}&search={}", here.files(link, p), search.encoded()),
            None => here.files(link, p),
        }),
        search: search.map(|s| FileSearch { text: s.text(), matching }),
        query: BlobFields::of(link),
        files_action: here.files_search(),
        changes_href: (!names_blob_alone(link)).then(|| here.changes(&link.image, link.layer)),
        entries: listing.len(),
        file_bytes: human_size(listing.file_bytes()),
        blob_bytes: human_size(s.compressed_bytes),
        compression: s.compression.map_or("empty", Compression::name),
        tar_bytes: human_size(s.tar_bytes),
        rows,
    })
}

#[derive(Template)]
#[template(path = "layer_dir.html", config = "src/pages/askama.toml")]
struct LayerDir {
    frame: Frame,
    head: LayerHead,
    notes: Notes,
    crumbs: Crumbs,
    opaque: bool,
    nav: Option<PageNav>,
    rows: Vec<Row>,
}

/// The frame and heading of a folder's or an entry's page.
fn entry_frame(link: &DownloadLink, here: Here, path: &LayerPath, command: String) -> (Frame, LayerHead) {
    let title = layer_title(link);
    let frame = Frame {
        title: format!("{} in {title}", path.display()),
        image: link.image.to_string(),
        command: Some(command),
        trail: super::breadcrumbs::layer(here, link),
    };
    (frame, LayerHead::new(link, here, Heading::Entry { path: path.display(), title }))
}

/// One row of a folder.
fn child_row(link: &DownloadLink, here: Here, dir: &LayerPath, child: &Child<'_>) -> Row {
    let name = shorten(&display_name(child.name)).into_owned();
    let path = dir.join(child.name);
    let Some(e) = child.entry else {
        return Row {
            cell: Cell::Link { href: here.fs(link, &path, true), text: format!("{name}/") },
            warn: None,
            size: None,
            kind: "dir (no entry of its own)".to_owned(),
            mode: None,
        };
    };
    let cell = match e.entry.kind {
        Kind::Whiteout => {
            let target = entry::whiteout_target(Kind::Whiteout, e.path()).unwrap_or_default();
            Cell::Deleted { title: name, text: shorten(&display_name(entry::name(&target))).into_owned() }
        }
        Kind::Dir => Cell::Link { href: here.fs(link, &path, true), text: format!("{name}/") },
        _ => Cell::Link { href: here.fs(link, &path, false), text: name },
    };
    Row::new(cell, &e)
}

/// The most bytes the row of `child` can take on its folder's page.
fn child_cost(link: &DownloadLink, here: Here, dir: &LayerPath, child: &Child<'_>) -> usize {
    let to_dir = here.fs(link, dir, true).len();
    let (link_name, raw) = child.entry.map_or((&[][..], &[][..]), |e| (e.link(), e.raw_name().unwrap_or_default()));
    row_cost(to_dir + encoded_len(child.name) + 1, &[child.name, child.name, link_name, raw])
}

/// Where each page of folder `dir` starts, and its children.
fn dir_page_starts<'a>(link: &DownloadLink, listing: &'a Listing, dir: &LayerPath) -> (Vec<usize>, Vec<Child<'a>>) {
    let here = Here::dir(dir);
    let children = listing.children(dir.as_bytes());
    (page_starts(children.iter().map(|child| child_cost(link, here, dir, child))), children)
}

/// How many pages folder `dir` has.
pub fn dir_pages(link: &DownloadLink, listing: &Listing, dir: &LayerPath) -> usize {
    dir_page_starts(link, listing, dir).0.len()
}

/// `fs/DIR/`: the names in one directory of a layer, paginated like the file list;
/// page `page` from 1.
pub fn layer_dir(link: &DownloadLink, listing: &Listing, dir: &LayerPath, page: usize) -> String {
    let here = Here::dir(dir);
    let (frame, head) = entry_frame(link, here, dir, super::commands::layer_files(link));
    let (starts, children) = dir_page_starts(link, listing, dir);
    let shown = page_range(&starts, children.len(), page).unwrap_or_default();
    let rows = children[shown].iter().map(|child| child_row(link, here, dir, child)).collect();
    let page_href = |p: usize| {
        let href = here.fs(link, dir, true);
        if p > 1 {
            format!("{href}&page={p}")
        } else {
            href
        }
    };
    render(&LayerDir {
        frame,
        head,
        notes: Notes::new(link, listing),
        crumbs: Crumbs::new(link, here, dir),
        opaque: listing.is_opaque(dir.as_bytes()),
        nav: PageNav::new(page, starts.len(), page_href),
        rows,
    })
}

/// Where a link points (`target.html`).
enum Target {
    /// Out of the layer's root.
    Outside,
    /// Not in this layer.
    Missing(String),
    /// An entry or a folder of this layer.
    Here { href: String, shown: String },
}

/// What an entry leads to besides itself.
enum PointsTo {
    Symlink(Target),
    HardLink(Target),
    /// A whiteout or opaque marker: what it does, and to what.
    Marker {
        what: &'static str,
        target: String,
    },
}

/// A file's first bytes, as shown.
enum Shown {
    Failed(String),
    Text { heading: String, text: String },
    Hex { heading: String, text: String },
}

#[derive(Template)]
#[template(path = "layer_file.html", config = "src/pages/askama.toml")]
struct LayerFile {
    frame: Frame,
    head: LayerHead,
    notes: Notes,
    crumbs: Crumbs,
    /// The type and mode, as in a row.
    row: Row,
    human: String,
    size: u64,
    owner: String,
    modified: String,
    raw_name: Option<String>,
    points_to: Option<PointsTo>,
    /// The save link and the size saved.
    save: Option<(String, String)>,
    preview: Option<Shown>,
}

/// `fs/PATH`: one entry of a layer, and for a file its first bytes and a link saving it.
/// `preview` is what reading the file gave (`None` when not read: not a file, or HEAD).
pub fn layer_file(
    link: &DownloadLink,
    listing: &Listing,
    e: EntryRef<'_>,
    path: &LayerPath,
    preview: Option<Result<Preview, Error>>,
) -> String {
    let here = Here::file(path);
    let (frame, head) = entry_frame(link, here, path, super::commands::layer_file(link, path));
    let target = |target: &[u8]| -> Target {
        let target_path = LayerPath::from_clean(target);
        let shown = display_path(target);
        match listing.lookup(target) {
            Lookup::Missing => Target::Missing(shown),
            Lookup::ImpliedDir => Target::Here { href: here.fs(link, &target_path, true), shown },
            Lookup::Entry(t) => Target::Here { href: here.fs(link, &target_path, t.entry.kind == Kind::Dir), shown },
        }
    };
    let points_to = match e.entry.kind {
        Kind::Symlink => {
            Some(PointsTo::Symlink(entry::symlink_target(e.path(), e.link()).map_or(Target::Outside, |t| target(&t))))
        }
        Kind::HardLink => Some(PointsTo::HardLink(target(&entry::clean(e.link()).0))),
        Kind::Whiteout | Kind::Opaque => {
            let marked = entry::whiteout_target(e.entry.kind, e.path()).unwrap_or_default();
            let what = if e.entry.kind == Kind::Opaque { "hides what the layers below have in" } else { "deletes" };
            Some(PointsTo::Marker { what, target: display_path(&marked) })
        }
        _ => None,
    };
    let save = listing.content_of(e.index).map(|content| (here.save(link, path), human_size(content.entry.size)));
    let row = Row::new(Cell::Link { href: String::new(), text: String::new() }, &e);
    render(&LayerFile {
        frame,
        head,
        notes: Notes::new(link, listing),
        crumbs: Crumbs::new(link, here, path),
        row,
        human: human_size(e.entry.size),
        size: e.entry.size,
        owner: format!("{}:{}", e.entry.uid, e.entry.gid),
        modified: utc(e.entry.mtime),
        raw_name: e.raw_name().map(|raw| String::from_utf8_lossy(raw).into_owned()),
        points_to,
        save,
        preview: preview.map(shown),
    })
}

/// The file's first bytes: text as it is, anything else as a hex dump.
fn shown(preview: Result<Preview, Error>) -> Shown {
    let preview = match preview {
        Ok(preview) => preview,
        Err(error) => return Shown::Failed(error.message().to_owned()),
    };
    let heading = if preview.complete {
        "Contents".to_owned()
    } else {
        format!("The first {}", human_size(PREVIEW_BYTES as u64))
    };
    match preview::as_text(&preview.bytes, preview.complete) {
        Some(text) => Shown::Text { heading, text: text.to_owned() },
        None => Shown::Hex { heading, text: preview::hex_dump(&preview.bytes) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::listing::{ListingBuilder, Summary};
    use crate::layer::tar::{Header, TypeFlag, Visitor};

    /// Markup and both quotes, without a `/` (a name cannot have one).
    const EVIL: &str = "<script>alert(\"x\")'";

    /// A listing with registry-chosen names: markup and quotes in a folder, a file, a
    /// symlink's target and a whiteout, and a note on where reading stopped.
    fn evil_listing() -> Listing {
        let mut b = ListingBuilder::default();
        let dir = format!("{EVIL}/");
        let file = format!("{EVIL}/{EVIL}.txt");
        let link = format!("{EVIL}/link");
        let whiteout = format!("{EVIL}/.wh.{EVIL}");
        b.entry(Header::sample(&dir, TypeFlag::Dir, 0, "", 0));
        b.entry(Header::sample(&file, TypeFlag::File, 5, "", 512));
        b.entry(Header::sample(&link, TypeFlag::Symlink, 0, EVIL, 1536));
        b.entry(Header::sample(&whiteout, TypeFlag::File, 0, "", 2048));
        b.finish(Summary { stopped: Some(format!("stopped at {EVIL}")), ..Summary::default() })
    }

    fn evil_link() -> DownloadLink {
        DownloadLink {
            image: "r.io/a/b:v1".parse().unwrap(),
            digest: crate::digest::Digest::of(crate::digest::Algorithm::Sha256, b""),
            layer: 1,
            media_type: format!("application/vnd.oci.image.layer.v1.tar+gzip{EVIL}"),
        }
    }

    /// No markup from `EVIL` survives, and it is there escaped.
    fn assert_escaped(html: &str) {
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("\"x\""), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&#39;"), "{html}");
        // Links carry names percent-encoded, and `&` between query parameters escaped
        // once: never `&amp;amp;`, never a bare `&`.
        assert!(!html.contains("&amp;amp;"), "{html}");
        for href in html.split("href=\"").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]) {
            assert!(!href.contains('<') && !href.contains('\''), "{href}");
            assert!(href.replace("&amp;", "").find('&').is_none(), "{href}");
        }
    }

    #[test]
    fn registry_strings_are_escaped_on_every_layer_page() {
        let (link, listing) = (evil_link(), evil_listing());
        assert_escaped(&layer_files(&link, &listing, 1, None));
        let search = Search::parse(EVIL).unwrap();
        let html = layer_files(&link, &listing, 1, Some(&search));
        assert_escaped(&html);
        assert!(html.contains("<p id=\"hits\">4 entries match"), "{html}");
        let dir = LayerPath::from_clean(EVIL.as_bytes());
        let html = layer_dir(&link, &listing, &dir, 1);
        assert_escaped(&html);
        assert!(html.contains("%3Cscript%3Ealert%28%22x%22%29%27/link?image="), "{html}");
        let file = LayerPath::from_clean(format!("{EVIL}/{EVIL}.txt").as_bytes());
        let Lookup::Entry(e) = listing.lookup(file.as_bytes()) else { panic!("no file") };
        let preview = Preview { bytes: EVIL.as_bytes().to_vec(), complete: true };
        let html = layer_file(&link, &listing, e, &file, Some(Ok(preview)));
        assert_escaped(&html);
        assert!(html.contains("<pre id=\"preview\" class=\"text\">&lt;script&gt;"), "{html}");
        let html = layer_file(&link, &listing, e, &file, Some(Err(Error::bad_gateway(EVIL))));
        assert_escaped(&html);
        let symlink = LayerPath::from_clean(format!("{EVIL}/link").as_bytes());
        let Lookup::Entry(e) = listing.lookup(symlink.as_bytes()) else { panic!("no link") };
        assert_escaped(&layer_file(&link, &listing, e, &symlink, None));
        let head = crate::explore::layers::BlobHead {
            bytes: bytes::Bytes::from(serde_json::json!({ "a": EVIL }).to_string()),
            complete: true,
        };
        let html = super::super::not_a_layer(&link, Here::root(), Some(Ok(head)));
        assert_escaped(&html);
        assert!(html.contains("&quot;a&quot;: &quot;&lt;script&gt;"), "{html}");
        assert_escaped(&super::super::not_a_layer(&link, Here::root(), Some(Err(Error::bad_gateway(EVIL)))));
    }

    #[test]
    fn streamed_parts_escape_and_join_into_the_whole_page() {
        let (link, listing) = (evil_link(), evil_listing());
        let whole = layer_files(&link, &listing, 1, None);
        let start = super::super::streamed_start(&reading_title(&link), &link.image.to_string());
        assert!(start.ends_with("<main>\n<div class=\"progress\" id=\"progress\">\n"), "{start}");
        let end = super::super::streamed_end(&whole);
        // The trail comes with the rest of the page, under the progress.
        assert!(end.starts_with("</div>\n<nav id=\"trail\""), "{end}");
        assert!(end.contains("</nav>\n<h1>Files of "), "{end}");
        assert!(whole.ends_with(&end["</div>\n".len()..]));
        let failure = super::super::streamed_failure(&Error::bad_gateway(EVIL));
        assert!(failure.starts_with("</div>\n<h1 class=\"error\">502 Bad Gateway</h1>"), "{failure}");
        assert_escaped(&failure);
        assert_eq!(
            super::super::progress_line(512, 1024, 3),
            "<p>Reading the layer for the first time: 512 B of 1.0 KiB (50%), 3 entries so far…</p>\n"
        );
        assert_eq!(
            super::super::progress_line(5, 0, 1),
            "<p>Reading the layer for the first time: 5 B, 1 entry so far…</p>\n"
        );
    }
}
