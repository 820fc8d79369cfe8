//! How [`Inspector`] asks the registry for a layer's bytes: the whole blob (split over
//! several connections where the link is capped, as a download is), a range from an
//! index's resume point, or a blob's first bytes; and how a whole read is checked
//! against its digest.

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;

use super::{count, scan_error_message, BlobHead, Inspector};
use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::error::Error;
use crate::index::{LayerIndex, Plan};
use crate::layer::preview::PREVIEW_BYTES;
use crate::layer::scan::{Resume, ScanError, ScanOptions, Scanned};
use crate::metrics::flow::{FlowKind, FlowSink};
use crate::range::ByteRange;
use crate::upstream::multipart::Fetch;

impl Inspector {
    /// The blob bytes `plan` needs, and how to scan them: a `Range` request, from the
    /// blob's start when the registry ignores ranges (a 200). A plan that reads from the
    /// layer's first resume point to its end ([`LayerIndex::spans_blob`]) asks for the
    /// few bytes before that point too: the read is then the whole blob, and is checked
    /// against the digest ([`Inspector::whole_read_check`]).
    pub(super) async fn range_read(
        &self,
        link: &DownloadLink,
        layer: &LayerIndex,
        plan: &Plan,
    ) -> Result<(Fetch, ScanOptions), Error> {
        let verify = self.whole_read_check(link).filter(|_| layer.spans_blob(plan));
        let range = if verify.is_some() { ByteRange::From { first: 0, last: None } } else { plan.range() };
        let first = if verify.is_some() { 0 } else { plan.start };
        let mut headers = HeaderMap::new();
        let range = HeaderValue::from_str(&range.to_string()).expect("a range header is ASCII");
        headers.insert(header::RANGE, range);
        // The registry client already refuses a 206 that is not exactly this range.
        let response = self.registry.blob(&link.image, &link.digest, &Method::GET, headers).await?;
        let discard = match response.status() {
            StatusCode::OK => plan.start,
            StatusCode::PARTIAL_CONTENT => plan.start - first,
            other => {
                return Err(Error::bad_gateway(format!("the registry answered {other} to a range request")));
            }
        };
        let resume = Resume { compression: plan.compression, point: plan.point.clone(), discard, skip: plan.skip };
        Ok((Fetch::new(response.into_body(), None), ScanOptions { resume: Some(resume), verify, ..self.plain(link) }))
    }

    /// The digest a read of the whole blob, from its first byte to its end, is checked
    /// against: `link`'s, with `verify_digests` on. Such a read goes on to the blob's
    /// end after the entry it wants, so that the check can be made.
    pub(super) fn whole_read_check(&self, link: &DownloadLink) -> Option<Digest> {
        self.verify.then(|| link.digest.clone())
    }

    /// [`Error::digest_mismatch`] (counted) when a checked read hashed to another digest.
    pub(super) fn check_digest<V>(&self, link: &DownloadLink, scanned: &Scanned<V>) -> Result<(), Error> {
        match &scanned.digest {
            Some(actual) if *actual != link.digest => {
                self.metrics.digest_mismatch();
                Err(Error::digest_mismatch(&link.digest, actual))
            }
            _ => Ok(()),
        }
    }

    /// The first [`PREVIEW_BYTES`] of a blob, as the registry sends it. A blob read
    /// whole (no longer than that) is checked against its digest before it is shown.
    pub async fn blob_head(&self, link: &DownloadLink) -> Result<BlobHead, Error> {
        let _slot = self.extract_slots.try_take()?;
        let mut body = self.blob(link).await?;
        let mut head = BytesMut::new();
        let mut cut = false;
        let ended = loop {
            if head.len() >= PREVIEW_BYTES {
                // Whole only if nothing follows.
                break !cut && body.is_end_stream();
            }
            let frame = match tokio::time::timeout(self.idle_timeout, body.frame()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None) => break true,
                Ok(Some(Err(e))) => return Err(self.scan_error(link, ScanError::Upstream(e.into()))),
                Err(_) => return Err(self.scan_error(link, ScanError::Stalled(self.idle_timeout))),
            };
            if let Ok(data) = frame.into_data() {
                let n = data.len().min(PREVIEW_BYTES - head.len());
                cut |= n < data.len();
                head.extend_from_slice(&data[..n]);
            }
        };
        let bytes = head.freeze();
        if let Some(expected) = self.whole_read_check(link).filter(|_| ended) {
            let actual = Digest::of(expected.algorithm(), &bytes);
            if actual != expected {
                self.metrics.digest_mismatch();
                return Err(Error::digest_mismatch(&expected, &actual));
            }
        }
        Ok(BlobHead { bytes, complete: ended })
    }

    /// The whole blob, and how to scan it: from its first byte, checked against the
    /// digest ([`Inspector::whole_read_check`]).
    pub(super) async fn whole_read(&self, link: &DownloadLink) -> Result<(Fetch, ScanOptions), Error> {
        let body = self.blob(link).await?;
        let options = ScanOptions { verify: self.whole_read_check(link), ..self.plain(link) };
        Ok((body, options))
    }

    /// A plain read of `link`'s blob, its bytes counted as they arrive.
    pub(super) fn plain(&self, link: &DownloadLink) -> ScanOptions {
        let counted = FlowSink::new(&self.metrics, link.image.registry(), FlowKind::LayerRead);
        ScanOptions { counted: Some(counted), ..ScanOptions::plain(self.idle_timeout, self.min_rate) }
    }

    /// A registry failure while reading, counted and made the user's error.
    pub(super) fn scan_error(&self, link: &DownloadLink, e: ScanError) -> Error {
        count(&self.metrics, link.image.registry(), &e);
        match e {
            ScanError::Stalled(_) | ScanError::TooSlow(_) => Error::gateway_timeout(scan_error_message(&e)),
            ScanError::Upstream(_) | ScanError::Worker(_) => Error::bad_gateway(scan_error_message(&e)),
        }
    }

    /// The whole blob's body, in order, over several connections when the link is capped
    /// and the blob large ([`crate::upstream::multipart`]), as a download would be.
    pub(super) async fn blob(&self, link: &DownloadLink) -> Result<Fetch, Error> {
        let response = self.registry.blob(&link.image, &link.digest, &Method::GET, HeaderMap::new()).await?;
        if response.status() != StatusCode::OK {
            return Err(Error::bad_gateway(format!(
                "the registry answered {} to a whole-blob request",
                response.status()
            )));
        }
        let plan = self.multipart.plan(&response, || self.registry.blob_ranges(&link.image, &link.digest, &response));
        Ok(Fetch::new(response.into_body(), plan))
    }
}
