//! The HTML pages: the form, a repository's tags, an image's layers or platforms, its
//! config and Dockerfile, a layer's files (by size, by folder, one file), blobs that are not layers, the
//! whole image's merged filesystem, search and sizes, errors, and the parts of a page
//! streamed while a layer is read for the first time.
//!
//! Each page is an askama template under `src/pages/templates/`, compiled with the
//! crate, filled from a small view struct made here from the domain types. Every page
//! extends `base.html` (the frame: title, style, the reference form) and fills its
//! `content` block; pieces shared by several pages (`row.html`, `crumbs.html`,
//! `page_nav.html`, …) are included. Every value a template prints is HTML-escaped by
//! [`Html`] (no template marks anything safe), so a registry's strings cannot become
//! markup. Every link is relative, so the pages work unchanged when a reverse proxy
//! serves layerpipe under a path prefix.
//!
//! A new page: a template extending `base.html`, a struct deriving `Template` with a
//! `frame: Frame` field and `config = "src/pages/askama.toml"`, and a function here
//! that fills it and calls `render`.

mod blob;
pub mod breadcrumbs;
pub mod budget;
mod changes;
mod commands;
mod config;
mod diff;
mod dockerfile;
mod image;
mod json;
mod layer;
mod merged;
mod parts;
mod progress;
mod search;
mod search_secrets;
mod secrets;
mod sizes;
mod slots;
mod tags;
mod text;

use std::fmt;

pub use blob::not_a_layer;
pub use budget::{PAGE_BUDGET, ROWS_PER_PAGE};
pub use changes::changes;
pub use config::config;
pub use diff::{diff, diff_choose, diff_pages, DiffSide, DiffView, DIFF_ROWS_PER_PAGE};
pub use dockerfile::dockerfile;
pub use image::{config_href, dockerfile_href, error, home, image, image_at, image_in, ImageExtras, LAYERS_PER_PAGE};
pub use layer::{dir_pages, file_pages, layer_dir, layer_file, layer_files, reading_title, FILES_PER_PAGE};
pub use merged::{choose_platform, merged_dir, merged_entry, merged_search, MergedImage};
pub use progress::{
    layers_progress_done, layers_progress_line, progress_done, progress_line, streamed_end, streamed_failure,
    streamed_moved, streamed_start, LayerNews,
};
pub use search::{search_hits, search_home, search_layer};
pub use search_secrets::search_secrets;
pub use secrets::secrets;
pub use sizes::sizes;
pub use slots::{RenderSlot, RenderSlots};
pub use tags::tags;
pub use text::human_size;

/// HTML escaping with named entities: `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;`. The
/// templates' escaper (`askama.toml`), for element content and quoted attributes alike.
#[derive(Clone, Copy, Debug, Default)]
pub struct Html;

impl askama::filters::Escaper for Html {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, string: &str) -> fmt::Result {
        let mut rest = string;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            dest.write_str(&rest[..at])?;
            dest.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        dest.write_str(rest)
    }
}

/// What the frame of every page needs: its title and the reference its form shows.
pub struct Frame {
    /// The `<title>`, before ` · layerpipe`.
    pub title: String,
    /// The image reference pre-filled in the form (as typed, or the page's image).
    pub image: String,
    /// The shell command that gets the same data, shown at the page's foot.
    pub command: Option<String>,
    /// The breadcrumbs from the registry to this page (see [`breadcrumbs`]); empty on
    /// pages about no one image.
    pub trail: Vec<breadcrumbs::Crumb>,
}

/// A page's HTML. Rendering writes to a `String` and our view types' `Display`s never
/// fail, so an error here is a bug: it is logged and the client gets a bare page rather
/// than a panic.
fn render(page: &impl askama::Template) -> String {
    page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a page failed to render");
        "<!doctype html>\n<p>This page could not be rendered.</p>\n".to_owned()
    })
}
