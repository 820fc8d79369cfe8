//! Layer indexes on disk, so that they outlive a restart: one file per blob digest
//! under `index.dir`, written to a temporary name and renamed into place (a reader
//! never sees half a file), checksummed ([`super::codec`]), and evicted least recently
//! used first once the files pass `index.max_bytes`.
//!
//! A file that fails its checksum or cannot be read is removed and counted as absent:
//! the layer is read again and the index rebuilt. Calls block on the file system; the
//! inspector runs them on blocking threads.
//!
//! Several instances may share one folder (replicas on one volume, a restart that
//! overlaps the old process). So start-up removes only temporary files old enough to be
//! a crashed writer's (`STALE_TEMPORARY`), never one that another live instance is
//! writing: removing that would make its rename fail and lose the index (issue 22).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::{codec, LayerIndex};
use crate::digest::Digest;

/// The suffix of index files; anything else in the folder is left alone.
const SUFFIX: &str = ".idx";
/// The part of a temporary file's name that marks it as one.
const TEMPORARY: &str = ".tmp-";
/// Age past which a temporary file is a leftover. A save writes its file and renames it
/// within seconds, and every write moves the file's time, so a live one is far younger.
/// Not the writer's process id: instances in different containers see different ones.
const STALE_TEMPORARY: Duration = Duration::from_secs(60 * 60);

/// The store; see the module docs.
pub struct IndexStore {
    dir: PathBuf,
    max_bytes: u64,
    files: Mutex<Files>,
    temporaries: AtomicU64,
}

/// What the folder holds, by file name: size and when last used.
#[derive(Default)]
struct Files {
    by_name: HashMap<String, (u64, SystemTime)>,
    total: u64,
}

impl IndexStore {
    /// The store in `dir` (created if missing), holding at most `max_bytes`. Stale
    /// temporary files, left by a run that crashed mid-save, are removed.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<IndexStore> {
        fs::create_dir_all(dir)?;
        let mut files = Files::default();
        let now = SystemTime::now();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                // Another instance renamed or removed it since the listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if name.contains(TEMPORARY) {
                if is_stale(&meta, now) {
                    let _ = fs::remove_file(entry.path());
                }
            } else if name.ends_with(SUFFIX) && meta.is_file() {
                let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                files.total += meta.len();
                files.by_name.insert(name, (meta.len(), used));
            }
        }
        let store = IndexStore { dir: dir.to_owned(), max_bytes, files: Mutex::new(files), temporaries: 0.into() };
        store.evict();
        Ok(store)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of index files held now.
    pub fn bytes(&self) -> u64 {
        self.lock().total
    }

    /// The index of `digest`, if one is stored and intact. A damaged one is removed.
    pub fn load(&self, digest: &Digest) -> Option<LayerIndex> {
        let name = file_name(digest);
        let path = self.dir.join(&name);
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.forget(&name);
                return None;
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read a layer index; reading the layer again");
                return None;
            }
        };
        match codec::decode(file).and_then(|index| {
            if index.digest == *digest {
                Ok(index)
            } else {
                Err(format!("it is the index of {}", index.digest))
            }
        }) {
            Ok(index) => {
                self.touch(&name, &path);
                Some(index)
            }
            Err(why) => {
                tracing::warn!(file = %path.display(), %why, "removing a damaged layer index; it will be rebuilt");
                self.remove(digest);
                None
            }
        }
    }

    /// Stores `index`, replacing any earlier one of the same blob, then evicts the
    /// least recently used files beyond the budget.
    pub fn save(&self, index: &LayerIndex) -> io::Result<()> {
        let bytes = codec::encode(index);
        let name = file_name(&index.digest);
        let n = self.temporaries.fetch_add(1, Ordering::Relaxed);
        let temporary = self.dir.join(format!("{name}{TEMPORARY}{}-{n}", std::process::id()));
        let written = (|| {
            let mut file = fs::File::create(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&temporary, self.dir.join(&name))
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temporary);
            return Err(e);
        }
        {
            let mut files = self.lock();
            if let Some((old, _)) = files.by_name.insert(name, (bytes.len() as u64, SystemTime::now())) {
                files.total -= old;
            }
            files.total += bytes.len() as u64;
        }
        self.evict();
        Ok(())
    }

    /// Removes the index of `digest`, if any.
    pub fn remove(&self, digest: &Digest) {
        let name = file_name(digest);
        let _ = fs::remove_file(self.dir.join(&name));
        self.forget(&name);
    }

    fn forget(&self, name: &str) {
        let mut files = self.lock();
        if let Some((size, _)) = files.by_name.remove(name) {
            files.total -= size;
        }
    }

    fn touch(&self, name: &str, path: &Path) {
        let now = SystemTime::now();
        if let Some(entry) = self.lock().by_name.get_mut(name) {
            entry.1 = now;
        }
        // The file's time carries recency across restarts; failing to set it only
        // makes eviction order less exact.
        let _ = fs::File::options().append(true).open(path).and_then(|f| f.set_modified(now));
    }

    fn evict(&self) {
        let victims: Vec<String> = {
            let files = self.lock();
            if files.total <= self.max_bytes {
                return;
            }
            let mut by_age: Vec<(&String, &(u64, SystemTime))> = files.by_name.iter().collect();
            by_age.sort_by_key(|(_, (_, used))| *used);
            let mut excess = files.total - self.max_bytes;
            let mut victims = Vec::new();
            for (name, (size, _)) in by_age {
                if excess == 0 {
                    break;
                }
                excess = excess.saturating_sub(*size);
                victims.push(name.clone());
            }
            victims
        };
        for name in victims {
            let _ = fs::remove_file(self.dir.join(&name));
            self.forget(&name);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Files> {
        // A panic while holding the lock leaves sizes that are at worst stale.
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a temporary file is a leftover: last written more than [`STALE_TEMPORARY`]
/// ago. One without a readable time, or dated ahead of `now` (clocks that disagree), is
/// kept: a few stray bytes cost less than another instance's lost save.
fn is_stale(meta: &fs::Metadata, now: SystemTime) -> bool {
    let written = meta.modified().ok();
    written.and_then(|t| now.duration_since(t).ok()).is_some_and(|age| age > STALE_TEMPORARY)
}

/// `sha256-HEX.idx`: the digest, with a character every file system takes.
fn file_name(digest: &Digest) -> String {
    format!("{}-{}{SUFFIX}", digest.algorithm().name(), digest.hex())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::digest::Algorithm;
    use crate::layer::listing::Listing;

    fn index(n: u8, window: usize) -> LayerIndex {
        LayerIndex {
            digest: Digest::of(Algorithm::Sha256, &[n]),
            listing: Arc::new(Listing::default()),
            points: vec![crate::layer::decompress::ResumePoint {
                compressed: 10,
                bits: 1,
                tar: 0,
                window: vec![n; window],
            }],
            marks: Vec::new(),
            verified: true,
            origin: "r/x".into(),
        }
    }

    #[test]
    fn indexes_survive_a_reopen_and_damaged_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = IndexStore::open(dir.path(), 1 << 20).unwrap();
        store.save(&index(1, 100)).unwrap();
        store.save(&index(2, 100)).unwrap();
        drop(store);
        // A leftover temporary file from a crash is cleared on open.
        stale_temporary(dir.path(), "x.idx");
        let store = IndexStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        assert_eq!(store.load(&index(1, 0).digest).unwrap().points[0].window, vec![1; 100]);
        // Truncate the second: it is refused, removed, and counted no more.
        let second = dir.path().join(file_name(&index(2, 0).digest));
        let len = fs::metadata(&second).unwrap().len();
        fs::File::options().write(true).open(&second).unwrap().set_len(len - 5).unwrap();
        let before = store.bytes();
        assert!(store.load(&index(2, 0).digest).is_none());
        assert!(!second.exists());
        assert_eq!(store.bytes(), before - len);
        assert!(store.load(&index(3, 0).digest).is_none());
    }

    /// A temporary file for `name`, last written two hours ago, as a crash leaves it.
    fn stale_temporary(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}{TEMPORARY}1-1"));
        fs::write(&path, b"half").unwrap();
        let two_hours_ago = SystemTime::now() - 2 * STALE_TEMPORARY;
        fs::File::options().write(true).open(&path).unwrap().set_modified(two_hours_ago).unwrap();
        path
    }

    #[test]
    fn opening_a_shared_folder_spares_another_instances_save_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let first = IndexStore::open(dir.path(), 1 << 20).unwrap();
        // Another instance is half-way through a save: its temporary file is written
        // (named with its own process id), not yet renamed.
        let digest = index(1, 0).digest;
        let name = file_name(&digest);
        let in_flight = dir.path().join(format!("{name}{TEMPORARY}999999-0"));
        fs::write(&in_flight, codec::encode(&index(1, 100))).unwrap();
        let crashed = stale_temporary(dir.path(), "y.idx");
        // A second instance starts on the same folder.
        let second = IndexStore::open(dir.path(), 1 << 20).unwrap();
        assert!(in_flight.exists(), "a live instance's temporary file was removed");
        assert!(!crashed.exists(), "a crashed run's temporary file stays");
        // The other instance's rename then succeeds, and both stores read the index.
        fs::rename(&in_flight, dir.path().join(&name)).unwrap();
        assert_eq!(second.load(&digest).unwrap().points[0].window, vec![1; 100]);
        assert!(first.load(&digest).is_some());
        // And each one's own saves go on as before.
        first.save(&index(2, 10)).unwrap();
        assert!(second.load(&index(2, 0).digest).is_some());
    }

    #[test]
    fn only_temporary_files_written_long_ago_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        fs::write(&path, b"").unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        let now = SystemTime::now();
        let stale_at = |written: SystemTime| {
            file.set_modified(written).unwrap();
            is_stale(&fs::metadata(&path).unwrap(), now)
        };
        assert!(!stale_at(now));
        assert!(!stale_at(now - STALE_TEMPORARY / 2));
        assert!(stale_at(now - STALE_TEMPORARY - Duration::from_secs(1)));
        assert!(!stale_at(now + STALE_TEMPORARY * 2), "a time ahead of ours is another clock's");
    }

    #[test]
    fn the_least_recently_used_go_first_past_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let one = codec::encode(&index(1, 1000)).len() as u64;
        let store = IndexStore::open(dir.path(), one * 2 + one / 2).unwrap();
        store.save(&index(1, 1000)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        store.save(&index(2, 1000)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        // Using the first makes the second the oldest.
        assert!(store.load(&index(1, 0).digest).is_some());
        std::thread::sleep(std::time::Duration::from_millis(20));
        store.save(&index(3, 1000)).unwrap();
        assert!(store.load(&index(1, 0).digest).is_some());
        assert!(store.load(&index(2, 0).digest).is_none());
        assert!(store.load(&index(3, 0).digest).is_some());
        assert!(store.bytes() <= one * 2 + one / 2);
    }
}
