//! `/check?image=REF&max_wasted_bytes=N&min_efficiency=F&no_secrets=1`: dive's CI mode
//! over HTTP (the rules are `image::check`). Always JSON, for a CI job to read: 200 when
//! the image is within every limit, 422 with one reason per limit passed.
//!
//! The sizes come from the merged view (in a render slot, as `/sizes`); secrets only
//! when asked for, from the same scan as `/secrets` (so from the catalog when every
//! layer was scanned before). An index is refused: a check is of one platform's image.

use http::{Response, StatusCode};
use serde_json::json;

use super::body::Body;
use super::respond::json_response;
use super::whole::Chosen;
use super::App;
use crate::error::Error;
use crate::image::check::{self, Limits, Measured};
use crate::image::sizes;

impl App {
    /// `check`: see the module docs.
    pub(super) async fn check(&self, pairs: &[(String, String)]) -> Result<Response<Body>, Error> {
        let limits = Limits::parse(pairs).map_err(Error::bad_request)?;
        let (reference, digest, manifest) = match self.image_manifest(pairs).await? {
            Chosen::Image { reference, digest, manifest } => (reference, digest, manifest),
            Chosen::Index(reference, index) => {
                let example = index.manifests.first().map(|m| reference.with_digest(m.digest.clone()).to_string());
                return Err(Error::bad_request(format!(
                    "{reference} is an index: check one platform's image{}",
                    example.map_or(String::new(), |e| format!(", e.g. {e}"))
                )));
            }
        };
        // One merge serves both the sizes and the secrets' scan.
        let (slot, merged) = self.merged_layers(&reference, &digest, &manifest).await?;
        let fs = merged.fs.clone();
        let (wasted, efficiency, shipped) = slot
            .render(move || {
                let s = sizes::of(&fs);
                (s.wasted, s.efficiency(), s.shipped)
            })
            .await;
        let secrets = if limits.no_secrets {
            let scan = self.scan_secrets(&reference, &manifest, &merged).await?;
            Some((scan.findings.len(), scan.partial_layers.len()))
        } else {
            None
        };
        let measured = Measured { wasted, efficiency, secrets: secrets.map(|s| s.0) };
        let reasons = check::reasons(&limits, &measured);
        let status = if reasons.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
        let body = json!({
            "image": reference.to_string(),
            "digest": digest.to_string(),
            "pass": reasons.is_empty(),
            "reasons": reasons,
            "shipped": shipped,
            "wasted": wasted,
            "efficiency": efficiency,
            "secrets": secrets.map(|s| s.0),
            // Layers whose scan left files unread: a pass says nothing of those files.
            "secrets_partial_layers": secrets.map(|s| s.1),
            "limits": {
                "max_wasted_bytes": limits.max_wasted_bytes,
                "min_efficiency": limits.min_efficiency,
                "no_secrets": limits.no_secrets,
            },
        });
        Ok(json_response(status, &body))
    }
}
