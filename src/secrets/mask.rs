//! A secret value as it may be shown: its first characters and its length, never whole.
//!
//! Danger first: a finding's value is a live credential until proven otherwise, and every
//! place that shows one (HTML, JSON, logs, the catalog) is a place it could leak from.
//! [`Masked`] is the only form a value leaves the scanner in, and it never holds more
//! than its head: there is no accessor, `Display`, `Debug` or `Serialize` that could
//! produce the whole value, because the whole value is not in it.
//!
//! - The head is the first 4 characters, but never more than a third of the value, so a
//!   short value (a 6-character password) is not shown nearly whole.
//! - The length is in characters, so a reader can tell a 40-character AWS secret from a
//!   placeholder.

use std::fmt;

/// The most characters of a value ever shown.
const HEAD: usize = 4;

/// A masked secret value: its first few characters and its length.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Masked {
    head: String,
    len: usize,
}

impl Masked {
    /// Masks `value`, keeping only what may be shown.
    pub fn new(value: &str) -> Masked {
        let len = value.chars().count();
        Masked::from_parts(value, len)
    }

    /// Rebuilds a masked value from its stored parts (the catalog keeps only these);
    /// `head` is cut again, so a too-long head from storage still cannot show more.
    pub fn from_parts(head: &str, len: usize) -> Masked {
        let shown = HEAD.min(len / 3);
        Masked { head: head.chars().take(shown).collect(), len }
    }

    /// The characters shown (at most 4, at most a third of the value).
    pub fn head(&self) -> &str {
        &self.head
    }

    /// The value's length in characters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the value was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Display for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}… ({} chars)", self.head, self.len)
    }
}

impl fmt::Debug for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Masked({self})")
    }
}

impl serde::Serialize for Masked {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake() -> String {
        // Built at run time so the repository carries no token-shaped literal.
        ["ghp", "_", &"aB3x".repeat(9)].concat()
    }

    #[test]
    fn shows_four_characters_and_the_length() {
        let value = fake();
        let masked = Masked::new(&value);
        assert_eq!(masked.to_string(), "ghp_… (40 chars)");
        assert_eq!(format!("{masked:?}"), "Masked(ghp_… (40 chars))");
        let json = serde_json::to_string(&masked).unwrap();
        assert_eq!(json, "\"ghp_… (40 chars)\"");
        for shown in [masked.to_string(), format!("{masked:?}"), json] {
            assert!(!shown.contains(&value[..8]), "{shown}");
        }
    }

    #[test]
    fn short_values_show_at_most_a_third() {
        assert_eq!(Masked::new("hunter").to_string(), "hu… (6 chars)");
        assert_eq!(Masked::new("abc").to_string(), "a… (3 chars)");
        assert_eq!(Masked::new("ab").to_string(), "… (2 chars)");
        assert_eq!(Masked::new("").to_string(), "… (0 chars)");
    }

    #[test]
    fn a_stored_head_is_cut_again() {
        let value = fake();
        let masked = Masked::from_parts(&value, 40);
        assert_eq!(masked.head(), "ghp_");
        assert_eq!(masked.len(), 40);
    }

    #[test]
    fn multibyte_values_are_cut_on_characters() {
        assert_eq!(Masked::new("pässwörtchen").head(), "päss");
    }
}
