//! The parts of a page streamed while a layer is read for the first time: the frame and
//! the opened progress block at once, a line of progress now and then, and at the end
//! the rest of the page (or the reason reading failed).

use askama::Template;

use super::{human_size, render, Frame};
use crate::error::Error;

#[derive(Template)]
#[template(path = "streamed_start.html", config = "src/pages/askama.toml")]
struct StreamedStart {
    frame: Frame,
}

/// The first part of a page that streams while a layer is read: the frame, titled,
/// and the opening of the progress block. [`progress_line`]s follow, then
/// [`streamed_end`].
pub fn streamed_start(title: &str, image: &str) -> String {
    render(&StreamedStart {
        frame: Frame { title: title.to_owned(), image: image.to_owned(), command: None, trail: Vec::new() },
    })
}

#[derive(Template)]
#[template(path = "progress_line.html", config = "src/pages/askama.toml")]
struct ProgressLine {
    bytes: String,
    /// The total and the percentage read, when the total is known.
    of: Option<(String, u64)>,
    entries: u64,
}

/// One line of progress: blob bytes read (of `total`, when known) and entries so far.
/// Each line is drawn over the one before it (CSS: same place, opaque), so the page
/// shows the latest without script. (`:last-child` cannot do it: browsers match it only
/// once the parent has finished loading.)
pub fn progress_line(bytes: u64, total: u64, entries: u64) -> String {
    let of = (total > 0).then(|| (human_size(total), bytes.saturating_mul(100) / total));
    render(&ProgressLine { bytes: human_size(bytes), of, entries })
}

#[derive(Template)]
#[template(path = "progress_done.html", config = "src/pages/askama.toml")]
struct ProgressDone {
    bytes: String,
    entries: u64,
}

/// The last line of progress: the whole layer read.
pub fn progress_done(bytes: u64, entries: u64) -> String {
    render(&ProgressDone { bytes: human_size(bytes), entries })
}

/// The rest of a streamed page: the progress block closed, then what follows `<main>`
/// in `page` (the page as it would have been sent whole).
pub fn streamed_end(page: &str) -> String {
    let content = page.split_once("<main>\n").map_or(page, |(_, rest)| rest);
    format!("</div>\n{content}")
}

#[derive(Template)]
#[template(path = "streamed_failure.html", config = "src/pages/askama.toml")]
struct StreamedFailure<'a> {
    status: http::StatusCode,
    message: &'a str,
}

/// The rest of a streamed page whose reading failed: the reason, and the frame closed.
pub fn streamed_failure(e: &Error) -> String {
    render(&StreamedFailure { status: e.status(), message: e.message() })
}

/// The latest news of one layer, for a line of a merge's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerNews {
    /// Layer `layer` (from 1) has been read: its blob's bytes and its entries.
    Read { layer: u32, bytes: u64, entries: u64 },
    /// Layer `layer` is being read: bytes so far, of `total` (0 when not known).
    Reading { layer: u32, bytes: u64, total: u64 },
}

impl LayerNews {
    fn text(self) -> String {
        match self {
            LayerNews::Read { layer, bytes, entries } => format!(
                "layer {layer} read: {}, {}",
                human_size(bytes),
                super::text::count_as(entries, "entry", "entries")
            ),
            LayerNews::Reading { layer, bytes, total: 0 } => format!("reading layer {layer}: {}", human_size(bytes)),
            LayerNews::Reading { layer, bytes, total } => format!(
                "reading layer {layer}: {} of {} ({}%)",
                human_size(bytes),
                human_size(total),
                bytes.saturating_mul(100) / total
            ),
        }
    }
}

#[derive(Template)]
#[template(path = "layers_progress_line.html", config = "src/pages/askama.toml")]
struct LayersProgressLine {
    read: usize,
    of: usize,
    news: String,
}

/// One line of a merge's progress, while a whole-image page (the merged view, the
/// sizes) reads its layers for the first time: `read` of `of` layers read, and `news`
/// of one. Drawn over the line before it, as [`progress_line`]s are.
pub fn layers_progress_line(read: usize, of: usize, news: LayerNews) -> String {
    render(&LayersProgressLine { read, of, news: news.text() })
}

#[derive(Template)]
#[template(path = "layers_progress_done.html", config = "src/pages/askama.toml")]
struct LayersProgressDone {
    layers: usize,
    bytes: String,
    entries: u64,
}

/// The last line of a merge's progress: every layer read, their bytes and entries.
pub fn layers_progress_done(layers: usize, bytes: u64, entries: u64) -> String {
    render(&LayersProgressDone { layers, bytes: human_size(bytes), entries })
}

#[derive(Template)]
#[template(path = "streamed_moved.html", config = "src/pages/askama.toml")]
struct StreamedMoved<'a> {
    href: &'a str,
}

/// The rest of a streamed page whose answer is at `href` (a folder asked for as a
/// file, say): a link there, and the frame closed. A status can no longer say it.
pub fn streamed_moved(href: &str) -> String {
    render(&StreamedMoved { href })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merges_lines_say_how_many_layers_are_read_and_the_latest_news() {
        let read = layers_progress_line(2, 7, LayerNews::Read { layer: 5, bytes: 2048, entries: 1234 });
        assert_eq!(
            read,
            "<p>Reading the image's layers for the first time: 2 of 7 layers read; layer 5 read: 2.0 KiB, 1,234 entries…</p>"
        );
        let reading = layers_progress_line(0, 1, LayerNews::Reading { layer: 1, bytes: 512, total: 2048 });
        assert!(reading.contains("0 of 1 layer read; reading layer 1: 512 B of 2.0 KiB (25%)…"), "{reading}");
        let unknown = layers_progress_line(0, 2, LayerNews::Reading { layer: 2, bytes: 512, total: 0 });
        assert!(unknown.contains("reading layer 2: 512 B…"), "{unknown}");
        let done = layers_progress_done(1, 2048, 1);
        assert_eq!(done.trim_end(), "<p id=\"progress-done\">Read all 1 layer: 2.0 KiB, 1 entry.</p>");
    }

    #[test]
    fn a_moved_page_links_where_it_is_escaped() {
        let moved = streamed_moved("./layers/a%20b?image=x&page=2");
        assert!(moved.contains("<a href=\"./layers/a%20b?image=x&amp;page=2\">"), "{moved}");
        assert!(moved.starts_with("</div>") && moved.trim_end().ends_with("</html>"), "{moved}");
    }
}
