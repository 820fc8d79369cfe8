//! The merged filesystem: an image's layers applied in order, as a container sees them,
//! with what each layer hid from the layers below.
//!
//! Applying layer `n` follows the OCI image spec ("Applying Changesets"): its whiteouts
//! (`.wh.NAME`) delete `NAME` and everything below it from layers `0..n`, its opaque
//! markers (`.wh..wh..opq`) delete everything below their directory from those layers,
//! and then its entries are added, each one replacing an entry at the same path (and,
//! when a directory is replaced by something else, everything below it). Nothing is
//! thrown away: every entry of every layer keeps its [`Fate`], so pages can strike
//! through what a later layer deleted or overwrote and still let people read it.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use super::search::{Search, MAX_HITS};
use crate::error::Error;
use crate::layer::entry::{self, Kind};
use crate::layer::listing::{EntryRef, Listing};

/// Most entries, summed over an image's layers, the merged view takes in: the view
/// holds 16 bytes per entry on top of the listings, so this keeps it under 128 MiB.
pub const MAX_ENTRIES: usize = 8_000_000;

/// The refusal of a merged view whose layers hold `counted` entries (or more) in the
/// `layers` read so far: the image is beyond the view's limit, which retrying does not
/// change, so it is a 422 and not a 502 (the registry did nothing wrong).
pub fn too_many_entries(counted: usize, layers: usize) -> Error {
    Error::beyond_limit(format!(
        "The merged view takes at most {MAX_ENTRIES} entries, and {layers} of this image's layers already have \
         {counted}. Each layer's own pages still work."
    ))
}

/// What became of a layer's entry once the layers above it were applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// A container sees it.
    Visible,
    /// Layer `by` deleted it with a whiteout or an opaque directory.
    Deleted {
        /// The layer that deleted it.
        by: u32,
    },
    /// Layer `by` put another entry at its path (or replaced a directory above it).
    Overwritten {
        /// The layer that overwrote it.
        by: u32,
    },
    /// A whiteout or opaque marker: an instruction, not part of the filesystem.
    Marker,
}

impl Fate {
    /// The layer that hid the entry, when one did.
    pub fn hidden_by(self) -> Option<u32> {
        match self {
            Fate::Deleted { by } | Fate::Overwritten { by } => Some(by),
            Fate::Visible | Fate::Marker => None,
        }
    }
}

/// One entry of one layer, with its fate.
#[derive(Clone, Copy)]
pub struct Version<'a> {
    /// The layer it is in, from 0.
    pub layer: u32,
    /// The entry.
    pub entry: EntryRef<'a>,
    /// What became of it.
    pub fate: Fate,
}

/// A name in a directory of the merged filesystem. It borrows its versions from the
/// view rather than copying them, so a folder whose one name has a million versions
/// costs no more to list than one with a single version.
pub struct MergedChild<'a> {
    /// Its name.
    pub name: &'a [u8],
    /// The entries at exactly this path (`by_path` keeps them side by side).
    exact: &'a [(u32, u32)],
    fs: &'a MergedFs,
    /// Some visible entry lies below it: it is a directory a container sees.
    pub visible_below: bool,
    /// Some hidden entry lies below it.
    pub hidden_below: bool,
}

impl<'a> MergedChild<'a> {
    /// The entries at exactly this path, lowest layer first.
    pub fn versions(&self) -> impl DoubleEndedIterator<Item = Version<'a>> + Clone + 'a {
        let fs = self.fs;
        self.exact.iter().map(move |&(l, i)| fs.version(l, i)).filter(|v| v.fate != Fate::Marker)
    }

    /// The entry a container sees at this path, if any.
    pub fn visible(&self) -> Option<Version<'a>> {
        self.versions().rev().find(|v| v.fate == Fate::Visible)
    }

    /// Whether a container sees a directory here (with an entry or implied).
    pub fn is_visible_dir(&self) -> bool {
        match self.visible() {
            Some(v) => v.entry.entry.kind == Kind::Dir,
            None => self.visible_below,
        }
    }

    /// Whether a container sees anything at this path.
    pub fn is_visible(&self) -> bool {
        self.visible().is_some() || self.visible_below
    }

    /// Entries at this path that a later layer hid, worth showing: a directory replaced
    /// by another directory is the same directory to a reader, so it is left out.
    pub fn hidden(&self) -> impl Iterator<Item = Version<'a>> + Clone + 'a {
        let dir_now = self.is_visible_dir();
        self.versions().filter(move |v| v.fate.hidden_by().is_some() && !(dir_now && v.entry.entry.kind == Kind::Dir))
    }

    /// Whether it is, or was, a directory.
    pub fn is_dir(&self) -> bool {
        self.is_visible_dir()
            || self.visible_below
            || self.hidden_below
            || self.versions().any(|v| v.entry.entry.kind == Kind::Dir)
    }
}

/// An image's layers, applied; see the module docs.
pub struct MergedFs {
    layers: Vec<Arc<Listing>>,
    /// Each layer's entries' fates, by layer then archive index.
    fates: Vec<Vec<Fate>>,
    /// Every entry of every layer as `(layer, index)`, by path, then layer, then index.
    by_path: Vec<(u32, u32)>,
}

impl MergedFs {
    /// Applies `layers` (base first). Fails when they hold more than [`MAX_ENTRIES`].
    pub fn new(layers: Vec<Arc<Listing>>) -> Result<MergedFs, Error> {
        let total = layers.iter().map(|l| l.len()).fold(0usize, usize::saturating_add);
        if total > MAX_ENTRIES || layers.len() > u32::MAX as usize {
            return Err(too_many_entries(total, layers.len()));
        }
        let fates = apply(&layers);
        let mut by_path: Vec<(u32, u32)> = Vec::with_capacity(total);
        for (l, listing) in layers.iter().enumerate() {
            by_path.extend((0..listing.len() as u32).map(|i| (l as u32, i)));
        }
        by_path.sort_by(|&(la, ia), &(lb, ib)| {
            let pa = layers[la as usize].entry(ia as usize).path();
            let pb = layers[lb as usize].entry(ib as usize).path();
            pa.cmp(pb).then((la, ia).cmp(&(lb, ib)))
        });
        Ok(MergedFs { layers, fates, by_path })
    }

    /// The layers' listings, base first.
    pub fn layers(&self) -> &[Arc<Listing>] {
        &self.layers
    }

    /// Every entry of every layer, by path, then layer; markers included.
    pub fn versions(&self) -> impl Iterator<Item = Version<'_>> + '_ {
        self.by_path.iter().map(|&(l, i)| self.version(l, i))
    }

    /// Every entry of every layer, layer by layer, in archive order.
    pub fn versions_by_layer(&self) -> impl Iterator<Item = Version<'_>> + '_ {
        self.layers
            .iter()
            .enumerate()
            .flat_map(move |(l, listing)| (0..listing.len()).map(move |i| self.version(l as u32, i as u32)))
    }

    /// The fate of entry `index` of layer `layer` (both from 0).
    pub fn fate(&self, layer: u32, index: usize) -> Fate {
        self.fates[layer as usize][index]
    }

    fn version(&self, layer: u32, index: u32) -> Version<'_> {
        Version {
            layer,
            entry: self.layers[layer as usize].entry(index as usize),
            fate: self.fates[layer as usize][index as usize],
        }
    }

    /// The entries at exactly `path` (clean; empty for the root), lowest layer first.
    pub fn at(&self, path: &[u8]) -> impl DoubleEndedIterator<Item = Version<'_>> + Clone + '_ {
        let start = self.by_path.partition_point(|&(l, i)| self.path_of(l, i) < path);
        let len = self.by_path[start..].partition_point(|&(l, i)| self.path_of(l, i) == path);
        self.by_path[start..start + len].iter().map(|&(l, i)| self.version(l, i)).filter(|v| v.fate != Fate::Marker)
    }

    /// Whether `path` names a directory in some layer (with an entry, or implied by
    /// entries below it); the root always does.
    pub fn is_dir(&self, path: &[u8]) -> bool {
        path.is_empty() || self.at(path).any(|v| v.entry.entry.kind == Kind::Dir) || !self.below(path).is_empty()
    }

    /// The names in directory `dir` across all layers: directories first, then by name.
    pub fn children(&self, dir: &[u8]) -> Vec<MergedChild<'_>> {
        let prefix_len = if dir.is_empty() { 0 } else { dir.len() + 1 };
        let below = self.below(dir);
        let mut children: BTreeMap<&[u8], MergedChild<'_>> = BTreeMap::new();
        // The entries at one path lie side by side in `by_path`: each name's are one run.
        let mut k = 0;
        while k < below.len() {
            let (l, i) = below[k];
            let path = self.path_of(l, i);
            let run = below[k..].partition_point(|&(l, i)| self.path_of(l, i) == path);
            let exact = &below[k..k + run];
            k += run;
            let rest = &path[prefix_len..];
            let (name, deeper) = match rest.iter().position(|&b| b == b'/') {
                Some(slash) => (&rest[..slash], true),
                None => (rest, false),
            };
            let mut fates = exact.iter().map(|&(l, i)| self.fates[l as usize][i as usize]);
            let visible = fates.clone().any(|f| f == Fate::Visible);
            let hidden = fates.any(|f| f.hidden_by().is_some());
            if !visible && !hidden {
                // Only markers: instructions, not part of the filesystem.
                continue;
            }
            let child = children.entry(name).or_insert_with(|| MergedChild {
                name,
                exact: &[],
                fs: self,
                visible_below: false,
                hidden_below: false,
            });
            if deeper {
                child.visible_below |= visible;
                child.hidden_below |= hidden;
            } else {
                child.exact = exact;
            }
        }
        let mut out: Vec<MergedChild<'_>> = children.into_values().collect();
        out.sort_by(|a, b| b.is_dir().cmp(&a.is_dir()).then(a.name.cmp(b.name)));
        out
    }

    /// The entries strictly below `dir` (all entries but the root's for the root).
    fn below(&self, dir: &[u8]) -> &[(u32, u32)] {
        let (lo, hi) = if dir.is_empty() {
            (self.by_path.partition_point(|&(l, i)| self.path_of(l, i).is_empty()), self.by_path.len())
        } else {
            let (start, end) = subtree(dir);
            (
                self.by_path.partition_point(|&(l, i)| self.path_of(l, i) < &start[..]),
                self.by_path.partition_point(|&(l, i)| self.path_of(l, i) < &end[..]),
            )
        };
        &self.by_path[lo..hi]
    }

    fn path_of(&self, layer: u32, index: u32) -> &[u8] {
        self.layers[layer as usize].entry(index as usize).path()
    }

    /// Bytes of memory the view holds besides its listings, for a cache's weigher.
    pub fn weight(&self) -> usize {
        std::mem::size_of::<MergedFs>()
            + self.by_path.capacity() * std::mem::size_of::<(u32, u32)>()
            + self.fates.iter().map(|f| f.capacity() * std::mem::size_of::<Fate>()).sum::<usize>()
    }
}

/// The bounds of the paths strictly below directory `dir` (not the root): from `dir/`
/// to `dir0`, exclusive, since `0` is the byte after `/`.
fn subtree(dir: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut start = dir.to_vec();
    start.push(b'/');
    let mut end = dir.to_vec();
    end.push(b'/' + 1);
    (start, end)
}

/// Each entry's fate once every layer is applied; see the module docs.
fn apply(layers: &[Arc<Listing>]) -> Vec<Vec<Fate>> {
    let mut fates: Vec<Vec<Fate>> = layers.iter().map(|l| vec![Fate::Visible; l.len()]).collect();
    // What a container sees so far: path to (layer, index).
    let mut live: BTreeMap<&[u8], (u32, u32)> = BTreeMap::new();
    for (n, listing) in layers.iter().enumerate() {
        let by = n as u32;
        // A layer's whiteouts act on the layers below it, wherever they sit in its archive.
        for e in listing.entries() {
            let Some(target) = entry::whiteout_target(e.entry.kind, e.path()) else { continue };
            fates[n][e.index] = Fate::Marker;
            let with_itself = e.entry.kind == Kind::Whiteout;
            hide(&mut live, &mut fates, &target, with_itself, Fate::Deleted { by });
        }
        for e in listing.entries() {
            if fates[n][e.index] == Fate::Marker {
                continue;
            }
            let Some((pl, pi)) = live.insert(e.path(), (by, e.index as u32)) else { continue };
            fates[pl as usize][pi as usize] = Fate::Overwritten { by };
            let was_dir = layers[pl as usize].entry(pi as usize).entry.kind == Kind::Dir;
            if was_dir && e.entry.kind != Kind::Dir {
                hide(&mut live, &mut fates, e.path(), false, Fate::Overwritten { by });
            }
        }
    }
    fates
}

/// Hides from `live` what lies below `path` (and `path` itself when `with_itself`),
/// giving each hidden entry `fate`.
fn hide(live: &mut BTreeMap<&[u8], (u32, u32)>, fates: &mut [Vec<Fate>], path: &[u8], with_itself: bool, fate: Fate) {
    let mut gone: Vec<&[u8]> = Vec::new();
    if path.is_empty() {
        gone.extend(live.keys().filter(|k| !k.is_empty()).copied());
    } else {
        let (start, end) = subtree(path);
        let bounds = (Bound::Included(&start[..]), Bound::Excluded(&end[..]));
        gone.extend(live.range::<[u8], _>(bounds).map(|(k, _)| *k));
    }
    if with_itself && live.contains_key(path) {
        gone.push(live.get_key_value(path).map(|(k, _)| *k).unwrap_or_default());
    }
    for key in gone {
        if let Some((l, i)) = live.remove(key) {
            fates[l as usize][i as usize] = fate;
        }
    }
}

impl MergedFs {
    /// The entries of every layer whose path `search` matches, hidden ones too (markers
    /// not), by path then layer, at most [`MAX_HITS`]; and whether there were more.
    pub fn search(&self, search: &Search) -> (Vec<Version<'_>>, bool) {
        let mut hits: Vec<Version<'_>> = self
            .versions()
            .filter(|v| v.fate != Fate::Marker && search.matches(v.entry.path()))
            .take(MAX_HITS + 1)
            .collect();
        let capped = hits.len() > MAX_HITS;
        hits.truncate(MAX_HITS);
        (hits, capped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::listing::tests::listing_of;
    use crate::layer::tar::TypeFlag::{Dir, File, Symlink};

    fn image() -> MergedFs {
        MergedFs::new(vec![
            Arc::new(listing_of(&[
                ("./", Dir, 0, ""),
                ("etc/", Dir, 0, ""),
                ("etc/passwd", File, 100, ""),
                ("etc/secret", File, 40, ""),
                ("var/cache/apt/pkg.deb", File, 5000, ""),
                ("var/cache/apt/lists", File, 300, ""),
                ("opt/tool/", Dir, 0, ""),
                ("opt/tool/bin", File, 70, ""),
                ("bin/sh", File, 9, ""),
            ])),
            Arc::new(listing_of(&[
                ("etc/.wh.secret", File, 0, ""),
                ("var/cache/.wh..wh..opq", File, 0, ""),
                ("var/cache/new", File, 1, ""),
                ("etc/passwd", File, 120, ""),
                ("opt/tool", File, 3, ""),
                ("bin/sh", Symlink, 0, "dash"),
            ])),
            Arc::new(listing_of(&[("etc/.wh.passwd", File, 0, ""), ("etc/passwd", File, 130, "")])),
        ])
        .unwrap()
    }

    fn fate(fs: &MergedFs, path: &str) -> Vec<(u32, Fate)> {
        fs.at(path.as_bytes()).map(|v| (v.layer, v.fate)).collect()
    }

    #[test]
    fn whiteouts_delete_and_later_entries_overwrite() {
        let fs = image();
        assert_eq!(fate(&fs, "etc/secret"), [(0, Fate::Deleted { by: 1 })]);
        assert_eq!(
            fate(&fs, "etc/passwd"),
            // Layer 2 deletes layer 1's passwd, then adds its own.
            [(0, Fate::Overwritten { by: 1 }), (1, Fate::Deleted { by: 2 }), (2, Fate::Visible)]
        );
        assert_eq!(fate(&fs, "bin/sh"), [(0, Fate::Overwritten { by: 1 }), (1, Fate::Visible)]);
    }

    #[test]
    fn opaque_directories_hide_what_lies_below_them() {
        let fs = image();
        assert_eq!(fate(&fs, "var/cache/apt/pkg.deb"), [(0, Fate::Deleted { by: 1 })]);
        assert_eq!(fate(&fs, "var/cache/new"), [(1, Fate::Visible)]);
        let cache = fs.children(b"var/cache");
        let names: Vec<&[u8]> = cache.iter().map(|c| c.name).collect();
        assert_eq!(names, [&b"apt"[..], b"new"]);
        assert!(!cache[0].is_visible() && cache[0].hidden_below && cache[0].is_dir());
        assert!(cache[1].is_visible());
    }

    #[test]
    fn a_file_over_a_directory_hides_its_contents() {
        let fs = image();
        assert_eq!(fate(&fs, "opt/tool"), [(0, Fate::Overwritten { by: 1 }), (1, Fate::Visible)]);
        assert_eq!(fate(&fs, "opt/tool/bin"), [(0, Fate::Overwritten { by: 1 })]);
        let opt = fs.children(b"opt");
        assert_eq!(opt.len(), 1);
        let tool = &opt[0];
        assert_eq!(tool.visible().unwrap().layer, 1);
        assert!(!tool.is_visible_dir());
        // The directory it replaced is worth showing: it was not a directory that stayed one.
        assert_eq!(tool.hidden().map(|v| v.layer).collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn the_root_lists_every_top_level_name_once_without_markers() {
        let fs = image();
        let root = fs.children(b"");
        let names: Vec<&[u8]> = root.iter().map(|c| c.name).collect();
        assert_eq!(names, [&b"bin"[..], b"etc", b"opt", b"var"]);
        let etc = fs.children(b"etc");
        let names: Vec<&[u8]> = etc.iter().map(|c| c.name).collect();
        assert_eq!(names, [&b"passwd"[..], b"secret"]);
        assert!(!etc[1].is_visible());
        assert!(fs.is_dir(b"var/cache/apt") && fs.is_dir(b"") && !fs.is_dir(b"etc/passwd"));
        // Layer directories merged into each other are not struck through.
        assert_eq!(root.iter().find(|c| c.name == b"etc").unwrap().hidden().count(), 0);
    }

    #[test]
    fn an_image_without_layers_is_an_empty_root() {
        let fs = MergedFs::new(vec![]).unwrap();
        assert!(fs.children(b"").is_empty());
        assert!(fs.at(b"x").next().is_none());
    }
}
