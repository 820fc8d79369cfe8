//! The image's answers: its manifest with layers, history and referrers (or an index's
//! platforms), its config, its Dockerfile, and a repository's tags.

use serde_json::{json, Value};

use super::paged;
use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::error::Error;
use crate::explore::images::FetchedConfig;
use crate::image::dockerfile;
use crate::image::history::{self, Step};
use crate::layer::link::{Here, LayerPath};
use crate::manifest::config::{HistoryEntry, ImageConfig};
use crate::manifest::{FetchedManifest, ImageIndex, ImageManifest, Manifest};
use crate::pages::budget::{page_range, page_starts_by};
use crate::pages::{config_href, dockerfile_href, ImageExtras, LAYERS_PER_PAGE};
use crate::query::encode;
use crate::reference::{ImageReference, Repository};
use crate::registry::{Referrer, TagPage};

/// `/?image=REF`: the manifest as fetched, and its layers with the build steps that
/// made them (a page of them), its history, referrers; for an index, its platforms.
pub fn image(
    reference: &ImageReference,
    fetched: &FetchedManifest,
    data: &ImageExtras<'_>,
    page: usize,
) -> Result<Value, Error> {
    let here = Here::root();
    let mut v = json!({
        "reference": reference.to_string(),
        "digest": fetched.digest.to_string(),
        "media_type": fetched.media_type,
        "manifest": serde_json::from_slice::<Value>(&fetched.raw).unwrap_or(Value::Null),
        "tags": format!("./?repo={}", encode(&Repository::from(reference).to_string())),
        "referrers": referrers(reference, data.referrers),
        "pull_quota": data.quota.map(|q| json!({ "limit": q.limit, "remaining": q.remaining, "window_secs": q.window_secs })),
    });
    match &fetched.manifest {
        Manifest::Index(index) => {
            v["kind"] = "index".into();
            v["platforms"] = platforms(reference, index, |r| here.image_of(r));
            Ok(v)
        }
        Manifest::Image(manifest) => {
            v["kind"] = "image".into();
            v["config"] = json!({ "digest": manifest.config.digest.to_string(), "href": config_href(reference) });
            v["dockerfile"] = dockerfile_href(reference).into();
            v["merged"] = here.merged(reference, &LayerPath::root(), true).into();
            v["sizes"] = here.sizes(reference).into();
            v["secrets"] = json!({ "href": here.secrets(reference), "count": data.secrets });
            let (rows, pages) = layers(reference, manifest, data.config, page)?;
            v["layers"] = rows;
            let history_entries: &[HistoryEntry] = match data.config {
                Some(Ok(config)) => &config.history,
                _ => &[],
            };
            v["history"] = history_entries.iter().map(history_entry).collect::<Vec<_>>().into();
            if let Some(Err(e)) = data.config {
                v["config_error"] = e.message().into();
            }
            Ok(paged(v, page, pages, |p| format!("./?image={}&page={p}&format=json", encode(&reference.to_string()))))
        }
    }
}

/// A page of an image's layers, each with the step that made it, and how many pages.
fn layers(
    reference: &ImageReference,
    manifest: &ImageManifest,
    config: Option<Result<&ImageConfig, &Error>>,
    page: usize,
) -> Result<(Value, usize), Error> {
    let history = match config {
        Some(Ok(config)) => config.history.as_slice(),
        _ => &[],
    };
    let timeline = history::pair(&manifest.layers, history);
    let layers: Vec<_> = timeline
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Layer { index, layer, history } => Some((*index, *layer, *history)),
            Step::Empty(_) => None,
        })
        .collect();
    // A step's command can be long: rows cost what they hold, within a page's budget.
    let starts = page_starts_by(
        layers.iter().map(|(_, _, h)| 600 + 6 * h.and_then(|h| h.created_by.as_ref()).map_or(0, String::len)),
        LAYERS_PER_PAGE,
    );
    let shown = page_range(&starts, layers.len(), page)
        .ok_or_else(|| Error::not_found(format!("the layer table has no page {page}")))?;
    let here = Here::root();
    let rows = layers[shown]
        .iter()
        .map(|(index, layer, step)| {
            let link = DownloadLink {
                image: reference.clone(),
                digest: layer.digest.clone(),
                layer: *index as u32 + 1,
                media_type: layer.media_type.clone(),
            };
            json!({
                "number": link.layer,
                "digest": layer.digest.to_string(),
                "size": manifest.sizes_known.then_some(layer.size),
                "media_type": layer.media_type,
                "created_by": step.and_then(|h| h.created_by.clone()),
                "files": here.files(&link, 1),
                "browse": here.fs(&link, &LayerPath::root(), true),
                "download": here.download(&link),
                "file_name": link.file_name(),
            })
        })
        .collect::<Vec<_>>();
    Ok((rows.into(), starts.len()))
}

fn history_entry(h: &HistoryEntry) -> Value {
    json!({
        "created": h.created,
        "created_by": h.created_by,
        "comment": h.comment,
        "empty_layer": h.empty_layer,
    })
}

fn referrers(reference: &ImageReference, referrers: &[Referrer]) -> Value {
    let repo = Repository::from(reference);
    referrers
        .iter()
        .map(|r| match r {
            Referrer::Manifest { digest, artifact_type } => json!({
                "digest": digest.to_string(),
                "artifact_type": artifact_type,
                "href": format!("./?image={}", encode(&format!("{repo}@{digest}"))),
            }),
            Referrer::Tag(tag) => json!({ "tag": tag, "href": format!("./?image={}", encode(&repo.image_text(tag))) }),
        })
        .collect::<Vec<_>>()
        .into()
}

/// An index's platforms, each linked by `href` (to its image page, or a view of it).
pub fn platforms(reference: &ImageReference, index: &ImageIndex, href: impl Fn(&ImageReference) -> String) -> Value {
    index
        .manifests
        .iter()
        .map(|m| {
            json!({
                "platform": m.platform.as_ref().map(ToString::to_string),
                "digest": m.digest.to_string(),
                "media_type": m.media_type,
                "size": m.size,
                "href": href(&reference.with_digest(m.digest.clone())),
            })
        })
        .collect::<Vec<_>>()
        .into()
}

/// `/config?image=REF`: the config's digest and JSON as the registry serves it.
pub fn config(reference: &ImageReference, digest: &Digest, fetched: &FetchedConfig, from_manifest: bool) -> Value {
    json!({
        "reference": reference.to_string(),
        "digest": digest.to_string(),
        "from_manifest": from_manifest,
        "config": serde_json::from_slice::<Value>(&fetched.raw).unwrap_or(Value::Null),
    })
}

/// `/dockerfile?image=REF`: one instruction per history entry, with the layer it made.
pub fn dockerfile(reference: &ImageReference, manifest: &ImageManifest, config: &FetchedConfig) -> Value {
    let lines = dockerfile::rebuild(&config.config.history, manifest.layers.len());
    json!({
        "reference": reference.to_string(),
        "lines": lines
            .iter()
            .map(|l| json!({ "instruction": l.instruction, "layer": l.layer.map(|n| n + 1) }))
            .collect::<Vec<_>>(),
        "text": dockerfile::text(&lines),
    })
}

/// `/?repo=REPO`: a page of tags, each linked to its image.
pub fn tags(repo: &Repository, last: Option<&str>, page: &TagPage) -> Value {
    let name = repo.to_string();
    json!({
        "repository": name,
        "after": last,
        "tags": page
            .tags
            .iter()
            .map(|tag| json!({ "name": tag, "href": format!("./?image={}", encode(&repo.image_text(tag))) }))
            .collect::<Vec<_>>(),
        "next": page.next.as_deref().map(|next| format!("./?repo={}&last={}&format=json", encode(&name), encode(next))),
    })
}
