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
    render(&StreamedStart { frame: Frame { title: title.to_owned(), image: image.to_owned(), command: None } })
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
