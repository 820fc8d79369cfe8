//! The catalog's pages: the search form with what the catalog holds, a page of entries
//! found by name (each with the images that ship it and its fate in each), and the
//! images that ship one layer.
//!
//! Every link goes to the existing pages (a file's preview, its download, the merged
//! view, an image's page), so opening a hit asks the registry as those pages always do:
//! the catalog lists names, it never serves a file.

use askama::Template;

use super::text::{display_path, human_size};
use super::{render, Frame};
use crate::catalog::search::{Hit, HitPage, LayerUsage, NameSearch, HITS_PER_PAGE};
use crate::catalog::Totals;
use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::layer::entry::{mode_string, Kind};
use crate::layer::link::{Here, LayerPath};
use crate::query::encode;
use crate::reference::ImageReference;

/// Where one image ships a hit, with links into it.
struct ImageCell {
    name: String,
    tags: String,
    image_href: String,
    layer: u32,
    fate: String,
    /// Not present: the page marks it.
    gone: bool,
    preview: Option<String>,
    save: Option<String>,
    merged: Option<String>,
}

/// One entry found.
struct HitRow {
    path: String,
    mode: String,
    size: String,
    bytes: u64,
    link: String,
    layer_digest: String,
    layer_short: String,
    layer_href: String,
    images: Vec<ImageCell>,
    /// Images beyond those listed.
    more_images: u64,
}

#[derive(Template)]
#[template(path = "search.html", config = "src/pages/askama.toml")]
struct SearchPage {
    frame: Frame,
    q: String,
    totals: Option<Totals>,
    /// The hits, when a search was made.
    rows: Option<Vec<HitRow>>,
    per_page: usize,
    first: Option<String>,
    next: Option<String>,
}

/// One image that ships a layer.
struct ImageLine {
    name: String,
    image_href: String,
    tags: Vec<(String, String)>,
    platform: String,
    created: String,
    layer: String,
    manifest_digest: String,
}

#[derive(Template)]
#[template(path = "search_layer.html", config = "src/pages/askama.toml")]
struct LayerPage {
    frame: Frame,
    digest: String,
    listed: bool,
    size: String,
    media_type: String,
    entries: u64,
    complete: bool,
    sources: Vec<(String, String)>,
    images: Vec<ImageLine>,
    image_count: u64,
}

/// `search` without a query: the form, and how much the catalog holds.
pub fn search_home(totals: Totals) -> String {
    render(&SearchPage {
        frame: Frame { title: "search".to_owned(), image: String::new(), command: None, trail: Vec::new() },
        q: String::new(),
        totals: Some(totals),
        rows: None,
        per_page: HITS_PER_PAGE,
        first: None,
        next: None,
    })
}

/// `search?q=…`: one page of hits, after row `after` (the first page without it).
pub fn search_hits(search: &NameSearch, after: Option<i64>, page: &HitPage) -> String {
    let q = search.text();
    let list = |after: Option<i64>| {
        let after = after.map_or(String::new(), |a| format!("&after={a}"));
        format!("./search?q={}{after}", encode(&q))
    };
    render(&SearchPage {
        frame: Frame { title: format!("search {q}"), image: String::new(), command: None, trail: Vec::new() },
        rows: Some(page.hits.iter().map(hit_row).collect()),
        totals: None,
        per_page: HITS_PER_PAGE,
        first: after.map(|_| list(None)),
        next: page.next.map(|n| list(Some(n))),
        q,
    })
}

/// `search?layer=D`: the layer, and every image the catalog knows that ships it.
pub fn search_layer(digest: &Digest, usage: &LayerUsage) -> String {
    let here = Here::root();
    let images = usage
        .images
        .iter()
        .map(|image| {
            let at = image.layers.iter().rposition(|l| l.digest == digest.as_str()).map_or(0, |i| i + 1);
            ImageLine {
                name: format!("{}/{}", image.registry, image.repository),
                image_href: image.reference().map_or_else(String::new, |r| here.image_of(&r)),
                tags: image
                    .tags
                    .iter()
                    .map(|tag| {
                        (
                            tag.clone(),
                            format!("./?image={}", encode(&format!("{}/{}:{tag}", image.registry, image.repository))),
                        )
                    })
                    .collect(),
                platform: image.platform.clone().unwrap_or_default(),
                created: image.created.clone().unwrap_or_default(),
                layer: format!("{at} of {}", image.layers.len()),
                manifest_digest: image.manifest_digest.clone(),
            }
        })
        .collect();
    let layer = usage.layer.as_ref();
    render(&LayerPage {
        frame: Frame {
            title: format!("layer {}", short(digest.as_str())),
            image: String::new(),
            command: None,
            trail: Vec::new(),
        },
        digest: digest.to_string(),
        listed: layer.is_some(),
        size: layer.map_or_else(String::new, |l| human_size(l.size)),
        media_type: layer.map_or_else(String::new, |l| l.media_type.clone()),
        entries: layer.map_or(0, |l| l.entries),
        complete: layer.is_none_or(|l| l.complete),
        sources: layer
            .map(|l| {
                l.sources
                    .iter()
                    .map(|s| {
                        let href =
                            s.image.parse::<ImageReference>().map_or_else(|_| String::new(), |r| here.image_of(&r));
                        (format!("{}/{}", s.registry, s.repository), href)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        images,
        image_count: usage.image_count,
    })
}

/// `sha256:0123456789ab`.
pub(super) fn short(digest: &str) -> String {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("", digest));
    format!("{algorithm}:{}", &hex[..hex.len().min(12)])
}

fn hit_row(hit: &Hit) -> HitRow {
    let here = Here::root();
    let e = &hit.entry;
    let path = LayerPath::from_clean(&e.path);
    let dir = e.kind == Kind::Dir;
    let digest: Option<Digest> = e.layer.parse().ok();
    let link_in = |image: ImageReference, layer: u32| {
        digest.clone().map(|digest| DownloadLink { image, digest, layer, media_type: e.media_type.clone() })
    };
    let mut images: Vec<ImageCell> = hit
        .images
        .iter()
        .map(|seen| {
            let reference = seen.image.reference();
            let link = reference.clone().and_then(|r| link_in(r, seen.layer));
            ImageCell {
                name: format!("{}/{}", seen.image.registry, seen.image.repository),
                tags: seen.image.tags.join(", "),
                image_href: reference.as_ref().map_or_else(String::new, |r| here.image_of(r)),
                layer: seen.layer,
                fate: seen.fate.describe(),
                gone: seen.fate != crate::catalog::fate::Fate::Present,
                preview: link.as_ref().map(|l| here.fs(l, &path, dir)),
                save: link.as_ref().filter(|_| e.kind.has_content()).map(|l| here.save(l, &path)),
                merged: reference.as_ref().map(|r| here.merged(r, &path, dir)),
            }
        })
        .collect();
    if images.is_empty() {
        // A layer listed from a page no image page went with: link through where it was read.
        images = hit
            .sources
            .iter()
            .map(|source| {
                let link = source.image.parse().ok().and_then(|r| link_in(r, source.layer));
                ImageCell {
                    name: format!("{}/{}", source.registry, source.repository),
                    tags: String::new(),
                    image_href: link.as_ref().map_or_else(String::new, |l| here.image(l)),
                    layer: source.layer,
                    fate: "image not catalogued".to_owned(),
                    gone: false,
                    preview: link.as_ref().map(|l| here.fs(l, &path, dir)),
                    save: link.as_ref().filter(|_| e.kind.has_content()).map(|l| here.save(l, &path)),
                    merged: None,
                }
            })
            .collect();
    }
    HitRow {
        path: display_path(&e.path),
        mode: mode_string(e.kind, e.mode),
        size: human_size(e.size),
        bytes: e.size,
        link: e.link.clone(),
        layer_short: short(&e.layer),
        layer_href: format!("./search?layer={}", encode(&e.layer)),
        layer_digest: e.layer.clone(),
        more_images: hit.image_count.saturating_sub(hit.images.len() as u64),
        images,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fate::Fate;
    use crate::catalog::search::HitImage;
    use crate::catalog::{ImageLayer, ImageRow, NameHit};
    use std::sync::Arc;

    const LAYER: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const MANIFEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image() -> ImageRow {
        ImageRow {
            registry: "127.0.0.1:5000".into(),
            repository: "team/app".into(),
            manifest_digest: MANIFEST.into(),
            config_digest: MANIFEST.into(),
            platform: Some("linux/amd64".into()),
            created: None,
            tags: vec!["v1".into()],
            layers: vec![ImageLayer {
                digest: LAYER.into(),
                size: 1,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            }],
        }
    }

    #[test]
    fn a_hit_links_to_its_preview_save_and_merged_view_and_says_its_fate() {
        let entry = NameHit {
            id: 7,
            layer: LAYER.into(),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            path: b"etc/<secret>.key".to_vec(),
            link: String::new(),
            size: 27,
            mode: 0o600,
            kind: Kind::File,
        };
        let hit = Hit {
            entry,
            images: vec![HitImage { image: Arc::new(image()), layer: 1, fate: Fate::DeletedBy(2) }],
            image_count: 3,
            sources: Vec::new(),
        };
        let search = NameSearch::parse("secret").unwrap();
        let html = search_hits(&search, None, &HitPage { hits: vec![hit], next: Some(7) });
        let image = encode(&format!("127.0.0.1:5000/team/app:v1@{MANIFEST}"));
        assert!(html.contains(&format!("href=\"./fs/etc/%3Csecret%3E.key?image={image}&amp;digest=")), "{html}");
        assert!(html.contains(&format!("href=\"./save/etc/%3Csecret%3E.key?image={image}")), "{html}");
        assert!(html.contains(&format!("href=\"./layers/etc/%3Csecret%3E.key?image={image}\"")), "{html}");
        assert!(html.contains("deleted by layer 2"), "{html}");
        assert!(html.contains("/etc/&lt;secret&gt;.key"), "{html}");
        assert!(!html.contains("<secret>"), "{html}");
        assert!(html.contains("and 2 more images"), "{html}");
        assert!(html.contains("href=\"./search?q=secret&amp;after=7\" rel=\"next\""), "{html}");
    }

    #[test]
    fn a_layer_page_lists_every_image_and_tag() {
        let digest: Digest = LAYER.parse().unwrap();
        let mut other = image();
        other.repository = "team/other".into();
        other.tags = vec!["a".into(), "b".into()];
        let usage = LayerUsage { layer: None, images: vec![image(), other], image_count: 2 };
        let html = search_layer(&digest, &usage);
        for needle in ["127.0.0.1:5000/team/app", "127.0.0.1:5000/team/other", ">v1</a>", ">a</a>", ">b</a>", "1 of 1"]
        {
            assert!(html.contains(needle), "{needle} in {html}");
        }
    }
}
