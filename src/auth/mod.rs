//! Registry authentication: reading a registry's challenge, judging the token realm it
//! names, and caching the bearer tokens it leads to. The HTTP requests themselves are
//! made by [`crate::registry`].

pub mod challenge;
pub mod realm;
pub mod tokens;

use challenge::Challenge;
use http::header::{HeaderMap, WWW_AUTHENTICATE};

/// How a registry wants to be authenticated, as learnt from its `/v2/` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `/v2/` answered 200: no credentials needed.
    Anonymous,
    /// Basic auth with the configured credentials on every request.
    Basic,
    /// A bearer token from `realm`, for `service`.
    Bearer {
        /// The token server's URL.
        realm: String,
        /// The `service` parameter to send back.
        service: String,
    },
}

impl Scheme {
    /// The scheme a 401's `WWW-Authenticate` headers ask for (all of them, in order).
    pub fn from_headers(headers: &HeaderMap) -> Result<Scheme, String> {
        let mut challenges = Vec::new();
        for value in headers.get_all(WWW_AUTHENTICATE) {
            let text = value.to_str().map_err(|_| "the registry sent a non-ASCII WWW-Authenticate".to_owned())?;
            challenges.extend(challenge::parse(text).map_err(|e| e.to_string())?);
        }
        Scheme::from_challenges(&challenges)
    }

    /// Picks the scheme layerpipe will use from a 401's challenges: Bearer when offered
    /// (it is what registries mean), else Basic.
    pub fn from_challenges(challenges: &[Challenge]) -> Result<Scheme, String> {
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let realm = bearer.param("realm").ok_or("Bearer challenge without a realm")?;
            return Ok(Scheme::Bearer {
                realm: realm.to_owned(),
                service: bearer.param("service").unwrap_or_default().to_owned(),
            });
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            return Ok(Scheme::Basic);
        }
        Err("the registry offers no Bearer or Basic authentication".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_wins_over_basic() {
        let c = challenge::parse(r#"Basic realm="x", Bearer realm="https://a/t",service="reg""#).unwrap();
        assert_eq!(
            Scheme::from_challenges(&c),
            Ok(Scheme::Bearer { realm: "https://a/t".into(), service: "reg".into() })
        );
        let c = challenge::parse(r#"Basic realm="x""#).unwrap();
        assert_eq!(Scheme::from_challenges(&c), Ok(Scheme::Basic));
        let c = challenge::parse(r#"Bearer service="reg""#).unwrap();
        assert!(Scheme::from_challenges(&c).is_err());
    }
}
