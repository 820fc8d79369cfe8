//! Credentials where docker keeps them: the `config.json` that `docker_config` names
//! ([`docker_config`]), and the credential helpers it points to ([`helper`]).
//!
//! The file is read at start-up (a bad one stops it) and again whenever its modification
//! time changes, so a rotated password (ECR's last 12 hours; a Kubernetes secret is
//! updated in place) is used without a restart. A file that turns bad later is logged
//! and the last good one kept. Nothing here is ever logged or shown: errors say which
//! entry or helper failed, never what it held.
//!
//! A helper can be slow and costly (ECR's makes an AWS call), and anyone can make a
//! registry refuse a request (Docker Hub answers 401 for a made-up name). So:
//! - a helper's answer is kept by registry, a success for [`HELPER_TTL`] and a failure
//!   for [`HELPER_FAILURE_TTL`]; a registry's refusal does not discard it;
//! - at most one helper process runs per registry at a time: callers asking while it runs
//!   wait for its answer.

pub mod docker_config;
pub mod helper;
mod secret;

pub use self::secret::Secret;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use self::docker_config::{DockerConfig, Source};
use crate::error::Error;
use crate::reference::DOCKER_HUB;

/// How long a helper's answer is used before the helper is asked again.
pub const HELPER_TTL: Duration = Duration::from_secs(60);

/// How long a helper's failure (an error, a timeout) is answered without running it again.
pub const HELPER_FAILURE_TTL: Duration = Duration::from_secs(15);

/// What the server under Docker Hub's name is called when asking a helper (what
/// `docker login` stored it under).
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// Credentials for one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password, sent as Basic auth.
    Basic {
        /// The user name.
        username: String,
        /// The password; never logged.
        password: Secret,
    },
    /// An OAuth2 refresh token (docker's `identitytoken`), exchanged at the token realm
    /// for access tokens.
    IdentityToken(Secret),
}

impl Credential {
    /// Who the credential speaks for, for keying the tokens it leads to (never a secret).
    pub fn identity(&self) -> String {
        match self {
            Credential::Basic { username, .. } => username.clone(),
            Credential::IdentityToken(_) => "<identity token>".into(),
        }
    }
}

/// The credentials of a docker `config.json`; one per process.
pub struct DockerCredentials {
    path: PathBuf,
    loaded: Mutex<Loaded>,
    /// Helper answers by registry host, failures included.
    helper_answers: moka::future::Cache<String, HelperAnswer>,
    helper_dir: Option<PathBuf>,
}

/// What a helper answered: credentials, none, or why it failed (a sentence without
/// anything the helper printed).
type HelperAnswer = Result<Option<Credential>, Arc<String>>;

/// Keeps a helper's success for [`HELPER_TTL`], its failure for [`HELPER_FAILURE_TTL`].
struct HelperExpiry;

impl moka::Expiry<String, HelperAnswer> for HelperExpiry {
    fn expire_after_create(
        &self,
        _host: &String,
        answer: &HelperAnswer,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(if answer.is_ok() { HELPER_TTL } else { HELPER_FAILURE_TTL })
    }
}

struct Loaded {
    modified: Option<SystemTime>,
    config: Arc<DockerConfig>,
}

impl DockerCredentials {
    /// Reads `path`; an error says why it cannot be used. Helpers are run from `PATH`, or
    /// from `helper_dir` when given.
    pub fn load(path: &Path, helper_dir: Option<PathBuf>) -> Result<DockerCredentials, String> {
        let (modified, config) = read(path)?;
        Ok(DockerCredentials {
            path: path.to_owned(),
            loaded: Mutex::new(Loaded { modified, config: Arc::new(config) }),
            helper_answers: moka::future::Cache::builder().max_capacity(1024).expire_after(HelperExpiry).build(),
            helper_dir,
        })
    }

    /// The credentials for `host` (as references name it), if the file has any.
    pub async fn lookup(&self, host: &str) -> Result<Option<Credential>, Error> {
        match self.current().source(host) {
            None => Ok(None),
            Some(Source::Stored(credential)) => Ok(Some(credential)),
            Some(Source::Helper(name)) => {
                let server = if host == DOCKER_HUB { DOCKER_HUB_SERVER } else { host };
                let dir = self.helper_dir.clone();
                // Run by one caller; the others for this host wait for its answer.
                let ask = async move {
                    let answer = helper::get(&name, server, dir.as_deref()).await.map_err(Arc::new);
                    if let Err(e) = &answer {
                        tracing::warn!(registry = host, error = %e, "docker credential helper failed");
                    }
                    answer
                };
                self.helper_answers
                    .get_with(host.to_owned(), ask)
                    .await
                    .map_err(|e| Error::bad_gateway(format!("cannot get the credentials for {host}: {e}")))
            }
        }
    }

    /// The file as it is now: read again when its modification time changed.
    fn current(&self) -> Arc<DockerConfig> {
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        let mut loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if modified != loaded.modified {
            match read(&self.path) {
                Ok((modified, config)) => *loaded = Loaded { modified, config: Arc::new(config) },
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "docker_config: keeping the last good file");
                    // Not read again until it changes once more.
                    loaded.modified = modified;
                }
            }
        }
        loaded.config.clone()
    }
}

fn read(path: &Path) -> Result<(Option<SystemTime>, DockerConfig), String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let config = DockerConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((modified, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_changed_file_is_read_again_and_a_broken_one_keeps_the_last_good() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let write = |text: &str, secs: u64| {
            std::fs::write(&path, text).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
        };
        write(r#"{"auths": {"r.io": {"username": "u", "password": "one"}}}"#, 1000);
        let credentials = DockerCredentials::load(&path, None).unwrap();
        let password = |c: Option<Credential>| match c {
            Some(Credential::Basic { password, .. }) => password.expose().to_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(password(credentials.lookup("r.io").await.unwrap()), "one");
        assert_eq!(credentials.lookup("other.io").await.unwrap(), None);
        write(r#"{"auths": {"r.io": {"username": "u", "password": "two"}}}"#, 2000);
        assert_eq!(password(credentials.lookup("r.io").await.unwrap()), "two");
        write("{ broken", 3000);
        assert_eq!(password(credentials.lookup("r.io").await.unwrap()), "two");
        assert!(DockerCredentials::load(&path, None).is_err());
    }

    /// A helper `docker-credential-NAME` in `dir` that notes each run in `dir/runs`,
    /// then runs `body`.
    fn helper(dir: &Path, name: &str, body: &str) -> PathBuf {
        let runs = dir.join("runs");
        let script = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&script, format!("#!/bin/sh\necho run >> {}\n{body}\n", runs.display())).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        runs
    }

    /// How many times the helper ran.
    fn count(path: &Path) -> usize {
        std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
    }

    #[tokio::test]
    async fn a_helper_runs_once_per_registry_for_concurrent_and_repeated_lookups() {
        let dir = tempfile::tempdir().unwrap();
        // Slow enough for all the concurrent lookups to arrive while it runs.
        let runs = helper(dir.path(), "slow", "sleep 0.3\necho '{\"Username\":\"u\",\"Secret\":\"s\"}'");
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers": {"r.io": "slow", "other.io": "slow"}}"#).unwrap();
        let credentials = Arc::new(DockerCredentials::load(&path, Some(dir.path().to_owned())).unwrap());
        let lookups: Vec<_> = (0..10)
            .map(|_| {
                let credentials = credentials.clone();
                tokio::spawn(async move { credentials.lookup("r.io").await })
            })
            .collect();
        for lookup in lookups {
            assert!(matches!(lookup.await.unwrap(), Ok(Some(Credential::Basic { .. }))));
        }
        assert_eq!(count(&runs), 1);
        for _ in 0..10 {
            credentials.lookup("r.io").await.unwrap();
        }
        assert_eq!(count(&runs), 1);
        // Another registry is asked for its own.
        credentials.lookup("other.io").await.unwrap();
        assert_eq!(count(&runs), 2);
    }

    #[tokio::test]
    async fn a_failing_helper_is_not_run_again_for_every_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let runs = helper(dir.path(), "broken", "exit 7");
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers": {"r.io": "broken"}}"#).unwrap();
        let credentials = DockerCredentials::load(&path, Some(dir.path().to_owned())).unwrap();
        for _ in 0..10 {
            let e = credentials.lookup("r.io").await.unwrap_err();
            assert_eq!(e.status(), http::StatusCode::BAD_GATEWAY);
            assert!(e.message().contains("docker-credential-broken get failed"), "{}", e.message());
        }
        assert_eq!(count(&runs), 1);
    }
}
