//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1), as a registry's `/v2/` sends them.
//!
//! ```text
//! Bearer realm="https://auth.docker.io/token",service="registry.docker.io"
//! ```
//! Schemes and parameter names are case-insensitive; values are tokens or quoted strings
//! with `\` escapes; one header may hold several challenges separated by commas.

use std::fmt;

/// One challenge: a scheme (lowercased) and its parameters (names lowercased).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lowercase: `bearer`, `basic`, …
    pub scheme: String,
    /// `name=value` parameters, in order, names lowercase.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (lowercase).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Why a header is not a list of challenges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeError(pub String);

impl fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed WWW-Authenticate header: {}", self.0)
    }
}

impl std::error::Error for ChallengeError {}

/// Parses every challenge in one `WWW-Authenticate` header value.
pub fn parse(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
    let mut p = Parser { s: header.as_bytes(), i: 0 };
    let mut challenges = Vec::new();
    loop {
        p.skip_list_separators();
        if p.at_end() {
            break;
        }
        let scheme = p.token().ok_or_else(|| p.error("expected an auth scheme"))?;
        let mut challenge = Challenge { scheme: scheme.to_ascii_lowercase(), params: Vec::new() };
        p.skip_spaces();
        if !p.at_end() && !p.peek_is(b',') && !p.param_ahead() {
            // token68 (`Negotiate abc==`): registries don't use it; read past it.
            p.token68().ok_or_else(|| p.error("expected parameters"))?;
        }
        while p.param_ahead() {
            let name = p.token().expect("param_ahead saw a token").to_ascii_lowercase();
            p.skip_spaces();
            p.i += 1; // '='
            p.skip_spaces();
            let value = if p.peek_is(b'"') {
                p.quoted()?
            } else {
                p.token().ok_or_else(|| p.error("expected a value"))?.to_owned()
            };
            challenge.params.push((name, value));
            p.skip_spaces();
            if p.peek_is(b',') {
                // Either another parameter of this challenge or the next challenge.
                let save = p.i;
                p.skip_list_separators();
                if !p.param_ahead() {
                    p.i = save;
                    break;
                }
            } else if !p.at_end() {
                return Err(p.error("expected ',' between parameters"));
            }
        }
        challenges.push(challenge);
    }
    if challenges.is_empty() {
        return Err(ChallengeError("no challenge".into()));
    }
    Ok(challenges)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl<'a> Parser<'a> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek_is(&self, b: u8) -> bool {
        self.s.get(self.i) == Some(&b)
    }

    fn error(&self, what: &str) -> ChallengeError {
        ChallengeError(format!("{what} at byte {}", self.i))
    }

    fn skip_spaces(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_list_separators(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|&b| is_tchar(b)) {
            self.i += 1;
        }
        // Only ASCII tchars were consumed, so this slice is valid UTF-8.
        (self.i > start).then(|| std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default())
    }

    fn token68(&mut self) -> Option<()> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|&b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)) {
            self.i += 1;
        }
        while self.peek_is(b'=') {
            self.i += 1;
        }
        (self.i > start).then_some(())
    }

    /// True when `token BWS "="` (but not a token68's trailing `==`) comes next.
    fn param_ahead(&self) -> bool {
        let mut j = self.i;
        while self.s.get(j).is_some_and(|&b| is_tchar(b)) {
            j += 1;
        }
        if j == self.i {
            return false;
        }
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        self.s.get(j) == Some(&b'=') && self.s.get(j + 1) != Some(&b'=')
    }

    fn quoted(&mut self) -> Result<String, ChallengeError> {
        self.i += 1; // opening quote
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err(self.error("unterminated quoted string")),
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|_| self.error("quoted string is not UTF-8"));
                }
                Some(b'\\') => {
                    let escaped = *self.s.get(self.i + 1).ok_or_else(|| self.error("unterminated escape"))?;
                    out.push(escaped);
                    self.i += 2;
                }
                Some(&b) => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(header: &str) -> Challenge {
        let mut all = parse(header).unwrap_or_else(|e| panic!("{header}: {e}"));
        assert_eq!(all.len(), 1, "{header}");
        all.remove(0)
    }

    #[test]
    fn docker_hub_bearer() {
        let c = one(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#,
        );
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("scope"), Some("repository:library/ubuntu:pull"));
    }

    #[test]
    fn case_spaces_tokens_and_escapes() {
        let c = one(r#"BEARER  Realm = "http://h/t\"x\\" , SERVICE=reg.io"#);
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some(r#"http://h/t"x\"#));
        assert_eq!(c.param("service"), Some("reg.io"));
        assert_eq!(one("basic realm=\"Registry Realm\"").scheme, "basic");
        assert_eq!(one("Basic").params, vec![]);
    }

    #[test]
    fn several_challenges() {
        let all = parse(r#"Basic realm="r", Bearer realm="https://a/t",service="s", Negotiate abc=="#).unwrap();
        let schemes: Vec<_> = all.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(all[1].param("service"), Some("s"));
    }

    #[test]
    fn malformed_headers_are_errors() {
        for bad in ["", ",,", "Bearer realm=\"unterminated", "Bearer realm=", "Bearer realm=\"a\" service=\"b\"", "=x"]
        {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Prints a challenge the way a server would, quoting every value.
    fn print(c: &Challenge) -> String {
        let params: Vec<String> =
            c.params.iter().map(|(n, v)| format!("{n}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
        format!("{} {}", c.scheme, params.join(", "))
    }

    proptest! {
        #[test]
        fn any_header_parses_or_fails_without_panicking(s in "\\PC{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn printed_challenges_parse_back(
            challenges in proptest::collection::vec(
                ("[a-z][a-z0-9]{0,8}", proptest::collection::vec(("[a-z][a-z0-9_]{0,8}", "[ -~]{0,40}"), 1..5)),
                1..4,
            )
        ) {
            let challenges: Vec<Challenge> = challenges
                .into_iter()
                .map(|(scheme, params)| Challenge { scheme, params })
                .collect();
            let header = challenges.iter().map(print).collect::<Vec<_>>().join(", ");
            prop_assert_eq!(parse(&header).map_err(|e| TestCaseError::fail(format!("{header}: {e}")))?, challenges);
        }
    }
}
