//! The paths the main profile measures, in the order they are interleaved: direct, nginx
//! as the project configures it, nginx tuned, layerpipe with verify_digests off and on,
//! then any `LOAD_VARIANTS`. Each has a row label and a short name (slug) for its files.

use std::path::PathBuf;

use super::nginx::tuned;
use super::options::{Options, Variant};

/// How one path reaches the origin.
pub(super) enum Via {
    /// The client itself, with the token.
    Direct,
    /// nginx with these directives in its proxying `location`.
    Nginx(Vec<String>),
    /// This layerpipe binary, verify_digests on or off, with these extra config keys.
    Layerpipe(PathBuf, bool, String),
}

/// One path measured: its row label, a short name for its files, and how it goes.
pub(super) struct Route {
    pub(super) label: String,
    pub(super) slug: String,
    pub(super) via: Via,
}

/// The paths measured, in the order they are interleaved: direct, nginx as the project
/// configures it, nginx tuned, layerpipe with verify_digests off and on, then any
/// `LOAD_VARIANTS` (other layerpipe builds, verify_digests off).
pub(super) fn routes(options: &Options, nginx_source: &str, project: Vec<String>) -> Vec<Route> {
    let route = |label: String, slug: &str, via| Route { label, slug: slug.to_owned(), via };
    let layerpipe = &options.layerpipe;
    let mut routes = vec![
        route("direct (origin, token in the client)".into(), "direct", Via::Direct),
        route(format!("nginx, {nginx_source} (proxy_buffering off)"), "nginx-project", Via::Nginx(project.clone())),
        route(
            "nginx, tuned (buffering on, 256k + 16×256k, busy 512k, no temp file)".into(),
            "nginx-tuned",
            Via::Nginx(tuned(&project)),
        ),
        route(
            "layerpipe, verify_digests off".into(),
            "layerpipe-off",
            Via::Layerpipe(layerpipe.clone(), false, String::new()),
        ),
        route(
            "layerpipe, verify_digests on".into(),
            "layerpipe-on",
            Via::Layerpipe(layerpipe.clone(), true, String::new()),
        ),
    ];
    for Variant { name, binary, extra_config } in &options.variants {
        routes.push(route(
            format!("layerpipe variant {name}, verify_digests off"),
            &format!("variant-{name}"),
            Via::Layerpipe(binary.clone(), false, extra_config.clone()),
        ));
    }
    routes
}
