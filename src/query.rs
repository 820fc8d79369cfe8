//! URL query strings: reading `?image=…&layer=2` and percent-encoding values for links.

/// The `application/x-www-form-urlencoded` pairs of a query string, decoded. Pairs that
/// are not valid UTF-8 after decoding are an error, never silently mangled.
pub fn parse(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// The value of the first `name` in decoded `pairs`.
pub fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn decode(s: &str) -> Result<String, String> {
    let out = percent_decode(s, Plus::Space).ok_or("bad %-escape in the query string")?;
    String::from_utf8(out).map_err(|_| "the query string is not UTF-8".to_owned())
}

/// What `+` means where the text comes from: a space in a form-encoded query, itself in
/// a URL path.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Plus {
    /// `application/x-www-form-urlencoded`: a query string.
    Space,
    /// A URL path.
    Itself,
}

/// `%XX` escapes decoded to bytes, everything else as it is but `+` (see [`Plus`]);
/// `None` for a broken escape.
pub fn percent_decode(s: &str, plus: Plus) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus == Plus::Space => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok())?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so the result is
/// safe in a query value, a path segment and an HTML attribute alike.
pub fn encode(s: &str) -> String {
    encode_bytes(s.as_bytes())
}

/// [`encode`] for bytes that need not be UTF-8 (a tar entry's name).
pub fn encode_bytes(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_form_encoding() {
        let q = parse("image=smoshysmosh%2Fcomposer%3Alatest&layer=2&x=a+b&&flag").unwrap();
        assert_eq!(get(&q, "image"), Some("smoshysmosh/composer:latest"));
        assert_eq!(get(&q, "layer"), Some("2"));
        assert_eq!(get(&q, "x"), Some("a b"));
        assert_eq!(get(&q, "flag"), Some(""));
        assert_eq!(get(&q, "missing"), None);
        assert!(parse("a=%zz").is_err());
        assert!(parse("a=%").is_err());
        assert!(parse("a=%ff").is_err());
    }

    #[test]
    fn encoding_round_trips() {
        let s = "repo:tag@sha256:ab/<\"&'> é";
        let encoded = encode(s);
        assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        assert_eq!(parse(&format!("v={encoded}")).unwrap()[0].1, s);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_query_parses_or_fails_without_panicking(s in "\\PC{0,200}") {
            let _ = parse(&s);
        }

        #[test]
        fn encoded_values_decode_to_themselves(s in "\\PC{0,100}") {
            let pairs = parse(&format!("v={}", encode(&s))).unwrap();
            prop_assert_eq!(&pairs[0].1, &s);
        }
    }
}
