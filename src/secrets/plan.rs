//! Which files of an image to read for secrets, within a byte budget.
//!
//! Danger first: every file read is a `Range` read against the registry, so reading all
//! of a 10,000-file base image would be slow and costly; reading too little misses what
//! people hid. The plan reads, in this order, until the budget runs out:
//!
//! - files whose name alone is a finding (`.env`, `id_rsa`, …): they are read to say
//!   which line holds what;
//! - files that look like configuration or scripts (by extension, or no extension
//!   outside the system's own trees), smallest first, so the budget covers many files.
//!
//! Files larger than [`FILE_CAP`] are read only up to it; the system's own trees
//! (`usr/share/doc`, `usr/lib`, …, see [`SYSTEM_TREES`]) are left out, since what a
//! package ships is not what a build leaked. The plan says whether the budget ran out, so
//! the page can say so. Known gap: a secret in a large binary or in a file with an
//! unusual extension inside a system tree is not read.

use super::rules::name_rule;

/// How much of one file is read, in bytes (a file preview's size, so one read serves both).
pub const FILE_CAP: u64 = 64 * 1024;

/// Most files one image scan reads: each is a `Range` read of its own, so thousands of
/// tiny files would cost more in requests than their bytes say.
pub const MAX_FILES: usize = 1_000;

/// How many bytes of files one image may read by default.
pub const IMAGE_BUDGET: u64 = 8 * 1024 * 1024;

/// Trees whose files came from packages, not from the build, and are not read.
pub const SYSTEM_TREES: &[&str] = &[
    "usr/share/",
    "usr/lib/",
    "usr/lib64/",
    "usr/libexec/",
    "usr/include/",
    "lib/",
    "lib64/",
    "var/lib/dpkg/",
    "var/lib/apt/",
    "var/lib/rpm/",
    "var/cache/",
    "proc/",
    "sys/",
];

/// Extensions of text files that often hold configuration or credentials.
const TEXT_EXTENSIONS: &[&str] = &[
    "env",
    "json",
    "yml",
    "yaml",
    "toml",
    "ini",
    "conf",
    "cfg",
    "config",
    "properties",
    "xml",
    "sh",
    "bash",
    "txt",
    "py",
    "js",
    "ts",
    "rb",
    "php",
    "go",
    "java",
    "pem",
    "key",
    "tf",
    "tfvars",
    "tfstate",
    "sql",
    "npmrc",
    "pypirc",
];

/// A regular file that could be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Which layer, from 0.
    pub layer: usize,
    /// Its index in that layer's listing.
    pub index: usize,
    /// Its path in the layer, without a leading `/`.
    pub path: &'a str,
    /// Its size in bytes.
    pub size: u64,
}

/// What to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan<'a> {
    /// The files to read, each up to [`FILE_CAP`] bytes.
    pub reads: Vec<Candidate<'a>>,
    /// Candidates left unread because the budget (bytes or [`MAX_FILES`]) ran out.
    pub left_out: Vec<Candidate<'a>>,
}

impl Plan<'_> {
    /// Whether the budget ran out before every candidate was read.
    pub fn budget_ran_out(&self) -> bool {
        !self.left_out.is_empty()
    }
}

/// Whether `path` is worth reading at all, and whether its name is itself a finding.
fn worth(path: &str) -> Option<bool> {
    let path = path.trim_start_matches("./").trim_start_matches('/');
    if name_rule(path).is_some() {
        return Some(true);
    }
    if SYSTEM_TREES.iter().any(|t| path.starts_with(t)) {
        return None;
    }
    let base = path.rsplit('/').next().unwrap_or(path);
    let text = match base.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => TEXT_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()),
        // No extension (or a dot file): scripts and configs outside the system trees.
        _ => !path.starts_with("bin/") && !path.starts_with("sbin/") && !path.starts_with("usr/"),
    };
    text.then_some(false)
}

/// Plans the reads for `files` (regular, non-empty files of every layer) within
/// `budget` bytes, counting each file at most [`FILE_CAP`].
pub fn plan<'a>(files: impl IntoIterator<Item = Candidate<'a>>, budget: u64) -> Plan<'a> {
    let mut named = Vec::new();
    let mut others = Vec::new();
    for file in files {
        match worth(file.path) {
            Some(true) => named.push(file),
            Some(false) => others.push(file),
            None => {}
        }
    }
    others.sort_by_key(|f| (f.size, f.layer, f.index));
    let mut left = budget;
    let mut reads = Vec::new();
    let mut left_out = Vec::new();
    for file in named.into_iter().chain(others) {
        let cost = file.size.min(FILE_CAP);
        if cost <= left && reads.len() < MAX_FILES {
            left -= cost;
            reads.push(file);
        } else {
            left_out.push(file);
        }
    }
    Plan { reads, left_out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(layer: usize, path: &str, size: u64) -> Candidate<'_> {
        Candidate { layer, index: 0, path, size }
    }

    fn paths<'a>(plan: &Plan<'a>) -> Vec<&'a str> {
        plan.reads.iter().map(|f| f.path).collect()
    }

    #[test]
    fn named_files_first_then_small_text_files() {
        let files = [
            file(0, "usr/share/doc/x/README.txt", 10),
            file(0, "usr/bin/python3", 10),
            file(1, "app/config.yaml", 300),
            file(1, "app/.env", 5_000_000),
            file(2, "app/run.sh", 20),
            file(2, "app/logo.png", 5),
        ];
        let plan = plan(files, IMAGE_BUDGET);
        assert_eq!(paths(&plan), ["app/.env", "app/run.sh", "app/config.yaml"]);
        assert!(!plan.budget_ran_out());
    }

    #[test]
    fn the_budget_runs_out_and_says_so() {
        let files = [file(0, "a.json", 40), file(0, "b.json", 50), file(0, "c.json", 10)];
        let plan = plan(files, 55);
        assert_eq!(paths(&plan), ["c.json", "a.json"]);
        assert_eq!(plan.left_out.len(), 1);
        assert!(plan.budget_ran_out());
    }

    #[test]
    fn a_large_file_costs_only_its_cap() {
        let files = [file(0, "root/.ssh/id_rsa", 10 * FILE_CAP), file(0, "x.conf", 1)];
        let plan = plan(files, FILE_CAP + 1);
        assert_eq!(paths(&plan), ["root/.ssh/id_rsa", "x.conf"]);
    }
}
