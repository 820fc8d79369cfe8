//! Image references (`[registry/]repository[:tag][@digest]`), parsed by the grammar of
//! docker/distribution's `reference` package and normalised the way `docker pull` does.
//!
//! The registry is the first `/`-separated component when it looks like a host (has a
//! `.` or `:`, is `localhost`, or has an uppercase letter); otherwise the reference is on
//! Docker Hub, where one-component names live under `library/`.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry that references without a host name refer to.
pub const DOCKER_HUB: &str = "docker.io";

/// The tag used when a reference names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";

/// Longest repository name distribution accepts (domain and path together).
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Longest tag distribution accepts.
const TAG_LENGTH_MAX: usize = 128;

/// A parsed image reference. Every field is already valid, so each may go into a URL,
/// a header or a file name without further checks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// The registry host (and port) as typed, if one was typed.
    domain: Option<String>,
    /// The repository path as typed, without the registry.
    path: String,
    /// The repository on the registry, with `library/` added for Docker Hub.
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference; the text is what a user sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceError(pub String);

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReferenceError {}

fn err<T>(message: impl Into<String>) -> Result<T, ReferenceError> {
    Err(ReferenceError(message.into()))
}

impl ImageReference {
    /// The registry host as layerpipe's config keys name it: `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        match self.domain.as_deref() {
            None | Some("index.docker.io") => DOCKER_HUB,
            Some(domain) => domain,
        }
    }

    /// The repository name on the registry, e.g. `library/ubuntu`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The repository path as the user typed it, without the registry host.
    pub fn path_as_typed(&self) -> &str {
        &self.path
    }

    /// The tag, if one was typed.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was typed.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry's manifest endpoint for: the digest when there is one
    /// (it selects), else the tag, else `latest`.
    pub fn manifest_reference(&self) -> &str {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.as_str(),
            (None, Some(tag)) => tag,
            (None, None) => DEFAULT_TAG,
        }
    }

    /// The same repository and tag pinned to another manifest, as a platform of an index.
    pub fn with_digest(&self, digest: Digest) -> ImageReference {
        ImageReference { digest: Some(digest), ..self.clone() }
    }
}

impl FromStr for ImageReference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<ImageReference, ReferenceError> {
        if s.is_empty() {
            return err("the image reference is empty");
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => {
                let digest =
                    digest.parse::<Digest>().map_err(|e| ReferenceError(format!("invalid digest in {s:?}: {e}")))?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that is not part of the registry's port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                check_tag(tag)?;
                (&rest[..last_slash + i], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return err(format!("{s:?} has no repository name"));
        }
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return err(format!("repository name must not be longer than {NAME_TOTAL_LENGTH_MAX} characters"));
        }
        let (domain, path) = split_domain(name);
        if let Some(domain) = domain {
            check_domain(domain)?;
        }
        check_path(path)?;
        let domain = domain.map(str::to_owned);
        let repository = match domain.as_deref() {
            None | Some(DOCKER_HUB) | Some("index.docker.io") if !path.contains('/') => {
                format!("library/{path}")
            }
            _ => path.to_owned(),
        };
        Ok(ImageReference { domain, path: path.to_owned(), repository, tag, digest })
    }
}

/// Prints the reference in the form it was typed, so that parsing the output gives it back.
impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(domain) = &self.domain {
            write!(f, "{domain}/")?;
        }
        f.write_str(&self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Checks a registry host (with optional port) as it may appear at the start of a
/// reference; config keys use it.
pub fn check_registry_host(host: &str) -> Result<(), ReferenceError> {
    check_domain(host)
}

fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn check_tag(tag: &str) -> Result<(), ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= TAG_LENGTH_MAX
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if valid {
        Ok(())
    } else {
        err(format!(
            "invalid tag {tag:?}: a tag is 1 to {TAG_LENGTH_MAX} letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        ))
    }
}

fn check_domain(domain: &str) -> Result<(), ReferenceError> {
    let bad = || err(format!("invalid registry host {domain:?}"));
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        // An IPv6 literal; zones (`%eth0`) are not allowed, as in distribution.
        let Some((addr, after)) = rest.split_once(']') else {
            return bad();
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return bad();
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return bad(),
            },
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        let component_ok = |c: &str| {
            let b = c.as_bytes();
            !b.is_empty()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        };
        if !host.split('.').all(component_ok) {
            return bad();
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err() {
            return bad();
        }
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), ReferenceError> {
    for component in path.split('/') {
        if !path_component_ok(component) {
            return err(format!(
                "invalid repository name {path:?}: each '/'-separated part is lowercase letters and digits, \
                 joined by single '.', one or two '_', or any number of '-'"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn path_component_ok(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep_start);
    }
}

/// A repository, as `?repo=` names one: the reference grammar without a tag or digest
/// (`ubuntu`, `ghcr.io/owner/app`, `127.0.0.1:5000/team/app`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository(ImageReference);

impl Repository {
    /// The repository as an image reference without tag or digest, for the registry client.
    pub fn as_reference(&self) -> &ImageReference {
        &self.0
    }

    /// The image `tag` of this repository, as it is typed (`REPO:TAG`); the image page
    /// parses it again, so a tag the registry sent that is not a valid tag is refused there.
    pub fn image_text(&self, tag: &str) -> String {
        format!("{self}:{tag}")
    }
}

impl From<&ImageReference> for Repository {
    /// The repository an image is in.
    fn from(image: &ImageReference) -> Repository {
        Repository(ImageReference { tag: None, digest: None, ..image.clone() })
    }
}

impl FromStr for Repository {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Repository, ReferenceError> {
        let reference: ImageReference = s.parse()?;
        if reference.tag.is_some() || reference.digest.is_some() {
            return err(format!("{s:?} names an image, not a repository: leave out the tag and digest"));
        }
        Ok(Repository(reference))
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod repository_tests {
    use super::*;

    #[test]
    fn repositories_have_no_tag_or_digest() {
        let r: Repository = "127.0.0.1:5000/team/app".parse().unwrap();
        assert_eq!((r.as_reference().registry(), r.as_reference().repository()), ("127.0.0.1:5000", "team/app"));
        assert_eq!(r.image_text("v1"), "127.0.0.1:5000/team/app:v1");
        assert_eq!("ubuntu".parse::<Repository>().unwrap().as_reference().repository(), "library/ubuntu");
        assert!("team/app:v1".parse::<Repository>().unwrap_err().0.contains("not a repository"));
        let pinned = format!("team/app@sha256:{}", "1".repeat(64));
        assert!(pinned.parse::<Repository>().is_err());
        assert!("Bad Name".parse::<Repository>().is_err());
        let image: ImageReference = pinned.replace("app@", "app:v1@").parse().unwrap();
        assert_eq!(Repository::from(&image).to_string(), "team/app");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    fn parse(s: &str) -> ImageReference {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    /// (input, registry, repository, tag, has digest) from distribution's reference tests.
    #[test]
    fn distribution_examples_parse() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("test_com", DOCKER_HUB, "library/test_com", None),
            ("test.com:tag", DOCKER_HUB, "library/test.com", Some("tag")),
            ("test.com:5000", DOCKER_HUB, "library/test.com", Some("5000")),
            ("test.com/repo:tag", "test.com", "repo", Some("tag")),
            ("test:5000/repo", "test:5000", "repo", None),
            ("test:5000/repo:tag", "test:5000", "repo", Some("tag")),
            ("lowercase:Uppercase", DOCKER_HUB, "library/lowercase", Some("Uppercase")),
            ("sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", None),
            ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", Some("some-long-tag")),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com",
                "b.gcr.io",
                "test.example.com/my-app",
                Some("test.example.com"),
            ),
            ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", Some("xn--n3h.com")),
            ("foo_bar.com:8080", DOCKER_HUB, "library/foo_bar.com", Some("8080")),
            ("foo/foo_bar.com:8080", DOCKER_HUB, "foo/foo_bar.com", Some("8080")),
            ("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo", None),
            ("[2001:db8::1]/repo", "[2001:db8::1]", "repo", None),
            ("localhost/repo", "localhost", "repo", None),
            ("localhost:5000/a__b/c---d:v1.0", "localhost:5000", "a__b/c---d", Some("v1.0")),
            ("docker.io/library/ubuntu", DOCKER_HUB, "library/ubuntu", None),
            ("docker.io/ubuntu", DOCKER_HUB, "library/ubuntu", None),
            ("index.docker.io/smoshysmosh/composer", DOCKER_HUB, "smoshysmosh/composer", None),
            ("smoshysmosh/composer:latest", DOCKER_HUB, "smoshysmosh/composer", Some("latest")),
        ];
        for &(input, registry, repository, tag) in cases {
            let r = parse(input);
            assert_eq!((r.registry(), r.repository(), r.tag()), (registry, repository, tag), "{input}");
            assert_eq!(r.to_string(), input, "round trip");
        }
    }

    #[test]
    fn digests_select_and_tags_are_kept() {
        let r = parse(&format!("test:5000/repo:tag@{D}"));
        assert_eq!(r.tag(), Some("tag"));
        assert_eq!(r.manifest_reference(), D);
        let r = parse(&format!("repo@{D}"));
        assert_eq!((r.tag(), r.digest().map(Digest::as_str)), (None, Some(D)));
        assert_eq!(parse("repo").manifest_reference(), "latest");
        assert_eq!(parse("repo:v2").manifest_reference(), "v2");
    }

    #[test]
    fn distribution_examples_are_rejected() {
        let long = format!("{}/{}", "a".repeat(128), "a".repeat(128));
        for bad in [
            "",
            ":justtag",
            &format!("@{D}"),
            "repo@sha256:ffffffffff",
            "validname@invaliddigest:ecc3b71f85e8ce0ea4dfd3bb5d8f4d6d",
            "Uppercase:tag",
            "test:5000/Uppercase/lowercase:tag",
            &long,
            "aa/asdf$$^/aa",
            "[fe80::1%eth0]:5000/repo",
            "repo:",
            "repo:-tag",
            "a//b",
            "a/b/",
            "-a/b",
            "a..b",
            "a___b",
            "host:99999/repo",
            "bad_host.com:x/repo",
            "repo\r\nX-Injected: 1",
            "repo:tag\"",
            "repo/<script>",
        ] {
            assert!(bad.parse::<ImageReference>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = "Uppercase:tag".parse::<ImageReference>().unwrap_err();
        assert!(e.0.contains("invalid repository name"), "{e}");
        let e = "repo:bad tag".parse::<ImageReference>().unwrap_err();
        assert!(e.0.contains("invalid tag"), "{e}");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const COMPONENT: &str = "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}";

    proptest! {
        #[test]
        fn any_input_parses_or_fails_without_panicking(s in "\\PC{0,300}") {
            let _ = s.parse::<ImageReference>();
        }

        #[test]
        fn whatever_parses_prints_back_to_itself(s in "[a-zA-Z0-9./:_@\\[\\]-]{1,80}") {
            if let Ok(r) = s.parse::<ImageReference>() {
                let printed = r.to_string();
                prop_assert_eq!(&printed, &s);
                prop_assert_eq!(printed.parse::<ImageReference>().unwrap(), r);
            }
        }

        #[test]
        fn grammatical_references_parse_into_their_parts(
            domain in proptest::option::of("[a-z]{1,8}\\.[a-z]{2,4}(:[1-9][0-9]{0,3})?"),
            path in proptest::collection::vec(COMPONENT, 1..4),
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}"),
            digest in proptest::option::of("[0-9a-f]{64}"),
        ) {
            // Without a registry, a first component that looks like a host would be one.
            prop_assume!(domain.is_some() || path.len() == 1 || !(path[0].contains('.') || path[0] == "localhost"));
            let path = path.join("/");
            let mut s = domain.as_ref().map_or(String::new(), |d| format!("{d}/"));
            s.push_str(&path);
            if let Some(tag) = &tag {
                s.push(':');
                s.push_str(tag);
            }
            if let Some(hex) = &digest {
                s.push_str("@sha256:");
                s.push_str(hex);
            }
            let r: ImageReference = s.parse().map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
            prop_assert_eq!(r.registry(), domain.as_deref().unwrap_or(DOCKER_HUB));
            prop_assert_eq!(r.path_as_typed(), path.as_str());
            prop_assert_eq!(r.tag(), tag.as_deref());
            prop_assert_eq!(r.digest().map(|d| d.hex().to_owned()), digest);
        }
    }
}
