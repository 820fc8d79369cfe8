//! dive's view of one layer: each of its entries marked as added, modified or removed
//! against the layers below it.
//!
//! The marks come from the merged view's fates, so they agree with every other page:
//! - **removed**: a whiteout or an opaque marker (what it removes is its target);
//! - **modified**: a lower layer has an entry at the same path that this layer hid (it
//!   put its own entry there, or deleted the path and put it back), directories too;
//! - **added**: anything else, a path no lower layer left for a container to see.
//!
//! Known gap: a directory that a layer only re-declares (tar writes every parent) is
//! "modified" even when nothing of it changed but its contents, as dive shows it.

use super::merged::{Fate, MergedFs, Version};
use crate::layer::listing::EntryRef;

/// What a layer's entry did to the layers below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A path no lower layer left visible.
    Added,
    /// It replaces a lower layer's entry at the same path.
    Modified,
    /// A whiteout or opaque marker: it removes what lower layers had there.
    Removed,
}

impl Change {
    /// The mark as a page shows it.
    pub fn word(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Modified => "modified",
            Change::Removed => "removed",
        }
    }
}

/// How many entries of a layer each mark has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Entries added.
    pub added: usize,
    /// Entries that replace a lower layer's.
    pub modified: usize,
    /// Whiteouts and opaque markers.
    pub removed: usize,
}

/// The mark of `entry`, an entry of layer `layer` of `fs`.
pub fn of(fs: &MergedFs, layer: u32, entry: &EntryRef<'_>) -> Change {
    if fs.fate(layer, entry.index) == Fate::Marker {
        return Change::Removed;
    }
    // `at` lists the path's entries lowest layer first, markers left out.
    let replaces = fs.at(entry.path()).take_while(|v| v.layer < layer).any(|v| v.fate.hidden_by() == Some(layer));
    if replaces {
        Change::Modified
    } else {
        Change::Added
    }
}

/// Every entry of layer `layer` (from 0) of `fs` with its mark, in archive order.
pub fn of_layer(fs: &MergedFs, layer: u32) -> Vec<(Version<'_>, Change)> {
    let Some(listing) = fs.layers().get(layer as usize) else { return Vec::new() };
    listing.entries().map(|e| (Version { layer, entry: e, fate: fs.fate(layer, e.index) }, of(fs, layer, &e))).collect()
}

/// How many entries of each layer have each mark, base first.
pub fn counts(fs: &MergedFs) -> Vec<Counts> {
    (0..fs.layers().len() as u32)
        .map(|layer| {
            let mut counts = Counts::default();
            for (_, change) in of_layer(fs, layer) {
                match change {
                    Change::Added => counts.added += 1,
                    Change::Modified => counts.modified += 1,
                    Change::Removed => counts.removed += 1,
                }
            }
            counts
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::layer::listing::tests::listing_of;
    use crate::layer::tar::TypeFlag::{Dir, File};

    fn marks(fs: &MergedFs, layer: u32) -> Vec<(String, Change)> {
        of_layer(fs, layer)
            .into_iter()
            .map(|(v, c)| (String::from_utf8_lossy(v.entry.path()).into_owned(), c))
            .collect()
    }

    #[test]
    fn entries_are_added_modified_or_removed_against_the_layers_below() {
        let fs = MergedFs::new(vec![
            Arc::new(listing_of(&[
                ("etc/", Dir, 0, ""),
                ("etc/passwd", File, 100, ""),
                ("etc/secret", File, 40, ""),
                ("opt/tool/", Dir, 0, ""),
                ("opt/tool/run", File, 9, ""),
            ])),
            Arc::new(listing_of(&[
                ("etc/", Dir, 0, ""),
                ("etc/.wh.secret", File, 0, ""),
                ("etc/passwd", File, 120, ""),
                ("etc/new", File, 1, ""),
                ("opt/tool", File, 3, ""),
            ])),
            // Deleted and put back: it replaces what layer 2 had there.
            Arc::new(listing_of(&[("etc/.wh.passwd", File, 0, ""), ("etc/passwd", File, 130, ""), ("x", File, 1, "")])),
        ])
        .unwrap();
        use Change::*;
        let base = marks(&fs, 0);
        assert!(base.iter().all(|(_, c)| *c == Added), "{base:?}");
        assert_eq!(
            marks(&fs, 1),
            [
                ("etc".to_owned(), Modified),
                ("etc/.wh.secret".to_owned(), Removed),
                ("etc/passwd".to_owned(), Modified),
                ("etc/new".to_owned(), Added),
                ("opt/tool".to_owned(), Modified),
            ]
        );
        assert_eq!(
            marks(&fs, 2),
            [("etc/.wh.passwd".to_owned(), Removed), ("etc/passwd".to_owned(), Modified), ("x".to_owned(), Added)]
        );
        assert_eq!(counts(&fs)[1], Counts { added: 1, modified: 3, removed: 1 });
        assert!(of_layer(&fs, 3).is_empty());
    }
}
