//! Configuration: a JSON file, every key checked at start-up.
//!
//! ```json
//! {
//!   "listen": "127.0.0.1:8042",
//!   "verify_digests": true,
//!   "registries": {
//!     "127.0.0.1:5000": { "endpoint": "http://127.0.0.1:5000", "username": "u", "password": "p" }
//!   }
//! }
//! ```
//!
//! Unknown keys are errors, not ignored: a typo in a limit should stop start-up, not
//! silently leave the default in force.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::Uri;
use serde::Deserialize;

use crate::reference::DOCKER_HUB;

/// Where Docker Hub's registry API lives; `docker.io` is only the name in references.
pub const DOCKER_HUB_ENDPOINT: &str = "https://registry-1.docker.io";

/// The whole configuration, with defaults filled in.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Registries by the host name used in image references. Only these may be reached
    /// over plain http or at private addresses.
    #[serde(default)]
    pub registries: HashMap<String, RegistryConfig>,
    /// Hash every full blob download and abort it when the bytes do not match the digest.
    #[serde(default = "yes")]
    pub verify_digests: bool,
    /// Timeouts for talking to registries.
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// One listed registry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL of the registry's API, without a path: `https://ghcr.io`.
    pub endpoint: Endpoint,
    /// Basic credentials, for the token endpoint or a Basic-auth registry.
    pub username: Option<String>,
    /// The password for `username`; never logged.
    pub password: Option<Secret>,
}

/// Limits on how long layerpipe waits for a registry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Seconds to open a TCP connection (and finish TLS).
    pub connect_secs: f64,
    /// Seconds from sending a request to having the response's headers.
    pub response_headers_secs: f64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect_secs: 10.0,
            response_headers_secs: 30.0,
        }
    }
}

impl Timeouts {
    /// The connect timeout.
    pub fn connect(&self) -> Duration {
        Duration::from_secs_f64(self.connect_secs)
    }

    /// The response-headers timeout.
    pub fn response_headers(&self) -> Duration {
        Duration::from_secs_f64(self.response_headers_secs)
    }
}

/// A registry's base URL: `http` or `https`, a host, no path, query or user info.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Endpoint(Uri);

impl Endpoint {
    /// The URL as parsed.
    pub fn uri(&self) -> &Uri {
        &self.0
    }
}

impl TryFrom<String> for Endpoint {
    type Error = String;

    fn try_from(s: String) -> Result<Endpoint, String> {
        let bad = |why: &str| format!("endpoint {s:?} {why}");
        let uri: Uri = s.parse().map_err(|_| bad("is not a URL"))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => return Err(bad("must start with http:// or https://")),
        }
        let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("must not hold credentials; use username and password"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("must not have a path or query"));
        }
        let base = format!("{}://{}", uri.scheme_str().unwrap_or("https"), authority);
        Ok(Endpoint(base.parse().map_err(|_| bad("is not a URL"))?))
    }
}

/// A password: readable where it is used, printed as `***` everywhere else.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for building an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8042))
}

fn yes() -> bool {
    true
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: default_listen(),
            registries: HashMap::new(),
            verify_digests: true,
            timeouts: Timeouts::default(),
        }
    }
}

impl Config {
    /// Reads and checks a config file; the error names the file and the bad key.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }

    /// Parses and checks config JSON.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut config: Config = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut registries = HashMap::new();
        for (host, registry) in config.registries.drain() {
            crate::reference::check_registry_host(&host)
                .map_err(|e| format!("registries: key {host:?}: {e}"))?;
            if registry.password.is_some() && registry.username.is_none() {
                return Err(format!(
                    "registries.{host}: password is set without username"
                ));
            }
            // References never say index.docker.io once parsed, so neither does the config.
            let host = if host == "index.docker.io" {
                DOCKER_HUB.to_owned()
            } else {
                host
            };
            registries.insert(host, registry);
        }
        config.registries = registries;
        for (key, secs) in [
            ("timeouts.connect_secs", config.timeouts.connect_secs),
            (
                "timeouts.response_headers_secs",
                config.timeouts.response_headers_secs,
            ),
        ] {
            if !(secs > 0.0 && secs <= 86_400.0) {
                return Err(format!(
                    "{key} must be more than 0 and at most 86400, got {secs}"
                ));
            }
        }
        Ok(config)
    }

    /// The registry a reference's host names: its entry in `registries`, else Docker Hub's
    /// endpoint for `docker.io`, else `https://<host>` (unlisted, so public addresses only).
    pub fn registry(&self, host: &str) -> Registry {
        if let Some(listed) = self.registries.get(host) {
            return Registry {
                host: host.to_owned(),
                endpoint: listed.endpoint.uri().clone(),
                credentials: listed.username.clone().map(|username| Credentials {
                    username,
                    password: listed.password.clone().unwrap_or(Secret(String::new())),
                }),
                listed: true,
            };
        }
        let endpoint = if host == DOCKER_HUB {
            DOCKER_HUB_ENDPOINT.to_owned()
        } else {
            format!("https://{host}")
        };
        Registry {
            host: host.to_owned(),
            endpoint: endpoint
                .parse()
                .expect("a checked registry host makes a valid URL"),
            credentials: None,
            listed: false,
        }
    }
}

/// A registry as the client talks to it.
#[derive(Clone, Debug)]
pub struct Registry {
    /// The host as written in references (the config key).
    pub host: String,
    /// Base URL, `scheme://authority`.
    pub endpoint: Uri,
    /// Basic credentials, when configured.
    pub credentials: Option<Credentials>,
    /// Listed in the config: trusted with plain http and private addresses.
    pub listed: bool,
}

/// A username and password for Basic auth.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: Secret,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_a_file() {
        let c = Config::parse("{}").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8042");
        assert!(c.verify_digests);
        let hub = c.registry("docker.io");
        assert_eq!(hub.endpoint.to_string(), "https://registry-1.docker.io/");
        assert!(!hub.listed);
    }

    #[test]
    fn listed_registries_and_hub_alias() {
        let c = Config::parse(
            r#"{"registries": {"127.0.0.1:5000": {"endpoint": "http://127.0.0.1:5000", "username": "u", "password": "p"},
                 "index.docker.io": {"endpoint": "https://mirror.example"}}}"#,
        )
        .unwrap();
        let r = c.registry("127.0.0.1:5000");
        assert!(r.listed);
        assert_eq!(r.credentials.unwrap().password.expose(), "p");
        assert_eq!(
            c.registry("docker.io").endpoint.host(),
            Some("mirror.example")
        );
        assert_eq!(
            c.registry("ghcr.io").endpoint.to_string(),
            "https://ghcr.io/"
        );
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        for (json, needle) in [
            (r#"{"lisen": "1.2.3.4:5"}"#, "lisen"),
            (r#"{"listen": "nope"}"#, "invalid socket address"),
            (r#"{"verify_digests": "yes"}"#, "invalid type"),
            (
                r#"{"registries": {"r.io": {"endpoint": "ftp://r.io"}}}"#,
                "http:// or https://",
            ),
            (
                r#"{"registries": {"r.io": {"endpoint": "https://r.io/v2"}}}"#,
                "path",
            ),
            (
                r#"{"registries": {"r.io": {"endpoint": "https://u:p@r.io"}}}"#,
                "credentials",
            ),
            (
                r#"{"registries": {"r.io": {"endpoint": "https://r.io", "token": 1}}}"#,
                "token",
            ),
            (
                r#"{"registries": {"bad host": {"endpoint": "https://r.io"}}}"#,
                "bad host",
            ),
            (
                r#"{"timeouts": {"connect_secs": 0}}"#,
                "timeouts.connect_secs",
            ),
        ] {
            let e = Config::parse(json).unwrap_err();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }

    #[test]
    fn passwords_are_not_printed() {
        let c = Config::parse(r#"{"registries": {"r.io": {"endpoint": "https://r.io", "username": "u", "password": "hunter2"}}}"#)
            .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
