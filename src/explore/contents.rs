//! The SHA-256 of a file inside a layer, read when a comparison needs it.
//!
//! The danger: a diff of two rebuilt images asks for the bytes of every file whose size
//! and mode stayed the same, which can be most of the image. So:
//! - a diff reads at most [`Budget`]'s files and bytes, and says how many it left
//!   unread rather than guess;
//! - each file is one save of it through its layer index (a small `Range` read, checked
//!   like any save), one at a time, in a preview/save slot like any other;
//! - a hash is remembered by registry, repository, layer digest and entry, so it is
//!   never shared with a name that was not seen to serve the layer (with
//!   `verify_digests: false`, another repository's blob of that digest may differ).
//!
//! Hashing at index time instead (as eStargz's TOC and regctl's `diff-layer` do) would
//! put a SHA-256 of every byte on every first listing; the diff is rarer than the
//! listing, so the cost is paid here, once per file.

use std::pin::Pin;

use crate::digest::{Algorithm, Digest, Hasher};
use crate::download::DownloadLink;
use crate::error::Error;
use crate::explore::layers::{ByIndex, FileToSave, Inspector};

/// Hashes remembered: (name, layer, entry) to digest, ~150 bytes each.
const REMEMBERED: u64 = 200_000;

/// How much one comparison may read to compare bytes.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Files hashed (each side of a pair counts), remembered ones aside.
    pub files: usize,
    /// Bytes of those files.
    pub bytes: u64,
}

impl Budget {
    /// What one diff may read: 2,000 files and 256 MiB.
    pub const DIFF: Budget = Budget { files: 2_000, bytes: 256 << 20 };

    /// Takes a file of `size` bytes from the budget; `false` when it does not fit.
    fn take(&mut self, size: u64) -> bool {
        if self.files == 0 || size > self.bytes {
            return false;
        }
        self.files -= 1;
        self.bytes -= size;
        true
    }
}

/// One file to hash: entry `index` of the layer `link` names, `size` bytes long.
pub struct FileRef<'a> {
    /// The layer, under the name it was reached by.
    pub link: &'a DownloadLink,
    /// Its entry (archive order) whose bytes these are: for a hard link, its target.
    pub index: usize,
    /// Its size, from the listing.
    pub size: u64,
}

/// Why a file's hash is not known.
#[derive(Debug)]
pub enum Unhashed {
    /// The budget ran out.
    OverBudget,
    /// Reading it failed; the reason, for the page.
    Failed(Error),
}

/// File hashes, read on demand and remembered; one per process.
pub struct ContentHashes {
    known: moka::future::Cache<String, Digest>,
}

impl Default for ContentHashes {
    fn default() -> ContentHashes {
        ContentHashes { known: moka::future::Cache::new(REMEMBERED) }
    }
}

impl ContentHashes {
    /// The SHA-256 of `file`, remembered or read now within `budget`.
    pub async fn hash(&self, layers: &Inspector, file: FileRef<'_>, budget: &mut Budget) -> Result<Digest, Unhashed> {
        let key = format!(
            "{}/{} {} {}",
            file.link.image.registry(),
            file.link.image.repository(),
            file.link.digest,
            file.index
        );
        if let Some(known) = self.known.get(&key).await {
            return Ok(known);
        }
        if !budget.take(file.size) {
            return Err(Unhashed::OverBudget);
        }
        let digest = read_hash(layers, &file).await.map_err(Unhashed::Failed)?;
        self.known.insert(key, digest.clone()).await;
        Ok(digest)
    }
}

/// Reads `file` through its layer's index, as a save does, and hashes what comes.
async fn read_hash(layers: &Inspector, file: &FileRef<'_>) -> Result<Digest, Error> {
    let index = layers.index(file.link).await?;
    let to_save = FileToSave { index: file.index, length: file.size };
    let mut body = match layers.save(file.link, &index, to_save).await? {
        ByIndex::Read(body) => body,
        // The index no longer matches the blob: its entry numbers mean nothing now.
        ByIndex::Stale => return Err(Error::bad_gateway("the layer changed since it was listed")),
    };
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let mut read = 0u64;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| Error::bad_gateway(format!("reading the file failed: {e}")))?;
        if let Some(data) = frame.data_ref() {
            read += data.len() as u64;
            hasher.update(data);
        }
    }
    if read != file.size {
        return Err(Error::bad_gateway(format!("the file ended after {read} of {} bytes", file.size)));
    }
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_files_and_bytes() {
        let mut budget = Budget { files: 2, bytes: 10 };
        assert!(budget.take(6));
        assert!(!budget.take(5), "over the bytes left");
        assert!(budget.take(4));
        assert!(!budget.take(0), "over the files");
    }
}
