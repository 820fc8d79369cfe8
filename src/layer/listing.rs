//! A layer's listing: every entry in archive order, held compactly (all names in one
//! buffer) so that a listing of a million entries is a few allocations, its memory is
//! known exactly (the cache weighs listings by it), and it can be sorted by size and
//! browsed by directory without reading the blob again.

use std::collections::BTreeMap;
use std::ops::Range;

use super::decompress::Compression;
use super::entry::{self, Kind, NameIssue};
use super::tar::{Header, Visitor, Want};

/// Most entries a listing holds; past it the listing stops, with a note.
pub const MAX_ENTRIES: usize = 1_000_000;
/// Most bytes of names (paths and link targets) a listing holds; past it the listing
/// stops, with a note.
pub const MAX_NAME_BYTES: usize = 64 * 1024 * 1024;

/// Where a name lies in the listing's name buffer.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn range(self) -> Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

/// One entry's facts.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    path: Span,
    link: Span,
    /// What it is.
    pub kind: Kind,
    /// Its size (0 for everything but files).
    pub size: u64,
    /// Permission and special bits.
    pub mode: u32,
    /// Owner (saturated at `u32::MAX`).
    pub uid: u32,
    /// Group (saturated at `u32::MAX`).
    pub gid: u32,
    /// Modification time, seconds since 1970.
    pub mtime: i64,
    /// Major and minor numbers of a device.
    pub device: (u32, u32),
    /// How its raw name was changed to place it in the layer.
    pub issue: NameIssue,
}

/// An entry with its place in the listing, for reading its names.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    /// Its position in the archive, from 0: the `N`th header.
    pub index: usize,
    /// Its facts.
    pub entry: &'a Entry,
    listing: &'a Listing,
}

impl<'a> EntryRef<'a> {
    /// Its clean path inside the layer (empty for the root).
    pub fn path(&self) -> &'a [u8] {
        &self.listing.names[self.entry.path.range()]
    }

    /// A link's target as the archive has it (empty when not a link).
    pub fn link(&self) -> &'a [u8] {
        &self.listing.names[self.entry.link.range()]
    }

    /// The raw name, when cleaning changed it in a way worth telling.
    pub fn raw_name(&self) -> Option<&'a [u8]> {
        let i = self.listing.odd_names.binary_search_by_key(&(self.index as u32), |(i, _)| *i).ok()?;
        Some(&self.listing.names[self.listing.odd_names[i].1.range()])
    }
}

/// How reading the layer went, for the notes on its pages.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// The compression found in the blob.
    pub compression: Option<Compression>,
    /// Compressed bytes read.
    pub compressed_bytes: u64,
    /// Bytes of tar stream read.
    pub tar_bytes: u64,
    /// Why the listing is incomplete, when it is: where reading stopped and why.
    pub stopped: Option<String>,
}

/// Every entry of a layer; see the module docs.
#[derive(Default)]
pub struct Listing {
    names: Vec<u8>,
    entries: Vec<Entry>,
    /// Raw names of entries whose names were absolute or climbed out, by index.
    odd_names: Vec<(u32, Span)>,
    /// Entry indexes, largest first (ties by path).
    by_size: Vec<u32>,
    /// Each entry's place in the tar stream, by index: where its first header block
    /// and its data begin (what an index resumes at).
    offsets: Vec<(u64, u64)>,
    /// How reading went.
    pub summary: Summary,
}

/// What a path names in a listing.
pub enum Lookup<'a> {
    /// An entry (the last one with that path, as unpacking leaves it).
    Entry(EntryRef<'a>),
    /// A directory with entries below it but no entry of its own (or the root).
    ImpliedDir,
    /// Nothing.
    Missing,
}

/// One name in a directory.
pub struct Child<'a> {
    /// The name.
    pub name: &'a [u8],
    /// Its entry; `None` for a directory only implied by deeper paths.
    pub entry: Option<EntryRef<'a>>,
}

impl Child<'_> {
    /// Whether it is a directory (with or without an entry of its own).
    pub fn is_dir(&self) -> bool {
        self.entry.is_none_or(|e| e.entry.kind == Kind::Dir)
    }
}

impl Listing {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the layer has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry at `index` (archive order).
    pub fn entry(&self, index: usize) -> EntryRef<'_> {
        EntryRef { index, entry: &self.entries[index], listing: self }
    }

    /// Entries in archive order.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = EntryRef<'_>> + ExactSizeIterator {
        (0..self.entries.len()).map(|i| self.entry(i))
    }

    /// Entries largest first, ties by path.
    pub fn by_size(&self) -> impl ExactSizeIterator<Item = EntryRef<'_>> {
        self.by_size.iter().map(|&i| self.entry(i as usize))
    }

    /// Total size of the files.
    pub fn file_bytes(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind, Kind::File | Kind::Sparse))
            .map(|e| e.size)
            .fold(0, u64::saturating_add)
    }

    /// Entries whose names were absolute or climbed out of the layer.
    pub fn odd_name_count(&self) -> usize {
        self.odd_names.len()
    }

    /// Bytes of memory the listing holds, for the cache's weigher.
    pub fn weight(&self) -> usize {
        std::mem::size_of::<Listing>()
            + self.names.capacity()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.odd_names.capacity() * std::mem::size_of::<(u32, Span)>()
            + self.by_size.capacity() * std::mem::size_of::<u32>()
            + self.offsets.capacity() * std::mem::size_of::<(u64, u64)>()
            + self.summary.stopped.as_ref().map_or(0, String::len)
    }

    /// What `path` (clean, empty for the root) names.
    pub fn lookup(&self, path: &[u8]) -> Lookup<'_> {
        if let Some(found) = self.entries().rev().find(|e| e.path() == path) {
            return Lookup::Entry(found);
        }
        if path.is_empty() || self.entries().any(|e| is_below(e.path(), path)) {
            Lookup::ImpliedDir
        } else {
            Lookup::Missing
        }
    }

    /// The names in directory `dir` (clean, empty for the root), directories first,
    /// then by name. Opaque markers are left out: see [`Listing::is_opaque`].
    pub fn children(&self, dir: &[u8]) -> Vec<Child<'_>> {
        let mut children: BTreeMap<(bool, &[u8]), Option<EntryRef<'_>>> = BTreeMap::new();
        let mut implied: BTreeMap<&[u8], ()> = BTreeMap::new();
        for e in self.entries() {
            let path = e.path();
            let rest = if dir.is_empty() {
                path
            } else if is_below(path, dir) {
                &path[dir.len() + 1..]
            } else {
                continue;
            };
            match rest.iter().position(|&b| b == b'/') {
                Some(slash) => {
                    implied.insert(&rest[..slash], ());
                }
                None if rest.is_empty() || e.entry.kind == Kind::Opaque => {}
                None => {
                    // A later entry with the same name replaces an earlier one.
                    let is_dir = e.entry.kind == Kind::Dir;
                    children.remove(&(!is_dir, rest));
                    children.insert((is_dir, rest), Some(e));
                }
            }
        }
        for (name, ()) in implied {
            children.entry((true, name)).or_insert(None);
        }
        let mut out: Vec<Child<'_>> = children.into_iter().map(|((_, name), entry)| Child { name, entry }).collect();
        out.sort_by(|a, b| b.is_dir().cmp(&a.is_dir()).then(a.name.cmp(b.name)));
        out
    }

    /// Whether directory `dir` has an opaque marker (hides the layers below).
    pub fn is_opaque(&self, dir: &[u8]) -> bool {
        self.entries().any(|e| e.entry.kind == Kind::Opaque && entry::parent(e.path()) == dir)
    }

    /// The entry whose bytes `index` has: itself for a file, the file a hard link
    /// points to (the last entry before it with that path), none otherwise.
    pub fn content_of(&self, index: usize) -> Option<EntryRef<'_>> {
        let e = self.entry(index);
        match e.entry.kind {
            Kind::File => Some(e),
            Kind::HardLink => {
                let (target, _) = entry::clean(e.link());
                let found = self.entries().take(index).rev().find(|t| t.path() == target)?;
                (found.entry.kind == Kind::File).then_some(found)
            }
            _ => None,
        }
    }

    /// Where entry `index` lies in the tar stream: its first header block, its data.
    pub fn offsets(&self, index: usize) -> (u64, u64) {
        self.offsets[index]
    }

    /// Adds the entry `header` describes; `false` when a limit is reached.
    fn push(&mut self, header: &Header) -> bool {
        let (path, issue) = entry::clean(&header.path);
        let odd = issue != NameIssue::None;
        let needed = path.len() + header.link.len() + if odd { header.path.len() } else { 0 };
        if self.entries.len() >= MAX_ENTRIES || self.names.len() + needed > MAX_NAME_BYTES {
            return false;
        }
        let kind = Kind::of(header.kind, &path);
        let path = self.store(&path);
        let link = self.store(&header.link);
        if odd {
            let raw = self.store(&header.path);
            self.odd_names.push((self.entries.len() as u32, raw));
        }
        let saturate = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        self.entries.push(Entry {
            path,
            link,
            kind,
            size: header.size,
            mode: header.mode,
            uid: saturate(header.uid),
            gid: saturate(header.gid),
            mtime: header.mtime,
            device: (header.dev_major, header.dev_minor),
            issue,
        });
        self.offsets.push((header.offset, header.data_offset));
        true
    }

    fn store(&mut self, bytes: &[u8]) -> Span {
        // MAX_NAME_BYTES keeps offsets well inside u32.
        let span = Span { start: self.names.len() as u32, len: bytes.len() as u32 };
        self.names.extend_from_slice(bytes);
        span
    }

    /// Sorts the size index and trims spare capacity, once all entries are in.
    fn seal(&mut self) {
        self.names.shrink_to_fit();
        self.entries.shrink_to_fit();
        self.offsets.shrink_to_fit();
        let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (ea, eb) = (&self.entries[a as usize], &self.entries[b as usize]);
            eb.size.cmp(&ea.size).then_with(|| self.names[ea.path.range()].cmp(&self.names[eb.path.range()]))
        });
        self.by_size = order;
    }
}

/// `path` is strictly below directory `dir` (both clean; `dir` not the root).
fn is_below(path: &[u8], dir: &[u8]) -> bool {
    dir.is_empty() && !path.is_empty() || path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// Builds a listing from a tar scan; stops at the limits.
#[derive(Default)]
pub struct ListingBuilder {
    listing: Listing,
    limit: Option<String>,
}

impl ListingBuilder {
    /// The listing, sealed, with `summary`; a limit reached overrides its `stopped`.
    pub fn finish(mut self, mut summary: Summary) -> Listing {
        if let Some(limit) = self.limit {
            summary.stopped = Some(limit);
        }
        self.listing.summary = summary;
        self.listing.seal();
        self.listing
    }
}

impl Visitor for ListingBuilder {
    fn entry(&mut self, header: Header) -> Want {
        if self.listing.push(&header) {
            return Want::Skip;
        }
        self.limit = Some(format!(
            "The listing stops after {} entries: layerpipe lists at most {MAX_ENTRIES} entries and {} MiB of names.",
            self.listing.len(),
            MAX_NAME_BYTES >> 20
        ));
        Want::Stop
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::tar::TypeFlag;
    use super::*;

    /// A listing of `(path, kind, size, link)` entries, for tests here and in `image`.
    pub(crate) fn listing_of(entries: &[(&str, TypeFlag, u64, &str)]) -> Listing {
        let headers: Vec<Header> =
            entries.iter().map(|&(path, kind, size, link)| header(path, kind, size, link)).collect();
        listing(&headers)
    }

    /// A listing of `(path, type, mode, size, link)`, for tests that compare modes.
    pub(crate) fn listing_with_modes(entries: &[(&str, TypeFlag, u32, u64, &str)]) -> Listing {
        let headers: Vec<Header> = entries
            .iter()
            .map(|&(path, kind, mode, size, link)| Header { mode, ..header(path, kind, size, link) })
            .collect();
        listing(&headers)
    }

    fn header(path: &str, kind: TypeFlag, size: u64, link: &str) -> Header {
        Header::sample(path, kind, size, link, 0)
    }

    fn listing(headers: &[Header]) -> Listing {
        let mut b = ListingBuilder::default();
        for h in headers {
            assert_eq!(b.entry(h.clone()), Want::Skip);
        }
        b.finish(Summary::default())
    }

    fn sample() -> Listing {
        listing(&[
            header("./", TypeFlag::Dir, 0, ""),
            header("./etc/", TypeFlag::Dir, 0, ""),
            header("./etc/motd", TypeFlag::File, 10, ""),
            header("./etc/.wh.issue", TypeFlag::File, 0, ""),
            header("./usr/bin/big", TypeFlag::File, 1000, ""),
            header("./usr/bin/sh", TypeFlag::Symlink, 0, "dash"),
            header("./usr/bin/hard", TypeFlag::HardLink, 0, "./usr/bin/big"),
            header("./var/cache/.wh..wh..opq", TypeFlag::File, 0, ""),
            header("/abs", TypeFlag::File, 5, ""),
            header("../../climb", TypeFlag::File, 7, ""),
            header("./etc/motd", TypeFlag::File, 20, ""),
        ])
    }

    fn names<'a>(children: &'a [Child<'a>]) -> Vec<String> {
        children.iter().map(|c| String::from_utf8_lossy(c.name).into_owned()).collect()
    }

    #[test]
    fn sorted_by_size_largest_first() {
        let l = sample();
        let sizes: Vec<u64> = l.by_size().map(|e| e.entry.size).collect();
        assert_eq!(&sizes[..5], [1000, 20, 10, 7, 5]);
        assert_eq!(l.file_bytes(), 1042);
    }

    #[test]
    fn directories_list_their_children_including_implied_ones() {
        let l = sample();
        assert_eq!(names(&l.children(b"")), ["etc", "usr", "var", "abs", "climb"]);
        assert_eq!(names(&l.children(b"etc")), [".wh.issue", "motd"]);
        // The later motd replaces the earlier one.
        assert_eq!(l.children(b"etc")[1].entry.unwrap().entry.size, 20);
        assert_eq!(names(&l.children(b"usr")), ["bin"]);
        assert!(l.children(b"usr")[0].entry.is_none());
        assert_eq!(names(&l.children(b"var/cache")), Vec::<String>::new());
        assert!(l.is_opaque(b"var/cache"));
        assert!(!l.is_opaque(b"var"));
    }

    #[test]
    fn lookups_and_hard_links() {
        let l = sample();
        assert!(matches!(l.lookup(b"usr/bin"), Lookup::ImpliedDir));
        assert!(matches!(l.lookup(b""), Lookup::Entry(_)));
        assert!(matches!(l.lookup(b"nope"), Lookup::Missing));
        assert!(matches!(l.lookup(b"usr/bi"), Lookup::Missing));
        let Lookup::Entry(hard) = l.lookup(b"usr/bin/hard") else { panic!() };
        assert_eq!(l.content_of(hard.index).unwrap().path(), b"usr/bin/big");
        let Lookup::Entry(sh) = l.lookup(b"usr/bin/sh") else { panic!() };
        assert!(l.content_of(sh.index).is_none());
        let Lookup::Entry(climb) = l.lookup(b"climb") else { panic!() };
        assert_eq!(climb.entry.issue, NameIssue::ClimbsOut);
        assert_eq!(climb.raw_name(), Some(&b"../../climb"[..]));
        assert_eq!(l.odd_name_count(), 2);
    }

    #[test]
    fn an_entry_stays_small() {
        // A million of them are the bulk of a full listing's memory (BENCHMARKS.md).
        assert_eq!(std::mem::size_of::<Entry>(), 56);
    }

    #[test]
    fn limits_stop_the_listing_with_a_note() {
        let mut b = ListingBuilder::default();
        let long = "x".repeat(MAX_NAME_BYTES / 2 + 1);
        assert_eq!(b.entry(header(&long, TypeFlag::File, 1, "")), Want::Skip);
        assert_eq!(b.entry(header(&long, TypeFlag::File, 1, "")), Want::Stop);
        let l = b.finish(Summary::default());
        assert_eq!(l.len(), 1);
        assert!(l.summary.stopped.as_deref().unwrap().contains("stops after 1 entries"));
        assert!(l.weight() > MAX_NAME_BYTES / 2);
    }
}
