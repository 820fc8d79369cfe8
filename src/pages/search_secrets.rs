//! `/search?secrets=1`: every secret found in a catalogued layer, whatever image it was
//! scanned for, each with the images that ship its layer and what became of the file
//! in each (deleted and overwritten marked: what people believe they removed). Values
//! are masked, as everywhere; the preview link opens the file through its image, with
//! the access checks every page has.

use askama::Template;

use super::budget::shorten;
use super::{render, Frame};
use crate::catalog::fate::Fate;
use crate::catalog::search::{SecretPage, FINDINGS_PER_PAGE};
use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::layer::link::{Here, LayerPath};
use crate::query::encode;

/// One image that ships a finding's layer.
struct Shipped {
    name: String,
    tags: String,
    layer: u32,
    fate: String,
    gone: bool,
    preview: Option<String>,
}

struct FindingRow {
    rule: String,
    path: String,
    line: String,
    value: String,
    layer_href: String,
    layer_short: String,
    layer_digest: String,
    images: Vec<Shipped>,
    more_images: u64,
}

#[derive(Template)]
#[template(path = "search_secrets.html", config = "src/pages/askama.toml")]
struct SecretsPage {
    frame: Frame,
    rows: Vec<FindingRow>,
    per_page: usize,
    first: Option<String>,
    next: Option<String>,
}

/// A page of every stored finding; `after` says whether it is the first page.
pub fn search_secrets(page: &SecretPage, after: bool) -> String {
    render(&SecretsPage {
        frame: Frame {
            title: "secrets in the catalog".to_owned(),
            image: String::new(),
            command: None,
            trail: Vec::new(),
        },
        rows: page.hits.iter().map(row).collect(),
        per_page: FINDINGS_PER_PAGE,
        first: after.then(|| "./search?secrets=1".to_owned()),
        next: page
            .next
            .as_ref()
            .map(|k| format!("./search?secrets=1&after_layer={}&after={}", encode(&k.layer), k.idx)),
    })
}

fn row(hit: &crate::catalog::search::SecretHit) -> FindingRow {
    let f = &hit.finding;
    let digest: Option<Digest> = f.key.layer.parse().ok();
    let path = LayerPath::from_clean(f.row.path.as_bytes());
    let images = hit
        .images
        .iter()
        .map(|seen| {
            let link = seen.image.reference().zip(digest.clone()).map(|(image, digest)| DownloadLink {
                image,
                digest,
                layer: seen.layer,
                media_type: seen.image.layer_media_type(seen.layer).unwrap_or_default().to_owned(),
            });
            Shipped {
                name: format!("{}/{}", seen.image.registry, seen.image.repository),
                tags: seen.image.tags.join(", "),
                layer: seen.layer,
                fate: seen.fate.describe(),
                gone: seen.fate != Fate::Present,
                preview: link.map(|l| Here::root().fs(&l, &path, false)),
            }
        })
        .collect();
    FindingRow {
        rule: f.row.rule.clone(),
        path: format!("/{}", shorten(&f.row.path)),
        line: if f.row.line == 0 { "its name".to_owned() } else { f.row.line.to_string() },
        value: if f.row.line == 0 { "(the file's name)".to_owned() } else { f.row.value.to_string() },
        layer_href: format!("./search?layer={}", encode(&f.key.layer)),
        layer_short: super::search::short(&f.key.layer),
        layer_digest: f.key.layer.clone(),
        more_images: hit.image_count.saturating_sub(hit.images.len() as u64),
        images,
    }
}
