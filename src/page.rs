//! The HTML pages: the form, an image's layers or platforms, a layer's files (by size,
//! by folder, one file), blobs that are not layers, and errors.
//!
//! Every page is the one [`layout`] around a little content. Every string that comes from
//! a registry or a user passes through [`escape`]; every link is relative, so the pages
//! work unchanged when a reverse proxy serves layerpipe under a path prefix.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::download::{DownloadLink, LayerFormat};
use crate::error::Error;
use crate::layer::decompress::Compression;
use crate::layer::entry::{self, Kind, NameIssue};
use crate::layer::inspect::{BlobHead, Preview};
use crate::layer::link::{Here, LayerPath};
use crate::layer::listing::{EntryRef, Listing, Lookup};
use crate::layer::preview::{self, PREVIEW_BYTES};
use crate::manifest::{FetchedManifest, ImageIndex, ImageManifest, Manifest};
use crate::reference::ImageReference;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A size in binary units, as people read it: `512 B`, `25.2 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}\
code{font-family:ui-monospace,monospace;font-size:.9em}\
table{border-collapse:collapse;margin-top:1rem}th,td{padding:.25rem .6rem;text-align:left;border-bottom:1px solid #ddd}\
td.n,th.n{text-align:right;white-space:nowrap}input[name=image]{width:32rem;max-width:90%}.error{color:#a00}dt{font-weight:bold}\
.warn{color:#a60}del{color:#a00}td.p{overflow-wrap:anywhere}nav{margin:.5rem 0}pre{background:#f6f6f6;padding:.5rem;overflow:auto;max-width:100%}\
.progress{position:relative;min-height:1.6em}\
.progress p{position:absolute;top:0;left:0;right:0;margin:0;background:#fff;color:#555}";

/// The page frame: title, the reference form (pre-filled with `image`), and `content`.
fn layout(title: &str, image: &str, content: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · layerpipe</title><style>{STYLE}</style></head>\n<body>\
<header><form method=\"get\" action=\"./\"><a href=\"./\">layerpipe</a> \
<input name=\"image\" value=\"{image}\" placeholder=\"namespace/repo:tag\" aria-label=\"image reference\"> \
<button type=\"submit\">show layers</button></form></header>\n<main>\n{content}</main></body></html>\n",
        title = escape(title),
        image = escape(image),
    )
}

/// What follows `<main>` in a page that [`layout`] made: its content and closing tags.
fn after_main(page: &str) -> &str {
    page.split_once("<main>\n").map_or(page, |(_, rest)| rest)
}

/// The first part of a page that streams while a layer is read: the frame, titled,
/// and the opening of the progress block. [`progress_line`]s follow, then
/// [`streamed_end`].
pub fn streamed_start(title: &str, image: &str) -> String {
    let page = layout(title, image, "");
    let head = page.split_once("<main>\n").map_or(page.as_str(), |(head, _)| head);
    format!("{head}<main>\n<div class=\"progress\" id=\"progress\">\n")
}

/// One line of progress: blob bytes read (of `total`, when known) and entries so far.
/// Each line is drawn over the one before it (CSS: same place, opaque), so the page
/// shows the latest without script. (`:last-child` cannot do it: browsers match it only
/// once the parent has finished loading.)
pub fn progress_line(bytes: u64, total: u64, entries: u64) -> String {
    let of = if total > 0 {
        format!(" of {} ({}%)", human_size(total), bytes.saturating_mul(100) / total)
    } else {
        String::new()
    };
    format!("<p>Reading the layer for the first time: {}{of}, {entries} entries so far…</p>\n", human_size(bytes))
}

/// The last line of progress: the whole layer read.
pub fn progress_done(bytes: u64, entries: u64) -> String {
    format!("<p id=\"progress-done\">Read the whole layer: {}, {entries} entries.</p>\n", human_size(bytes))
}

/// The rest of a streamed page: the progress block closed, then what follows `<main>`
/// in `page` (the page as it would have been sent whole).
pub fn streamed_end(page: &str) -> String {
    format!("</div>\n{}", after_main(page))
}

/// The rest of a streamed page whose reading failed: the reason, and the frame closed.
pub fn streamed_failure(e: &Error) -> String {
    format!(
        "</div>\n<h1 class=\"error\">{}</h1>\n<p class=\"error\" id=\"reason\">{}</p>\n</main></body></html>\n",
        e.status(),
        escape(e.message())
    )
}

/// `/` without an image: the form alone.
pub fn home() -> String {
    layout(
        "layerpipe",
        "",
        "<p>Type an image reference such as <code>library/alpine:3.20</code> or \
<code>ghcr.io/owner/app@sha256:…</code> to see its layers and download them.</p>\n",
    )
}

/// An error page: the status and the one-line reason.
pub fn error(e: &Error, image: &str) -> String {
    let status = e.status();
    let content = format!(
        "<h1 class=\"error\">{} {}</h1>\n<p class=\"error\" id=\"reason\">{}</p>\n",
        status.as_u16(),
        escape(status.canonical_reason().unwrap_or("")),
        escape(e.message())
    );
    layout(&format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("error")), image, &content)
}

/// The page for a fetched manifest: its layers, or for an index its platforms.
pub fn image(reference: &ImageReference, fetched: &FetchedManifest) -> String {
    let name = reference.to_string();
    let mut content = format!(
        "<h1><code>{}</code></h1>\n<dl>\n<dt>manifest</dt><dd><code id=\"manifest-digest\">{}</code></dd>\n\
<dt>media type</dt><dd>{}</dd>\n",
        escape(&name),
        escape(fetched.digest.as_str()),
        escape(&fetched.media_type)
    );
    match &fetched.manifest {
        Manifest::Image(manifest) => layers(&mut content, reference, manifest),
        Manifest::Index(index) => platforms(&mut content, reference, index),
    }
    layout(&name, &name, &content)
}

fn layers(out: &mut String, reference: &ImageReference, manifest: &ImageManifest) {
    let total = manifest.layers.iter().map(|l| l.size).fold(0, u64::saturating_add);
    let _ = write!(
        out,
        "<dt>config</dt><dd><code id=\"config-digest\"><a href=\"{}\">{}</a></code></dd>\n</dl>\n\
<p>{} layers, {} in all.</p>\n<table id=\"layers\"><thead><tr><th class=\"n\">#</th><th class=\"n\">size</th>\
<th>media type</th><th>digest</th></tr></thead><tbody>\n",
        // The config is a blob like the layers; its page shows it (layer number 1 only
        // fills the link's required field: it names a download of it `…-1.bin`).
        escape(&Here::root().files(
            &DownloadLink {
                image: reference.clone(),
                digest: manifest.config.digest.clone(),
                layer: 1,
                media_type: manifest.config.media_type.clone(),
            },
            1
        )),
        escape(manifest.config.digest.as_str()),
        manifest.layers.len(),
        human_size(total)
    );
    for (i, layer) in manifest.layers.iter().enumerate() {
        let number = i as u32 + 1;
        let link = DownloadLink {
            image: reference.clone(),
            digest: layer.digest.clone(),
            layer: number,
            media_type: layer.media_type.clone(),
        };
        // The size leads to the layer's files by size, the digest to its folders.
        let _ = writeln!(
            out,
            "<tr><td class=\"n\">{number}</td><td class=\"n\" title=\"{size} bytes\"><a href=\"{files}\">{human}</a></td>\
<td>{mt}</td><td><code><a href=\"{browse}\">{digest}</a></code> <a href=\"{href}\">[x]</a></td></tr>",
            size = layer.size,
            files = escape(&Here::root().files(&link, 1)),
            human = human_size(layer.size),
            mt = escape(&layer.media_type),
            browse = escape(&Here::root().fs(&link, &LayerPath::root(), true)),
            digest = escape(layer.digest.as_str()),
            href = escape(&link.href()),
        );
    }
    out.push_str("</tbody></table>\n");
}

fn platforms(out: &mut String, reference: &ImageReference, index: &ImageIndex) {
    let _ = write!(
        out,
        "</dl>\n<p>An index of {} manifests: pick a platform.</p>\n<table id=\"platforms\"><thead><tr><th class=\"n\">#</th>\
<th>platform</th><th>media type</th><th class=\"n\">size</th><th>digest</th></tr></thead><tbody>\n",
        index.manifests.len()
    );
    for (i, entry) in index.manifests.iter().enumerate() {
        let platform = entry.platform.as_ref().map_or_else(|| "unknown platform".to_owned(), ToString::to_string);
        let href =
            format!("./?image={}", crate::query::encode(&reference.with_digest(entry.digest.clone()).to_string()));
        let _ = writeln!(
            out,
            "<tr><td class=\"n\">{n}</td><td><a href=\"{href}\">{platform}</a></td><td>{mt}</td>\
<td class=\"n\" title=\"{size} bytes\">{human}</td><td><code>{digest}</code></td></tr>",
            n = i + 1,
            href = escape(&href),
            platform = escape(&platform),
            mt = escape(&entry.media_type),
            size = entry.size,
            human = human_size(entry.size),
            digest = escape(entry.digest.as_str()),
        );
    }
    out.push_str("</tbody></table>\n");
}

/// Rows on one page of a layer's file list.
pub const FILES_PER_PAGE: usize = 10_000;

/// A layer's name for headings: `layer 2 of team/app:v1`.
/// The title of a layer's page streamed on a first visit.
pub fn reading_title(link: &DownloadLink) -> String {
    layer_title(link)
}

fn layer_title(link: &DownloadLink) -> String {
    format!("layer {} of {}", link.layer, link.image)
}

/// The heading and links every page about a layer starts with.
fn layer_header(out: &mut String, link: &DownloadLink, here: Here, heading: &str) {
    let _ = write!(
        out,
        "<h1>{heading}</h1>\n<nav id=\"layer-links\"><a href=\"{image}\">layers of {name}</a> · \
<a href=\"{files}\">files by size</a> · <a href=\"{browse}\">browse folders</a> · \
<a href=\"{download}\">download the layer</a></nav>\n<dl>\n<dt>digest</dt><dd><code>{digest}</code></dd>\n\
<dt>media type</dt><dd>{mt}</dd>\n</dl>\n",
        image = escape(&here.image(link)),
        name = escape(&link.image.to_string()),
        files = escape(&here.files(link, 1)),
        browse = escape(&here.fs(link, &LayerPath::root(), true)),
        download = escape(&here.download(link)),
        digest = escape(link.digest.as_str()),
        mt = escape(&link.media_type),
    );
}

/// Notes on how reading the layer went: where it stopped, a compression other than
/// declared, names that had to be changed.
fn listing_notes(out: &mut String, link: &DownloadLink, listing: &Listing) {
    let summary = &listing.summary;
    if let Some(stopped) = &summary.stopped {
        let _ = writeln!(
            out,
            "<p class=\"error\" id=\"stopped\">{} Shown: the {} entries read before that.</p>",
            escape(stopped),
            listing.len()
        );
    }
    let declared = Compression::declared(LayerFormat::from_media_type(&link.media_type));
    if let (Some(declared), Some(found)) = (declared, summary.compression) {
        if declared != found {
            let _ = writeln!(
                out,
                "<p class=\"warn\" id=\"compression\">The media type says {}, but the blob has {}; \
it was read as what it is.</p>",
                declared.name(),
                found.name()
            );
        }
    }
    if listing.odd_name_count() > 0 {
        let _ = writeln!(
            out,
            "<p class=\"warn\" id=\"odd-names\">{} entries have absolute names or names with <code>..</code> \
that climb out of the layer (Docker refuses to unpack such a layer); they are shown where they would land, \
marked ⚠.</p>",
            listing.odd_name_count()
        );
    }
}

/// A path for people: `/`-rooted, invalid UTF-8 and control characters shown as U+FFFD.
fn display_path(path: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(path);
    let shown: String = lossy.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
    format!("/{shown}")
}

/// A name for people, like [`display_path`] without the leading `/`.
fn display_name(name: &[u8]) -> String {
    display_path(name)[1..].to_owned()
}

/// An entry's type, as the listing's type column says it (escaped).
fn kind_text(e: &EntryRef<'_>) -> String {
    let link = || escape(&display_name(e.link())).into_owned();
    match e.entry.kind {
        Kind::File => "file".to_owned(),
        Kind::Dir => "dir".to_owned(),
        Kind::Symlink => format!("symlink → {}", link()),
        Kind::HardLink => format!("hard link → {}", link()),
        Kind::CharDevice => format!("char device {},{}", e.entry.device.0, e.entry.device.1),
        Kind::BlockDevice => format!("block device {},{}", e.entry.device.0, e.entry.device.1),
        Kind::Fifo => "fifo".to_owned(),
        Kind::Whiteout => "deleted (whiteout)".to_owned(),
        Kind::Opaque => "opaque dir (hides lower layers)".to_owned(),
        Kind::Sparse => "sparse file".to_owned(),
        Kind::Other(flag) => format!("tar type {}", escape(&(flag as char).escape_default().to_string())),
    }
}

/// The mode cell: `-rwxr-xr-x`, octal on hover.
fn mode_cell(e: &EntryRef<'_>) -> String {
    format!("<code title=\"{:04o}\">{}</code>", e.entry.mode, entry::mode_string(e.entry.kind, e.entry.mode))
}

/// The size cell: human-readable, exact bytes on hover; empty for what has no size.
fn size_cell(e: &EntryRef<'_>) -> String {
    match e.entry.kind {
        Kind::File | Kind::Sparse | Kind::Other(_) => {
            format!("<td class=\"n\" title=\"{} bytes\">{}</td>", e.entry.size, human_size(e.entry.size))
        }
        _ => "<td class=\"n\"></td>".to_owned(),
    }
}

/// The ⚠ after an entry whose raw name had to be changed.
fn name_warning(e: &EntryRef<'_>) -> String {
    let why = match e.entry.issue {
        NameIssue::None => return String::new(),
        NameIssue::Absolute => "absolute name",
        NameIssue::ClimbsOut => "name climbs out of the layer",
    };
    let raw = e.raw_name().map_or_else(String::new, |raw| String::from_utf8_lossy(raw).into_owned());
    format!(" <span class=\"warn\" title=\"{}: {}\">⚠</span>", why, escape(&raw))
}

/// `files`: every entry of a layer, largest first, [`FILES_PER_PAGE`] to a page.
pub fn layer_files(link: &DownloadLink, listing: &Listing, page: usize) -> String {
    let here = Here::root();
    let title = layer_title(link);
    let mut out = String::new();
    layer_header(&mut out, link, here, &format!("Files of {}", escape(&title)));
    let s = &listing.summary;
    let _ = writeln!(
        out,
        "<p id=\"summary\">{} entries, {} in files. Read {} of blob ({}), {} of tar.</p>",
        listing.len(),
        human_size(listing.file_bytes()),
        human_size(s.compressed_bytes),
        s.compression.map_or("empty", Compression::name),
        human_size(s.tar_bytes)
    );
    listing_notes(&mut out, link, listing);
    let pages = listing.len().div_ceil(FILES_PER_PAGE).max(1);
    let nav = page_nav(link, here, page, pages);
    out.push_str(&nav);
    out.push_str(
        "<table id=\"files\"><thead><tr><th>path</th><th class=\"n\">size</th><th>type</th><th>mode</th></tr>\
</thead><tbody>\n",
    );
    for e in listing.by_size().skip((page - 1) * FILES_PER_PAGE).take(FILES_PER_PAGE) {
        let path = LayerPath::from_clean(e.path());
        let cell = match e.entry.kind {
            Kind::Whiteout | Kind::Opaque => {
                let target = entry::whiteout_target(e.entry.kind, e.path()).unwrap_or_default();
                let slash = if e.entry.kind == Kind::Opaque && !target.is_empty() { "/" } else { "" };
                format!(
                    "<del title=\"{}\">{}{slash}</del>",
                    escape(&display_path(e.path())),
                    escape(&display_path(&target))
                )
            }
            kind => format!(
                "<a href=\"{}\">{}</a>",
                escape(&here.fs(link, &path, kind == Kind::Dir)),
                escape(&display_path(e.path()))
            ),
        };
        entry_row(&mut out, &cell, &e);
    }
    out.push_str("</tbody></table>\n");
    out.push_str(&nav);
    layout(&title, &link.image.to_string(), &out)
}

/// Links to the other pages of a long file list (nothing when there is one page).
fn page_nav(link: &DownloadLink, here: Here, page: usize, pages: usize) -> String {
    if pages == 1 {
        return String::new();
    }
    let mut nav = format!("<nav class=\"pages\">page {page} of {pages}");
    if page > 1 {
        let _ = write!(nav, " · <a href=\"{}\" rel=\"prev\">previous</a>", escape(&here.files(link, page - 1)));
    }
    if page < pages {
        let _ = write!(nav, " · <a href=\"{}\" rel=\"next\">next</a>", escape(&here.files(link, page + 1)));
    }
    nav.push_str("</nav>\n");
    nav
}

/// The breadcrumbs to `path`: `/ › usr › bin`, each a link but the last. (`›`, not
/// `/`, between them: the root is `/` itself, and `/usr` would read as one link.)
fn breadcrumbs(link: &DownloadLink, here: Here, path: &LayerPath) -> String {
    const ROOT: &str = "/";
    let depth = path.depth();
    let mut crumbs = String::from("<nav id=\"crumbs\">");
    if depth == 0 {
        let _ = write!(crumbs, "<strong>{ROOT}</strong>");
    } else {
        let _ = write!(crumbs, "<a href=\"{}\">{ROOT}</a>", escape(&here.fs(link, &LayerPath::root(), true)));
    }
    for (i, name) in path.names().enumerate() {
        let name = escape(&display_name(name)).into_owned();
        if i + 1 == depth {
            let _ = write!(crumbs, " › <strong>{name}</strong>");
        } else {
            let href = escape(&here.fs(link, &path.ancestor(i + 1), true)).into_owned();
            let _ = write!(crumbs, " › <a href=\"{href}\">{name}</a>");
        }
    }
    crumbs.push_str("</nav>\n");
    crumbs
}

/// One row of the file list or a folder: the name cell, then size, type and mode.
fn entry_row(out: &mut String, cell: &str, e: &EntryRef<'_>) {
    let _ = writeln!(
        out,
        "<tr><td class=\"p\">{cell}{warn}</td>{size}<td>{kind}</td><td>{mode}</td></tr>",
        warn = name_warning(e),
        size = size_cell(e),
        kind = kind_text(e),
        mode = mode_cell(e),
    );
}

/// The title and the start of a folder's or an entry's page: heading, links, the
/// listing's notes and the breadcrumbs.
fn entry_page_start(link: &DownloadLink, listing: &Listing, here: Here, path: &LayerPath) -> (String, String) {
    let title = format!("{} in {}", path.display(), layer_title(link));
    let mut out = String::new();
    let heading = format!("<code>{}</code> in {}", escape(&path.display()), escape(&layer_title(link)));
    layer_header(&mut out, link, here, &heading);
    listing_notes(&mut out, link, listing);
    out.push_str(&breadcrumbs(link, here, path));
    (title, out)
}

/// `fs/DIR/`: the names in one directory of a layer.
pub fn layer_dir(link: &DownloadLink, listing: &Listing, dir: &LayerPath) -> String {
    let here = Here::dir(dir);
    let (title, mut out) = entry_page_start(link, listing, here, dir);
    if listing.is_opaque(dir.as_bytes()) {
        out.push_str(
            "<p class=\"warn\" id=\"opaque\">This directory is opaque: it hides everything the layers below have in it.</p>\n",
        );
    }
    let children = listing.children(dir.as_bytes());
    out.push_str(
        "<table id=\"dir\"><thead><tr><th>name</th><th class=\"n\">size</th><th>type</th><th>mode</th></tr>\
</thead><tbody>\n",
    );
    for child in &children {
        let name = display_name(child.name);
        let path = dir.join(child.name);
        let Some(e) = child.entry else {
            let _ = writeln!(
                out,
                "<tr><td class=\"p\"><a href=\"{}\">{}/</a></td><td class=\"n\"></td><td>dir (no entry of its own)</td>\
<td></td></tr>",
                escape(&here.fs(link, &path, true)),
                escape(&name)
            );
            continue;
        };
        let cell = match e.entry.kind {
            Kind::Whiteout => {
                let target = entry::whiteout_target(Kind::Whiteout, e.path()).unwrap_or_default();
                format!("<del title=\"{}\">{}</del>", escape(&name), escape(&display_name(entry::name(&target))))
            }
            Kind::Dir => format!("<a href=\"{}\">{}/</a>", escape(&here.fs(link, &path, true)), escape(&name)),
            _ => format!("<a href=\"{}\">{}</a>", escape(&here.fs(link, &path, false)), escape(&name)),
        };
        entry_row(&mut out, &cell, &e);
    }
    out.push_str("</tbody></table>\n");
    if children.is_empty() {
        out.push_str("<p id=\"empty\">This directory is empty in this layer.</p>\n");
    }
    layout(&title, &link.image.to_string(), &out)
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
    let (title, mut out) = entry_page_start(link, listing, here, path);
    let _ = write!(
        out,
        "<dl id=\"entry\">\n<dt>type</dt><dd>{kind}</dd>\n<dt>size</dt><dd>{human} ({size} bytes)</dd>\n\
<dt>mode</dt><dd>{mode}</dd>\n<dt>owner</dt><dd>{uid}:{gid}</dd>\n<dt>modified</dt><dd>{mtime}</dd>\n",
        kind = kind_text(&e),
        human = human_size(e.entry.size),
        size = e.entry.size,
        mode = mode_cell(&e),
        uid = e.entry.uid,
        gid = e.entry.gid,
        mtime = utc(e.entry.mtime),
    );
    if let Some(raw) = e.raw_name() {
        let _ = writeln!(
            out,
            "<dt>name in the archive</dt><dd class=\"warn\"><code>{}</code></dd>",
            escape(&String::from_utf8_lossy(raw))
        );
    }
    out.push_str("</dl>\n");
    entry_links(&mut out, link, listing, &e, path);
    match preview {
        None => {}
        Some(Err(error)) => {
            let _ = writeln!(
                out,
                "<p class=\"error\" id=\"preview-error\">The file could not be read: {}</p>",
                escape(error.message())
            );
        }
        Some(Ok(preview)) => preview_section(&mut out, &preview),
    }
    layout(&title, &link.image.to_string(), &out)
}

/// What an entry leads to: a file's save link, a link's target, what a whiteout deletes.
fn entry_links(out: &mut String, link: &DownloadLink, listing: &Listing, e: &EntryRef<'_>, path: &LayerPath) {
    let here = Here::file(path);
    let target_link = |target: &[u8]| -> String {
        let target_path = LayerPath::from_clean(target);
        let shown = escape(&display_path(target)).into_owned();
        match listing.lookup(target) {
            Lookup::Missing => format!("<code>{shown}</code> (not in this layer)"),
            Lookup::ImpliedDir => format!("<a href=\"{}\">{shown}</a>", escape(&here.fs(link, &target_path, true))),
            Lookup::Entry(t) => {
                let dir = t.entry.kind == Kind::Dir;
                format!("<a href=\"{}\">{shown}</a>", escape(&here.fs(link, &target_path, dir)))
            }
        }
    };
    match e.entry.kind {
        Kind::Symlink => {
            let to = match entry::symlink_target(e.path(), e.link()) {
                Some(target) => target_link(&target),
                None => "somewhere outside this layer".to_owned(),
            };
            let _ = writeln!(out, "<p id=\"link-target\">Points to {to}.</p>");
        }
        Kind::HardLink => {
            let (target, _) = entry::clean(e.link());
            let _ = writeln!(out, "<p id=\"link-target\">The same file as {}.</p>", target_link(&target));
        }
        Kind::Whiteout | Kind::Opaque => {
            let target = entry::whiteout_target(e.entry.kind, e.path()).unwrap_or_default();
            let what = if e.entry.kind == Kind::Opaque { "hides what the layers below have in" } else { "deletes" };
            let _ = writeln!(
                out,
                "<p id=\"whiteout\">This marker {what} <code>{}</code>.</p>",
                escape(&display_path(&target))
            );
        }
        _ => {}
    }
    if let Some(content) = listing.content_of(e.index) {
        let _ = writeln!(
            out,
            "<p><a id=\"save\" href=\"{}\">save this file</a> ({})</p>",
            escape(&here.save(link, path)),
            human_size(content.entry.size)
        );
    }
}

/// The file's first bytes: text as it is, anything else as a hex dump.
fn preview_section(out: &mut String, preview: &Preview) {
    let heading = if preview.complete {
        "Contents".to_owned()
    } else {
        format!("The first {}", human_size(PREVIEW_BYTES as u64))
    };
    match preview::as_text(&preview.bytes, preview.complete) {
        Some(text) => {
            let _ = writeln!(out, "<h2>{heading}</h2>\n<pre id=\"preview\" class=\"text\">{}</pre>", escape(text));
        }
        None => {
            let _ = writeln!(
                out,
                "<h2>{heading}, in hex</h2>\n<pre id=\"preview\" class=\"hex\">{}</pre>",
                escape(&preview::hex_dump(&preview.bytes))
            );
        }
    }
}

/// A blob that is not a layer: no files to show, a download instead, and for JSON (a
/// config, an attestation) the JSON itself, pretty-printed.
pub fn not_a_layer(link: &DownloadLink, here: Here, head: Option<Result<BlobHead, Error>>) -> String {
    let title = format!("blob of {}", link.image);
    let mut out = String::new();
    let _ = write!(
        out,
        "<h1>A blob of <code>{name}</code></h1>\n<nav><a href=\"{image}\">layers of {name}</a></nav>\n<dl>\n\
<dt>digest</dt><dd><code>{digest}</code></dd>\n<dt>media type</dt><dd>{mt}</dd>\n</dl>\n\
<p id=\"not-a-layer\">This blob is not a filesystem layer, so it has no files to list or browse; \
<a href=\"{download}\">download it</a> instead.</p>\n",
        name = escape(&link.image.to_string()),
        image = escape(&here.image(link)),
        digest = escape(link.digest.as_str()),
        mt = escape(&link.media_type),
        download = escape(&here.download(link)),
    );
    match head {
        None => {}
        Some(Err(error)) => {
            let _ = writeln!(out, "<p class=\"error\">It could not be read: {}</p>", escape(error.message()));
        }
        Some(Ok(head)) => {
            let pretty = head
                .complete
                .then(|| serde_json::from_slice::<serde_json::Value>(&head.bytes).ok())
                .flatten()
                .and_then(|value| serde_json::to_string_pretty(&value).ok());
            let heading = if head.complete { "Contents" } else { "The first 64 KiB" };
            let text = match &pretty {
                Some(pretty) => pretty.clone(),
                None => String::from_utf8_lossy(&head.bytes).into_owned(),
            };
            let _ = writeln!(out, "<h2>{heading}</h2>\n<pre id=\"json\">{}</pre>", escape(&text));
        }
    }
    layout(&title, &link.image.to_string(), &out)
}

/// Seconds since 1970 as `2023-11-14 22:13:20 UTC`.
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil: exact for every day of an i64 range that matters.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest / 60 % 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(26_470_178), "25.2 MiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(human_size(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }

    /// A manifest as if fetched, from its JSON.
    fn fetched(json: &str) -> FetchedManifest {
        let (media_type, manifest) = crate::manifest::parse(None, json.as_bytes()).unwrap();
        FetchedManifest {
            media_type,
            digest: crate::digest::Digest::of(crate::digest::Algorithm::Sha256, b""),
            manifest,
        }
    }

    #[test]
    fn layer_table_links_size_to_files_and_digest_to_folders() {
        let json = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1},
          "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":5}]}"#;
        let fetched = fetched(json);
        let html = image(&"a/b:c".parse().unwrap(), &fetched);
        let q = "image=a%2Fb%3Ac&amp;digest=sha256%3A2222222222222222222222222222222222222222222222222222222222222222\
&amp;layer=1&amp;mt=application%2Fvnd.oci.image.layer.v1.tar%2Bgzip";
        assert!(html.contains(&format!("<a href=\"./files?{q}\">5 B</a>")), "{html}");
        assert!(html.contains(&format!("<a href=\"./fs/?{q}\">sha256:2222")), "{html}");
        assert!(html.contains("<a href=\"./files?image=a%2Fb%3Ac&amp;digest=sha256%3A1111"), "{html}");
    }

    #[test]
    fn registry_strings_are_escaped() {
        let json = r#"{"schemaVersion":2,"mediaType":"<script>alert(1)</script>",
          "config":{"mediaType":"x","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1},
          "layers":[{"mediaType":"evil\"><img src=x onerror=alert(1)>","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":5}]}"#;
        let fetched = fetched(json);
        let html = image(&"a/b:c".parse().unwrap(), &fetched);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert_eq!(html.matches(">[x]</a>").count(), 1);
    }
}
