//! Finding entries by name: a case-insensitive substring of the path, or, with a leading
//! `^`, a prefix of it.

/// A parsed search: what `&search=TEXT` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    /// The text, lowercased.
    needle: String,
    /// Only paths that start with the text match.
    anchored: bool,
}

/// Most hits a search collects; pages show them a page at a time.
pub const MAX_HITS: usize = 10_000;

impl Search {
    /// The search `text` asks for; `None` when it asks for nothing.
    pub fn parse(text: &str) -> Option<Search> {
        let text = text.trim();
        let (anchored, rest) = match text.strip_prefix('^') {
            // Paths inside a layer have no leading slash; people type one anyway.
            Some(rest) => (true, rest.strip_prefix('/').unwrap_or(rest)),
            None => (false, text),
        };
        if rest.is_empty() {
            return None;
        }
        Some(Search { needle: rest.to_lowercase(), anchored })
    }

    /// The text, lowercased (without the `^`).
    pub fn needle(&self) -> &str {
        &self.needle
    }

    /// Whether only paths that start with the text match.
    pub fn anchored(&self) -> bool {
        self.anchored
    }

    /// The text as typed back into the search box.
    pub fn text(&self) -> String {
        if self.anchored {
            format!("^{}", self.needle)
        } else {
            self.needle.clone()
        }
    }

    /// Whether `path` (a clean path, no leading `/`) matches.
    pub fn matches(&self, path: &[u8]) -> bool {
        if path.is_ascii() && self.needle.is_ascii() {
            let needle = self.needle.as_bytes();
            return match self.anchored {
                true => path.len() >= needle.len() && path[..needle.len()].eq_ignore_ascii_case(needle),
                false => path.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle)),
            };
        }
        let path = String::from_utf8_lossy(path).to_lowercase();
        match self.anchored {
            true => path.starts_with(&self.needle),
            false => path.contains(&self.needle),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(search: &str, paths: &[&str]) -> Vec<String> {
        let s = Search::parse(search).unwrap();
        paths.iter().filter(|p| s.matches(p.as_bytes())).map(|p| p.to_string()).collect()
    }

    #[test]
    fn substrings_match_in_any_case() {
        let paths = ["etc/passwd", "usr/bin/Passwd", "home/x/.ssh/id_rsa", "Ünïcode/PÄSS"];
        assert_eq!(hits("PASS", &paths), ["etc/passwd", "usr/bin/Passwd"]);
        assert_eq!(hits("päss", &paths), ["Ünïcode/PÄSS"]);
        assert_eq!(hits("id_", &paths), ["home/x/.ssh/id_rsa"]);
    }

    #[test]
    fn a_caret_anchors_at_the_start() {
        let paths = ["etc/passwd", "usr/etc/x", "etc"];
        assert_eq!(hits("^etc", &paths), ["etc/passwd", "etc"]);
        assert_eq!(hits("^/ETC/", &paths), ["etc/passwd"]);
        assert_eq!(hits("etc", &paths), paths);
    }

    #[test]
    fn empty_searches_ask_for_nothing() {
        assert_eq!(Search::parse(""), None);
        assert_eq!(Search::parse("  ^ "), None);
        assert_eq!(Search::parse("^a").unwrap().text(), "^a");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_search_and_path_match_without_panicking(search in ".{0,20}", path in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(s) = Search::parse(&search) {
                let _ = s.matches(&path);
            }
        }
    }
}
