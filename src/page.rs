//! The HTML pages: the form, an image's layers or platforms, and errors.
//!
//! Every page is the one [`layout`] around a little content. Every string that comes from
//! a registry or a user passes through [`escape`]; every link is relative, so the pages
//! work unchanged when a reverse proxy serves layerpipe under a path prefix.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::download::DownloadLink;
use crate::error::Error;
use crate::manifest::{FetchedManifest, ImageIndex, ImageManifest, Manifest};
use crate::reference::ImageReference;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A size in binary units, as people read it: `512 B`, `25.2 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}\
code{font-family:ui-monospace,monospace;font-size:.9em}\
table{border-collapse:collapse;margin-top:1rem}th,td{padding:.25rem .6rem;text-align:left;border-bottom:1px solid #ddd}\
td.n,th.n{text-align:right}input[name=image]{width:32rem;max-width:90%}.error{color:#a00}dt{font-weight:bold}";

/// The page frame: title, the reference form (pre-filled with `image`), and `content`.
fn layout(title: &str, image: &str, content: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · layerpipe</title><style>{STYLE}</style></head>\n<body>\
<header><form method=\"get\" action=\"./\"><a href=\"./\">layerpipe</a> \
<input name=\"image\" value=\"{image}\" placeholder=\"namespace/repo:tag\" aria-label=\"image reference\"> \
<button type=\"submit\">show layers</button></form></header>\n<main>\n{content}</main></body></html>\n",
        title = escape(title),
        image = escape(image),
    )
}

/// `/` without an image: the form alone.
pub fn home() -> String {
    layout(
        "layerpipe",
        "",
        "<p>Type an image reference such as <code>library/alpine:3.20</code> or \
<code>ghcr.io/owner/app@sha256:…</code> to see its layers and download them.</p>\n",
    )
}

/// An error page: the status and the one-line reason.
pub fn error(e: &Error, image: &str) -> String {
    let status = e.status();
    let content = format!(
        "<h1 class=\"error\">{} {}</h1>\n<p class=\"error\" id=\"reason\">{}</p>\n",
        status.as_u16(),
        escape(status.canonical_reason().unwrap_or("")),
        escape(e.message())
    );
    layout(&format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("error")), image, &content)
}

/// The page for a fetched manifest: its layers, or for an index its platforms.
pub fn image(reference: &ImageReference, fetched: &FetchedManifest) -> String {
    let name = reference.to_string();
    let mut content = format!(
        "<h1><code>{}</code></h1>\n<dl>\n<dt>manifest</dt><dd><code id=\"manifest-digest\">{}</code></dd>\n\
<dt>media type</dt><dd>{}</dd>\n",
        escape(&name),
        escape(fetched.digest.as_str()),
        escape(&fetched.media_type)
    );
    match &fetched.manifest {
        Manifest::Image(manifest) => layers(&mut content, reference, manifest),
        Manifest::Index(index) => platforms(&mut content, reference, index),
    }
    layout(&name, &name, &content)
}

fn layers(out: &mut String, reference: &ImageReference, manifest: &ImageManifest) {
    let total: u64 = manifest.layers.iter().map(|l| l.size).sum();
    let _ = write!(
        out,
        "<dt>config</dt><dd><code id=\"config-digest\">{}</code></dd>\n</dl>\n\
<p>{} layers, {} in all.</p>\n<table id=\"layers\"><thead><tr><th class=\"n\">#</th><th class=\"n\">size</th>\
<th>media type</th><th>digest</th></tr></thead><tbody>\n",
        escape(manifest.config.digest.as_str()),
        manifest.layers.len(),
        human_size(total)
    );
    for (i, layer) in manifest.layers.iter().enumerate() {
        let number = i as u32 + 1;
        let link = DownloadLink {
            image: reference.clone(),
            digest: layer.digest.clone(),
            layer: number,
            media_type: layer.media_type.clone(),
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"n\">{number}</td><td class=\"n\" title=\"{size} bytes\">{human}</td><td>{mt}</td>\
<td><code>{digest}</code> <a href=\"{href}\">[x]</a></td></tr>",
            size = layer.size,
            human = human_size(layer.size),
            mt = escape(&layer.media_type),
            digest = escape(layer.digest.as_str()),
            href = escape(&link.href()),
        );
    }
    out.push_str("</tbody></table>\n");
}

fn platforms(out: &mut String, reference: &ImageReference, index: &ImageIndex) {
    let _ = write!(
        out,
        "</dl>\n<p>An index of {} manifests: pick a platform.</p>\n<table id=\"platforms\"><thead><tr><th class=\"n\">#</th>\
<th>platform</th><th>media type</th><th class=\"n\">size</th><th>digest</th></tr></thead><tbody>\n",
        index.manifests.len()
    );
    for (i, entry) in index.manifests.iter().enumerate() {
        let platform = entry.platform.as_ref().map_or_else(|| "unknown platform".to_owned(), ToString::to_string);
        let href =
            format!("./?image={}", crate::query::encode(&reference.with_digest(entry.digest.clone()).to_string()));
        let _ = writeln!(
            out,
            "<tr><td class=\"n\">{n}</td><td><a href=\"{href}\">{platform}</a></td><td>{mt}</td>\
<td class=\"n\" title=\"{size} bytes\">{human}</td><td><code>{digest}</code></td></tr>",
            n = i + 1,
            href = escape(&href),
            platform = escape(&platform),
            mt = escape(&entry.media_type),
            size = entry.size,
            human = human_size(entry.size),
            digest = escape(entry.digest.as_str()),
        );
    }
    out.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(26_470_178), "25.2 MiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(human_size(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn registry_strings_are_escaped() {
        let json = r#"{"schemaVersion":2,"mediaType":"<script>alert(1)</script>",
          "config":{"mediaType":"x","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1},
          "layers":[{"mediaType":"evil\"><img src=x onerror=alert(1)>","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":5}]}"#;
        let (media_type, manifest) = crate::manifest::parse(None, json.as_bytes()).unwrap();
        let fetched = FetchedManifest {
            media_type,
            digest: crate::digest::Digest::of(crate::digest::Algorithm::Sha256, b""),
            manifest,
        };
        let html = image(&"a/b:c".parse().unwrap(), &fetched);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert_eq!(html.matches(">[x]</a>").count(), 1);
    }
}
