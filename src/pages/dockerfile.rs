//! An image's Dockerfile, rebuilt from its history ([`crate::image::dockerfile`]): the
//! whole text to copy, then one row per instruction beside the layer it made.

use askama::Template;

use super::text::human_size;
use super::{render, Frame};
use crate::explore::images::{layer_links, FetchedConfig};
use crate::image::dockerfile::{self, Line};
use crate::layer::link::Here;
use crate::manifest::ImageManifest;
use crate::query::encode;
use crate::reference::ImageReference;

/// The layer an instruction made, linked to its files.
struct LayerCell {
    number: u32,
    href: String,
    digest: String,
    human: String,
    size: u64,
}

struct Row {
    instruction: String,
    layer: Option<LayerCell>,
}

#[derive(Template)]
#[template(path = "dockerfile.html", config = "src/pages/askama.toml")]
struct DockerfilePage {
    frame: Frame,
    name: String,
    image_href: String,
    config_href: String,
    text: String,
    rows: Vec<Row>,
    /// Set when the history's steps do not pair with the layers.
    unpaired: bool,
}

/// The Dockerfile page of `reference`, an image with `manifest` and config `config`.
pub fn dockerfile(reference: &ImageReference, manifest: &ImageManifest, config: &FetchedConfig) -> String {
    let name = reference.to_string();
    let history = &config.config.history;
    let lines = dockerfile::rebuild(history, manifest.layers.len());
    let links = layer_links(reference, manifest);
    let cell = |line: &Line| {
        let (link, descriptor) = (links.get(line.layer?)?, manifest.layers.get(line.layer?)?);
        let digest = descriptor.digest.as_str();
        Some(LayerCell {
            number: link.layer,
            href: Here::root().files(link, 1),
            digest: digest[..digest.len().min(19)].to_owned(),
            human: if manifest.sizes_known { human_size(descriptor.size) } else { String::new() },
            size: descriptor.size,
        })
    };
    render(&DockerfilePage {
        frame: Frame {
            title: format!("{name} Dockerfile"),
            image: name.clone(),
            command: Some(super::commands::dockerfile(reference)),
            trail: super::breadcrumbs::image_page(
                Here::root(),
                reference,
                "Dockerfile",
                super::dockerfile_href(reference),
            ),
        },
        image_href: format!("./?image={}", encode(&name)),
        config_href: super::config_href(reference),
        text: dockerfile::text(&lines),
        rows: lines.iter().map(|l| Row { instruction: l.instruction.clone(), layer: cell(l) }).collect(),
        unpaired: !history.is_empty() && lines.iter().all(|l| l.layer.is_none()) && !manifest.layers.is_empty(),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{Algorithm, Digest};
    use crate::manifest::config;
    use crate::manifest::Descriptor;

    fn descriptor(bytes: &[u8], size: u64) -> Descriptor {
        serde_json::from_value(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": Digest::of(Algorithm::Sha256, bytes).to_string(),
            "size": size,
        }))
        .unwrap()
    }

    fn page(history: &str, layers: usize) -> String {
        let json = format!(r#"{{"history":{history}}}"#);
        let raw = bytes::Bytes::from(json);
        let fetched = FetchedConfig { config: config::parse(&raw).unwrap(), raw };
        let manifest = ImageManifest {
            config: descriptor(b"config", 2),
            layers: (0..layers).map(|n| descriptor(&[n as u8], 2048 + n as u64)).collect(),
            sizes_known: true,
        };
        dockerfile(&"team/app:v1".parse().unwrap(), &manifest, &fetched)
    }

    #[test]
    fn instructions_are_escaped_and_linked_to_their_layers() {
        let html = page(
            r#"[{"created_by":"/bin/sh -c #(nop) ADD file:x in / "},
                {"created_by":"/bin/sh -c #(nop)  ENV A=<b>","empty_layer":true},
                {"created_by":"RUN /bin/sh -c echo \"hi\" > /x # buildkit"}]"#,
            2,
        );
        assert!(
            html.contains(
                "<pre id=\"dockerfile\">ADD file:x in /\nENV A=&lt;b&gt;\nRUN echo &quot;hi&quot; &gt; /x\n</pre>"
            ),
            "{html}"
        );
        assert!(html.contains("<a href=\"./files?image=team%2Fapp%3Av1&amp;digest=sha256%3A"), "{html}");
        assert!(html.contains("title=\"2049 bytes\">2.0 KiB"), "{html}");
        assert_eq!(html.matches("<tr>").count(), 1 + 3, "{html}"); // the head, then a row a step
        assert!(html.contains("<a href=\"./config?image=team%2Fapp%3Av1\">"), "{html}");
        assert!(!html.contains("id=\"unpaired\""), "{html}");
    }

    #[test]
    fn history_that_does_not_pair_is_said_so() {
        let html = page(r#"[{"created_by":"/bin/sh -c make"}]"#, 2);
        assert!(html.contains("id=\"unpaired\""), "{html}");
        assert!(html.contains("RUN make"), "{html}");
        let empty = page("[]", 1);
        assert!(empty.contains("id=\"no-history\""), "{empty}");
    }
}
