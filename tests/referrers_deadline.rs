//! Referrers that never answer cost an image page no more than `timeouts.extras_secs`
//! (issue 22's audit: the page was held 30–120 s when look-ups ran one after another,
//! each with its full timeout). The real registry sits behind a relay
//! (tests/real/hanging_relay.rs) that never answers the referrers API nor the
//! referrers tag schema's `sha256-HEX` tags (cosign's included), and passes every other
//! request on. With the default config the page answers within 5 s, its layers shown.
//!
//! Needs `/usr/bin/docker-registry` (`apt-get install -y docker-registry`).

mod real;

use std::time::{Duration, Instant};

use layerpipe::query::encode;
use real::hanging_relay::HangingRelay;
use real::http::page;
use real::{Layerpipe, RealRegistry};

/// The referrers API, and the tags of the referrers tag schema (`sha256-HEX`,
/// `sha256-HEX.sig` …); a manifest by digest (`sha256:HEX`) is passed on.
fn referrers_lookup(path: &str) -> bool {
    path.contains("/referrers/") || path.contains("/manifests/sha256-")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_that_never_answer_leave_the_image_page_within_5_s() {
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("hang/app", "v1").await;
    let relay = HangingRelay::start(registry.addr(), referrers_lookup).await;
    let lp = Layerpipe::reaching(&registry, &relay.endpoint(), true, std::path::Path::new("")).await;
    let started = Instant::now();
    let html = page(&lp.base, &format!("?image={}", encode(&image.reference))).await;
    let took = started.elapsed();
    assert!(relay.hung() >= 1, "the page asked for no referrers: the test proves nothing");
    assert!(took <= Duration::from_secs(5), "the image page took {took:?} with referrers that never answer");
    for layer in &image.layers {
        assert!(html.contains(&layer.digest), "layer {} is not on the page: {html}", layer.digest);
    }
}
