//! Docker's `config.json`, as docker, crane and skopeo read it: `auths` by registry,
//! `credHelpers` by registry, and one `credsStore` for the rest. Other keys (`HttpHeaders`,
//! `proxies`, …) are not layerpipe's business and are ignored.
//!
//! The `docker_credential` crate was weighed for this (issue 21) and not adopted. It
//! would replace most of this file's parsing and [`super::helper`]'s call, but lose
//! what their tests hold:
//! - its helper call waits for the program with no timeout and reads all it writes, so
//!   a hung or chatty helper would hang a request or fill memory (here: 10 s, then the
//!   whole process group killed; 64 KiB of output at most);
//! - it blocks a thread (`std::process`), where the runtime's threads serve downloads;
//! - a failed helper's error carries the helper's stdout and stderr, which may hold the
//!   secret, where layerpipe's errors never do;
//! - it takes any helper name (`docker-credential-{name}`), where [`HelperName`] only
//!   ever names a program, never a path.
//!
//! ```json
//! {
//!   "auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
//!             "registry.corp.example": {"identitytoken": "…"}},
//!   "credHelpers": {"123456789012.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login"},
//!   "credsStore": "desktop"
//! }
//! ```

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;

use super::secret::Secret;
use super::Credential;

/// A credential helper's name, `NAME` in `docker-credential-NAME`: letters, digits,
/// `-`, `_` and `.` only, so that it can only ever name a program, never a path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HelperName(String);

impl HelperName {
    /// Checks `name`; the error says why it cannot be a helper.
    pub fn parse(name: &str) -> Result<HelperName, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if name.is_empty() || name.starts_with('.') || !name.chars().all(allowed) {
            return Err(format!("{name:?} is not a credential helper name"));
        }
        Ok(HelperName(name.to_owned()))
    }

    /// `docker-credential-NAME`.
    pub fn program(&self) -> String {
        format!("docker-credential-{}", self.0)
    }
}

impl fmt::Display for HelperName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a registry's credentials are, by the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// In the file itself.
    Stored(Credential),
    /// From a credential helper.
    Helper(HelperName),
}

/// A parsed `config.json`: registry hosts (normalised, see [`normalise_key`]) to what
/// the file says about them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DockerConfig {
    auths: HashMap<String, Credential>,
    helpers: HashMap<String, HelperName>,
    store: Option<HelperName>,
}

impl DockerConfig {
    /// Parses the file's text. An error names the entry at fault, never a secret.
    pub fn parse(text: &[u8]) -> Result<DockerConfig, String> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            auths: HashMap<String, AuthEntry>,
            #[serde(default, rename = "credHelpers")]
            cred_helpers: HashMap<String, String>,
            #[serde(default, rename = "credsStore")]
            creds_store: Option<String>,
        }
        #[derive(Deserialize)]
        struct AuthEntry {
            auth: Option<String>,
            username: Option<String>,
            password: Option<String>,
            identitytoken: Option<String>,
        }
        // serde_json's message may quote the bad token; only its position is kept.
        let file: File = serde_json::from_slice(text)
            .map_err(|e| format!("not a docker config.json (line {}, column {})", e.line(), e.column()))?;
        let mut config = DockerConfig::default();
        for (key, entry) in file.auths {
            let host = normalise_key(&key);
            let credential = match entry {
                AuthEntry { identitytoken: Some(token), .. } if !token.is_empty() => {
                    Credential::IdentityToken(Secret::new(token))
                }
                AuthEntry { auth: Some(auth), .. } if !auth.is_empty() => {
                    let (username, password) = decode_auth(&auth)
                        .ok_or_else(|| format!("auths.{key:?}.auth is not base64 of user:password"))?;
                    Credential::Basic { username, password: Secret::new(password) }
                }
                AuthEntry { username: Some(username), password: Some(password), .. } if !username.is_empty() => {
                    Credential::Basic { username, password: Secret::new(password) }
                }
                // An entry with nothing usable (docker leaves `{}` behind with credsStore).
                _ => continue,
            };
            config.auths.insert(host, credential);
        }
        for (key, name) in file.cred_helpers {
            let name = HelperName::parse(&name).map_err(|e| format!("credHelpers.{key:?}: {e}"))?;
            config.helpers.insert(normalise_key(&key), name);
        }
        if let Some(name) = file.creds_store.filter(|n| !n.is_empty()) {
            config.store = Some(HelperName::parse(&name).map_err(|e| format!("credsStore: {e}"))?);
        }
        Ok(config)
    }

    /// Where the credentials of `host` (as references name it) are, as docker decides:
    /// the host's `credHelpers` entry, else its `auths` entry, else `credsStore`.
    pub fn source(&self, host: &str) -> Option<Source> {
        let host = normalise_key(host);
        if let Some(helper) = self.helpers.get(&host) {
            return Some(Source::Helper(helper.clone()));
        }
        if let Some(credential) = self.auths.get(&host) {
            return Some(Source::Stored(credential.clone()));
        }
        self.store.clone().map(Source::Helper)
    }
}

/// A key of `auths` or `credHelpers` as the registry host references use: `host`,
/// `https://host`, `http://host/v2/` all mean `host`; Docker Hub's names
/// (`https://index.docker.io/v1/`, `index.docker.io`, `registry-1.docker.io`) mean
/// `docker.io`.
pub fn normalise_key(key: &str) -> String {
    let key = key.trim();
    let rest = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = rest.split('/').next().unwrap_or_default().to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            crate::reference::DOCKER_HUB.to_owned()
        }
        _ => host,
    }
}

/// `user:password` from base64; the password may itself hold `:`.
fn decode_auth(auth: &str) -> Option<(String, String)> {
    let text = String::from_utf8(base64_decode(auth.trim())?).ok()?;
    let (user, password) = text.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_owned(), password.to_owned()))
}

/// Standard base64, padding optional (docker writes it padded, hand-made files may
/// not); `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine as _;
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    ENGINE.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> Credential {
        Credential::Basic { username: user.into(), password: Secret::new(password.into()) }
    }

    #[test]
    fn keys_are_normalised_as_docker_writes_them() {
        for (key, host) in [
            ("https://index.docker.io/v1/", "docker.io"),
            ("index.docker.io", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("docker.io", "docker.io"),
            ("ghcr.io", "ghcr.io"),
            ("https://GHCR.io", "ghcr.io"),
            ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
            ("registry.corp.example:5443", "registry.corp.example:5443"),
        ] {
            assert_eq!(normalise_key(key), host, "{key}");
        }
    }

    #[test]
    fn auths_helpers_and_store() {
        let config = DockerConfig::parse(
            br#"{"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYTpzcw=="},
                           "r.example": {"username": "u", "password": "p"},
                           "t.example": {"identitytoken": "refresh-me"},
                           "empty.example": {}},
                 "credHelpers": {"ecr.example": "ecr-login"},
                 "credsStore": "desktop",
                 "HttpHeaders": {"X": "y"}}"#,
        )
        .unwrap();
        assert_eq!(config.source("docker.io"), Some(Source::Stored(basic("user", "pa:ss"))));
        assert_eq!(config.source("r.example"), Some(Source::Stored(basic("u", "p"))));
        assert_eq!(
            config.source("t.example"),
            Some(Source::Stored(Credential::IdentityToken(Secret::new("refresh-me".into()))))
        );
        let helper = |n: &str| Some(Source::Helper(HelperName::parse(n).unwrap()));
        assert_eq!(config.source("ecr.example"), helper("ecr-login"));
        assert_eq!(config.source("empty.example"), helper("desktop"));
        assert_eq!(config.source("other.example"), helper("desktop"));
        assert_eq!(DockerConfig::parse(b"{}").unwrap().source("docker.io"), None);
    }

    #[test]
    fn bad_files_are_errors_that_hold_no_secret() {
        for (text, needle) in [
            (&br#"{"auths": {"r.io": {"auth": "!!not-base64-secret"}}}"#[..], "auths.\"r.io\".auth"),
            (br#"{"auths": {"r.io": {"auth": "bm9jb2xvbg=="}}}"#, "user:password"),
            (br#"{"credHelpers": {"r.io": "../../bin/sh"}}"#, "credHelpers.\"r.io\""),
            (br#"{"credsStore": "a b"}"#, "credsStore"),
            (br#"{"auths": [1]}"#, "not a docker config.json"),
            (b"password=secret", "not a docker config.json"),
        ] {
            let e = DockerConfig::parse(text).unwrap_err();
            assert!(e.contains(needle), "{e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("dXNlcjpwYXNz").as_deref(), Some(&b"user:pass"[..]));
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
        assert_eq!(base64_decode("Y"), None);
        assert_eq!(base64_decode("YQ==="), None);
        assert_eq!(base64_decode("Y Q="), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_file_parses_or_fails_never_a_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = DockerConfig::parse(&body);
            }

            #[test]
            fn any_entry_parses_or_fails_never_a_panic(
                key in "\\PC{0,30}", auth in "\\PC{0,40}", helper in "\\PC{0,20}", host in "\\PC{0,30}",
            ) {
                let text = serde_json::json!({"auths": {&key: {"auth": auth}}, "credHelpers": {&key: helper}});
                if let Ok(config) = DockerConfig::parse(text.to_string().as_bytes()) {
                    let _ = config.source(&host);
                    let _ = config.source(&key);
                }
                let _ = normalise_key(&key);
            }

            #[test]
            fn encoded_credentials_decode_back(user in "[^:\\x00]{1,20}", password in "\\PC{0,30}") {
                let auth = crate::registry::base64(format!("{user}:{password}").as_bytes());
                prop_assert_eq!(decode_auth(&auth), Some((user, password)));
            }
        }
    }
}
