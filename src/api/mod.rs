//! The JSON answers: every page's data, for `Accept: application/json` or `?format=json`
//! (the route decides; see `routes::respond::Format`). Each function here takes what the
//! page's own function in `pages` takes and returns a `serde_json::Value`.
//!
//! The field names are a contract, documented with an example each in `docs/json.md`:
//! - sizes are bytes (numbers), digests `sha256:…` strings, times as the registry or the
//!   tar header gave them (RFC 3339 strings; seconds since 1970 for entries' `mtime`);
//! - paths are the layer's clean paths without a leading `/`, made text with U+FFFD for
//!   bytes that are not UTF-8 (the entry's own `fs/` link names it exactly);
//! - every `href` is relative to the URL asked, as the page's links are, so the answers
//!   work under a reverse proxy's path prefix;
//! - long lists come a page at a time, cut by the same rules as the page (`page`,
//!   `pages`, and `next` when there is one);
//! - secret values only ever appear masked: `{"head": "AKIA", "length": 20}`;
//! - an error is `{"error": MESSAGE, "status": CODE}` with that HTTP status.
//!
//! A field may be added; none is renamed or changes meaning without a new name.

mod catalog;
mod diff;
mod image;
mod layer;
mod whole;

use serde_json::{json, Value};

use crate::catalog::kind_name;
use crate::error::Error;
use crate::layer::entry::{self, Kind};
use crate::layer::listing::EntryRef;

pub use catalog::{layer_usage, search_hits, search_home, search_secrets, secrets};
pub use diff::{diff, diff_choose};
pub use image::{config, dockerfile, image, platforms, tags};
pub use layer::{layer_dir, layer_file, layer_files, not_a_layer};
pub use whole::{changes, merged_dir, merged_entry, merged_search, sizes};

/// `{"error": MESSAGE, "status": CODE}`: the message a person would read on the page.
pub fn error(e: &Error) -> Value {
    json!({ "error": e.message(), "status": e.status().as_u16() })
}

/// Bytes as text: a path, a link target (see the module docs).
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One entry of a layer: what a row of its file list shows, unshortened.
fn entry(e: &EntryRef<'_>, href: Option<String>) -> Value {
    let mut v = json!({
        "path": text(e.path()),
        "kind": kind_name(e.entry.kind),
        "size": e.entry.size,
        "mode": format!("{:04o}", e.entry.mode),
        "mode_text": entry::mode_string(e.entry.kind, e.entry.mode),
        "uid": e.entry.uid,
        "gid": e.entry.gid,
        "mtime": e.entry.mtime,
    });
    let o = v.as_object_mut().expect("an object");
    if !e.link().is_empty() {
        o.insert("link".into(), text(e.link()).into());
    }
    if let Some(target) = entry::whiteout_target(e.entry.kind, e.path()) {
        o.insert("deletes".into(), text(&target).into());
    }
    if matches!(e.entry.kind, Kind::CharDevice | Kind::BlockDevice) {
        o.insert("device".into(), json!([e.entry.device.0, e.entry.device.1]));
    }
    if let Some(raw) = e.raw_name() {
        o.insert("raw_name".into(), text(raw).into());
    }
    if let Some(href) = href {
        o.insert("href".into(), href.into());
    }
    v
}

/// `page`, `pages` and `next` of a list cut into pages, merged into `v`.
fn paged(mut v: Value, page: usize, pages: usize, next: impl FnOnce(usize) -> String) -> Value {
    let o = v.as_object_mut().expect("an object");
    o.insert("page".into(), page.into());
    o.insert("pages".into(), pages.into());
    o.insert("next".into(), if page < pages { next(page + 1).into() } else { Value::Null });
    v
}
