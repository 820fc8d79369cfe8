//! The pages that are not about one layer: the form, an image's layers (with the build
//! steps that made them and what refers to the image) or platforms, and errors.

use askama::Template;

use super::budget::{encoded_len, page_range, page_starts_by, shorten, shorten_to, shown_bound_to, MAX_SHOWN_CHARS};
use super::parts::PageNav;
use super::{human_size, render, Frame};
use crate::download::DownloadLink;
use crate::error::Error;
use crate::image::history::{self, Step};
use crate::layer::link::{Here, LayerPath};
use crate::manifest::config::ImageConfig;
use crate::manifest::{FetchedManifest, ImageIndex, ImageManifest, Manifest};
use crate::query::encode;
use crate::reference::{ImageReference, Repository};
use crate::registry::{PullQuota, Referrer};

#[derive(Template)]
#[template(path = "home.html", config = "src/pages/askama.toml")]
struct Home {
    frame: Frame,
}

/// `/` without an image: the form alone.
pub fn home() -> String {
    render(&Home {
        frame: Frame { title: "layerpipe".to_owned(), image: String::new(), command: None, trail: Vec::new() },
    })
}

#[derive(Template)]
#[template(path = "error.html", config = "src/pages/askama.toml")]
struct ErrorPage<'a> {
    frame: Frame,
    code: u16,
    reason: &'static str,
    message: &'a str,
    /// The tag list of the repository a missing tag was asked of: its link and name.
    tags: Option<(String, &'a str)>,
}

/// An error page: the status and the one-line reason.
pub fn error(e: &Error, image: &str) -> String {
    let status = e.status();
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("error"));
    render(&ErrorPage {
        frame: Frame {
            title,
            image: image.to_owned(),
            command: None,
            // A reference that parses gets its trail: a missing tag's page leads to its repository.
            trail: image.parse().map(|r| super::breadcrumbs::image(Here::root(), &r)).unwrap_or_default(),
        },
        code: status.as_u16(),
        reason: status.canonical_reason().unwrap_or(""),
        message: e.message(),
        tags: e.tags_of().map(|repository| (format!("./?repo={}", encode(repository)), repository)),
    })
}

/// What every image page starts with.
struct ImageHead {
    name: String,
    digest: String,
    media_type: String,
    /// The registry's pull quota for layerpipe's address, when its last answer stated it.
    quota: Option<QuotaLine>,
    /// The manifest's own JSON, its digests linked (`json.html`).
    json: Vec<super::json::Piece>,
    /// The repository's tag list, so a reader can step from one tag to its siblings.
    tags_href: String,
    /// An image's platform, `os/architecture`, as its config says.
    platform: Option<String>,
    /// The index the page was reached from (same repository): its page and name.
    index: Option<(String, String)>,
}

/// "Docker Hub: 87 of 100 pulls left for this address (per 6 h)".
struct QuotaLine {
    /// `Docker Hub` for docker.io, else the registry's host.
    registry: String,
    quota: PullQuota,
}

impl std::fmt::Display for QuotaLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let PullQuota { limit, remaining, window_secs } = self.quota;
        write!(f, "{}: {remaining} of {limit} pulls left for this address", self.registry)?;
        match window_secs {
            Some(secs) if secs % 3600 == 0 => write!(f, " (per {} h)", secs / 3600),
            Some(secs) => write!(f, " (per {secs} s)"),
            None => Ok(()),
        }
    }
}

/// What an image page shows besides its manifest.
pub struct ImageExtras<'a> {
    /// For an image manifest, its config (for the build steps) or why it could not be
    /// read; `None` for an index.
    pub config: Option<Result<&'a ImageConfig, &'a Error>>,
    /// What refers to the manifest: signatures, attestations, SBOMs.
    pub referrers: &'a [Referrer],
    /// The registry's pull quota for layerpipe's address, when its last answer stated it.
    pub quota: Option<PullQuota>,
    /// How many secrets `/secrets` finds, when every layer was scanned before (the
    /// catalog knows); `None` when a scan is still to be made.
    pub secrets: Option<usize>,
}

/// One row of the layer table: a layer and the step that made it, or a step that made
/// no layer (`layer` is `None`).
struct StepRow {
    layer: Option<LayerRow>,
    /// The build step, as a Dockerfile line; empty when unknown.
    step: String,
}

/// One referrer, linked to its manifest's page.
struct ReferrerRow {
    /// What it is: an artifact type, or what cosign's tag suffix means.
    kind: String,
    /// Its digest or tag.
    name: String,
    href: String,
}

/// One row of the layer table.
struct LayerRow {
    number: u32,
    size: u64,
    human: String,
    /// The layer's file list, by size.
    files: String,
    media_type: String,
    /// The layer's root folder.
    browse: String,
    digest: String,
    download: String,
    /// The file the download is saved as, named in the `[x]` link's title and aria-label.
    save_as: String,
}

#[derive(Template)]
#[template(path = "image_layers.html", config = "src/pages/askama.toml")]
struct ImageLayers {
    frame: Frame,
    head: ImageHead,
    config_href: String,
    config_digest: String,
    layer_count: usize,
    total: String,
    nav: Option<PageNav>,
    rows: Vec<StepRow>,
    /// Why the build steps are missing, when they are.
    history_note: Option<String>,
    referrers: Vec<ReferrerRow>,
    /// The merged filesystem and the sizes of the whole image.
    merged_href: String,
    sizes_href: String,
    dockerfile_href: String,
    /// The secrets page, and how many it lists when that is known without a scan.
    secrets_href: String,
    secrets_count: Option<usize>,
}

/// One row of an index's platform table.
struct PlatformRow {
    number: usize,
    href: String,
    platform: String,
    media_type: String,
    size: u64,
    human: String,
    digest: String,
}

#[derive(Template)]
#[template(path = "image_platforms.html", config = "src/pages/askama.toml")]
struct ImagePlatforms {
    frame: Frame,
    head: ImageHead,
    platforms: Vec<PlatformRow>,
    referrers: Vec<ReferrerRow>,
}

/// Most rows of an image's layer table on one page: a manifest of 45,000 layers makes
/// pages of about 1 MiB, not one of 42 MB.
pub const LAYERS_PER_PAGE: usize = 1_000;

/// Most characters of a build step in the layer table; a longer one loses its middle.
const MAX_STEP_CHARS: usize = 4_096;

/// The page for a fetched manifest: its layers, or for an index its platforms; with the
/// registry's pull quota when it stated one. The first page of a long layer table.
pub fn image(reference: &ImageReference, fetched: &FetchedManifest, extras: &ImageExtras<'_>) -> String {
    image_at(reference, fetched, extras, 1).unwrap_or_else(|e| error(&e, &reference.to_string()))
}

/// [`image`], page `page` (from 1) of the layer table: at most [`LAYERS_PER_PAGE`]
/// rows and the table budget; 404 past the last.
pub fn image_at(
    reference: &ImageReference,
    fetched: &FetchedManifest,
    extras: &ImageExtras<'_>,
    page: usize,
) -> Result<String, Error> {
    image_in(reference, fetched, extras, page, None)
}

/// [`image_at`] for a platform of `index` (the index page's links say which, `&index=`):
/// the page names its platform and links back. An index of another repository is
/// ignored, so a crafted link cannot send a reader elsewhere; whether the index lists
/// the manifest is not checked (that would cost a fetch), and a wrong one only leads
/// back to an index page that shows its own platforms.
pub fn image_in(
    reference: &ImageReference,
    fetched: &FetchedManifest,
    extras: &ImageExtras<'_>,
    page: usize,
    index: Option<&ImageReference>,
) -> Result<String, Error> {
    let name = reference.to_string();
    let frame = Frame {
        title: name.clone(),
        image: name.clone(),
        command: Some(super::commands::image(reference)),
        trail: super::breadcrumbs::image(Here::root(), reference),
    };
    let registry = match reference.registry() {
        crate::reference::DOCKER_HUB => "Docker Hub".to_owned(),
        host => host.to_owned(),
    };
    let quota = extras.quota.map(|quota| QuotaLine { registry, quota });
    let json = super::json::manifest(reference, fetched);
    let tags_href = format!("./?repo={}", encode(&Repository::from(reference).to_string()));
    let is_image = matches!(fetched.manifest, Manifest::Image(_));
    let platform = match extras.config {
        Some(Ok(config)) => match (&config.os, &config.architecture) {
            (Some(os), Some(arch)) => Some(format!("{os}/{arch}")),
            (os, arch) => os.clone().or(arch.clone()),
        },
        _ => None,
    };
    let index = index
        .filter(|index| is_image && Repository::from(*index) == Repository::from(reference))
        .map(|index| (Here::root().image_of(index), index.to_string()));
    let head = ImageHead {
        name,
        digest: fetched.digest.to_string(),
        media_type: fetched.media_type.clone(),
        quota,
        json,
        tags_href,
        platform,
        index,
    };
    let referrers = referrer_rows(reference, extras.referrers);
    Ok(match &fetched.manifest {
        Manifest::Image(manifest) => {
            let mut shown = layers(frame, head, reference, manifest, extras.config, referrers, page)?;
            shown.secrets_count = extras.secrets;
            render(&shown)
        }
        Manifest::Index(index) => render(&platforms(frame, head, reference, index, referrers)),
    })
}

/// The most bytes a row of the layer table takes (an upper bound, as
/// [`super::budget::row_cost`] is): its markup, three links to the layer (`href_bytes`
/// long at most), and its media type, digest and a step of `step_bytes`, escaped.
fn step_cost(href_bytes: usize, media_type: &str, step_bytes: usize) -> usize {
    const MARKUP: usize = 400;
    // The digest, `sha256:` and 64 hex digits or a little more, escaped as names are.
    const DIGEST: usize = 6 * 140;
    MARKUP
        .saturating_add(href_bytes.saturating_add(64).saturating_mul(3))
        .saturating_add(shown_bound_to(media_type.as_bytes(), MAX_SHOWN_CHARS))
        .saturating_add(DIGEST)
        .saturating_add(step_bytes.min(MAX_STEP_CHARS).saturating_mul(6).saturating_add(3))
}

/// The most bytes [`step_text`] makes of `entry`: it shortens the command, but for a
/// `RUN ` it may put in front.
fn step_len(entry: &crate::image::config::HistoryEntry) -> usize {
    entry.created_by.as_ref().or(entry.comment.as_ref()).map_or(0, String::len) + 4
}

/// The image's config page.
pub fn config_href(reference: &ImageReference) -> String {
    format!("./config?image={}", encode(&reference.to_string()))
}

/// The link to an image's Dockerfile, rebuilt from its history.
pub fn dockerfile_href(reference: &ImageReference) -> String {
    format!("./dockerfile?image={}", encode(&reference.to_string()))
}

fn layers(
    frame: Frame,
    head: ImageHead,
    reference: &ImageReference,
    manifest: &ImageManifest,
    config: Option<Result<&ImageConfig, &Error>>,
    referrers: Vec<ReferrerRow>,
    page: usize,
) -> Result<ImageLayers, Error> {
    let total = manifest.layers.iter().map(|l| l.size).fold(0, u64::saturating_add);
    let no_history = [];
    let (history, config_note) = match config {
        Some(Ok(config)) => (config.history.as_slice(), None),
        Some(Err(e)) => (
            &no_history[..],
            Some(format!("The image config could not be read ({}), so the build steps are not shown.", e.message())),
        ),
        None => (&no_history[..], None),
    };
    let timeline = history::pair(&manifest.layers, history);
    // Costs are taken from the manifest's own strings, without making a row: a page of
    // tens of thousands of layers allocates only the rows it shows.
    let image_bytes = encoded_len(reference.to_string().as_bytes());
    let starts = page_starts_by(
        timeline.steps.iter().map(|step| match step {
            Step::Layer { layer, history, .. } => {
                let href = image_bytes + encoded_len(layer.digest.as_str().as_bytes()) + 3 * layer.media_type.len();
                step_cost(href, &layer.media_type, history.map_or(0, step_len))
            }
            Step::Empty(entry) => step_cost(0, "", step_len(entry)),
        }),
        LAYERS_PER_PAGE,
    );
    let shown = page_range(&starts, timeline.steps.len(), page)
        .ok_or_else(|| Error::not_found(format!("the layer table has no page {page}")))?;
    let texts = |step: &Step<'_, _>| match step {
        Step::Layer { history, .. } => history.map(step_text).unwrap_or_default(),
        Step::Empty(entry) => step_text(entry),
    };
    let rows = timeline.steps[shown]
        .iter()
        .map(|step| match step {
            Step::Layer { index, layer, .. } => {
                // Made for the rows shown only, numbered as `layer_links` numbers them.
                let link = &DownloadLink {
                    image: reference.clone(),
                    digest: layer.digest.clone(),
                    layer: *index as u32 + 1,
                    media_type: layer.media_type.clone(),
                };
                // The size leads to the layer's files by size, the digest to its folders.
                let row = LayerRow {
                    number: link.layer,
                    size: layer.size,
                    human: if manifest.sizes_known { human_size(layer.size) } else { UNKNOWN_SIZE.to_owned() },
                    files: Here::root().files(link, 1),
                    media_type: shorten(&layer.media_type).into_owned(),
                    browse: Here::root().fs(link, &LayerPath::root(), true),
                    digest: layer.digest.to_string(),
                    download: link.href(),
                    save_as: link.file_name(),
                };
                StepRow { layer: Some(row), step: shorten_to(&texts(step), MAX_STEP_CHARS).into_owned() }
            }
            Step::Empty(_) => StepRow { layer: None, step: shorten_to(&texts(step), MAX_STEP_CHARS).into_owned() },
        })
        .collect();
    let image_href = format!("./?image={}", encode(&reference.to_string()));
    let nav =
        PageNav::new(page, starts.len(), |p| if p > 1 { format!("{image_href}&page={p}") } else { image_href.clone() });
    Ok(ImageLayers {
        frame,
        head,
        config_href: config_href(reference),
        config_digest: manifest.config.digest.to_string(),
        layer_count: manifest.layers.len(),
        total: if manifest.sizes_known { human_size(total) } else { UNKNOWN_SIZE.to_owned() },
        rows,
        history_note: config_note.or(timeline.mismatch),
        referrers,
        merged_href: Here::root().merged(reference, &LayerPath::root(), true),
        sizes_href: Here::root().sizes(reference),
        dockerfile_href: dockerfile_href(reference),
        nav,
        secrets_href: Here::root().secrets(reference),
        secrets_count: None,
    })
}

/// What a size reads when the manifest does not give it (schema 1).
const UNKNOWN_SIZE: &str = "?";

/// A history entry as a Dockerfile line; its comment when it has no command.
fn step_text(entry: &crate::manifest::config::HistoryEntry) -> String {
    match (&entry.created_by, &entry.comment) {
        (Some(created_by), _) => history::command(created_by),
        (None, Some(comment)) => comment.clone(),
        (None, None) => String::new(),
    }
}

/// The referrers, each linked to its manifest's page in the image's repository.
fn referrer_rows(reference: &ImageReference, referrers: &[Referrer]) -> Vec<ReferrerRow> {
    let repo = Repository::from(reference);
    referrers
        .iter()
        .map(|r| match r {
            Referrer::Manifest { digest, artifact_type } => ReferrerRow {
                kind: if artifact_type.is_empty() { "unknown type".to_owned() } else { artifact_type.clone() },
                name: digest.to_string(),
                href: format!("./?image={}", encode(&format!("{repo}@{digest}"))),
            },
            Referrer::Tag(tag) => ReferrerRow {
                kind: cosign_kind(tag).to_owned(),
                name: tag.clone(),
                href: format!("./?image={}", encode(&repo.image_text(tag))),
            },
        })
        .collect()
}

/// What cosign keeps under a tag with this suffix.
fn cosign_kind(tag: &str) -> &'static str {
    match tag.rsplit_once('.').map(|(_, suffix)| suffix) {
        Some("sig") => "signature (cosign)",
        Some("att") => "attestation (cosign)",
        Some("sbom") => "SBOM (cosign)",
        _ => "tag",
    }
}

fn platforms(
    frame: Frame,
    head: ImageHead,
    reference: &ImageReference,
    index: &ImageIndex,
    referrers: Vec<ReferrerRow>,
) -> ImagePlatforms {
    let platforms = index
        .manifests
        .iter()
        .enumerate()
        .map(|(i, entry)| PlatformRow {
            number: i + 1,
            href: Here::root().platform_of(reference, &entry.digest),
            platform: entry.platform.as_ref().map_or_else(|| "unknown platform".to_owned(), ToString::to_string),
            media_type: entry.media_type.clone(),
            size: entry.size,
            human: human_size(entry.size),
            digest: entry.digest.to_string(),
        })
        .collect();
    ImagePlatforms { frame, head, platforms, referrers }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest as if fetched, from its JSON.
    fn fetched(json: &str) -> FetchedManifest {
        let (media_type, manifest) = crate::manifest::parse(None, json.as_bytes()).unwrap();
        FetchedManifest {
            media_type,
            digest: crate::digest::Digest::of(crate::digest::Algorithm::Sha256, b""),
            manifest,
            raw: bytes::Bytes::from(json.to_owned()),
        }
    }

    /// No config (an index, or not asked) and no referrers.
    const NONE: ImageExtras<'static> = ImageExtras { config: None, referrers: &[], quota: None, secrets: None };

    #[test]
    fn layer_table_links_size_to_files_and_digest_to_folders() {
        let json = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1},
          "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":5}]}"#;
        let fetched = fetched(json);
        let html = image(&"a/b:c".parse().unwrap(), &fetched, &NONE);
        let q = "image=a%2Fb%3Ac&amp;digest=sha256%3A2222222222222222222222222222222222222222222222222222222222222222\
&amp;layer=1&amp;mt=application%2Fvnd.oci.image.layer.v1.tar%2Bgzip";
        assert!(html.contains(&format!("<a href=\"./files?{q}\">5 B</a>")), "{html}");
        assert!(html.contains(&format!("<a href=\"./fs/?{q}\">sha256:2222")), "{html}");
        assert!(html.contains("<a href=\"./config?image=a%2Fb%3Ac\">sha256:1111"), "{html}");
        // [x] keeps its text and says what it saves, for the pointer and for screen readers.
        let label = "download layer 1 as a-b-c-1.tar.gzip";
        assert!(html.contains(&format!("class=\"save\" title=\"{label}\" aria-label=\"{label}\">[x]</a>")), "{html}");
        // The image page leads back to the repository's tag list.
        assert!(html.contains("<a href=\"./?repo=a%2Fb\" id=\"tags-link\">"), "{html}");
        assert!(html.starts_with("<!doctype html>\n<html lang=\"en\"><head>"), "{html}");
        // It ends with the command that gets the same manifest from a shell.
        let command = "<p id=\"command\">The same from a shell: <code>crane manifest a/b:c</code></p>";
        assert!(html.ends_with(&format!("</pre>\n\n{command}</main></body></html>\n")), "{html}");
        // The manifest itself follows, its config digest a link to the config page.
        let config = "<a href=\"./config?image=a%2Fb%3Ac\">sha256:1111111111111111111111111111111111111111111111111111111111111111</a>";
        assert!(html.contains("<pre id=\"manifest-json\">{\n  &quot;config&quot;: {\n"), "{html}");
        assert!(html.contains(&format!("&quot;digest&quot;: &quot;{config}&quot;")), "{html}");
    }

    #[test]
    fn registry_strings_are_escaped() {
        let json = r#"{"schemaVersion":2,"mediaType":"<script>alert(1)</script>",
          "config":{"mediaType":"x","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1},
          "layers":[{"mediaType":"evil\"><img src=x onerror=alert(1)>","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":5}]}"#;
        let fetched = fetched(json);
        let html = image(&"a/b:c".parse().unwrap(), &fetched, &NONE);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("evil&quot;&gt;&lt;img src=x"), "{html}");
        assert_eq!(html.matches(">[x]</a>").count(), 1);
    }

    #[test]
    fn an_index_escapes_its_platforms_and_media_types() {
        let json = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
          {"mediaType":"<script>'x'</script>","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":7,
           "platform":{"architecture":"\"><script>","os":"linux"}}]}"#;
        let html = image(&"a/b:c".parse().unwrap(), &fetched(json), &NONE);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;&#39;x&#39;&lt;/script&gt;"), "{html}");
        assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{html}");
        assert!(html.contains("<a href=\"./?image=a%2Fb%3Ac%40sha256%3A3333"), "{html}");
    }

    const TWO_LAYERS: &str = r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1},
      "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":5},
                {"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":6}]}"#;

    fn config(history: &str) -> ImageConfig {
        crate::manifest::config::parse(format!(r#"{{"history":{history}}}"#).as_bytes()).unwrap()
    }

    /// The text of the `made by` cells, in order, with `-` before a step without a layer.
    fn steps(html: &str) -> Vec<String> {
        html.split("<tr")
            .skip(1)
            .filter_map(|row| {
                let step = row.split("<td class=\"step\"><code>").nth(1)?.split("</code>").next()?;
                Some(format!("{}{step}", if row.starts_with(" class=\"empty-layer\"") { "- " } else { "" }))
            })
            .collect()
    }

    #[test]
    fn build_steps_sit_beside_their_layers_and_empty_steps_between() {
        let config = config(
            r#"[{"created_by":"/bin/sh -c #(nop) ADD file:a in / "},{"created_by":"/bin/sh -c #(nop)  ENV A=<1>","empty_layer":true},
               {"created_by":"RUN |1 X=1 /bin/sh -c make # buildkit"},{"comment":"a comment only","empty_layer":true}]"#,
        );
        let extras = ImageExtras { config: Some(Ok(&config)), ..NONE };
        let html = image(&"a/b:c".parse().unwrap(), &fetched(TWO_LAYERS), &extras);
        assert_eq!(steps(&html), ["ADD file:a in /", "- ENV A=&lt;1&gt;", "RUN make", "- a comment only"], "{html}");
        assert_eq!(download_count(&html), 2);
        assert!(!html.contains("history-note"), "{html}");
        assert!(!html.contains("Referrers"), "{html}");
    }

    fn download_count(html: &str) -> usize {
        html.matches(">[x]</a>").count()
    }

    #[test]
    fn history_that_does_not_pair_up_is_said_and_left_out() {
        let config = config(r#"[{"created_by":"ADD a"},{"created_by":"ENV B=1","empty_layer":true}]"#);
        let extras = ImageExtras { config: Some(Ok(&config)), ..NONE };
        let html = image(&"a/b:c".parse().unwrap(), &fetched(TWO_LAYERS), &extras);
        assert!(
            html.contains("<p class=\"warn\" id=\"history-note\">The image config&#39;s history has 1 steps"),
            "{html}"
        );
        assert_eq!(steps(&html), ["", ""], "{html}");
        let failed = Error::bad_gateway("the registry answered 500");
        let extras = ImageExtras { config: Some(Err(&failed)), ..NONE };
        let html = image(&"a/b:c".parse().unwrap(), &fetched(TWO_LAYERS), &extras);
        assert!(html.contains("could not be read (the registry answered 500)"), "{html}");
        assert_eq!(download_count(&html), 2);
    }

    #[test]
    fn referrers_link_to_their_manifests() {
        let digest: crate::digest::Digest =
            "sha256:4444444444444444444444444444444444444444444444444444444444444444".parse().unwrap();
        let referrers = [
            Referrer::Manifest { digest, artifact_type: "application/spdx+json".into() },
            Referrer::Tag("sha256-abc.sig".into()),
        ];
        let extras = ImageExtras { referrers: &referrers, ..NONE };
        let html = image(&"r.io/a/b:c".parse().unwrap(), &fetched(TWO_LAYERS), &extras);
        assert!(html.contains("<h2 id=\"referrers-heading\">Referrers</h2>"), "{html}");
        assert!(
            html.contains(
                "<tr><td>application/spdx+json</td><td><code><a href=\"./?image=r.io%2Fa%2Fb%40sha256%3A4444"
            ),
            "{html}"
        );
        assert!(html.contains("<tr><td>signature (cosign)</td><td><code><a href=\"./?image=r.io%2Fa%2Fb%3Asha256-abc.sig\">sha256-abc.sig</a>"), "{html}");
    }

    #[test]
    fn unknown_sizes_read_as_a_question_mark() {
        let mut fetched = fetched(TWO_LAYERS);
        if let Manifest::Image(m) = &mut fetched.manifest {
            m.sizes_known = false;
        }
        let html = image(&"a/b:c".parse().unwrap(), &fetched, &NONE);
        assert!(html.contains("<p>2 layers, ? in all.</p>"), "{html}");
        assert!(html.contains("\">?</a></td>"), "{html}");
    }

    #[test]
    fn the_quota_line_names_docker_hub_and_the_window() {
        let json = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        let quota = PullQuota { limit: 100, remaining: 87, window_secs: Some(21600) };
        let html = image(&"ubuntu".parse().unwrap(), &fetched(json), &ImageExtras { quota: Some(quota), ..NONE });
        assert!(
            html.contains("<dd id=\"pull-quota\">Docker Hub: 87 of 100 pulls left for this address (per 6 h)</dd>"),
            "{html}"
        );
        let quota = PullQuota { limit: 5, remaining: 0, window_secs: None };
        let html =
            image(&"r.example/a:b".parse().unwrap(), &fetched(json), &ImageExtras { quota: Some(quota), ..NONE });
        assert!(html.contains(">r.example: 0 of 5 pulls left for this address</dd>"), "{html}");
        assert!(!image(&"ubuntu".parse().unwrap(), &fetched(json), &NONE).contains("pull-quota"));
    }

    #[test]
    fn a_manifest_of_many_layers_is_shown_a_page_at_a_time() {
        let layer = |i: usize| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{i:064x}","size":{i}}}"#
            )
        };
        let layers: Vec<String> = (0..2 * LAYERS_PER_PAGE + 5).map(layer).collect();
        let json = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"sha256:{:064x}","size":1}},"layers":[{}]}}"#,
            0,
            layers.join(",")
        );
        let fetched = fetched(&json);
        let reference = "a/b:c".parse().unwrap();
        let first = image_at(&reference, &fetched, &NONE, 1).unwrap();
        assert_eq!(download_count(&first), LAYERS_PER_PAGE);
        assert_eq!(2 * LAYERS_PER_PAGE + 5, 2005);
        assert!(first.contains("<p>2,005 layers,"), "{first}");
        assert!(first.contains("page 1 of 3 · <a href=\"./?image=a%2Fb%3Ac&amp;page=2\" rel=\"next\">"), "{first}");
        let last = image_at(&reference, &fetched, &NONE, 3).unwrap();
        assert_eq!(download_count(&last), 5);
        assert!(last.contains(&format!("sha256:{:064x}", 2 * LAYERS_PER_PAGE + 4)), "{last}");
        assert_eq!(image_at(&reference, &fetched, &NONE, 4).unwrap_err().status(), http::StatusCode::NOT_FOUND);
    }

    #[test]
    fn errors_and_the_form_escape_what_was_typed() {
        let html = error(&Error::bad_request("bad <b>\"ref\"</b>"), "x\"><script>alert(1)</script>");
        assert!(!html.contains("<script>") && !html.contains("<b>"), "{html}");
        assert!(html.contains("value=\"x&quot;&gt;&lt;script&gt;"), "{html}");
        assert!(html.contains("<h1 class=\"error\">400 Bad Request</h1>"), "{html}");
        assert!(html.contains("<p class=\"error\" id=\"reason\">bad &lt;b&gt;&quot;ref&quot;&lt;/b&gt;</p>"), "{html}");
        assert!(home().contains("value=\"\""));
        assert!(home().contains("<input name=\"repo\""));
    }
}
