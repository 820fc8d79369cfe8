//! Scanning text for secrets: a file's contents, and the config's `Env`, `Labels` and
//! history, line by line, with the rules of [`super::rules`].
//!
//! Pure: bytes in, findings out, so the same function serves a layer read through its
//! index and a unit test. Values leave only as [`Masked`].
//!
//! - A file whose first 8 KiB hold a NUL byte is taken for binary and not scanned: the
//!   patterns would match noise in it and the lines would mean nothing.
//! - Lines longer than [`MAX_LINE`] are scanned only up to it (minified bundles).

use super::mask::Masked;
use super::rules::{entropy, ASSIGNMENT, ASSIGNMENT_ID, CONTENT_RULES, MIN_ENTROPY};
use serde::Serialize;
use std::ops::Range;

/// The longest line prefix scanned, in bytes.
pub const MAX_LINE: usize = 4096;

/// One secret found in a text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule that matched (see `docs/secrets.md`).
    pub rule: &'static str,
    /// The line, from 1.
    pub line: u32,
    /// The value, masked.
    pub value: Masked,
}

/// Where in the image config a finding is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "in", rename_all = "snake_case")]
pub enum ConfigPlace {
    /// `Env`, by variable name.
    Env { name: String },
    /// `Labels`, by key.
    Label { key: String },
    /// A history entry's `created_by`, by its index in `history`.
    History { step: usize },
}

/// A finding in the image config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigFinding {
    /// Where.
    pub place: ConfigPlace,
    /// What.
    #[serde(flatten)]
    pub finding: Finding,
}

/// Scans a file's bytes; binary files (a NUL in the first 8 KiB) yield nothing.
pub fn scan_bytes(bytes: &[u8]) -> Vec<Finding> {
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return Vec::new();
    }
    scan_text(&String::from_utf8_lossy(bytes))
}

/// Scans text line by line.
pub fn scan_text(text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = prefix(line, MAX_LINE);
        let number = u32::try_from(n + 1).unwrap_or(u32::MAX);
        out.extend(scan_line(line).into_iter().map(|(rule, value)| Finding { rule, line: number, value }));
    }
    out
}

/// Scans one line: each value at most once, by the first rule that claims it.
pub fn scan_line(line: &str) -> Vec<(&'static str, Masked)> {
    let mut claimed: Vec<Range<usize>> = Vec::new();
    let mut out = Vec::new();
    let overlaps =
        |claimed: &[Range<usize>], r: &Range<usize>| claimed.iter().any(|c| c.start < r.end && r.start < c.end);
    for rule in &CONTENT_RULES {
        for caps in rule.regex.captures_iter(line) {
            let Some(m) = caps.get(rule.group) else { continue };
            if overlaps(&claimed, &m.range()) {
                continue;
            }
            claimed.push(m.range());
            out.push((rule.id, Masked::new(m.as_str())));
        }
    }
    for caps in ASSIGNMENT.captures_iter(line) {
        let Some(m) = caps.get(2) else { continue };
        if overlaps(&claimed, &m.range()) || entropy(m.as_str()) < MIN_ENTROPY {
            continue;
        }
        claimed.push(m.range());
        out.push((ASSIGNMENT_ID, Masked::new(m.as_str())));
    }
    out
}

/// Scans an image config's `Env` (`NAME=value`), `Labels` and history `created_by`s.
/// An `Env` or label value is also checked as `NAME=value`, so the name alone can make
/// a random-looking value a finding.
pub fn scan_config<'a>(
    env: impl IntoIterator<Item = &'a str>,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    history: impl IntoIterator<Item = Option<&'a str>>,
) -> Vec<ConfigFinding> {
    let mut out = Vec::new();
    let mut push = |place: &ConfigPlace, text: &str| {
        out.extend(scan_text(text).into_iter().map(|finding| ConfigFinding { place: place.clone(), finding }));
    };
    for entry in env {
        let name = entry.split('=').next().unwrap_or(entry).to_owned();
        push(&ConfigPlace::Env { name }, entry);
    }
    for (key, value) in labels {
        push(&ConfigPlace::Label { key: key.to_owned() }, &format!("{key}={value}"));
    }
    for (step, created_by) in history.into_iter().enumerate() {
        if let Some(created_by) = created_by {
            push(&ConfigPlace::History { step }, created_by);
        }
    }
    out
}

fn prefix(line: &str, max: usize) -> &str {
    if line.len() <= max {
        return line;
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Obviously fake, pattern-valid values, built at run time so that the repository
    /// carries no secret-shaped literal (the end-to-end tests use these too).
    pub(crate) struct Fakes;

    impl Fakes {
        pub(crate) fn aws_key_id() -> String {
            ["AK", "IA", "FAKEFAKEFAKE2345"].concat()
        }
        pub(crate) fn aws_secret() -> String {
            ["fake", &"Xy9/Qz7+Wv".repeat(3), "Fake12"].concat()
        }
        pub(crate) fn github() -> String {
            ["gh", "p_", &"FakeToken0".repeat(3), "abcdef"].concat()
        }
        pub(crate) fn npm() -> String {
            ["np", "m_", &"FakeNpm000".repeat(3), "abcdef"].concat()
        }
        pub(crate) fn slack() -> String {
            ["xo", "xb-", "000000000-000000000000-FakeSlackTokenValue"].concat()
        }
    }

    fn rules(text: &str) -> Vec<&'static str> {
        scan_text(text).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn a_dotenv_with_a_key_pair() {
        let text = format!(
            "# keys\nAWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n",
            Fakes::aws_key_id(),
            Fakes::aws_secret()
        );
        let found = scan_text(&text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].rule, found[0].line), ("aws-access-key-id", 2));
        assert_eq!((found[1].rule, found[1].line), ("aws-secret-access-key", 3));
        assert_eq!(found[1].value.len(), 40);
    }

    #[test]
    fn vendor_tokens() {
        assert_eq!(rules(&format!("token: {}", Fakes::github())), ["github-token"]);
        assert_eq!(rules(&format!("//registry/:_x={}", Fakes::npm())), ["npm-token"]);
        assert_eq!(rules(&format!("curl -H 'Bearer {}'", Fakes::slack())), ["slack-token"]);
        let gitlab = ["gl", "pat-", "FakeFakeFakeFake1234"].concat();
        assert_eq!(rules(&gitlab), ["gitlab-token"]);
        let stripe = ["sk", "_test_", "FakeFakeFakeFake1234"].concat();
        assert_eq!(rules(&stripe), ["stripe-key"]);
        let jwt = ["ey", "JhbGciOiJub25lIn0.", "ey", "JzdWIiOiJmYWtlIn0.", "ZmFrZXNpZ25hdHVyZQ"].concat();
        assert_eq!(rules(&jwt), ["jwt"]);
    }

    #[test]
    fn a_private_key_block() {
        let text = ["-----BEGIN ", "OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"].concat();
        let found = scan_text(&text);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].rule, found[0].line), ("private-key", 1));
    }

    #[test]
    fn credentials_in_a_url() {
        let found = scan_text("DATABASE=postgres://app:Zq8rT2xLw9@db:5432/app");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule, "url-credentials");
        assert_eq!(found[0].value.to_string(), "Zq8… (10 chars)");
        assert!(rules("see https://user:${PASSWORD}@host/").is_empty());
    }

    #[test]
    fn random_values_assigned_to_secret_names() {
        assert_eq!(rules("API_TOKEN=q8Zr2LxP0vN7kT4w"), [ASSIGNMENT_ID]);
        assert_eq!(rules("\"db_password\": \"Xk29!pQz#Lm4\""), [ASSIGNMENT_ID]);
        assert!(rules("PASSWORD=changeme").is_empty());
        assert!(rules("TOKEN=${TOKEN}").is_empty());
        assert!(rules("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin").is_empty());
    }

    #[test]
    fn a_token_is_reported_once() {
        // Both the GitHub rule and the assignment rule see it: the first one wins.
        assert_eq!(rules(&format!("GITHUB_TOKEN={}", Fakes::github())), ["github-token"]);
    }

    #[test]
    fn binary_files_are_skipped() {
        let mut bytes = Fakes::github().into_bytes();
        bytes.push(0);
        assert!(scan_bytes(&bytes).is_empty());
        assert_eq!(scan_bytes(Fakes::github().as_bytes()).len(), 1);
    }

    #[test]
    fn the_config() {
        let env = [format!("NPM_TOKEN={}", Fakes::npm()), "PATH=/usr/bin".to_owned()];
        let run = format!("/bin/sh -c curl -H 'Authorization: Bearer {}' x", Fakes::slack());
        let found = scan_config(
            env.iter().map(String::as_str),
            [("maintainer", "someone")],
            [None, Some("/bin/sh -c #(nop) ADD file:abc in /"), Some(run.as_str())],
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].place, ConfigPlace::Env { name: "NPM_TOKEN".into() });
        assert_eq!(found[0].finding.rule, "npm-token");
        assert_eq!(found[1].place, ConfigPlace::History { step: 2 });
        assert_eq!(found[1].finding.rule, "slack-token");
        let json = serde_json::to_string(&found).unwrap();
        assert!(!json.contains(&Fakes::npm()) && !json.contains(&Fakes::slack()), "{json}");
        assert!(json.contains(r#""in":"env","name":"NPM_TOKEN""#), "{json}");
    }

    #[test]
    fn long_lines_are_cut_on_a_character() {
        let line = "é".repeat(MAX_LINE);
        assert!(scan_text(&line).is_empty());
    }
}
