//! An HTTP/1.1 response reader for blob connections, sans IO: it is handed the bytes
//! read so far and says what lies at their front, so that the caller can cut body bytes
//! out of its own buffer (`BytesMut::split_to`) without copying them.
//!
//! Danger first: a reader that frames a body wrongly hands the client the wrong bytes, so
//! - the head is parsed by `httparse` (hyper's own parser) and limited to [`HEAD_LIMIT`];
//! - a body is delimited by `Transfer-Encoding: chunked` (which wins over
//!   `Content-Length`, as RFC 9112 §6.3 says), else by `Content-Length` (several
//!   different values are an error), else by the connection's end; any other transfer
//!   coding is refused rather than passed on encoded;
//! - a response to HEAD, and a 204 or 304, has no body; 1xx heads before the final one
//!   are skipped (101 is refused: nothing here upgrades);
//! - chunk extensions and trailers are read and dropped; a chunk-size line or the
//!   trailers beyond their limits are errors, never a reason to buffer without end.
//!
//! Known gap: keep-alive is not handled, since a blob connection serves one response and
//! is closed after it ([`super`]).

use std::fmt;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};

/// The largest response head accepted (status line and headers), as hyper's default
/// read buffer allows.
pub const HEAD_LIMIT: usize = 64 << 10;

/// The longest chunk-size line, extensions included.
const LINE_LIMIT: usize = 4 << 10;

/// The most trailer bytes read (and dropped) after the last chunk.
const TRAILER_LIMIT: usize = 64 << 10;

/// The most header fields in a head.
const MAX_HEADERS: usize = 128;

/// A response's status line and headers.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
}

/// Why a response could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The head is not valid HTTP/1.x.
    Head(String),
    /// The head is longer than [`HEAD_LIMIT`].
    HeadTooLarge,
    /// A framing this reader does not decode.
    Unsupported(String),
    /// A chunk-size line, a chunk's end or the trailers are malformed or too long.
    Chunk(&'static str),
    /// The connection ended before the body did.
    Truncated,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Head(why) => write!(f, "invalid response head: {why}"),
            ParseError::HeadTooLarge => write!(f, "response head longer than {HEAD_LIMIT} bytes"),
            ParseError::Unsupported(why) => write!(f, "unsupported response framing: {why}"),
            ParseError::Chunk(why) => write!(f, "invalid chunked body: {why}"),
            ParseError::Truncated => write!(f, "the connection closed before the response body ended"),
        }
    }
}

impl std::error::Error for ParseError {}

/// What lies at the front of the buffer, once the head is read. `skip` bytes of framing
/// (chunk-size lines, chunk ends, trailers) come first and are to be discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Discard `skip` bytes, then read more: nothing whole is left.
    More { skip: usize },
    /// Discard `skip` bytes; the next `len` (never 0) are body bytes.
    Data { skip: usize, len: usize },
    /// Discard `skip` bytes; the body has ended.
    End { skip: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    UntilEof,
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers(usize),
    Done,
}

/// Reads one response: [`Reader::head`] until it yields the head, then
/// [`Reader::body`] until [`Step::End`], and [`Reader::finish`] if the connection ends
/// first.
#[derive(Debug)]
pub struct Reader {
    state: State,
    to_head: bool,
}

impl Reader {
    /// A reader for the response to a request; `to_head` when the request was a HEAD.
    pub fn new(to_head: bool) -> Reader {
        Reader { state: State::Head, to_head }
    }

    /// The final head at `buf`'s front and its length in bytes, or `None` while it is
    /// incomplete. Call again with the same bytes and more after them.
    pub fn head(&mut self, buf: &[u8]) -> Result<Option<(Head, usize)>, ParseError> {
        let mut at = 0;
        loop {
            let Some((head, len)) = parse_head(&buf[at..])? else { return Ok(None) };
            at += len;
            if head.status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(ParseError::Unsupported("101 Switching Protocols".into()));
            }
            if head.status.is_informational() {
                continue;
            }
            self.state = self.framing(&head)?;
            let mut head = head;
            if matches!(self.state, State::ChunkSize) {
                // The length is the chunks', not this header's (RFC 9112 §6.3).
                head.headers.remove(header::CONTENT_LENGTH);
            }
            return Ok(Some((head, at)));
        }
    }

    fn framing(&self, head: &Head) -> Result<State, ParseError> {
        if self.to_head || head.status == StatusCode::NO_CONTENT || head.status == StatusCode::NOT_MODIFIED {
            return Ok(State::Done);
        }
        let codings: Vec<&[u8]> = head
            .headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(|c| c.trim_ascii())
            .filter(|c| !c.is_empty())
            .collect();
        if !codings.is_empty() {
            return match codings.as_slice() {
                [c] if c.eq_ignore_ascii_case(b"chunked") => Ok(State::ChunkSize),
                _ => Err(ParseError::Unsupported(format!(
                    "transfer-encoding {}",
                    String::from_utf8_lossy(&codings.join(&b","[..]))
                ))),
            };
        }
        let mut length = None;
        for value in head.headers.get_all(header::CONTENT_LENGTH) {
            for part in value.as_bytes().split(|&b| b == b',') {
                let part = part.trim_ascii();
                let bad = || ParseError::Head("invalid content-length".into());
                if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                    return Err(bad());
                }
                let n: u64 = std::str::from_utf8(part).map_err(|_| bad())?.parse().map_err(|_| bad())?;
                if length.is_some_and(|l| l != n) {
                    return Err(ParseError::Head("several content-lengths".into()));
                }
                length = Some(n);
            }
        }
        Ok(match length {
            Some(n) => State::Length(n),
            None => State::UntilEof,
        })
    }

    /// What lies at `buf`'s front after the head. The caller discards what the step
    /// says before the next call, and calls again after [`Step::Data`].
    pub fn body(&mut self, buf: &[u8]) -> Result<Step, ParseError> {
        let mut skip = 0;
        loop {
            let rest = &buf[skip..];
            match self.state {
                State::Head => return Err(ParseError::Head("the body was asked for before the head".into())),
                State::Done => return Ok(Step::End { skip }),
                State::UntilEof if rest.is_empty() => return Ok(Step::More { skip }),
                State::UntilEof => return Ok(Step::Data { skip, len: rest.len() }),
                State::Length(0) => self.state = State::Done,
                State::Length(left) | State::ChunkData(left) => {
                    if rest.is_empty() {
                        return Ok(Step::More { skip });
                    }
                    let len = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                    let left = left - len as u64;
                    self.state = match self.state {
                        State::Length(_) if left == 0 => State::Done,
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                    return Ok(Step::Data { skip, len });
                }
                State::ChunkSize => {
                    let Some(line) = line(rest, LINE_LIMIT)? else { return Ok(Step::More { skip }) };
                    let size = chunk_size(&rest[..line - 2])?;
                    skip += line;
                    self.state = if size == 0 { State::Trailers(0) } else { State::ChunkData(size) };
                }
                State::ChunkEnd => {
                    if rest.len() < 2 {
                        return Ok(Step::More { skip });
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(ParseError::Chunk("a chunk does not end with CRLF"));
                    }
                    skip += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailers(seen) => {
                    let Some(line) = line(rest, TRAILER_LIMIT - seen)? else { return Ok(Step::More { skip }) };
                    skip += line;
                    self.state = if line == 2 { State::Done } else { State::Trailers(seen + line) };
                }
            }
        }
    }

    /// Whether the body has been read to its end.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// How many body bytes are still to come, when the head said.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// Called when the connection has ended (and everything before the end has been
    /// through [`Reader::body`]): fine only for a body delimited by the end, or one that
    /// had ended already.
    pub fn finish(&mut self) -> Result<(), ParseError> {
        match self.state {
            State::UntilEof | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(ParseError::Truncated),
        }
    }
}

/// A whole head at `buf`'s front, and its length.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, ParseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > HEAD_LIMIT => return Err(ParseError::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ParseError::Head(e.to_string())),
    };
    if len > HEAD_LIMIT {
        return Err(ParseError::HeadTooLarge);
    }
    let bad = |what: &str| ParseError::Head(what.into());
    let status = StatusCode::from_u16(response.code.ok_or_else(|| bad("no status"))?).map_err(|_| bad("bad status"))?;
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut map = HeaderMap::with_capacity(response.headers.len());
    for h in response.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad("bad header name"))?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| bad("bad header value"))?;
        map.append(name, value);
    }
    Ok(Some((Head { status, version, headers: map }, len)))
}

/// The length of the CRLF-ended line at `buf`'s front (CRLF included), `None` while it
/// is incomplete; an error beyond `limit` bytes.
fn line(buf: &[u8], limit: usize) -> Result<Option<usize>, ParseError> {
    let window = &buf[..buf.len().min(limit)];
    match window.iter().position(|&b| b == b'\n') {
        Some(n) if n > 0 && window[n - 1] == b'\r' => Ok(Some(n + 1)),
        Some(_) => Err(ParseError::Chunk("a line ends with a bare LF")),
        None if buf.len() >= limit => Err(ParseError::Chunk("a chunk-size line or the trailers are too long")),
        None => Ok(None),
    }
}

/// The size on a chunk-size line (without its CRLF): hex digits, then optional
/// whitespace and `;extensions`, dropped.
fn chunk_size(line: &[u8]) -> Result<u64, ParseError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let after = &line[digits..];
    let rest_ok = after.iter().all(|&b| b == b' ' || b == b'\t') || after.trim_ascii_start().first() == Some(&b';');
    if digits == 0 || digits > 16 || !rest_ok {
        return Err(ParseError::Chunk("invalid chunk size"));
    }
    let hex = std::str::from_utf8(&line[..digits]).map_err(|_| ParseError::Chunk("invalid chunk size"))?;
    u64::from_str_radix(hex, 16).map_err(|_| ParseError::Chunk("invalid chunk size"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the reader makes of `parts` read one after another: the status, the
    /// headers, the body.
    /// A response as the tests compare it: status, sorted headers, body.
    type Read = (u16, Vec<(String, String)>, Vec<u8>);

    fn read_parts(parts: &[&[u8]], to_head: bool) -> Result<Read, ParseError> {
        let mut reader = Reader::new(to_head);
        let mut buf = Vec::new();
        let mut head = None;
        let mut body = Vec::new();
        let mut parts = parts.iter();
        loop {
            if head.is_none() {
                if let Some((h, len)) = reader.head(&buf)? {
                    head = Some(h);
                    buf.drain(..len);
                    continue;
                }
            } else {
                match reader.body(&buf)? {
                    Step::Data { skip, len } => {
                        assert!(len > 0);
                        body.extend_from_slice(&buf[skip..skip + len]);
                        buf.drain(..skip + len);
                        continue;
                    }
                    Step::End { .. } => break,
                    Step::More { skip } => {
                        buf.drain(..skip);
                    }
                }
            }
            match parts.next() {
                Some(part) => buf.extend_from_slice(part),
                None if head.is_some() => {
                    reader.finish()?;
                    break;
                }
                None => return Err(ParseError::Truncated),
            }
        }
        let head = head.unwrap();
        let mut headers: Vec<_> = head
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        headers.sort();
        Ok((head.status.as_u16(), headers, body))
    }

    /// The reference: a plain reading of a whole, well-formed response (no 1xx, one
    /// framing header), written separately from the reader.
    fn reference(input: &[u8]) -> Read {
        let end = input.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&input[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        let mut rest = &input[end + 4..];
        let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v == "chunked");
        let body = if chunked {
            headers.retain(|(n, _)| n != "content-length");
            let mut body = Vec::new();
            loop {
                let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
                let line = std::str::from_utf8(&rest[..nl]).unwrap();
                let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
                rest = &rest[nl + 2..];
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&rest[..size]);
                rest = &rest[size + 2..];
            }
            body
        } else if let Some((_, v)) = headers.iter().find(|(n, _)| n == "content-length") {
            rest[..v.parse::<usize>().unwrap()].to_vec()
        } else {
            rest.to_vec()
        };
        headers.sort();
        (status, headers, body)
    }

    #[derive(Debug, Clone)]
    enum Framing {
        Length,
        Chunked { sizes: Vec<usize>, extensions: bool, trailers: Vec<(String, String)> },
        UntilEof,
    }

    fn response(status: u16, headers: &[(String, String)], body: &[u8], framing: &Framing) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {status} Whatever\r\n").into_bytes();
        for (n, v) in headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        match framing {
            Framing::Length => out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes()),
            Framing::UntilEof => out.extend_from_slice(b"\r\n"),
            Framing::Chunked { .. } => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n"),
        }
        match framing {
            Framing::Chunked { sizes, extensions, trailers } => {
                let mut rest = body;
                let mut sizes = sizes.iter().cycle();
                while !rest.is_empty() {
                    let n = (*sizes.next().unwrap()).clamp(1, rest.len());
                    let ext = if *extensions { ";name=\"v;x\" ; b" } else { "" };
                    out.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..n]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                out.extend_from_slice(b"0\r\n");
                for (n, v) in trailers {
                    out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
            _ => out.extend_from_slice(body),
        }
        out
    }

    /// `input` cut at `cuts` (offsets, taken modulo its length).
    fn split<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        at.sort_unstable();
        let mut parts = Vec::new();
        let mut from = 0;
        for to in at.into_iter().chain([input.len()]) {
            parts.push(&input[from..to]);
            from = to;
        }
        parts
    }

    fn framing() -> impl Strategy<Value = Framing> {
        prop_oneof![
            Just(Framing::Length),
            Just(Framing::UntilEof),
            (
                prop::collection::vec(1usize..40, 1..4),
                any::<bool>(),
                prop::collection::vec(("x-[a-z]{1,5}", "[a-z0-9]{0,6}"), 0..3)
            )
                .prop_map(|(sizes, extensions, trailers)| Framing::Chunked { sizes, extensions, trailers }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn every_split_reads_as_the_reference_reads_the_whole(
            status in prop::sample::select(vec![200u16, 206, 307, 404, 500]),
            headers in prop::collection::vec(("x-[a-z]{1,8}", "[ -~]{0,12}"), 0..4),
            body in prop::collection::vec(any::<u8>(), 0..300),
            framing in framing(),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            // Header values are trimmed as they are read.
            let headers: Vec<_> = headers.into_iter().map(|(n, v)| (n, v.trim().to_owned())).collect();
            let input = response(status, &headers, &body, &framing);
            let expected = reference(&input);
            prop_assert_eq!(&expected.2, &body);
            prop_assert_eq!(read_parts(&split(&input, &cuts), false), Ok(expected.clone()));
            prop_assert_eq!(read_parts(&[&input], false), Ok(expected));
        }

        #[test]
        fn any_bytes_read_alike_at_every_split_and_never_panic(
            input in prop::collection::vec(any::<u8>(), 0..200),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            prop_assert_eq!(read_parts(&split(&input, &cuts), false), read_parts(&[&input], false));
        }

        #[test]
        fn damaged_responses_read_alike_at_every_split_and_never_panic(
            body in prop::collection::vec(any::<u8>(), 0..100),
            framing in framing(),
            damage in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let mut input = response(200, &[], &body, &framing);
            for (at, byte) in damage {
                let at = at % input.len();
                input[at] = byte;
            }
            prop_assert_eq!(read_parts(&split(&input, &cuts), false), read_parts(&[&input], false));
        }
    }

    #[test]
    fn one_byte_at_a_time_reads_a_chunked_body_with_extensions_and_trailers() {
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n5;a=b\r\nhello\r\n1 ; x\r\n!\r\n0\r\nx-t: 1\r\n\r\n";
        let parts: Vec<&[u8]> = input.chunks(1).collect();
        let (status, headers, body) = read_parts(&parts, false).unwrap();
        assert_eq!(status, 200);
        assert_eq!(headers, vec![("transfer-encoding".to_owned(), "chunked".to_owned())]);
        assert_eq!(body, b"hello!");
    }

    #[test]
    fn bodiless_responses_end_at_their_head() {
        let input: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(read_parts(&[input], true).unwrap().2, b"");
        let input: &[u8] = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(read_parts(&[input], false).unwrap().2, b"");
    }

    #[test]
    fn bad_framing_is_an_error_that_says_why() {
        let read = |input: &[u8]| read_parts(&[input], false).map(|r| r.2);
        assert_eq!(read(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc"), Err(ParseError::Truncated));
        assert!(matches!(
            read(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            Err(ParseError::Head(_))
        ));
        assert!(matches!(read(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), Err(ParseError::Head(_))));
        assert!(matches!(
            read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Err(ParseError::Unsupported(_))
        ));
        assert!(matches!(
            read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err(ParseError::Chunk(_))
        ));
        assert!(matches!(
            read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n"),
            Err(ParseError::Chunk(_))
        ));
        assert_eq!(
            read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n"),
            Err(ParseError::Truncated)
        );
        assert!(matches!(read(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"), Err(ParseError::Unsupported(_))));
        let long = [b"HTTP/1.1 200 OK\r\nx: ".as_slice(), &vec![b'a'; HEAD_LIMIT]].concat();
        assert_eq!(read(&long), Err(ParseError::HeadTooLarge));
        let long_line =
            [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".as_slice(), &vec![b'a'; LINE_LIMIT]].concat();
        assert!(matches!(read(&long_line), Err(ParseError::Chunk(_))));
    }
}
