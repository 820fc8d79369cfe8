//! Which file names and which text look like secrets: the rule set, as data.
//!
//! Our own patterns, not gitleaks' `config/gitleaks.toml` read as data. Its licence (MIT)
//! would allow it, but its rules lean on semantics we would have to reimplement to read
//! them faithfully (per-rule keywords that gate the regex, allowlists, `secretGroup`,
//! per-rule entropy, Go RE2 syntax that `regex` mostly but not always accepts), and
//! ~200 rules would be a large file to carry for the dozen families the issue asks
//! for. The shapes below follow the vendors' documented token formats, which is also
//! where gitleaks takes them from.
//!
//! - A content rule names the capture group that is the secret, so only the value is
//!   masked and kept, not the line around it.
//! - The assignment rule (`*TOKEN*=…`) needs a value that looks random (Shannon entropy
//!   at least [`MIN_ENTROPY`] bits per character), so `PASSWORD=changeme` and
//!   `TOKEN=${TOKEN}` stay quiet.
//! - Known gap: a secret split across lines (other than a private key's header) or
//!   encoded (base64 of a token) is not found.

use regex::Regex;
use std::sync::LazyLock;

/// Bits per character below which an assigned value is taken for a word, not a secret.
pub const MIN_ENTROPY: f64 = 3.0;

/// A file name that holds credentials by its nature, whatever it contains.
pub struct NameRule {
    /// The rule's stable id (stored in the catalog, shown on the page).
    pub id: &'static str,
    /// Whether `path` (no leading slash, `/`-separated) matches.
    matches: fn(&str) -> bool,
}

impl NameRule {
    /// Whether this rule matches `path`.
    pub fn matches(&self, path: &str) -> bool {
        (self.matches)(path)
    }
}

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn ends_with_dir_file(path: &str, dir: &str, file: &str) -> bool {
    let mut parts = path.rsplit('/');
    parts.next() == Some(file) && parts.next() == Some(dir)
}

/// The name rules, most specific first.
pub static NAME_RULES: &[NameRule] = &[
    NameRule {
        id: "private-key-file",
        matches: |p| {
            let b = base(p);
            matches!(
                b,
                "id_rsa"
                    | "id_dsa"
                    | "id_ecdsa"
                    | "id_ed25519"
                    | "ssh_host_rsa_key"
                    | "ssh_host_ecdsa_key"
                    | "ssh_host_ed25519_key"
            ) || (b.ends_with(".pem") && b.contains("key"))
                || b.ends_with(".key")
                || b.ends_with(".p12")
                || b.ends_with(".pfx")
        },
    },
    NameRule {
        id: "dotenv",
        matches: |p| {
            let b = base(p);
            b == ".env" || (b.starts_with(".env.") && !b.ends_with(".example") && !b.ends_with(".sample"))
        },
    },
    NameRule { id: "npmrc", matches: |p| base(p) == ".npmrc" },
    NameRule { id: "pypirc", matches: |p| base(p) == ".pypirc" },
    NameRule { id: "netrc", matches: |p| matches!(base(p), ".netrc" | "_netrc") },
    NameRule { id: "git-credentials", matches: |p| base(p) == ".git-credentials" },
    NameRule { id: "aws-credentials", matches: |p| ends_with_dir_file(p, ".aws", "credentials") },
    NameRule { id: "docker-config", matches: |p| ends_with_dir_file(p, ".docker", "config.json") },
    NameRule {
        id: "kubeconfig",
        matches: |p| {
            ends_with_dir_file(p, ".kube", "config") || matches!(base(p), "kubeconfig" | "admin.conf" | "kubelet.conf")
        },
    },
    NameRule {
        id: "terraform-state",
        matches: |p| {
            let b = base(p);
            b.ends_with(".tfstate") || b.ends_with(".tfstate.backup")
        },
    },
];

/// The first name rule that `path` matches.
pub fn name_rule(path: &str) -> Option<&'static str> {
    let path = path.trim_start_matches("./").trim_start_matches('/');
    NAME_RULES.iter().find(|r| r.matches(path)).map(|r| r.id)
}

/// A pattern for secrets inside text.
pub struct ContentRule {
    /// The rule's stable id.
    pub id: &'static str,
    /// The pattern, compiled once.
    pub regex: LazyLock<Regex>,
    /// The capture group that is the secret value (0: the whole match).
    pub group: usize,
}

macro_rules! rule {
    ($id:literal, $group:literal, $re:literal) => {
        ContentRule { id: $id, regex: LazyLock::new(|| Regex::new($re).expect($id)), group: $group }
    };
}

/// The content rules for vendor token formats, in the order they are tried; a value
/// one rule claimed is not reported again by a later one on the same line.
pub static CONTENT_RULES: [ContentRule; 12] = [
    rule!("private-key", 0, r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"),
    rule!("aws-access-key-id", 1, r"\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b"),
    rule!(
        "aws-secret-access-key",
        1,
        r#"(?i)aws_?secret_?(?:access_?)?key\w*["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)"#
    ),
    rule!("github-token", 1, r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36})\b"),
    rule!("github-fine-grained-token", 1, r"\b(github_pat_[A-Za-z0-9_]{82})\b"),
    rule!("gitlab-token", 1, r"\b(glpat-[A-Za-z0-9_-]{20})\b"),
    rule!("slack-token", 1, r"\b(xox[abposr]-[0-9A-Za-z-]{10,})"),
    rule!("slack-webhook", 1, r"(https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/]{20,})"),
    rule!("npm-token", 1, r"\b(npm_[A-Za-z0-9]{36})\b"),
    rule!("stripe-key", 1, r"\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,})\b"),
    rule!("jwt", 1, r"\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"),
    rule!("url-credentials", 1, r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:([^/\s@$*{}<>]{3,})@[A-Za-z0-9]"),
];

/// `NAME…=value` where the name says it holds a secret; the value must also look random.
pub static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)([A-Z0-9_.-]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY)[A-Z0-9_.-]*)["']?\s*[:=]\s*["']?([^\s"'`$]{8,})"#,
    )
    .expect("assignment")
});

/// The assignment rule's id.
pub const ASSIGNMENT_ID: &str = "secret-assignment";

/// Shannon entropy of `value` in bits per byte.
pub fn entropy(value: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in value.bytes() {
        counts[b as usize] += 1;
    }
    let n = value.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for (path, id) in [
            ("root/.ssh/id_rsa", "private-key-file"),
            ("etc/ssh/ssh_host_ed25519_key", "private-key-file"),
            ("app/.env", "dotenv"),
            ("app/.env.production", "dotenv"),
            ("home/u/.npmrc", "npmrc"),
            ("root/.pypirc", "pypirc"),
            ("root/.netrc", "netrc"),
            ("root/.git-credentials", "git-credentials"),
            ("root/.aws/credentials", "aws-credentials"),
            ("root/.docker/config.json", "docker-config"),
            ("root/.kube/config", "kubeconfig"),
            ("etc/kubernetes/admin.conf", "kubeconfig"),
            ("infra/terraform.tfstate", "terraform-state"),
            ("/infra/x.tfstate.backup", "terraform-state"),
        ] {
            assert_eq!(name_rule(path), Some(id), "{path}");
        }
        for path in [
            "app/.env.example",
            "etc/config.json",
            "usr/share/doc/credentials",
            "root/.ssh/id_rsa.pub",
            "usr/lib/python3/environment.py",
        ] {
            assert_eq!(name_rule(path), None, "{path}");
        }
    }

    #[test]
    fn every_pattern_compiles() {
        for rule in &CONTENT_RULES {
            assert!(rule.regex.captures_len() > rule.group, "{}", rule.id);
        }
        LazyLock::force(&ASSIGNMENT);
    }

    #[test]
    fn entropy_tells_words_from_keys() {
        assert!(entropy("changeme") < MIN_ENTROPY);
        assert!(entropy("aaaaaaaaaaaa") < 1.0);
        assert!(entropy("q8Zr2LxP0vN7kT4w") > MIN_ENTROPY);
    }
}
