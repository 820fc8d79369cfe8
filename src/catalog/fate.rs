//! What became of an entry in an image: still there, deleted by a later layer, or
//! overwritten by one. Worked out from the image's layer order and the later layers'
//! entries at a handful of paths, so that the catalog answers it without merging the
//! whole image.
//!
//! A later layer decides an entry at `a/b/c` when it has:
//! - an entry at `a/b/c` itself: overwritten (whatever else that layer does, the path
//!   now holds that layer's entry);
//! - a whiteout `a/b/.wh.c`, or one of an ancestor (`a/.wh.b`, `.wh.a`): deleted;
//! - an opaque marker in an ancestor (`a/b/.wh..wh..opq`, …, `.wh..wh..opq` at the root):
//!   deleted, the directory hides everything below it from lower layers;
//! - anything but a directory at an ancestor (`a/b` made a file): deleted with it.
//!
//! The first later layer that does any of these decides; the ones after it act on what
//! that layer left, which is not this entry.

use crate::layer::entry::{self, Kind};

/// An entry's fate in one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// In the image's filesystem as this layer left it.
    Present,
    /// Gone: layer N (from 1) deleted it or a directory above it.
    DeletedBy(u32),
    /// Replaced: layer N has an entry at the same path.
    OverwrittenBy(u32),
}

impl Fate {
    /// How the search page says it.
    pub fn describe(self) -> String {
        match self {
            Fate::Present => "present".to_owned(),
            Fate::DeletedBy(n) => format!("deleted by layer {n}"),
            Fate::OverwrittenBy(n) => format!("overwritten by layer {n}"),
        }
    }
}

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// The proper ancestors of a clean path, nearest first, without the root.
fn ancestors(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::successors(Some(entry::parent(path)), |p| (!p.is_empty()).then(|| entry::parent(p)))
        .filter(|p| !p.is_empty())
}

/// `dir/.wh.NAME` for `path` = `dir/NAME`.
fn whiteout_of(path: &[u8]) -> Vec<u8> {
    entry::join(entry::parent(path), &[WHITEOUT, entry::name(path)].concat())
}

/// Every path whose entry in a later layer can decide the fate of `path`: the catalog
/// looks these up, and only these, in the image's later layers.
pub fn deciding_paths(path: &[u8]) -> Vec<Vec<u8>> {
    let mut paths = vec![path.to_vec(), whiteout_of(path), entry::join(b"", OPAQUE)];
    for ancestor in ancestors(path) {
        paths.push(ancestor.to_vec());
        paths.push(whiteout_of(ancestor));
        paths.push(entry::join(ancestor, OPAQUE));
    }
    paths
}

/// The fate of the entry at `path` in layer `at` (from 1), given the entries of the
/// image's later layers at [`deciding_paths`]: `(layer number, path, kind)`, in any
/// order (others are ignored).
pub fn fate(path: &[u8], at: u32, later: &[(u32, &[u8], Kind)]) -> Fate {
    let mut deciding: Option<Fate> = None;
    for &(layer, other, kind) in later {
        if layer <= at {
            continue;
        }
        let what = if other == path {
            Fate::OverwrittenBy(layer)
        } else if deletes(path, other, kind) {
            Fate::DeletedBy(layer)
        } else {
            continue;
        };
        deciding = Some(match (deciding, what) {
            (None, what) => what,
            (Some(now), what) if layer_of(what) < layer_of(now) => what,
            // The same layer both deletes and writes the path: it now holds that layer's entry.
            (Some(Fate::DeletedBy(n)), Fate::OverwrittenBy(m)) if n == m => what,
            (Some(now), _) => now,
        });
    }
    deciding.unwrap_or(Fate::Present)
}

fn layer_of(fate: Fate) -> u32 {
    match fate {
        Fate::Present => u32::MAX,
        Fate::DeletedBy(n) | Fate::OverwrittenBy(n) => n,
    }
}

/// Whether an entry `other` of kind `kind` in a later layer deletes `path`.
fn deletes(path: &[u8], other: &[u8], kind: Kind) -> bool {
    match kind {
        Kind::Whiteout => std::iter::once(path).chain(ancestors(path)).any(|p| whiteout_of(p) == other),
        Kind::Opaque => {
            let dir = entry::parent(other);
            dir.is_empty() || ancestors(path).any(|a| a == dir)
        }
        Kind::Dir => false,
        _ => ancestors(path).any(|a| a == other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fate_of(path: &str, at: u32, later: &[(u32, &str, Kind)]) -> Fate {
        let later: Vec<(u32, &[u8], Kind)> = later.iter().map(|&(n, p, k)| (n, p.as_bytes(), k)).collect();
        fate(path.as_bytes(), at, &later)
    }

    /// The layered image of tests/real/layered.rs: layer 2 deletes, hides and overwrites
    /// what layer 1 ships.
    #[test]
    fn the_layered_image() {
        let layer2 = [
            (2, "etc/.wh.secret.key", Kind::Whiteout),
            (2, "var/cache/.wh..wh..opq", Kind::Opaque),
            (2, "var/cache/fresh", Kind::File),
            (2, "etc/passwd", Kind::File),
            (2, "opt/tool", Kind::File),
            (3, "app/main.py", Kind::File),
        ];
        assert_eq!(fate_of("etc/secret.key", 1, &layer2), Fate::DeletedBy(2));
        assert_eq!(fate_of("var/cache/apt/pkg.deb", 1, &layer2), Fate::DeletedBy(2));
        assert_eq!(fate_of("etc/passwd", 1, &layer2), Fate::OverwrittenBy(2));
        assert_eq!(fate_of("opt/tool/run", 1, &layer2), Fate::DeletedBy(2));
        assert_eq!(fate_of("var/cache/fresh", 2, &layer2), Fate::Present);
        assert_eq!(fate_of("etc/passwd", 2, &layer2), Fate::Present, "a layer does not decide its own entries");
    }

    #[test]
    fn the_first_deciding_layer_wins() {
        let later = [(4, "etc/.wh.a", Kind::Whiteout), (3, "etc/a", Kind::File)];
        assert_eq!(fate_of("etc/a", 1, &later), Fate::OverwrittenBy(3));
        let later = [(3, "etc/.wh.a", Kind::Whiteout), (3, "etc/a", Kind::File)];
        assert_eq!(fate_of("etc/a", 1, &later), Fate::OverwrittenBy(3), "deleted and written again in one layer");
        let later = [(5, ".wh.etc", Kind::Whiteout), (6, "etc", Kind::Dir)];
        assert_eq!(fate_of("etc/a", 1, &later), Fate::DeletedBy(5));
    }

    #[test]
    fn only_real_whiteouts_and_ancestors_delete() {
        // A directory re-listed above keeps what is below it; a sibling's whiteout, a
        // file named like a whiteout but not one, and an opaque marker deeper down do not.
        let later = [
            (2, "etc", Kind::Dir),
            (2, "etc/.wh.b", Kind::Whiteout),
            (2, "etc/.wh.a", Kind::File),
            (2, "etc/a/.wh..wh..opq", Kind::Opaque),
            (2, "et", Kind::File),
        ];
        assert_eq!(fate_of("etc/a", 1, &later), Fate::Present);
        assert_eq!(fate_of("x", 1, &[(2, ".wh..wh..opq", Kind::Opaque)]), Fate::DeletedBy(2));
    }

    #[test]
    fn deciding_paths_cover_every_rule() {
        let paths: Vec<String> = deciding_paths(b"a/b/c").into_iter().map(|p| String::from_utf8(p).unwrap()).collect();
        for expected in
            ["a/b/c", "a/b/.wh.c", "a/b", "a/.wh.b", "a/b/.wh..wh..opq", "a", ".wh.a", "a/.wh..wh..opq", ".wh..wh..opq"]
        {
            assert!(paths.iter().any(|p| p == expected), "{expected} in {paths:?}");
        }
        assert_eq!(Fate::DeletedBy(3).describe(), "deleted by layer 3");
    }
}
