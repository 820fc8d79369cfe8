//! Scanning one image for secrets: its layers' files, read through their indexes within
//! a byte budget, and its config; each finding placed (layer, path, line) and given its
//! fate in the merged filesystem.
//!
//! Danger first: every file read is a `Range` read against the registry. So:
//! - a layer scanned before (its [`LayerSecrets`] handed in, from the catalog) reads
//!   nothing: its stored findings are placed in this image as they are;
//! - the layers not scanned yet share one budget ([`plan::IMAGE_BUDGET`] bytes,
//!   [`plan::MAX_FILES`] files), [`READS_AT_ONCE`] files read at a time, each at most a
//!   preview's 64 KiB, through the same slots as a preview;
//! - a layer whose files the budget (or a failed read, or the 64 KiB cap) left unread
//!   is marked incomplete, and the page says so.
//!
//! Values leave only as [`Masked`]; nothing here logs a value. The caller records each
//! newly scanned layer in the catalog (this module does not reach the catalog, which
//! sits above the explorer).

use std::collections::HashMap;
use std::sync::Arc;

use crate::download::DownloadLink;
use crate::error::Error;
use crate::explore::layers::{ByIndex, Inspector};
use crate::image::merged::{Fate, MergedFs};
use crate::layer::entry::Kind;
use crate::manifest::config::ImageConfig;
use crate::secrets::plan::{self, Candidate};
use crate::secrets::{name_rule, scan_bytes, scan_config, ConfigPlace, LayerSecrets, Masked, SecretRow};

/// Files read at once for one image scan.
pub const READS_AT_ONCE: usize = 4;

/// Where a finding is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// In a file: its layer (from 0), its path in the layer, its line (0: its name).
    File { layer: u32, path: String, line: u32 },
    /// In the config's `Env`.
    Env { name: String },
    /// In the config's `Labels`.
    Label { key: String },
    /// In a history step's `created_by` (from 0), and the layer it made (from 0), if any.
    History { step: usize, layer: Option<u32> },
}

/// One finding in the image.
#[derive(Clone, Debug)]
pub struct Placed {
    /// The rule's id.
    pub rule: String,
    /// Where.
    pub place: Place,
    /// The value, masked; `None` when the file's name is the finding.
    pub value: Option<Masked>,
    /// What became of the file (`Visible` for the config).
    pub fate: Fate,
}

impl Placed {
    /// Whether a later layer deleted or overwrote where it is.
    pub fn hidden(&self) -> bool {
        self.fate.hidden_by().is_some()
    }
}

/// An image's scan.
#[derive(Debug, Default)]
pub struct ImageScan {
    /// Every finding: deleted or overwritten first, then by layer, path and line.
    pub findings: Vec<Placed>,
    /// Layers scanned now, by index (from 0), for the caller to record.
    pub scanned_now: Vec<(usize, LayerSecrets)>,
    /// Layers whose findings were handed in (scanned before).
    pub from_before: usize,
    /// Files read now.
    pub files_read: usize,
    /// Files left unread now because the budget ran out.
    pub left_out: usize,
    /// Layers (from 0) whose scan, now or before, left files unread.
    pub partial_layers: Vec<u32>,
    /// Files whose read failed now, and the first reason.
    pub failed: Option<(usize, String)>,
}

/// Scans the image whose layers are `links` (merged as `fs`) and whose config is
/// `config`; `before[i]` is layer `i`'s earlier scan, if any. See the module docs.
pub async fn scan_image(
    inspector: &Arc<Inspector>,
    links: &[DownloadLink],
    fs: &MergedFs,
    config: &ImageConfig,
    before: Vec<Option<LayerSecrets>>,
) -> ImageScan {
    let mut scan = ImageScan::default();
    let mut per_layer: Vec<Option<LayerSecrets>> = before;
    per_layer.resize(links.len(), None);
    scan.from_before = per_layer.iter().filter(|s| s.is_some()).count();
    let fresh: Vec<bool> = per_layer.iter().map(Option::is_none).collect();

    // The regular files of the layers not scanned yet.
    let mut candidates = Vec::new();
    for (l, listing) in fs.layers().iter().enumerate() {
        if !fresh.get(l).copied().unwrap_or(false) {
            continue;
        }
        for e in listing.entries() {
            if e.entry.kind != Kind::File || e.entry.size == 0 {
                continue;
            }
            // A name that is not text cannot be stored or matched by name; left alone.
            let Ok(path) = std::str::from_utf8(e.path()) else { continue };
            candidates.push(Candidate { layer: l, index: e.index, path, size: e.entry.size });
        }
    }
    let mut found: HashMap<usize, LayerSecrets> = (0..links.len())
        .filter(|l| fresh[*l])
        .map(|l| (l, LayerSecrets { complete: true, findings: Vec::new() }))
        .collect();
    for c in &candidates {
        if let Some(rule) = name_rule(c.path) {
            if let Some(layer) = found.get_mut(&c.layer) {
                layer.findings.push(SecretRow {
                    path: c.path.to_owned(),
                    line: 0,
                    rule: rule.to_owned(),
                    value: Masked::new(""),
                });
            }
        }
    }
    let plan = plan::plan(candidates.iter().copied(), plan::IMAGE_BUDGET);
    scan.left_out = plan.left_out.len();
    for c in &plan.left_out {
        if let Some(layer) = found.get_mut(&c.layer) {
            layer.complete = false;
        }
    }

    // Read the planned files, a few at a time.
    let mut reads = plan.reads.iter().map(|c| (c.layer, c.index, c.path.to_owned()));
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < READS_AT_ONCE {
            let Some((layer, index, path)) = reads.next() else { break };
            let (inspector, link) = (inspector.clone(), links[layer].clone());
            running.spawn(async move { (layer, path, read_file(&inspector, &link, index).await) });
        }
        let Some(joined) = running.join_next().await else { break };
        let Ok((layer, path, read)) = joined else { continue };
        let Some(secrets) = found.get_mut(&layer) else { continue };
        match read {
            Ok((bytes, complete)) => {
                scan.files_read += 1;
                secrets.complete &= complete;
                secrets.findings.extend(scan_bytes(&bytes).into_iter().map(|f| SecretRow {
                    path: path.clone(),
                    line: f.line,
                    rule: f.rule.to_owned(),
                    value: f.value,
                }));
            }
            Err(e) => {
                secrets.complete = false;
                let failed = scan.failed.get_or_insert_with(|| (0, e.message().to_owned()));
                failed.0 += 1;
            }
        }
    }
    for (l, mut secrets) in found {
        secrets.findings.sort_by(|a, b| (&a.path, a.line, &a.rule).cmp(&(&b.path, b.line, &b.rule)));
        per_layer[l] = Some(secrets.clone());
        scan.scanned_now.push((l, secrets));
    }
    scan.scanned_now.sort_by_key(|(l, _)| *l);

    // Place every layer's findings in this image.
    for (l, secrets) in per_layer.iter().enumerate() {
        let Some(secrets) = secrets else { continue };
        if !secrets.complete {
            scan.partial_layers.push(l as u32);
        }
        for row in &secrets.findings {
            scan.findings.push(Placed {
                rule: row.rule.clone(),
                fate: fate_of(fs, l as u32, row.path.as_bytes()),
                place: Place::File { layer: l as u32, path: row.path.clone(), line: row.line },
                value: (row.line > 0).then(|| row.value.clone()),
            });
        }
    }
    scan.findings.extend(config_findings(config));
    scan.findings.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    scan
}

/// How many findings [`scan_image`] would list without reading a file: when every layer
/// has an earlier scan in `before`, their findings and the config's; else `None`.
pub fn known_count(config: &ImageConfig, before: &[Option<LayerSecrets>]) -> Option<usize> {
    let stored = before.iter().map(|s| s.as_ref().map(|s| s.findings.len())).sum::<Option<usize>>()?;
    Some(stored + config_findings(config).len())
}

/// Deleted or overwritten first, then files by layer, path and line, then the config.
fn sort_key(p: &Placed) -> (bool, u32, &str, u32) {
    match &p.place {
        Place::File { layer, path, line } => (!p.hidden(), *layer, path.as_str(), *line),
        _ => (true, u32::MAX, "", 0),
    }
}

/// The fate of layer `layer`'s file at `path`; a path the view does not have (a stored
/// scan of a name that is no longer listed) counts as visible.
fn fate_of(fs: &MergedFs, layer: u32, path: &[u8]) -> Fate {
    fs.at(path)
        .into_iter()
        .find(|v| v.layer == layer && v.entry.entry.kind != Kind::Dir)
        .map_or(Fate::Visible, |v| v.fate)
}

/// The config's findings: `Env`, `Labels`, and each history step's `created_by`, with
/// the layer a step made.
fn config_findings(config: &ImageConfig) -> Vec<Placed> {
    let run = config.config.as_ref();
    let env = run.map(|r| r.env.iter().map(String::as_str)).into_iter().flatten();
    let labels = run.map(|r| r.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))).into_iter().flatten();
    let history = config.history.iter().map(|h| h.created_by.as_deref());
    // Steps that made a layer take the layers in order.
    let mut layer_of_step = Vec::with_capacity(config.history.len());
    let mut next = 0u32;
    for h in &config.history {
        layer_of_step.push((!h.empty_layer).then(|| {
            next += 1;
            next - 1
        }));
    }
    scan_config(env, labels, history)
        .into_iter()
        .map(|f| Placed {
            rule: f.finding.rule.to_owned(),
            place: match f.place {
                ConfigPlace::Env { name } => Place::Env { name },
                ConfigPlace::Label { key } => Place::Label { key },
                ConfigPlace::History { step } => {
                    Place::History { step, layer: layer_of_step.get(step).copied().flatten() }
                }
            },
            value: Some(f.finding.value),
            fate: Fate::Visible,
        })
        .collect()
}

/// The first 64 KiB of entry `index` of the layer `link` names, and whether that is all
/// of it.
async fn read_file(inspector: &Inspector, link: &DownloadLink, index: usize) -> Result<(Vec<u8>, bool), Error> {
    let layer = inspector.index(link).await?;
    match inspector.preview(link, &layer, index).await? {
        ByIndex::Read(preview) => Ok((preview.bytes, preview.complete)),
        // The index no longer matches the blob: its entry numbers mean nothing now.
        ByIndex::Stale => Err(Error::bad_gateway("the layer changed since it was listed")),
    }
}
