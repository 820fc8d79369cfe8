//! The layer download: the file name it is saved under, the response headers, and the
//! body that carries the blob from the registry to the browser.
//!
//! The body is the registry's own frames passed on one by one, as in hyper's gateway
//! example: no copy, no buffer of our own. hyper only asks for the next frame when the
//! client has taken the last, so a slow client slows the registry read (backpressure),
//! and memory per download stays at hyper's read and write buffers whatever the size.
//!
//! With verification on, each frame of a whole blob (a 200, or a 206 whose range covers
//! every byte) is hashed as it passes and the frame that completes the blob is held
//! until the digest checks out. On a mismatch, or when the registry's
//! stream breaks, the body ends in an error, which makes hyper abort the connection: the
//! client sees a failed download, never a complete-looking file.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::StatusCode;
use http_body::{Body as _, Frame, SizeHint};
use tokio::time::Sleep;

use crate::admission::{Slot, Slots};
use crate::digest::{Digest, Hasher};
use crate::error::{BoxError, Error};
use crate::hashing::{HashLease, HashWorkers};
use crate::manifest::LayerFormat;
use crate::metrics::flow::{Flow, FlowKind, FlowSink};
use crate::metrics::{Metrics, UpstreamError};
use crate::range::content_length;
use crate::reference::ImageReference;
use crate::upstream::multipart::{Fetch, FetchError, Plan};
use crate::upstream::UpstreamBody;

/// Largest layer number a download URL may carry.
const MAX_LAYER_NUMBER: u32 = 1_000_000;

/// Longest media type accepted (RFC 6838 allows 127 + 1 + 127).
const MAX_MEDIA_TYPE_LEN: usize = 255;

/// Everything a download URL carries: which blob, and what to name the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadLink {
    /// The image as the page showed it; its repository holds the blob, its path and tag
    /// name the file.
    pub image: ImageReference,
    /// The layer's digest.
    pub digest: Digest,
    /// The layer's number in the table, from 1.
    pub layer: u32,
    /// The layer's media type, which picks the file extension.
    pub media_type: String,
}

impl DownloadLink {
    /// Whether its media type names a filesystem layer (tar, compressed or not), whose
    /// files the layer pages can list; an artifact's blob is not one.
    pub fn is_layer(&self) -> bool {
        self.format().is_layer()
    }

    /// How its media type says the layer is packed.
    pub fn format(&self) -> LayerFormat {
        LayerFormat::from_media_type(&self.media_type)
    }

    /// The relative URL of the download, `download?image=…&digest=…&layer=N&mt=…`.
    pub fn href(&self) -> String {
        use crate::query::encode;
        format!(
            "download?image={}&digest={}&layer={}&mt={}",
            encode(&self.image.to_string()),
            encode(self.digest.as_str()),
            self.layer,
            encode(&self.media_type)
        )
    }

    /// Reads a download URL's decoded query pairs; every value is checked.
    pub fn from_query(pairs: &[(String, String)]) -> Result<DownloadLink, Error> {
        use crate::query::get;
        let required =
            |name: &str| get(pairs, name).ok_or_else(|| Error::bad_request(format!("the download URL has no {name}")));
        let image: ImageReference = required("image")?.parse()?;
        let digest: Digest = required("digest")?.parse()?;
        let layer = required("layer")?
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LAYER_NUMBER).contains(n))
            .ok_or_else(|| Error::bad_request(format!("layer must be a number from 1 to {MAX_LAYER_NUMBER}")))?;
        let media_type = get(pairs, "mt").unwrap_or("application/octet-stream");
        if !is_media_type(media_type) {
            return Err(Error::bad_request("mt is not a media type"));
        }
        Ok(DownloadLink { image, digest, layer, media_type: media_type.to_owned() })
    }

    /// The name the file is saved under.
    pub fn file_name(&self) -> String {
        file_name(&self.image, self.layer, self.format())
    }
}

/// `type/subtype` of RFC 6838 restricted-name characters.
fn is_media_type(s: &str) -> bool {
    let name_ok =
        |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
    s.len() <= MAX_MEDIA_TYPE_LEN && s.split_once('/').is_some_and(|(t, sub)| name_ok(t) && name_ok(sub))
}

/// `namespace-repo-tag-N.tar.gzip`: the repository path as typed with `/` as `-`, the tag
/// (`latest` when none was typed, the first 12 hex digits of the manifest digest for a
/// digest-only reference), the layer's number and the format's extension.
///
/// Every part comes from a parsed reference, so the name holds only `[A-Za-z0-9._-]`.
pub fn file_name(reference: &ImageReference, layer: u32, format: LayerFormat) -> String {
    let tag = match (reference.tag(), reference.digest()) {
        (Some(tag), _) => tag,
        (None, Some(digest)) => &digest.hex()[..12],
        (None, None) => crate::reference::DEFAULT_TAG,
    };
    let path = reference.path_as_typed().replace('/', "-");
    format!("{path}-{tag}-{layer}{}", format.extension())
}

/// `Content-Disposition: attachment` with both `filename` and RFC 5987 `filename*`.
pub fn content_disposition(name: &str) -> HeaderValue {
    // Anything outside a conservative set is replaced, so the quoted form needs no escapes.
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let value = format!("attachment; filename=\"{safe}\"; filename*=UTF-8''{}", crate::query::encode(name));
    HeaderValue::try_from(value).expect("only visible ASCII")
}

/// Admission for downloads: at most so many stream at once, so that a burst of clients
/// cannot exhaust memory or file descriptors ([`crate::admission`]: beyond the limit,
/// 503 with `Retry-After` at once).
pub struct DownloadSlots {
    slots: Slots,
    metrics: Arc<Metrics>,
}

impl DownloadSlots {
    /// At most `limit` downloads at once.
    pub fn new(limit: usize, metrics: Arc<Metrics>) -> DownloadSlots {
        let busy = format!("layerpipe is serving its limit of {limit} downloads; try again shortly");
        DownloadSlots { slots: Slots::new(limit, "downloads", busy), metrics }
    }

    /// A slot for one download from `registry` (its host), or 503 when all are taken.
    pub fn take(&self, registry: &str) -> Result<DownloadSlot, Error> {
        let slot = self.slots.try_take()?;
        self.metrics.download_started();
        let flow = FlowSink::new(&self.metrics, registry, FlowKind::Download).flow();
        let (metrics, registry, started) = (self.metrics.clone(), registry.to_owned(), Instant::now());
        Ok(DownloadSlot { _slot: slot, metrics, registry, started, flow })
    }
}

/// One download's place: released, and its duration counted, when dropped. Its bytes
/// are counted as they are sent ([`Flow`]: a local count per frame, shared every few
/// MiB); its failures under its `registry` (host).
pub struct DownloadSlot {
    _slot: Slot,
    metrics: Arc<Metrics>,
    registry: String,
    started: Instant,
    flow: Flow,
}

impl Drop for DownloadSlot {
    fn drop(&mut self) {
        self.metrics.download_ended(self.started.elapsed());
    }
}

/// How a blob is streamed.
#[derive(Clone)]
pub struct StreamOptions {
    /// Check whole blobs against their digest.
    pub verify: bool,
    /// Abort when the registry sends nothing for this long.
    pub idle_timeout: Duration,
    /// Threads that may hash a verified blob beside its stream.
    pub hashing: Arc<HashWorkers>,
}

/// The body that streams the registry's blob response (`parts` and `incoming`) to the
/// browser: verified against `digest` when it is the whole blob and `options.verify` is
/// on; with a `multipart` plan, the rest of a large blob may come over several
/// connections ([`crate::upstream::multipart`]), still verified over the whole stream.
/// The response around it (status, headers, file name) is `routes/download.rs`'s.
pub fn blob_body(
    parts: &http::response::Parts,
    incoming: UpstreamBody,
    multipart: Option<Plan>,
    digest: &Digest,
    options: &StreamOptions,
    slot: DownloadSlot,
) -> BlobBody {
    // Only a whole blob can be checked against its digest; a range of part of it is
    // passed on as is. A range of all of it (`bytes=0-`) is the whole blob.
    let whole = match parts.status {
        StatusCode::OK => true,
        StatusCode::PARTIAL_CONTENT => parts
            .headers
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(crate::range::covers_whole_blob),
        _ => false,
    };
    let verification = (options.verify && whole).then(|| {
        let lease = options.hashing.lease(digest.algorithm());
        Box::new(Verification::new(digest.clone(), content_length(&parts.headers), lease))
    });
    BlobBody {
        incoming: Box::new(Fetch::new(incoming, multipart)),
        verification,
        idle: Box::pin(tokio::time::sleep(options.idle_timeout)),
        idle_timeout: options.idle_timeout,
        waiting: false,
        slot,
    }
}

/// Why a download was cut off.
#[derive(Debug)]
pub enum DownloadError {
    /// The registry's stream failed (or a range of it, after its retries).
    Upstream(FetchError),
    /// The bytes do not hash to the digest.
    DigestMismatch {
        /// The digest the download URL named.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// More bytes than `Content-Length` said.
    TooLong {
        /// The digest being downloaded.
        digest: Digest,
    },
    /// The registry sent nothing for too long.
    Stalled(Duration),
    /// The hashing thread is gone, so the bytes cannot be checked.
    HashingFailed,
}

impl fmt::Display for DownloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadError::Upstream(e) => write!(f, "the registry's stream failed: {e}"),
            DownloadError::DigestMismatch { expected, actual } => {
                write!(f, "digest mismatch: expected {expected}, the bytes hash to {actual}")
            }
            DownloadError::TooLong { digest } => {
                write!(f, "the registry sent more bytes of {digest} than it announced")
            }
            DownloadError::Stalled(limit) => write!(f, "the registry sent nothing for {} s", limit.as_secs_f64()),
            DownloadError::HashingFailed => f.write_str("the hashing thread failed; the blob cannot be checked"),
        }
    }
}

impl std::error::Error for DownloadError {}

/// Where a blob's hash is computed.
enum Hashing {
    /// On the download's own thread.
    Inline(Hasher),
    /// On a hashing thread ([`crate::hashing`]).
    Lent(HashLease),
    /// The digest has been checked.
    Done,
}

/// The running check of a whole blob against its digest.
struct Verification {
    expected: Digest,
    hashing: Hashing,
    /// `Content-Length`, when the registry sent one.
    length: Option<u64>,
    seen: u64,
    /// The frame withheld until the digest checks out: the last one, or, without a
    /// length, the latest one (the end is only known after it).
    held: Option<Bytes>,
    /// All bytes are in; the digest is being computed.
    finishing: bool,
}

impl Verification {
    fn new(expected: Digest, length: Option<u64>, lease: Option<HashLease>) -> Verification {
        let hashing = match lease {
            Some(lease) => Hashing::Lent(lease),
            None => Hashing::Inline(Hasher::new(expected.algorithm())),
        };
        Verification { expected, hashing, length, seen: 0, held: None, finishing: false }
    }

    /// Ready when another frame may be taken: a hashing thread is not too far behind.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.hashing {
            Hashing::Lent(lease) => lease.poll_room(cx),
            Hashing::Inline(_) | Hashing::Done => Poll::Ready(()),
        }
    }

    /// Takes in one frame of data; answers what may be sent now.
    fn data(&mut self, data: Bytes) -> Result<Option<Bytes>, DownloadError> {
        self.seen += data.len() as u64;
        if self.length.is_some_and(|length| self.seen > length) {
            return Err(DownloadError::TooLong { digest: self.expected.clone() });
        }
        match &mut self.hashing {
            Hashing::Inline(hasher) => hasher.update(&data),
            Hashing::Lent(lease) => lease.update(data.clone()).map_err(|_| DownloadError::HashingFailed)?,
            Hashing::Done => {}
        }
        match self.length {
            Some(length) if self.seen == length => {
                self.held = Some(data);
                self.finishing = true;
                Ok(None)
            }
            Some(_) => Ok(Some(data)),
            None => Ok(self.held.replace(data)),
        }
    }

    /// The stream ended: the digest is due (unless it was checked already).
    fn end(&mut self) {
        self.finishing = !matches!(self.hashing, Hashing::Done);
    }

    /// Once all bytes are in: the held frame when the digest checks out.
    fn poll_checked(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, DownloadError>> {
        let actual = match std::mem::replace(&mut self.hashing, Hashing::Done) {
            Hashing::Inline(hasher) => hasher.finish(),
            Hashing::Lent(mut lease) => match lease.poll_finish(cx) {
                Poll::Ready(Ok(digest)) => digest,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(DownloadError::HashingFailed)),
                Poll::Pending => {
                    self.hashing = Hashing::Lent(lease);
                    return Poll::Pending;
                }
            },
            Hashing::Done => return Poll::Ready(Ok(self.held.take())),
        };
        self.finishing = false;
        if actual == self.expected {
            Poll::Ready(Ok(self.held.take()))
        } else {
            Poll::Ready(Err(DownloadError::DigestMismatch { expected: self.expected.clone(), actual }))
        }
    }
}

/// A blob on its way from the registry to the client; see the module docs.
pub struct BlobBody {
    /// Boxed: with its multipart state it is several times the size of the other bodies.
    incoming: Box<Fetch>,
    verification: Option<Box<Verification>>,
    /// Fires when the registry has been silent for `idle_timeout` while we wait on it.
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    /// Waiting on the registry, with `idle` armed. Time the client spends not asking for
    /// frames (backpressure) is not the registry's silence, so the timer is armed only
    /// when the registry has nothing for us.
    waiting: bool,
    slot: DownloadSlot,
}

impl BlobBody {
    /// Polls the next frame to send.
    pub fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(v) = &mut this.verification {
                if v.finishing {
                    return match ready!(v.poll_checked(cx)) {
                        Ok(held) => this.send(held),
                        Err(e) => this.abort(e),
                    };
                }
                ready!(v.poll_room(cx));
            }
            let frame = match Pin::new(&mut this.incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(e))) => return this.abort(DownloadError::Upstream(e)),
                Poll::Ready(None) => {
                    let Some(v) = &mut this.verification else { return Poll::Ready(None) };
                    v.end();
                    if v.finishing {
                        continue;
                    }
                    // Checked already (the length was reached), and nothing held.
                    let held = v.held.take();
                    return this.send(held);
                }
                Poll::Pending => {
                    if !this.waiting {
                        this.waiting = true;
                        this.idle.as_mut().reset((Instant::now() + this.idle_timeout).into());
                    }
                    ready!(this.idle.as_mut().poll(cx));
                    return this.abort(DownloadError::Stalled(this.idle_timeout));
                }
            };
            this.waiting = false;
            let Some(v) = &mut this.verification else {
                this.slot.flow.add(frame.data_ref().map_or(0, |d| d.len() as u64));
                return Poll::Ready(Some(Ok(frame)));
            };
            let Ok(data) = frame.into_data() else { continue }; // trailers: nothing to pass on
            match v.data(data) {
                Ok(Some(send)) => return this.send(Some(send)),
                Ok(None) => continue,
                Err(e) => return this.abort(e),
            }
        }
    }

    fn send(&mut self, data: Option<Bytes>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(data.map(|data| {
            self.slot.flow.add(data.len() as u64);
            Ok(Frame::data(data))
        }))
    }

    /// Ends the body in an error, which makes hyper abort the client's connection.
    fn abort(&mut self, e: DownloadError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let (metrics, registry) = (&self.slot.metrics, self.slot.registry.as_str());
        match &e {
            DownloadError::DigestMismatch { .. } | DownloadError::HashingFailed => metrics.digest_mismatch(),
            DownloadError::Upstream(_) | DownloadError::TooLong { .. } => {
                metrics.upstream_error(registry, UpstreamError::StreamBroken)
            }
            DownloadError::Stalled(_) => metrics.upstream_error(registry, UpstreamError::Timeout),
        }
        tracing::warn!(error = %e, "download aborted");
        Poll::Ready(Some(Err(Box::new(e))))
    }

    /// True when the registry's stream is done and nothing is held back.
    pub fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
            && self.verification.as_ref().is_none_or(|v| v.held.is_none() && matches!(v.hashing, Hashing::Done))
    }

    /// The registry's size hint.
    pub fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(s: &str) -> ImageReference {
        s.parse().unwrap()
    }

    #[test]
    fn file_names() {
        let gz = LayerFormat::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip");
        assert_eq!(
            file_name(&reference("smoshysmosh/composer:latest"), 2, gz),
            "smoshysmosh-composer-latest-2.tar.gzip"
        );
        assert_eq!(file_name(&reference("smoshysmosh/composer"), 1, gz), "smoshysmosh-composer-latest-1.tar.gzip");
        assert_eq!(file_name(&reference("ubuntu:22.04"), 1, gz), "ubuntu-22.04-1.tar.gzip");
        assert_eq!(
            file_name(
                &reference("localhost:5000/team/app/web:v1.2"),
                3,
                LayerFormat::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd")
            ),
            "team-app-web-v1.2-3.tar.zst"
        );
        let pinned = reference("a/b@sha256:0b342bf7e74f5fbef621a6d413a2a56088d405057e0e165e383904fe37fe28a2");
        assert_eq!(
            file_name(&pinned, 4, LayerFormat::from_media_type("application/vnd.oci.image.layer.v1.tar")),
            "a-b-0b342bf7e74f-4.tar"
        );
        let both = reference("a/b:v1@sha256:0b342bf7e74f5fbef621a6d413a2a56088d405057e0e165e383904fe37fe28a2");
        assert_eq!(file_name(&both, 1, gz), "a-b-v1-1.tar.gzip");
    }

    #[test]
    fn download_links_round_trip_and_reject_bad_values() {
        let link = DownloadLink {
            image: reference("127.0.0.1:5000/team/app:v1"),
            digest: digest_of(b"x"),
            layer: 2,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        };
        let query = link.href();
        let pairs = crate::query::parse(query.strip_prefix("download?").unwrap()).unwrap();
        assert_eq!(DownloadLink::from_query(&pairs).unwrap(), link);
        assert_eq!(link.file_name(), "team-app-v1-2.tar.gzip");
        for (name, bad) in [
            ("layer", "0"),
            ("layer", "x"),
            ("layer", "99999999999"),
            ("digest", "sha256:12"),
            ("image", "A/B"),
            ("mt", "a/b\r\nX: y"),
            ("mt", "nope"),
        ] {
            let mut pairs = pairs.clone();
            pairs.iter_mut().find(|(n, _)| n == name).unwrap().1 = bad.into();
            let e = DownloadLink::from_query(&pairs).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{name}={bad}");
        }
    }

    #[test]
    fn disposition_has_both_forms() {
        assert_eq!(
            content_disposition("a-b-latest-2.tar.gzip"),
            "attachment; filename=\"a-b-latest-2.tar.gzip\"; filename*=UTF-8''a-b-latest-2.tar.gzip"
        );
        let v = content_disposition("x\"\r\n; y=é");
        assert_eq!(v, "attachment; filename=\"x_____y__\"; filename*=UTF-8''x%22%0D%0A%3B%20y%3D%C3%A9");
    }

    fn digest_of(data: &[u8]) -> Digest {
        Digest::of(crate::digest::Algorithm::Sha256, data)
    }

    /// The same check hashed inline and on a hashing thread.
    fn both_ways(expected: &[u8], length: Option<u64>) -> [Verification; 2] {
        let lease = HashWorkers::new(1).lease(crate::digest::Algorithm::Sha256).expect("a free thread");
        [
            Verification::new(digest_of(expected), length, None),
            Verification::new(digest_of(expected), length, Some(lease)),
        ]
    }

    async fn checked(v: &mut Verification) -> Result<Option<Bytes>, DownloadError> {
        std::future::poll_fn(|cx| v.poll_checked(cx)).await
    }

    /// What the body does when the registry's stream ends.
    async fn end(v: &mut Verification) -> Result<Option<Bytes>, DownloadError> {
        v.end();
        if v.finishing {
            checked(v).await
        } else {
            Ok(v.held.take())
        }
    }

    #[tokio::test]
    async fn verification_with_length_releases_the_last_frame_only_when_it_matches() {
        for mut v in both_ways(b"hello world", Some(11)) {
            assert_eq!(v.data(Bytes::from_static(b"hello ")).unwrap().as_deref(), Some(&b"hello "[..]));
            assert!(v.data(Bytes::from_static(b"world")).unwrap().is_none(), "held until checked");
            assert!(v.finishing);
            assert_eq!(checked(&mut v).await.unwrap().as_deref(), Some(&b"world"[..]));
            assert!(end(&mut v).await.unwrap().is_none());
        }
        for mut v in both_ways(b"hello world", Some(11)) {
            v.data(Bytes::from_static(b"hello ")).unwrap();
            assert!(v.data(Bytes::from_static(b"WORLD")).unwrap().is_none());
            assert!(matches!(checked(&mut v).await, Err(DownloadError::DigestMismatch { .. })));
        }
        for mut v in both_ways(b"hi", Some(2)) {
            assert!(matches!(v.data(Bytes::from_static(b"hi!")), Err(DownloadError::TooLong { .. })));
        }
    }

    #[tokio::test]
    async fn verification_without_length_holds_one_frame() {
        for mut v in both_ways(b"abc", None) {
            assert!(v.data(Bytes::from_static(b"a")).unwrap().is_none());
            assert_eq!(v.data(Bytes::from_static(b"bc")).unwrap().as_deref(), Some(&b"a"[..]));
            assert_eq!(end(&mut v).await.unwrap().as_deref(), Some(&b"bc"[..]));
        }
        for mut v in both_ways(b"abc", None) {
            v.data(Bytes::from_static(b"ab")).unwrap();
            v.data(Bytes::from_static(b"X")).unwrap();
            assert!(end(&mut v).await.is_err());
        }
    }

    #[tokio::test]
    async fn empty_blob_is_checked_at_the_end() {
        for mut v in both_ways(b"", Some(0)) {
            assert!(end(&mut v).await.unwrap().is_none());
        }
        for mut v in both_ways(b"x", Some(0)) {
            assert!(end(&mut v).await.is_err());
        }
    }
}
