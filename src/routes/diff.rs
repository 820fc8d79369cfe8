//! `/diff?a=REF&b=REF`: two images' merged filesystems compared (src/image/diff.rs),
//! with the bytes of same-sized files hashed on demand (src/explore/contents.rs).
//! With `a` alone, the page asks what to compare it with.
//!
//! An index on either side is compared by one platform: `&platform=os/arch[/variant]`,
//! or else `linux/amd64` when both have it, or else the first platform they share.

use http::Response;

use super::body::Body;
use super::respond::{answer, page_number, Format};
use super::App;
use crate::api;
use crate::digest::Digest;
use crate::error::Error;
use crate::explore::contents::{Budget, FileRef, Unhashed};
use crate::image::diff::{self, Pending, Side};
use crate::manifest::{Descriptor, FetchedManifest, ImageIndex, ImageManifest, Manifest, Platform};
use crate::pages::{self, DiffSide, DiffView};
use crate::query;
use crate::reference::ImageReference;

/// Tags the "compare with…" page offers.
const TAGS_OFFERED: usize = 100;

impl App {
    /// `diff`: see the module docs.
    pub(super) async fn diff(&self, pairs: &[(String, String)], format: Format) -> Result<Response<Body>, Error> {
        let a = reference(pairs, "a")?.ok_or_else(|| Error::bad_request("the diff needs ?a=IMAGE&b=IMAGE"))?;
        let Some(b) = reference(pairs, "b")? else {
            // Only the first: offer its repository's tags. A registry without a tag list
            // still gets the form.
            let tags = self.registry.tags(&a, TAGS_OFFERED, None).await.map(|p| p.tags).unwrap_or_default();
            return Ok(answer(format, || pages::diff_choose(&a, &tags), || api::diff_choose(&a, &tags)));
        };
        let page = page_number(pairs)?;
        let wanted = query::get(pairs, "platform").map(str::trim).filter(|p| !p.is_empty());
        let (a_fetched, b_fetched) = (self.registry.manifest(&a).await?, self.registry.manifest(&b).await?);
        let platform = choose_platform(&a_fetched.manifest, &b_fetched.manifest, wanted)?;
        let (a, a_image) = self.platform_image(&a, &a_fetched, platform.as_ref()).await?;
        let (b, b_image) = self.platform_image(&b, &b_fetched, platform.as_ref()).await?;
        // One render slot at a time, never one held while waiting for another.
        let (a_slot, a_merged) = self.merged_layers(&a, &a_image.0, &a_image.1).await?;
        drop(a_slot);
        let (_slot, b_merged) = self.merged_layers(&b, &b_image.0, &b_image.1).await?;
        let a_digests: Vec<_> = a_merged.layers.iter().map(|l| l.digest.clone()).collect();
        let b_digests: Vec<_> = b_merged.layers.iter().map(|l| l.digest.clone()).collect();
        let mut comparison = diff::compare(
            &Side { fs: &a_merged.fs, layers: &a_digests },
            &Side { fs: &b_merged.fs, layers: &b_digests },
        );
        // Same-sized files from different layers: their bytes decide, within a budget.
        let mut budget = Budget::DIFF;
        let mut unread = (0, None::<String>);
        let pending: Vec<Pending> = comparison.pending.clone();
        for p in pending {
            let row = comparison.rows[p.row];
            let (Some(x), Some(y)) = (row.a, row.b) else { continue };
            let files = [(&a_merged, x), (&b_merged, y)].map(|(merged, v)| FileRef {
                link: &merged.layers[v.layer as usize],
                index: v.entry.index,
                size: v.entry.entry.size,
            });
            let [fa, fb] = files;
            let hashed = match self.hashes.hash(&self.layers, fa, &mut budget).await {
                Ok(ha) => self.hashes.hash(&self.layers, fb, &mut budget).await.map(|hb| ha == hb),
                Err(e) => Err(e),
            };
            match hashed {
                Ok(same) => comparison.settle(p, Some(same)),
                Err(why) => {
                    comparison.settle(p, None);
                    unread.0 += 1;
                    unread.1.get_or_insert_with(|| match why {
                        Unhashed::OverBudget => format!(
                            "a diff reads at most {} files and {} to compare bytes",
                            Budget::DIFF.files,
                            pages::human_size(Budget::DIFF.bytes)
                        ),
                        Unhashed::Failed(e) => e.message().to_owned(),
                    });
                }
            }
        }
        let summary = comparison.layers.clone();
        let rows = comparison.finish();
        if page > pages::diff_pages(rows.len()) {
            return Err(Error::not_found(format!("the diff has no page {page}")));
        }
        let view = DiffView {
            a: DiffSide { reference: &a, layers: &a_merged.layers },
            b: DiffSide { reference: &b, layers: &b_merged.layers },
            platform_note: platform.map(|p| format!("Compared as {p}, the platform both images were asked for.")),
            layers: &summary,
            rows: &rows,
            unread: unread.1.map(|why| (unread.0, why)),
            page,
        };
        Ok(answer(format, || pages::diff(&view), || api::diff(&view)))
    }

    /// The image manifest `reference` names, or its `platform`'s from an index, with the
    /// name that manifest is reached by.
    async fn platform_image(
        &self,
        reference: &ImageReference,
        fetched: &FetchedManifest,
        platform: Option<&Platform>,
    ) -> Result<(ImageReference, (Digest, ImageManifest)), Error> {
        match (&fetched.manifest, platform) {
            (Manifest::Image(manifest), _) => Ok((reference.clone(), (fetched.digest.clone(), manifest.clone()))),
            (Manifest::Index(index), Some(platform)) => {
                let descriptor = find(index, platform)
                    .ok_or_else(|| Error::not_found(format!("{reference} has no {platform} image")))?;
                let by_digest = reference.with_digest(descriptor.digest.clone());
                let fetched = self.registry.manifest(&by_digest).await?;
                match &fetched.manifest {
                    Manifest::Image(manifest) => Ok((by_digest, (fetched.digest.clone(), manifest.clone()))),
                    Manifest::Index(_) => Err(Error::bad_gateway(format!("{by_digest} is an index inside an index"))),
                }
            }
            (Manifest::Index(_), None) => Err(Error::bad_request(format!("{reference} is an index: add &platform="))),
        }
    }
}

/// The required-or-absent image parameter `name`.
fn reference(pairs: &[(String, String)], name: &str) -> Result<Option<ImageReference>, Error> {
    match query::get(pairs, name).map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => Ok(Some(text.parse()?)),
        None => Ok(None),
    }
}

/// Which platform to compare by, when either side is an index; see the module docs.
fn choose_platform(a: &Manifest, b: &Manifest, wanted: Option<&str>) -> Result<Option<Platform>, Error> {
    let platforms = |m: &Manifest| match m {
        Manifest::Index(index) => Some(runnable(index)),
        Manifest::Image(_) => None,
    };
    let (pa, pb) = (platforms(a), platforms(b));
    if pa.is_none() && pb.is_none() {
        return Ok(None);
    }
    if let Some(wanted) = wanted {
        let found = pa.iter().chain(pb.iter()).flatten().find(|p| p.to_string() == wanted);
        return found.cloned().map(Some).ok_or_else(|| Error::not_found(format!("no image for platform {wanted}")));
    }
    let both: Vec<Platform> = match (&pa, &pb) {
        (Some(x), Some(y)) => x.iter().filter(|p| y.contains(p)).cloned().collect(),
        (Some(x), None) | (None, Some(x)) => x.clone(),
        (None, None) => Vec::new(),
    };
    let amd64 = both.iter().find(|p| p.os == "linux" && p.architecture == "amd64" && p.variant.is_none());
    amd64
        .or(both.first())
        .cloned()
        .map(Some)
        .ok_or_else(|| Error::bad_request("the two indexes share no platform: add &platform="))
}

/// An index's platforms that are images to run (attestations say `unknown/unknown`).
fn runnable(index: &ImageIndex) -> Vec<Platform> {
    index.manifests.iter().filter_map(|d| d.platform.clone()).filter(|p| p.os != "unknown").collect()
}

/// The index entry for `platform`.
fn find<'a>(index: &'a ImageIndex, platform: &Platform) -> Option<&'a Descriptor> {
    index.manifests.iter().find(|d| d.platform.as_ref() == Some(platform))
}
