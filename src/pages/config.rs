//! An image's config: what a container of it runs with, then the raw JSON.

use askama::Template;

use super::{render, Frame};
use crate::digest::Digest;
use crate::download::DownloadLink;
use crate::explore::images::FetchedConfig;
use crate::layer::link::Here;
use crate::manifest::config::RunConfig;
use crate::query::encode;
use crate::reference::ImageReference;

#[derive(Template)]
#[template(path = "config.html", config = "src/pages/askama.toml")]
struct ConfigPage {
    frame: Frame,
    name: String,
    image_href: String,
    dockerfile_href: String,
    digest: String,
    /// Set for a schema 1 image, whose config is made from its manifest's history.
    from_manifest: bool,
    platform: Option<String>,
    created: Option<String>,
    env: Vec<String>,
    entrypoint: String,
    cmd: String,
    working_dir: String,
    user: String,
    ports: Vec<String>,
    labels: Vec<(String, String)>,
    /// The raw JSON, each `diff_id` linked to its layer's files.
    raw: Vec<super::json::Piece>,
}

/// The config page of `reference`, whose config (digest `digest`) is `fetched` and whose
/// manifest lists `layers`; `from_manifest` when the config was made from a schema 1
/// manifest rather than read as a blob.
pub fn config(
    reference: &ImageReference,
    digest: &Digest,
    fetched: &FetchedConfig,
    from_manifest: bool,
    layers: &[DownloadLink],
) -> String {
    let name = reference.to_string();
    let c = &fetched.config;
    let run = c.config.clone().unwrap_or_default();
    let RunConfig { env, entrypoint, cmd, working_dir, user, exposed_ports, labels } = run;
    let platform = match (&c.os, &c.architecture) {
        (Some(os), Some(arch)) => Some(format!("{os}/{arch}")),
        (os, arch) => os.clone().or(arch.clone()),
    };
    render(&ConfigPage {
        frame: Frame {
            title: format!("{name} config"),
            image: name.clone(),
            command: Some(super::commands::config(reference)),
            trail: super::breadcrumbs::image_page(Here::root(), reference, "config", super::config_href(reference)),
        },
        image_href: format!("./?image={}", encode(&name)),
        dockerfile_href: super::dockerfile_href(reference),
        name,
        digest: digest.to_string(),
        from_manifest,
        platform,
        created: c.created.clone(),
        env,
        entrypoint: exec_form(&entrypoint),
        cmd: exec_form(&cmd),
        working_dir,
        user,
        ports: exposed_ports.into_keys().collect(),
        labels: labels.into_iter().collect(),
        raw: super::json::config(&fetched.raw, layers),
    })
}

/// A command as a Dockerfile's exec form writes it (`["a", "b"]`); empty when unset.
fn exec_form(words: &[String]) -> String {
    if words.is_empty() {
        String::new()
    } else {
        serde_json::to_string(words).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::config;

    fn page(json: &str) -> String {
        let raw = bytes::Bytes::from(json.to_owned());
        let fetched = FetchedConfig { config: config::parse(&raw).unwrap(), raw };
        let digest = Digest::of(crate::digest::Algorithm::Sha256, json.as_bytes());
        super::config(&"team/app:v1".parse().unwrap(), &digest, &fetched, false, &[])
    }

    #[test]
    fn fields_are_shown_then_the_raw_json() {
        let html = page(
            r#"{"os":"linux","architecture":"amd64","config":{"Env":["A=1","B=<2>"],"Entrypoint":["/bin/app"],
            "Cmd":["--serve"],"WorkingDir":"/srv","User":"app","ExposedPorts":{"8080/tcp":{}},
            "Labels":{"org.example":"x\"y"}},"history":[]}"#,
        );
        assert!(html.contains("<li><code>B=&lt;2&gt;</code></li>"), "{html}");
        assert!(html.contains("<code id=\"entrypoint\">[&quot;/bin/app&quot;]</code>"), "{html}");
        assert!(html.contains("<code id=\"cmd\">[&quot;--serve&quot;]</code>"), "{html}");
        assert!(html.contains("<code id=\"workdir\">/srv</code>"), "{html}");
        assert!(html.contains("<code id=\"user\">app</code>"), "{html}");
        assert!(html.contains("<li><code>8080/tcp</code></li>"), "{html}");
        assert!(html.contains("<td><code>org.example</code></td><td><code>x&quot;y</code></td>"), "{html}");
        assert!(html.contains("<dd>linux/amd64</dd>"), "{html}");
        assert!(html.contains("<pre id=\"raw\">{\n  &quot;architecture&quot;"), "{html}");
        assert!(html.contains("<a href=\"./?image=team%2Fapp%3Av1\">"), "{html}");
    }

    #[test]
    fn a_bare_config_says_none() {
        let html = page("{}");
        assert!(html.contains("<code id=\"entrypoint\"></code>") || html.contains("id=\"entrypoint\""), "{html}");
        assert!(!html.contains("<table id=\"labels\">"), "{html}");
        assert!(html.contains("<pre id=\"raw\">{}</pre>"), "{html}");
    }
}
