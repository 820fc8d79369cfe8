//! Two images' merged filesystems, compared path by path: what was added, what was
//! removed, and what changed (its kind, mode, size, link target, or bytes).
//!
//! Only what a container sees is compared: each side's visible entry at a path, after
//! its whiteouts and overwrites. Owners and times are left out on purpose: a rebuild
//! changes every mtime, and a diff that lists every file says nothing.
//!
//! Bytes cannot be compared from listings. A regular file of the same kind, mode and size
//! on both sides is the same file when both sides take it from the same entry of the same
//! layer (a layer's digest fixes its bytes); otherwise it is a [`Pending`] pair whose
//! contents the caller hashes (`src/explore/contents.rs`), within its budget, and hands
//! back to [`Comparison::settle`].

use crate::digest::Digest;
use crate::image::merged::{Fate, MergedFs, Version};
use crate::layer::entry::Kind;

/// One image's side of a comparison: its merged view and its layers' digests, base first.
pub struct Side<'a> {
    /// The layers applied.
    pub fs: &'a MergedFs,
    /// `layers[n]` is the digest of the view's layer `n`.
    pub layers: &'a [Digest],
}

/// What differs about a path present on both sides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// A file became a directory, a link, ...
    pub kind: bool,
    /// Permission or special bits.
    pub mode: bool,
    /// Size in bytes.
    pub size: bool,
    /// A symbolic or hard link's target.
    pub target: bool,
    /// The bytes, at the same size: known only once hashed.
    pub content: bool,
}

impl Changes {
    /// Whether anything differs.
    pub fn any(&self) -> bool {
        self.kind || self.mode || self.size || self.target || self.content
    }

    /// The differences as words, for pages: `["mode", "content"]`.
    pub fn words(&self) -> Vec<&'static str> {
        [
            (self.kind, "kind"),
            (self.mode, "mode"),
            (self.size, "size"),
            (self.target, "target"),
            (self.content, "content"),
        ]
        .into_iter()
        .filter_map(|(set, word)| set.then_some(word))
        .collect()
    }
}

/// How a path differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Only the second image has it.
    Added,
    /// Only the first image has it.
    Removed,
    /// Both have it, differently.
    Changed(Changes),
    /// Both have a regular file of the same size and mode whose bytes were not compared:
    /// the content budget ran out, or a read failed.
    Unknown,
}

/// One path that differs (or may), with each side's visible entry.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    /// The clean path.
    pub path: &'a [u8],
    /// The first image's entry, when it has one.
    pub a: Option<Version<'a>>,
    /// The second image's entry, when it has one.
    pub b: Option<Version<'a>>,
    /// How it differs.
    pub status: Status,
}

/// Two regular files whose bytes decide whether a path changed: `rows[row]`'s two sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Its place in [`Comparison::rows`].
    pub row: usize,
}

/// Where two images' layer lists part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSummary {
    /// Layers both images ship: `(layer in a, layer in b)`, from 0.
    pub shared: Vec<(usize, usize)>,
    /// The first position (from 0) whose layer differs, or where one list ends; `None`
    /// when both images have the same layers.
    pub first_difference: Option<usize>,
}

/// The comparison of two merged views; see the module docs.
pub struct Comparison<'a> {
    /// Every path that differs or may, by path; unchanged paths are left out. Rows whose
    /// bytes are still to be compared are [`Status::Unknown`] until settled.
    pub rows: Vec<Row<'a>>,
    /// Rows waiting on their bytes, in path order.
    pub pending: Vec<Pending>,
    /// How the layer lists compare.
    pub layers: LayerSummary,
}

impl<'a> Comparison<'a> {
    /// Records what hashing found for a pending row: `Some(same)`, or `None` when the
    /// bytes could not be compared (the row stays [`Status::Unknown`]). Rows found the
    /// same are dropped by [`Comparison::finish`].
    pub fn settle(&mut self, pending: Pending, same: Option<bool>) {
        let row = &mut self.rows[pending.row];
        row.status = match same {
            Some(true) => Status::Changed(Changes::default()),
            Some(false) => Status::Changed(Changes { content: true, ..Changes::default() }),
            None => Status::Unknown,
        };
    }

    /// The rows that differ (or may), once every pending row is settled or given up.
    pub fn finish(mut self) -> Vec<Row<'a>> {
        self.rows.retain(|r| !matches!(r.status, Status::Changed(c) if !c.any()));
        self.rows
    }
}

/// Compares `a` with `b`.
pub fn compare<'a>(a: &Side<'a>, b: &Side<'a>) -> Comparison<'a> {
    let (va, vb) = (visible(a.fs), visible(b.fs));
    let (mut i, mut j) = (0, 0);
    let mut rows = Vec::new();
    let mut pending = Vec::new();
    while i < va.len() || j < vb.len() {
        let order = match (va.get(i), vb.get(j)) {
            (Some(x), Some(y)) => x.entry.path().cmp(y.entry.path()),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                rows.push(Row { path: va[i].entry.path(), a: Some(va[i]), b: None, status: Status::Removed });
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                rows.push(Row { path: vb[j].entry.path(), a: None, b: Some(vb[j]), status: Status::Added });
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (va[i], vb[j]);
                let changes = differences(&x, &y);
                if changes.any() {
                    rows.push(Row { path: x.entry.path(), a: Some(x), b: Some(y), status: Status::Changed(changes) });
                } else if has_bytes(&x) && !same_source(a, &x, b, &y) {
                    pending.push(Pending { row: rows.len() });
                    rows.push(Row { path: x.entry.path(), a: Some(x), b: Some(y), status: Status::Unknown });
                }
                i += 1;
                j += 1;
            }
        }
    }
    Comparison { rows, pending, layers: layer_summary(a.layers, b.layers) }
}

/// The entry a container sees at each path, by path; the root's entry is left out.
fn visible<'a>(fs: &'a MergedFs) -> Vec<Version<'a>> {
    fs.versions().filter(|v| v.fate == Fate::Visible && !v.entry.path().is_empty()).collect()
}

/// What differs between two visible entries at one path, bytes aside.
fn differences(x: &Version<'_>, y: &Version<'_>) -> Changes {
    let (ex, ey) = (x.entry.entry, y.entry.entry);
    let links = matches!(ex.kind, Kind::Symlink | Kind::HardLink);
    Changes {
        kind: ex.kind != ey.kind,
        mode: ex.mode & 0o7777 != ey.mode & 0o7777,
        size: ex.size != ey.size,
        target: ex.kind == ey.kind && links && x.entry.link() != y.entry.link(),
        content: false,
    }
}

/// Whether an entry has bytes of its own to compare: a regular file that is not empty.
fn has_bytes(v: &Version<'_>) -> bool {
    matches!(v.entry.entry.kind, Kind::File) && v.entry.entry.size > 0
}

/// Whether both sides take the entry from the same entry of the same layer blob.
fn same_source(a: &Side<'_>, x: &Version<'_>, b: &Side<'_>, y: &Version<'_>) -> bool {
    let (lx, ly) = (a.layers.get(x.layer as usize), b.layers.get(y.layer as usize));
    lx.is_some() && lx == ly && x.entry.index == y.entry.index
}

/// Which layers both lists ship, and where they part.
fn layer_summary(a: &[Digest], b: &[Digest]) -> LayerSummary {
    let shared = a.iter().enumerate().filter_map(|(i, d)| b.iter().position(|e| e == d).map(|j| (i, j))).collect();
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let first_difference = (common < a.len().max(b.len())).then_some(common);
    LayerSummary { shared, first_difference }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::digest::Algorithm;
    use crate::layer::listing::tests::listing_with_modes;
    use crate::layer::listing::Listing;
    use crate::layer::tar::TypeFlag;

    /// A layer listing of `(path, type, mode, size, link)`.
    fn listing(entries: &[(&str, TypeFlag, u32, u64, &str)]) -> Arc<Listing> {
        Arc::new(listing_with_modes(entries))
    }

    fn digest(n: u8) -> Digest {
        Digest::of(Algorithm::Sha256, &[n])
    }

    fn statuses(rows: &[Row<'_>]) -> Vec<(String, Status)> {
        rows.iter().map(|r| (String::from_utf8_lossy(r.path).into_owned(), r.status)).collect()
    }

    #[test]
    fn added_removed_changed_and_same_are_told_apart() {
        use TypeFlag::*;
        let base = listing(&[
            ("etc", Dir, 0o755, 0, ""),
            ("etc/motd", File, 0o644, 5, ""),
            ("etc/gone", File, 0o644, 3, ""),
            ("bin/sh", Symlink, 0o777, 0, "busybox"),
        ]);
        let a_top = listing(&[("app/x", File, 0o644, 10, ""), ("app/mode", File, 0o644, 1, "")]);
        let b_top = listing(&[
            ("app/x", File, 0o644, 10, ""),
            ("app/mode", File, 0o755, 1, ""),
            ("app/new", File, 0o644, 2, ""),
            ("etc/.wh.gone", File, 0, 0, ""),
            ("bin/sh", Symlink, 0o777, 0, "dash"),
        ]);
        let a_fs = MergedFs::new(vec![base.clone(), a_top]).unwrap();
        let b_fs = MergedFs::new(vec![base, b_top]).unwrap();
        let (a_layers, b_layers) = ([digest(1), digest(2)], [digest(1), digest(3)]);
        let a = Side { fs: &a_fs, layers: &a_layers };
        let b = Side { fs: &b_fs, layers: &b_layers };
        let mut comparison = compare(&a, &b);
        assert_eq!(comparison.layers, LayerSummary { shared: vec![(0, 0)], first_difference: Some(1) });
        // app/x: same size and mode, other layers: its bytes decide.
        assert_eq!(comparison.pending.len(), 1);
        assert_eq!(comparison.rows[comparison.pending[0].row].path, b"app/x");
        let pending = comparison.pending[0];
        comparison.settle(pending, Some(false));
        let rows = comparison.finish();
        let mode = Changes { mode: true, ..Changes::default() };
        let target = Changes { target: true, ..Changes::default() };
        let content = Changes { content: true, ..Changes::default() };
        assert_eq!(
            statuses(&rows),
            [
                ("app/mode".to_owned(), Status::Changed(mode)),
                ("app/new".to_owned(), Status::Added),
                ("app/x".to_owned(), Status::Changed(content)),
                ("bin/sh".to_owned(), Status::Changed(target)),
                ("etc/gone".to_owned(), Status::Removed),
            ]
        );
    }

    #[test]
    fn a_file_from_the_same_layer_is_not_read_and_same_bytes_are_dropped() {
        use TypeFlag::*;
        let shared = listing(&[("a", File, 0o644, 4, ""), ("b", File, 0o644, 4, "")]);
        let a_fs = MergedFs::new(vec![shared.clone()]).unwrap();
        let b_top = listing(&[("b", File, 0o644, 4, "")]);
        let b_fs = MergedFs::new(vec![shared, b_top]).unwrap();
        let (a_layers, b_layers) = ([digest(1)], [digest(1), digest(2)]);
        let mut comparison = compare(&Side { fs: &a_fs, layers: &a_layers }, &Side { fs: &b_fs, layers: &b_layers });
        assert_eq!(comparison.layers.first_difference, Some(1));
        // Only b, which the second image takes from its own layer, waits on its bytes.
        assert_eq!(comparison.pending.len(), 1);
        let pending = comparison.pending[0];
        comparison.settle(pending, Some(true));
        assert!(comparison.finish().is_empty());
    }

    #[test]
    fn bytes_that_could_not_be_read_stay_unknown() {
        use TypeFlag::*;
        let a_fs = MergedFs::new(vec![listing(&[("f", File, 0o644, 4, "")])]).unwrap();
        let b_fs = MergedFs::new(vec![listing(&[("f", File, 0o644, 4, "")])]).unwrap();
        let (a_layers, b_layers) = ([digest(1)], [digest(2)]);
        let mut comparison = compare(&Side { fs: &a_fs, layers: &a_layers }, &Side { fs: &b_fs, layers: &b_layers });
        let pending = comparison.pending[0];
        comparison.settle(pending, None);
        assert_eq!(statuses(&comparison.finish()), [("f".to_owned(), Status::Unknown)]);
    }

    #[test]
    fn identical_layer_lists_have_no_difference() {
        let same = [digest(1), digest(2)];
        assert_eq!(layer_summary(&same, &same), LayerSummary { shared: vec![(0, 0), (1, 1)], first_difference: None });
        assert_eq!(layer_summary(&same, &same[..1]).first_difference, Some(1));
    }
}
