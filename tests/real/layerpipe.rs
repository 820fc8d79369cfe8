//! layerpipe in-process, with a [`RealRegistry`](super::RealRegistry) listed; served by
//! the runner both kits share (tests/common/layerpipe.rs).

use std::path::Path;

use layerpipe::config::Config;

use super::common::layerpipe::Running;
use super::RealRegistry;

/// layerpipe serving on 127.0.0.1 until dropped.
pub struct Layerpipe {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    /// Serving until this is dropped.
    running: Running,
}

impl Layerpipe {
    /// layerpipe configured with `registry` listed (plain http, loopback), its layer
    /// indexes in memory only.
    pub async fn start(registry: &RealRegistry, verify_digests: bool) -> Layerpipe {
        Layerpipe::with_index_dir(registry, verify_digests, Path::new("")).await
    }

    /// The same, keeping layer indexes in `index_dir` (empty: memory only).
    pub async fn with_index_dir(registry: &RealRegistry, verify_digests: bool, index_dir: &Path) -> Layerpipe {
        Layerpipe::reaching(registry, &registry.endpoint(), verify_digests, index_dir).await
    }

    /// layerpipe listing `registry` under its own host, reached at `endpoint` (a relay
    /// in front of it), layer indexes in `index_dir`.
    pub async fn reaching(
        registry: &RealRegistry,
        endpoint: &str,
        verify_digests: bool,
        index_dir: &Path,
    ) -> Layerpipe {
        let config = Config::parse(&format!(
            r#"{{"verify_digests": {verify_digests}, "index": {{"dir": {index_dir:?}}},
                "registries": {{"{host}": {{"endpoint": "{endpoint}"}}}}}}"#,
            index_dir = index_dir.display().to_string(),
            host = registry.host(),
        ))
        .expect("layerpipe config");
        Layerpipe::with_config(config).await
    }

    /// layerpipe with `config` as it is.
    pub async fn with_config(config: Config) -> Layerpipe {
        let running = Running::start(config).await;
        Layerpipe { base: running.base(), running }
    }

    /// The absolute URL of a link on one of layerpipe's pages (all relative to `/`).
    pub fn url(&self, href: &str) -> String {
        format!("{}/{}", self.base, href.trim_start_matches("./"))
    }
}
