//! The pages that are not about one layer: the form, an image's layers or platforms,
//! and errors.

use askama::Template;

use super::{human_size, render, Frame};
use crate::download::DownloadLink;
use crate::error::Error;
use crate::layer::link::{Here, LayerPath};
use crate::manifest::{FetchedManifest, ImageIndex, ImageManifest, Manifest};
use crate::reference::ImageReference;
use crate::registry::PullQuota;

#[derive(Template)]
#[template(path = "home.html", config = "src/pages/askama.toml")]
struct Home {
    frame: Frame,
}

/// `/` without an image: the form alone.
pub fn home() -> String {
    render(&Home { frame: Frame { title: "layerpipe".to_owned(), image: String::new() } })
}

#[derive(Template)]
#[template(path = "error.html", config = "src/pages/askama.toml")]
struct ErrorPage<'a> {
    frame: Frame,
    code: u16,
    reason: &'static str,
    message: &'a str,
}

/// An error page: the status and the one-line reason.
pub fn error(e: &Error, image: &str) -> String {
    let status = e.status();
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("error"));
    render(&ErrorPage {
        frame: Frame { title, image: image.to_owned() },
        code: status.as_u16(),
        reason: status.canonical_reason().unwrap_or(""),
        message: e.message(),
    })
}

/// What every image page starts with.
struct ImageHead {
    name: String,
    digest: String,
    media_type: String,
    /// The registry's pull quota for layerpipe's address, when its last answer stated it.
    quota: Option<QuotaLine>,
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
}

#[derive(Template)]
#[template(path = "image_layers.html", config = "src/pages/askama.toml")]
struct ImageLayers {
    frame: Frame,
    head: ImageHead,
    config_href: String,
    config_digest: String,
    total: String,
    layers: Vec<LayerRow>,
    /// The merged filesystem and the sizes of the whole image.
    merged_href: String,
    sizes_href: String,
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
}

/// The page for a fetched manifest: its layers, or for an index its platforms; with the
/// registry's pull `quota` when it stated one.
pub fn image(reference: &ImageReference, fetched: &FetchedManifest, quota: Option<PullQuota>) -> String {
    let name = reference.to_string();
    let frame = Frame { title: name.clone(), image: name.clone() };
    let registry = match reference.registry() {
        crate::reference::DOCKER_HUB => "Docker Hub".to_owned(),
        host => host.to_owned(),
    };
    let quota = quota.map(|quota| QuotaLine { registry, quota });
    let head = ImageHead { name, digest: fetched.digest.to_string(), media_type: fetched.media_type.clone(), quota };
    match &fetched.manifest {
        Manifest::Image(manifest) => render(&layers(frame, head, reference, manifest)),
        Manifest::Index(index) => render(&platforms(frame, head, reference, index)),
    }
}

fn layers(frame: Frame, head: ImageHead, reference: &ImageReference, manifest: &ImageManifest) -> ImageLayers {
    let total = manifest.layers.iter().map(|l| l.size).fold(0, u64::saturating_add);
    // The config is a blob like the layers; its page shows it (layer number 1 only fills
    // the link's required field: it names a download of it `…-1.bin`).
    let config = DownloadLink {
        image: reference.clone(),
        digest: manifest.config.digest.clone(),
        layer: 1,
        media_type: manifest.config.media_type.clone(),
    };
    let layers = manifest
        .layers
        .iter()
        .zip(1..)
        .map(|(layer, number)| {
            let link = DownloadLink {
                image: reference.clone(),
                digest: layer.digest.clone(),
                layer: number,
                media_type: layer.media_type.clone(),
            };
            // The size leads to the layer's files by size, the digest to its folders.
            LayerRow {
                number,
                size: layer.size,
                human: human_size(layer.size),
                files: Here::root().files(&link, 1),
                media_type: layer.media_type.clone(),
                browse: Here::root().fs(&link, &LayerPath::root(), true),
                digest: layer.digest.to_string(),
                download: link.href(),
            }
        })
        .collect();
    ImageLayers {
        frame,
        head,
        config_href: Here::root().files(&config, 1),
        config_digest: manifest.config.digest.to_string(),
        total: human_size(total),
        layers,
        merged_href: Here::root().merged(reference, &LayerPath::root(), true),
        sizes_href: Here::root().sizes(reference),
    }
}

fn platforms(frame: Frame, head: ImageHead, reference: &ImageReference, index: &ImageIndex) -> ImagePlatforms {
    let platforms = index
        .manifests
        .iter()
        .enumerate()
        .map(|(i, entry)| PlatformRow {
            number: i + 1,
            href: format!(
                "./?image={}",
                crate::query::encode(&reference.with_digest(entry.digest.clone()).to_string())
            ),
            platform: entry.platform.as_ref().map_or_else(|| "unknown platform".to_owned(), ToString::to_string),
            media_type: entry.media_type.clone(),
            size: entry.size,
            human: human_size(entry.size),
            digest: entry.digest.to_string(),
        })
        .collect();
    ImagePlatforms { frame, head, platforms }
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
        }
    }

    #[test]
    fn layer_table_links_size_to_files_and_digest_to_folders() {
        let json = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1},
          "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":5}]}"#;
        let fetched = fetched(json);
        let html = image(&"a/b:c".parse().unwrap(), &fetched, None);
        let q = "image=a%2Fb%3Ac&amp;digest=sha256%3A2222222222222222222222222222222222222222222222222222222222222222\
&amp;layer=1&amp;mt=application%2Fvnd.oci.image.layer.v1.tar%2Bgzip";
        assert!(html.contains(&format!("<a href=\"./files?{q}\">5 B</a>")), "{html}");
        assert!(html.contains(&format!("<a href=\"./fs/?{q}\">sha256:2222")), "{html}");
        assert!(html.contains("<a href=\"./files?image=a%2Fb%3Ac&amp;digest=sha256%3A1111"), "{html}");
        assert!(html.starts_with("<!doctype html>\n<html lang=\"en\"><head>"), "{html}");
        assert!(html.ends_with("</tbody></table>\n</main></body></html>\n"), "{html}");
    }

    #[test]
    fn registry_strings_are_escaped() {
        let json = r#"{"schemaVersion":2,"mediaType":"<script>alert(1)</script>",
          "config":{"mediaType":"x","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1},
          "layers":[{"mediaType":"evil\"><img src=x onerror=alert(1)>","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":5}]}"#;
        let fetched = fetched(json);
        let html = image(&"a/b:c".parse().unwrap(), &fetched, None);
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
        let html = image(&"a/b:c".parse().unwrap(), &fetched(json), None);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;&#39;x&#39;&lt;/script&gt;"), "{html}");
        assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{html}");
        assert!(html.contains("<a href=\"./?image=a%2Fb%3Ac%40sha256%3A3333"), "{html}");
    }

    #[test]
    fn the_quota_line_names_docker_hub_and_the_window() {
        let json = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        let quota = PullQuota { limit: 100, remaining: 87, window_secs: Some(21600) };
        let html = image(&"ubuntu".parse().unwrap(), &fetched(json), Some(quota));
        assert!(
            html.contains("<dd id=\"pull-quota\">Docker Hub: 87 of 100 pulls left for this address (per 6 h)</dd>"),
            "{html}"
        );
        let quota = PullQuota { limit: 5, remaining: 0, window_secs: None };
        let html = image(&"r.example/a:b".parse().unwrap(), &fetched(json), Some(quota));
        assert!(html.contains(">r.example: 0 of 5 pulls left for this address</dd>"), "{html}");
        assert!(!image(&"ubuntu".parse().unwrap(), &fetched(json), None).contains("pull-quota"));
    }

    #[test]
    fn errors_and_the_form_escape_what_was_typed() {
        let html = error(&Error::bad_request("bad <b>\"ref\"</b>"), "x\"><script>alert(1)</script>");
        assert!(!html.contains("<script>") && !html.contains("<b>"), "{html}");
        assert!(html.contains("value=\"x&quot;&gt;&lt;script&gt;"), "{html}");
        assert!(html.contains("<h1 class=\"error\">400 Bad Request</h1>"), "{html}");
        assert!(html.contains("<p class=\"error\" id=\"reason\">bad &lt;b&gt;&quot;ref&quot;&lt;/b&gt;</p>"), "{html}");
        assert!(home().contains("value=\"\""));
    }
}
