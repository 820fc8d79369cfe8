//! Searching the catalog: a page of entries whose path matches, each with the images
//! that ship its layer and its fate in each; every image that ships one layer; and every
//! secret found in a catalogued layer.
//!
//! The database narrows by trigram; every candidate is then checked with the same
//! [`Search`] the per-layer search uses, so `^`, case and non-ASCII text mean the same
//! on every page and with either backend. A page is [`HITS_PER_PAGE`] hits in row order,
//! and the next one starts after the last row looked at (not an offset: deep pages cost
//! the same as the first).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::fate::{deciding_paths, fate, Fate};
use super::{
    path_key, FindingKey, ImageRow, LayerRow, NameHit, NameQuery, Source, Store, StoreError, StoredFinding,
    MIN_NEEDLE_CHARS,
};
use crate::image::search::Search;

/// Hits on one page.
pub const HITS_PER_PAGE: usize = 100;
/// Images listed (with a fate each) under one hit; the layer's own page lists them all.
pub const IMAGES_PER_HIT: usize = 20;
/// Images listed on a layer's page at most.
pub const IMAGES_PER_LAYER: usize = 1_000;
/// Candidates asked of the database at once.
const CANDIDATE_BATCH: usize = 500;
/// Batches one page looks through at most before it offers "more" instead: a search
/// whose candidates mostly fail the exact check stays bounded per page.
const MAX_BATCHES: usize = 20;

/// A name search, checked.
#[derive(Clone, Debug)]
pub struct NameSearch {
    query: NameQuery,
    exact: Search,
}

impl NameSearch {
    /// Reads `q`: a path substring in any case, or with a leading `^`, a prefix.
    pub fn parse(q: &str) -> Result<NameSearch, String> {
        let exact = Search::parse(q).ok_or("type part of a path to search for")?;
        if exact.needle().chars().count() < MIN_NEEDLE_CHARS {
            return Err(format!(
                "search for at least {MIN_NEEDLE_CHARS} characters: the catalog finds names by their trigrams"
            ));
        }
        let query = NameQuery { needle: exact.needle().to_owned(), anchored: exact.anchored() };
        Ok(NameSearch { query, exact })
    }

    /// The search as typed back into the box.
    pub fn text(&self) -> String {
        self.exact.text()
    }
}

/// One image's view of a hit.
#[derive(Clone, Debug)]
pub struct HitImage {
    /// The image.
    pub image: Arc<ImageRow>,
    /// The hit's layer's number in it, from 1 (its last place, if listed twice).
    pub layer: u32,
    /// What became of the entry there.
    pub fate: Fate,
}

/// An entry found, with where it ships.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The entry.
    pub entry: NameHit,
    /// Images that ship its layer, up to [`IMAGES_PER_HIT`].
    pub images: Vec<HitImage>,
    /// How many images ship its layer in all.
    pub image_count: u64,
    /// Where its layer was read, for a layer no image page has listed.
    pub sources: Vec<Source>,
}

/// One page of a name search.
#[derive(Clone, Debug)]
pub struct HitPage {
    /// The hits, in row order.
    pub hits: Vec<Hit>,
    /// Where the next page starts, when there may be one.
    pub next: Option<i64>,
}

/// The page of hits for `search` after row `after`.
pub fn find(store: &mut dyn Store, search: &NameSearch, after: i64) -> Result<HitPage, StoreError> {
    let mut found: Vec<NameHit> = Vec::new();
    let mut cursor = after;
    let mut more = false;
    'batches: for batch in 0..MAX_BATCHES {
        let candidates = store.find_names(&search.query, cursor, CANDIDATE_BATCH)?;
        let exhausted = candidates.len() < CANDIDATE_BATCH;
        for candidate in candidates {
            if found.len() == HITS_PER_PAGE {
                more = true;
                break 'batches;
            }
            cursor = candidate.id;
            if search.exact.matches(&candidate.path) {
                found.push(candidate);
            }
        }
        if exhausted {
            break;
        }
        more = batch + 1 == MAX_BATCHES;
    }
    let next = more.then_some(cursor);

    let mut images_of: HashMap<String, (Vec<Arc<ImageRow>>, u64)> = HashMap::new();
    let mut sources_of: HashMap<String, Vec<Source>> = HashMap::new();
    let mut hits = Vec::with_capacity(found.len());
    for entry in found {
        if !images_of.contains_key(&entry.layer) {
            let (images, total) = store.images_with_layer(&entry.layer, IMAGES_PER_HIT)?;
            images_of.insert(entry.layer.clone(), (images.into_iter().map(Arc::new).collect(), total));
        }
        let (images, image_count) = images_of[&entry.layer].clone();
        if images.is_empty() && !sources_of.contains_key(&entry.layer) {
            let sources = store.layer(&entry.layer)?.map(|l| l.sources).unwrap_or_default();
            sources_of.insert(entry.layer.clone(), sources);
        }
        let images = fates(store, &entry.layer, &entry.path, &images)?;
        let sources = sources_of.get(&entry.layer).cloned().unwrap_or_default();
        hits.push(Hit { entry, images, image_count, sources });
    }
    Ok(HitPage { hits, next })
}

/// The fate of the entry at `path` of the layer `layer` in each of `images`: one lookup
/// of the paths that decide it, in the layers that come after it in any of them.
fn fates(
    store: &mut dyn Store,
    layer: &str,
    path: &[u8],
    images: &[Arc<ImageRow>],
) -> Result<Vec<HitImage>, StoreError> {
    let placed: Vec<(Arc<ImageRow>, u32)> = images
        .iter()
        .filter_map(|image| {
            let at = image.layers.iter().rposition(|l| l.digest == layer)?;
            Some((image.clone(), at as u32 + 1))
        })
        .collect();
    let later: HashSet<&str> =
        placed.iter().flat_map(|(image, at)| image.layers[*at as usize..].iter().map(|l| l.digest.as_str())).collect();
    let later: Vec<String> = later.into_iter().map(str::to_owned).collect();
    let paths = deciding_paths(path);
    let keys: Vec<i64> = paths.iter().map(|p| path_key(p)).collect();
    let rows = store.entries_at(&later, &keys)?;
    Ok(placed
        .into_iter()
        .map(|(image, at)| {
            // Each row, at every later place its layer has in this image.
            let seen: Vec<(u32, &[u8], crate::layer::entry::Kind)> = image
                .layers
                .iter()
                .enumerate()
                .skip(at as usize)
                .flat_map(|(i, layer)| {
                    rows.iter()
                        .filter(move |r| r.layer == layer.digest)
                        .map(move |r| (i as u32 + 1, &r.path[..], r.kind))
                })
                .collect();
            let fate = fate(path, at, &seen);
            HitImage { image, layer: at, fate }
        })
        .collect())
}

/// Findings a page of `/search?secrets=1` lists.
pub const FINDINGS_PER_PAGE: usize = 100;

/// A stored finding, with the images that ship its layer and its fate in each.
#[derive(Clone, Debug)]
pub struct SecretHit {
    /// The finding and its layer.
    pub finding: StoredFinding,
    /// Images that ship its layer, up to [`IMAGES_PER_HIT`].
    pub images: Vec<HitImage>,
    /// How many images ship its layer in all.
    pub image_count: u64,
}

/// One page of every finding in the catalog.
#[derive(Clone, Debug)]
pub struct SecretPage {
    /// The findings, by layer digest and place.
    pub hits: Vec<SecretHit>,
    /// Where the next page starts, when there may be one.
    pub next: Option<FindingKey>,
}

/// The page of stored findings after `after`, each with where it ships. Only layer
/// files' findings are stored (a config's are the image's, found on its `/secrets`).
pub fn secret_findings(store: &mut dyn Store, after: Option<&FindingKey>) -> Result<SecretPage, StoreError> {
    let mut rows = store.secret_findings(after, FINDINGS_PER_PAGE + 1)?;
    let more = rows.len() > FINDINGS_PER_PAGE;
    rows.truncate(FINDINGS_PER_PAGE);
    let next = more.then(|| rows.last().map(|r| r.key.clone())).flatten();
    let mut images_of: HashMap<String, (Vec<Arc<ImageRow>>, u64)> = HashMap::new();
    let mut hits = Vec::with_capacity(rows.len());
    for finding in rows {
        if !images_of.contains_key(&finding.key.layer) {
            let (images, total) = store.images_with_layer(&finding.key.layer, IMAGES_PER_HIT)?;
            images_of.insert(finding.key.layer.clone(), (images.into_iter().map(Arc::new).collect(), total));
        }
        let (images, image_count) = images_of[&finding.key.layer].clone();
        let images = fates(store, &finding.key.layer, finding.row.path.as_bytes(), &images)?;
        hits.push(SecretHit { finding, images, image_count });
    }
    Ok(SecretPage { hits, next })
}

/// Everything the catalog knows of one layer: itself (if its entries are in), and the
/// images that ship it, up to [`IMAGES_PER_LAYER`], with how many there are in all.
pub struct LayerUsage {
    /// The layer, when it has been listed.
    pub layer: Option<LayerRow>,
    /// Images whose manifests list it, most recently seen first.
    pub images: Vec<ImageRow>,
    /// How many images list it in all.
    pub image_count: u64,
}

/// The [`LayerUsage`] of `digest`.
pub fn layer_usage(store: &mut dyn Store, digest: &str) -> Result<LayerUsage, StoreError> {
    let layer = store.layer(digest)?;
    let (images, image_count) = store.images_with_layer(digest, IMAGES_PER_LAYER)?;
    Ok(LayerUsage { layer, images, image_count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_need_three_characters_and_keep_the_caret() {
        assert!(NameSearch::parse("  ").unwrap_err().contains("type part"));
        assert!(NameSearch::parse("id").unwrap_err().contains("at least 3"));
        assert!(NameSearch::parse("^/e").unwrap_err().contains("at least 3"));
        let s = NameSearch::parse("^/ETC/Pass").unwrap();
        assert_eq!(s.query, NameQuery { needle: "etc/pass".into(), anchored: true });
        assert_eq!(s.text(), "^etc/pass");
        assert_eq!(NameSearch::parse("äöü").unwrap().query.needle, "äöü");
    }
}
