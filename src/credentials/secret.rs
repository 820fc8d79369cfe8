//! A password or token read from the config, a docker `config.json` or a credential
//! helper: readable only where an `Authorization` header is built, and printed as `***`
//! everywhere else, so `{:?}` of any config or credential cannot leak it into a log.

use std::fmt;

use serde::Deserialize;

/// A password: readable where it is used, printed as `***` everywhere else.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret read from elsewhere (a docker config, a credential helper).
    pub fn new(secret: String) -> Secret {
        Secret(secret)
    }

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
