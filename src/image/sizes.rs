//! Where an image's bytes go: its largest files, and the bytes that later layers delete
//! or overwrite while earlier layers still ship them (what dive calls wasted space).

use super::merged::{Fate, MergedFs, Version};
use crate::layer::entry::Kind;

/// Most files the largest-files list holds; pages show them a page at a time.
pub const MAX_LARGEST: usize = 10_000;

/// An image's sizes; see the module docs.
pub struct Sizes<'a> {
    /// Files of every layer, largest first (ties by layer, then path), hidden ones too.
    pub largest: Vec<Version<'a>>,
    /// How many files the layers hold in all.
    pub files: usize,
    /// Bytes of files in all layers.
    pub shipped: u64,
    /// Bytes of files that no container sees.
    pub wasted: u64,
    /// Those bytes by the layer that ships them.
    pub wasted_by_layer: Vec<u64>,
}

impl Sizes<'_> {
    /// dive's efficiency score: the bytes a container sees over all the bytes the layers
    /// ship, from 0 to 1. An image that ships no file bytes wastes none: 1.
    pub fn efficiency(&self) -> f64 {
        if self.shipped == 0 {
            return 1.0;
        }
        (self.shipped - self.wasted.min(self.shipped)) as f64 / self.shipped as f64
    }
}

/// The sizes of the image `fs` holds. The largest files are kept as they are met,
/// never more than twice [`MAX_LARGEST`] at once, so an image of millions of files
/// costs the list no more than a small one.
pub fn of(fs: &MergedFs) -> Sizes<'_> {
    let mut wasted_by_layer = vec![0u64; fs.layers().len()];
    let (mut shipped, mut files) = (0u64, 0usize);
    let mut largest: Vec<Version<'_>> = Vec::new();
    let order = |a: &Version<'_>, b: &Version<'_>| {
        b.entry.entry.size.cmp(&a.entry.entry.size).then(a.layer.cmp(&b.layer)).then(a.entry.path().cmp(b.entry.path()))
    };
    let keep_largest = |largest: &mut Vec<Version<'_>>| {
        if largest.len() > MAX_LARGEST {
            largest.select_nth_unstable_by(MAX_LARGEST - 1, order);
            largest.truncate(MAX_LARGEST);
        }
    };
    for v in fs.versions_by_layer() {
        if v.entry.entry.kind != Kind::File {
            continue;
        }
        files += 1;
        shipped = shipped.saturating_add(v.entry.entry.size);
        if matches!(v.fate, Fate::Deleted { .. } | Fate::Overwritten { .. }) {
            let slot = &mut wasted_by_layer[v.layer as usize];
            *slot = slot.saturating_add(v.entry.entry.size);
        }
        if largest.len() == 2 * MAX_LARGEST {
            keep_largest(&mut largest);
        }
        largest.push(v);
    }
    keep_largest(&mut largest);
    largest.sort_by(order);
    let wasted = wasted_by_layer.iter().copied().fold(0, u64::saturating_add);
    Sizes { largest, files, shipped, wasted, wasted_by_layer }
}

/// How many folders the largest-folders list holds.
pub const MAX_FOLDERS: usize = 20;

/// A folder of the merged filesystem and the files a container sees below it.
#[derive(Debug, PartialEq, Eq)]
pub struct Folder<'a> {
    /// Its path, clean (no leading or trailing `/`).
    pub path: &'a [u8],
    /// Bytes of the visible files anywhere below it.
    pub bytes: u64,
    /// How many visible files lie below it.
    pub files: usize,
}

/// The [`MAX_FOLDERS`] folders of the merged filesystem with the most bytes of visible
/// files below them, largest first (ties by path); a folder counts everything below it,
/// so `usr` comes before `usr/lib`. The root is left out: it holds everything.
pub fn largest_folders(fs: &MergedFs) -> Vec<Folder<'_>> {
    let mut folders: std::collections::HashMap<&[u8], (u64, usize)> = std::collections::HashMap::new();
    for v in fs.versions_by_layer() {
        if v.fate != Fate::Visible || v.entry.entry.kind != Kind::File {
            continue;
        }
        let path = v.entry.path();
        for (slash, _) in path.iter().enumerate().filter(|(_, &b)| b == b'/') {
            let folder = folders.entry(&path[..slash]).or_default();
            folder.0 = folder.0.saturating_add(v.entry.entry.size);
            folder.1 += 1;
        }
    }
    let mut folders: Vec<Folder<'_>> =
        folders.into_iter().map(|(path, (bytes, files))| Folder { path, bytes, files }).collect();
    let order = |a: &Folder<'_>, b: &Folder<'_>| b.bytes.cmp(&a.bytes).then(a.path.cmp(b.path));
    if folders.len() > MAX_FOLDERS {
        folders.select_nth_unstable_by(MAX_FOLDERS - 1, order);
        folders.truncate(MAX_FOLDERS);
    }
    folders.sort_by(order);
    folders
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::layer::listing::tests::listing_of;
    use crate::layer::tar::TypeFlag::{Dir, File};

    #[test]
    fn largest_first_and_wasted_bytes_by_layer() {
        let fs = MergedFs::new(vec![
            Arc::new(listing_of(&[
                ("a/", Dir, 0, ""),
                ("a/big.tar", File, 9000, ""),
                ("a/keep", File, 10, ""),
                ("a/old", File, 300, ""),
            ])),
            Arc::new(listing_of(&[("a/.wh.big.tar", File, 0, ""), ("a/old", File, 200, ""), ("b", File, 50, "")])),
        ])
        .unwrap();
        let s = of(&fs);
        let sizes: Vec<(u32, u64)> = s.largest.iter().map(|v| (v.layer, v.entry.entry.size)).collect();
        assert_eq!(sizes, [(0, 9000), (0, 300), (1, 200), (1, 50), (0, 10)]);
        assert_eq!(s.files, 5);
        assert_eq!(s.shipped, 9560);
        assert_eq!(s.wasted, 9300);
        assert_eq!(s.wasted_by_layer, [9300, 0]);
        // A container sees a/keep, a/old (200) and b: 260 of 9,560 bytes.
        assert!((s.efficiency() - 260.0 / 9560.0).abs() < 1e-12);
    }

    #[test]
    fn the_largest_folders_count_the_visible_files_below_them() {
        let fs = MergedFs::new(vec![
            Arc::new(listing_of(&[
                ("usr/lib/a", File, 1000, ""),
                ("usr/lib/b", File, 500, ""),
                ("usr/bin/c", File, 700, ""),
                ("var/big", File, 5000, ""),
                ("top", File, 9999, ""),
            ])),
            Arc::new(listing_of(&[("var/.wh.big", File, 0, ""), ("usr/lib/a", File, 10, "")])),
        ])
        .unwrap();
        let folders: Vec<(&str, u64, usize)> =
            largest_folders(&fs).iter().map(|f| (std::str::from_utf8(f.path).unwrap(), f.bytes, f.files)).collect();
        // var/big is deleted and usr/lib/a overwritten: only what a container sees counts.
        assert_eq!(folders, [("usr", 1210, 3), ("usr/bin", 700, 1), ("usr/lib", 510, 2)]);
    }

    #[test]
    fn the_largest_files_of_many_are_kept_as_they_are_met() {
        let names: Vec<String> = (0..3 * MAX_LARGEST + 7).map(|i| format!("f{i}")).collect();
        // Sizes rise and fall, so the largest are spread over the whole listing.
        let rows: Vec<(&str, _, u64, &str)> =
            names.iter().enumerate().map(|(i, n)| (n.as_str(), File, ((i * 7919) % 100_003) as u64, "")).collect();
        let fs = MergedFs::new(vec![Arc::new(listing_of(&rows))]).unwrap();
        let s = of(&fs);
        let mut sizes: Vec<u64> = rows.iter().map(|r| r.2).collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        let kept: Vec<u64> = s.largest.iter().map(|v| v.entry.entry.size).collect();
        assert_eq!(kept, sizes[..MAX_LARGEST]);
        assert_eq!(s.files, rows.len());
    }
}
