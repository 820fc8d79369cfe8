//! The diff's answer: where two images' layer lists part, and every path added,
//! removed or changed (with what changed), a page at a time.

use serde_json::{json, Value};

use super::{entry, paged, text};
use crate::image::diff::Status;
use crate::image::merged::Version;
use crate::layer::entry::Kind;
use crate::layer::link::{Here, LayerPath};
use crate::pages::{diff_pages, DiffSide, DiffView, DIFF_ROWS_PER_PAGE};
use crate::query::encode;
use crate::reference::{ImageReference, Repository};

/// `/diff?a=REF&b=REF`; `view.page` must be within [`diff_pages`].
pub fn diff(view: &DiffView<'_>) -> Value {
    let (a, b) = (view.a.reference.to_string(), view.b.reference.to_string());
    let tally = |f: fn(&Status) -> bool| view.rows.iter().filter(|r| f(&r.status)).count();
    let rows: Vec<Value> = view
        .rows
        .iter()
        .skip((view.page - 1) * DIFF_ROWS_PER_PAGE)
        .take(DIFF_ROWS_PER_PAGE)
        .map(|r| {
            let (status, changes) = match r.status {
                Status::Added => ("added", Vec::new()),
                Status::Removed => ("removed", Vec::new()),
                Status::Changed(c) => ("changed", c.words()),
                Status::Unknown => ("not_compared", Vec::new()),
            };
            json!({
                "path": text(r.path),
                "status": status,
                "changes": changes,
                "a": r.a.map(|v| side(&v, &view.a)),
                "b": r.b.map(|v| side(&v, &view.b)),
            })
        })
        .collect();
    let v = json!({
        "a": a,
        "b": b,
        "platform": view.platform_note,
        "layers": {
            "shared": view.layers.shared.iter().map(|&(x, y)| json!({ "a": x + 1, "b": y + 1 })).collect::<Vec<_>>(),
            "first_difference": view.layers.first_difference.map(|n| n + 1),
        },
        "added": tally(|s| *s == Status::Added),
        "removed": tally(|s| *s == Status::Removed),
        "changed": tally(|s| matches!(s, Status::Changed(_))),
        "not_compared": tally(|s| *s == Status::Unknown),
        "unread": view.unread.as_ref().map(|(n, why)| json!({ "pairs": n, "why": why })),
        "rows": rows,
    });
    paged(v, view.page, diff_pages(view.rows.len()), |p| {
        format!("./diff?a={}&b={}&page={p}&format=json", encode(&a), encode(&b))
    })
}

/// One side's version of a path: the entry, its layer (from 1), and its page there.
fn side(v: &Version<'_>, side: &DiffSide<'_>) -> Value {
    let path = LayerPath::from_clean(v.entry.path());
    let href = match side.layers.get(v.layer as usize) {
        Some(link) => Here::root().fs(link, &path, v.entry.entry.kind == Kind::Dir),
        None => Here::root().merged(side.reference, &path, false),
    };
    let mut e = entry(&v.entry, Some(href));
    e["layer"] = (v.layer + 1).into();
    e
}

/// `/diff?a=REF` alone: the repository's other tags to compare it with.
pub fn diff_choose(a: &ImageReference, tags: &[String]) -> Value {
    let name = a.to_string();
    let repo = Repository::from(a);
    let offered: Vec<Value> = tags
        .iter()
        .filter(|t| a.tag() != Some(t.as_str()))
        .map(|t| {
            let b = repo.image_text(t);
            json!({ "tag": t, "href": format!("./diff?a={}&b={}&format=json", encode(&name), encode(&b)) })
        })
        .collect();
    json!({ "a": name, "compare_with": offered })
}
