//! What to measure and how much: the `LOAD_*` environment variables (sizes, repeats, the
//! binaries, perf output, variants) read into [`Options`], full-size defaults otherwise.
//! The smoke test builds an `Options` of its own at tiny sizes.

use std::path::{Path, PathBuf};

/// What to measure, and how much.
#[derive(Clone, Debug)]
pub struct Options {
    /// `LOAD_BLOB_MIB`: the single-stream blob (and the one `sha256sum` hashes).
    pub blob_mib: u64,
    /// `LOAD_RUNS`: how many times every measurement is repeated.
    pub runs: usize,
    /// `LOAD_CONCURRENCY`: downloads at once in the aggregate measurement.
    pub concurrency: usize,
    /// `LOAD_CONCURRENT_MIB`: size of each of those downloads.
    pub concurrent_mib: u64,
    /// `LOAD_TTFB_REQUESTS`: time-to-first-byte samples per run and path.
    pub ttfb_requests: usize,
    /// `LOAD_RSS_SMALL_MIB`, `LOAD_RSS_LARGE_MIB`: the two downloads whose peak RSS is
    /// compared (memory must not grow with the blob).
    pub rss_small_mib: u64,
    /// See `rss_small_mib`.
    pub rss_large_mib: u64,
    /// `LOAD_LAYERPIPE`: the layerpipe binary.
    pub layerpipe: PathBuf,
    /// `LOAD_NGINX`: the nginx binary.
    pub nginx: PathBuf,
    /// Where `deploy/nginx.conf` would be.
    pub project_dir: PathBuf,
    /// `LOAD_PERF_DIR`: when set, after the last run, `perf stat`, `perf record -g` and
    /// `strace` (I/O system calls) are attached in turn to each proxy during one more
    /// single-stream download each, and their output is left in this directory.
    pub perf_dir: Option<PathBuf>,
    /// `LOAD_VARIANTS=name=/path/to/layerpipe,…`: other layerpipe builds measured in the
    /// same interleaved runs (verify_digests off), to try a change against the same noise.
    /// `LOAD_VARIANT_<NAME>_JSON='"key":value,'` (the name upper-cased, other characters
    /// as `_`) adds config keys to that variant's config, to try a setting rather than a
    /// build.
    pub variants: Vec<Variant>,
}

/// One `LOAD_VARIANTS` entry.
#[derive(Clone, Debug)]
pub struct Variant {
    /// The row's name.
    pub name: String,
    /// The layerpipe binary.
    pub binary: PathBuf,
    /// `"key":value,` text put first in its config object, or empty.
    pub extra_config: String,
}

impl Variant {
    /// The environment variable that holds a variant's extra config keys.
    fn config_var(name: &str) -> String {
        let upper: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        format!("LOAD_VARIANT_{upper}_JSON")
    }
}

impl Options {
    /// The full-size defaults, overridden by the `LOAD_*` environment variables.
    pub fn from_env(layerpipe: &str, project_dir: &str) -> Result<Options, String> {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
            match std::env::var(name) {
                Ok(v) => v.trim().parse().map_err(|_| format!("{name}={v:?} is not a valid number")),
                Err(_) => Ok(default),
            }
        }
        let options = Options {
            blob_mib: var("LOAD_BLOB_MIB", 1024)?,
            runs: var("LOAD_RUNS", 3)?,
            concurrency: var("LOAD_CONCURRENCY", 64)?,
            concurrent_mib: var("LOAD_CONCURRENT_MIB", 64)?,
            ttfb_requests: var("LOAD_TTFB_REQUESTS", 200)?,
            rss_small_mib: var("LOAD_RSS_SMALL_MIB", 256)?,
            rss_large_mib: var("LOAD_RSS_LARGE_MIB", 4096)?,
            layerpipe: std::env::var_os("LOAD_LAYERPIPE").map_or_else(|| PathBuf::from(layerpipe), PathBuf::from),
            nginx: std::env::var_os("LOAD_NGINX").map_or_else(|| PathBuf::from("/usr/sbin/nginx"), PathBuf::from),
            project_dir: PathBuf::from(project_dir),
            perf_dir: std::env::var_os("LOAD_PERF_DIR").map(PathBuf::from),
            variants: match std::env::var("LOAD_VARIANTS") {
                Ok(list) => list
                    .split(',')
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| {
                        let (name, path) = v
                            .split_once('=')
                            .ok_or_else(|| format!("LOAD_VARIANTS: {v:?} is not name=/path/to/layerpipe"))?;
                        let name = name.trim().to_owned();
                        let extra_config = std::env::var(Variant::config_var(&name)).unwrap_or_default();
                        Ok(Variant { name, binary: PathBuf::from(path.trim()), extra_config })
                    })
                    .collect::<Result<_, String>>()?,
                Err(_) => Vec::new(),
            },
        };
        options.check()?;
        Ok(options)
    }

    /// Every size and count at least 1.
    pub(super) fn check(&self) -> Result<(), String> {
        if self.runs == 0
            || self.concurrency == 0
            || self.ttfb_requests == 0
            || [self.blob_mib, self.concurrent_mib, self.rss_small_mib, self.rss_large_mib].contains(&0)
        {
            return Err("every LOAD_* size and count must be at least 1".into());
        }
        Ok(())
    }
}

/// Fails with the message the project uses everywhere when nginx is missing.
pub fn require_nginx(nginx: &Path) -> Result<(), String> {
    if nginx.is_file() {
        Ok(())
    } else {
        Err("nginx not installed: run apt-get install -y nginx-light".into())
    }
}
