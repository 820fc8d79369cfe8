//! The secrets page (`/secrets?image=REF`): each finding with its rule, where it is
//! (layer, path, line, or the config), its fate, and its value masked; deleted and
//! overwritten files first, as the scan sorted them. A file's finding links to the
//! file's preview in its layer, which shows the file as every preview does.

use askama::Template;

use super::budget::shorten;
use super::{render, Frame};
use crate::download::DownloadLink;
use crate::explore::secrets::{ImageScan, Place, Placed};
use crate::image::merged::Fate;
use crate::layer::link::{Here, LayerPath};
use crate::reference::ImageReference;
use crate::secrets::plan::{FILE_CAP, IMAGE_BUDGET, MAX_FILES};

use super::text::{count, human_size};

struct FindingRow {
    rule: String,
    layer: String,
    place: String,
    line: String,
    fate: String,
    hidden: bool,
    value: String,
    preview: Option<String>,
}

#[derive(Template)]
#[template(path = "secrets.html", config = "src/pages/askama.toml")]
struct SecretsPage {
    frame: Frame,
    image: String,
    image_href: String,
    summary: String,
    reads_note: String,
    budget_note: Option<String>,
    failed_note: Option<String>,
    rows: Vec<FindingRow>,
}

/// The secrets page of `image`, whose layers are `layers`, as `scan` found them;
/// `catalog` says whether scans are kept for the next image.
pub fn secrets(image: &ImageReference, layers: &[DownloadLink], scan: &ImageScan, catalog: bool) -> String {
    let name = image.to_string();
    let hidden = scan.findings.iter().filter(|f| f.hidden()).count();
    let summary = match scan.findings.len() {
        0 => "No secrets found.".to_owned(),
        n => format!("{n} findings, {hidden} of them in files a later layer deleted or overwrote."),
    };
    let scanned_now = scan.scanned_now.len();
    let mut reads_note = format!(
        "{} read now for {}; {} scanned before",
        count(scan.files_read, "file"),
        count(scanned_now, "layer"),
        count(scan.from_before, "layer")
    );
    reads_note.push_str(if catalog { " (from the catalog)." } else { " (the catalog is off: nothing is kept)." });
    let budget_note = (!scan.partial_layers.is_empty()).then(|| {
        let numbers: Vec<String> = scan.partial_layers.iter().map(|l| (l + 1).to_string()).collect();
        format!(
            "The budget ran out: an image scan reads at most {} files and {} ({} of each file), and {} left \
             files unread in layer {}{}.",
            MAX_FILES,
            human_size(IMAGE_BUDGET),
            human_size(FILE_CAP),
            if scan.left_out > 0 {
                format!("this scan {} ", count(scan.left_out, "file"))
            } else {
                "a scan".to_owned()
            },
            numbers.join(", "),
            if scan.left_out > 0 { "" } else { " (scanned before)" }
        )
    });
    let failed_note = scan.failed.as_ref().map(|(n, why)| format!("{} could not be read: {why}.", count(*n, "file")));
    render(&SecretsPage {
        frame: Frame {
            title: format!("secrets in {name}"),
            image: name.clone(),
            command: Some(super::commands::secrets(image)),
            trail: super::breadcrumbs::image_page(Here::root(), image, "secrets", Here::root().secrets(image)),
        },
        image_href: Here::root().image_of(image),
        image: name,
        summary,
        reads_note,
        budget_note,
        failed_note,
        rows: scan.findings.iter().map(|f| row(f, layers)).collect(),
    })
}

fn row(f: &Placed, layers: &[DownloadLink]) -> FindingRow {
    let (layer, place, line, preview) = match &f.place {
        Place::File { layer, path, line } => {
            let preview = layers
                .get(*layer as usize)
                .map(|link| Here::root().fs(link, &LayerPath::from_clean(path.as_bytes()), false));
            let line = if *line == 0 { "its name".to_owned() } else { line.to_string() };
            ((layer + 1).to_string(), format!("/{}", shorten(path)), line, preview)
        }
        Place::Env { name } => (String::new(), format!("config Env {}", shorten(name)), String::new(), None),
        Place::Label { key } => (String::new(), format!("config label {}", shorten(key)), String::new(), None),
        Place::History { step, layer } => (
            layer.map(|l| (l + 1).to_string()).unwrap_or_default(),
            format!("config history step {}", step + 1),
            String::new(),
            None,
        ),
    };
    FindingRow {
        rule: f.rule.clone(),
        layer,
        place,
        line,
        fate: match f.fate {
            Fate::Deleted { by } => format!("deleted by layer {}", by + 1),
            Fate::Overwritten { by } => format!("overwritten by layer {}", by + 1),
            Fate::Visible | Fate::Marker => "present".to_owned(),
        },
        hidden: f.hidden(),
        value: f.value.as_ref().map_or_else(|| "(the file's name)".to_owned(), ToString::to_string),
        preview,
    }
}
