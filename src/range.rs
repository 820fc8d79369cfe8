//! Byte ranges: the one `Range` a client may have layerpipe pass on, and whether a
//! registry's `206 Partial Content` answers it.
//!
//! A 206 that answers another range than the one asked for (or a request that asked for
//! none) would hand the client bytes from the wrong place of the blob, unverifiable, and
//! a resumed download would be spliced into a corrupt file. So a 206 is passed on only
//! when its `Content-Range` is exactly the range asked for, clipped to the blob's end.
//!
//! A range can be the whole blob (`bytes=0-`, or any that covers it): such a 206 is
//! checked against the digest like a 200 ([`covers_whole_blob`]), since a client
//! resuming from 0 keeps every byte of it.

use std::fmt;

/// One range of bytes of a blob, as a client asks for it (RFC 9110, section 14.1.2).
/// Several ranges in one header are not passed on: the registry then answers the whole
/// blob, as RFC 9110 allows a server to do with any `Range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` or, without `last`, to the end.
    From {
        /// The first byte's offset.
        first: u64,
        /// The last byte's offset, inclusive; `None` for the end of the blob.
        last: Option<u64>,
    },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Reads a `Range` header's value; `None` unless it is one well-formed byte range.
    pub fn parse(value: &str) -> Option<ByteRange> {
        let (unit, spec) = value.trim().split_once('=')?;
        if !unit.trim().eq_ignore_ascii_case("bytes") {
            return None;
        }
        let (first, last) = spec.trim().split_once('-')?;
        match (number(first), last) {
            (Some(first), "") => Some(ByteRange::From { first, last: None }),
            (Some(first), last) => {
                let last = number(last)?;
                (first <= last).then_some(ByteRange::From { first, last: Some(last) })
            }
            (None, last) if first.is_empty() => Some(ByteRange::Suffix(number(last)?)),
            (None, _) => None,
        }
    }

    /// Whether a 206 with `content_range` (its `Content-Range`) and `content_length` (its
    /// `Content-Length`, when sent) carries exactly this range, clipped to the blob's end.
    pub fn answered_by(&self, content_range: &str, content_length: Option<u64>) -> bool {
        let Some(got) = ContentRange::parse(content_range) else {
            return false;
        };
        if content_length.is_some_and(|length| Some(length) != (got.last - got.first).checked_add(1)) {
            return false;
        }
        match (*self, got.complete) {
            (ByteRange::From { first, last: Some(last) }, Some(complete)) => {
                got.first == first && got.last == last.min(complete - 1)
            }
            (ByteRange::From { first, last: Some(last) }, None) => got.first == first && got.last == last,
            (ByteRange::From { first, last: None }, Some(complete)) => got.first == first && got.last == complete - 1,
            (ByteRange::From { first, last: None }, None) => got.first == first,
            (ByteRange::Suffix(n), Some(complete)) => {
                n > 0 && got.first == complete.saturating_sub(n) && got.last == complete - 1
            }
            // Which bytes are the last n cannot be checked without the blob's length.
            (ByteRange::Suffix(_), None) => false,
        }
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ByteRange::From { first, last: Some(last) } => write!(f, "bytes={first}-{last}"),
            ByteRange::From { first, last: None } => write!(f, "bytes={first}-"),
            ByteRange::Suffix(n) => write!(f, "bytes=-{n}"),
        }
    }
}

/// Whether a 206 with `content_range` carries the whole blob: from its first byte to
/// its last, of a stated total. With an unknown total (`*`) it cannot be told.
pub fn covers_whole_blob(content_range: &str) -> bool {
    ContentRange::parse(content_range).is_some_and(|r| r.first == 0 && r.complete == r.last.checked_add(1))
}

/// A 206's `Content-Range: bytes first-last/complete` (`complete` is `*` when unknown).
struct ContentRange {
    first: u64,
    last: u64,
    complete: Option<u64>,
}

impl ContentRange {
    fn parse(value: &str) -> Option<ContentRange> {
        let (unit, rest) = value.trim().split_once(' ')?;
        if !unit.eq_ignore_ascii_case("bytes") {
            return None;
        }
        let (range, complete) = rest.trim_start().split_once('/')?;
        let (first, last) = range.split_once('-')?;
        let (first, last) = (number(first)?, number(last)?);
        let complete = match complete {
            "*" => None,
            n => Some(number(n)?),
        };
        // RFC 9110, section 14.4: a range with last < first, or past the end, is invalid.
        let valid = first <= last && complete.is_none_or(|complete| last < complete);
        valid.then_some(ContentRange { first, last, complete })
    }
}

/// A decimal number of ASCII digits only (`u64::from_str` would take a `+`).
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_clients_send() {
        assert_eq!(ByteRange::parse("bytes=0-499"), Some(ByteRange::From { first: 0, last: Some(499) }));
        assert_eq!(ByteRange::parse("bytes=5000-"), Some(ByteRange::From { first: 5000, last: None }));
        assert_eq!(ByteRange::parse("bytes=-500"), Some(ByteRange::Suffix(500)));
        assert_eq!(ByteRange::parse(" Bytes = 1-2 "), Some(ByteRange::From { first: 1, last: Some(2) }));
        for bad in ["", "bytes=", "bytes=-", "bytes=5-1", "bytes=0-1,5-6", "items=0-1", "bytes=+1-2", "bytes=a-b"] {
            assert_eq!(ByteRange::parse(bad), None, "{bad}");
        }
        assert_eq!(ByteRange::parse("bytes=1000-1999").unwrap().to_string(), "bytes=1000-1999");
    }

    #[test]
    fn a_206_must_answer_the_range_asked_for() {
        let r = |s: &str| ByteRange::parse(s).unwrap();
        // Exactly the range, or clipped to the blob's end.
        assert!(r("bytes=1000-1999").answered_by("bytes 1000-1999/5000", Some(1000)));
        assert!(r("bytes=1000-1999").answered_by("bytes 1000-1999/*", None));
        assert!(r("bytes=1000-9999").answered_by("bytes 1000-4999/5000", Some(4000)));
        assert!(r("bytes=1000-").answered_by("bytes 1000-4999/5000", None));
        assert!(r("bytes=-500").answered_by("bytes 4500-4999/5000", Some(500)));
        assert!(r("bytes=-9000").answered_by("bytes 0-4999/5000", None));
        // Any other range is not what was asked for.
        assert!(!r("bytes=1000-1999").answered_by("bytes 0-999/5000", None));
        assert!(!r("bytes=1000-1999").answered_by("bytes 1000-1998/5000", None));
        assert!(!r("bytes=1000-1999").answered_by("bytes 1000-2999/5000", None));
        assert!(!r("bytes=1000-").answered_by("bytes 1000-3999/5000", None));
        assert!(!r("bytes=1000-").answered_by("bytes 0-4999/5000", None));
        assert!(!r("bytes=-500").answered_by("bytes 4000-4999/5000", None));
        assert!(!r("bytes=-500").answered_by("bytes 4500-4999/*", None));
        // A Content-Length that disagrees, or a Content-Range that is no range at all.
        assert!(!r("bytes=1000-1999").answered_by("bytes 1000-1999/5000", Some(5000)));
        for bad in ["", "bytes */5000", "bytes 1999-1000/5000", "bytes 1000-5000/5000", "items 1000-1999/5000"] {
            assert!(!r("bytes=1000-1999").answered_by(bad, None), "{bad}");
        }
    }

    #[test]
    fn a_206_of_every_byte_is_the_whole_blob() {
        assert!(covers_whole_blob("bytes 0-4999/5000"));
        assert!(covers_whole_blob("bytes 0-0/1"));
        for part in ["bytes 1-4999/5000", "bytes 0-4998/5000", "bytes 0-4999/*", "bytes */5000", ""] {
            assert!(!covers_whole_blob(part), "{part}");
        }
    }
}
