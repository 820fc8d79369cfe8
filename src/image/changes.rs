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

use std::collections::HashMap;

use super::merged::{Fate, MergedFs, Version};

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

/// Whether layer `layer` hid an entry a lower layer has at `path`. It walks the lower
/// layers' entries at the path, which an image may hold a million of.
fn replaces(fs: &MergedFs, layer: u32, path: &[u8]) -> bool {
    // `at` lists the path's entries lowest layer first, markers left out.
    fs.at(path).take_while(|v| v.layer < layer).any(|v| v.fate.hidden_by() == Some(layer))
}

/// Every entry of layer `layer` (from 0) of `fs` with its mark, in archive order.
pub fn of_layer(fs: &MergedFs, layer: u32) -> Vec<(Version<'_>, Change)> {
    marked(fs, layer).collect()
}

/// Marks layer `layer`'s entries, asking about each path once: a layer may repeat a
/// path (a million headers named `f` over a million below), and asking per entry
/// walks the lower entries once per repeat, which took minutes of CPU for one page.
fn marked(fs: &MergedFs, layer: u32) -> impl Iterator<Item = (Version<'_>, Change)> + '_ {
    let entries = fs.layers().get(layer as usize).into_iter().flat_map(|listing| listing.entries());
    let mut asked: HashMap<&[u8], bool> = HashMap::new();
    entries.map(move |entry| {
        let fate = fs.fate(layer, entry.index);
        let change = if fate == Fate::Marker {
            Change::Removed
        } else if *asked.entry(entry.path()).or_insert_with(|| replaces(fs, layer, entry.path())) {
            Change::Modified
        } else {
            Change::Added
        };
        (Version { layer, entry, fate }, change)
    })
}

/// How many entries of each layer have each mark, base first.
pub fn counts(fs: &MergedFs) -> Vec<Counts> {
    (0..fs.layers().len() as u32)
        .map(|layer| {
            let mut counts = Counts::default();
            for (_, change) in marked(fs, layer) {
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

    #[test]
    fn a_path_repeated_in_every_layer_is_marked_in_one_walk() {
        // Asked per entry, layer 1's marks walk layer 0's 100,000 entries at `f` once
        // for each of its own: 10^10 steps, minutes of CPU for one page.
        const REPEATS: usize = 100_000;
        let layer = || Arc::new(listing_of(&vec![("f", File, 1, ""); REPEATS]));
        let fs = MergedFs::new(vec![layer(), layer()]).unwrap();
        assert_eq!(
            counts(&fs),
            [Counts { added: REPEATS, ..Counts::default() }, Counts { modified: REPEATS, ..Counts::default() }]
        );
    }
}
