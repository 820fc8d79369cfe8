//! The whole-image building blocks against the real registry: tags a page at a time,
//! referrers by the tag schemes distribution 2.8 can hold, the config with its history,
//! and the merged filesystem of a layered image.

mod real;

use std::sync::Arc;

use layerpipe::config::Config;
use layerpipe::image::history::{self, Step};
use layerpipe::image::load::ImageLoader;
use layerpipe::image::merged::Fate;
use layerpipe::image::sizes;
use layerpipe::layer::inspect::Inspector;
use layerpipe::manifest::Manifest;
use layerpipe::metrics::Metrics;
use layerpipe::reference::ImageReference;
use layerpipe::registry::{Referrer, RegistryClient};
use real::RealRegistry;

struct Clients {
    registry: Arc<RegistryClient>,
    inspector: Arc<Inspector>,
}

fn clients(registry: &RealRegistry) -> Clients {
    let config = Arc::new(
        Config::parse(&format!(
            r#"{{"index": {{"dir": ""}}, "registries": {{"{}": {{"endpoint": "{}"}}}}}}"#,
            registry.host(),
            registry.endpoint()
        ))
        .unwrap(),
    );
    let metrics = Arc::new(Metrics::default());
    Clients {
        inspector: Arc::new(Inspector::new(&config, metrics.clone())),
        registry: Arc::new(RegistryClient::new(config, metrics)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_come_a_page_at_a_time() {
    let registry = RealRegistry::start();
    let pushed = registry.push_layered_image("whole/tags", "latest", 5).await;
    let c = clients(&registry);
    let repo: ImageReference = format!("{}/whole/tags", registry.host()).parse().unwrap();
    let mut seen = Vec::new();
    let mut last: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = c.registry.tags(&repo, 2, last.as_deref()).await.unwrap();
        assert!(page.tags.len() <= 2);
        seen.extend(page.tags.iter().cloned());
        pages += 1;
        match page.next {
            Some(next) => last = Some(next),
            None => break,
        }
        assert!(pages < 10, "pagination does not end: {seen:?}");
    }
    // The referrers' tags are tags too, and lexical order puts them after `latest`.
    let subject = pushed.image.digest.replace(':', "-");
    let sig = pushed.signature_tag.clone();
    assert_eq!(seen, ["latest", &subject, &sig, "t0000", "t0001", "t0002", "t0003", "t0004"]);
    assert!(pages >= 3);
    let missing: ImageReference = format!("{}/whole/none", registry.host()).parse().unwrap();
    assert_eq!(c.registry.tags(&missing, 2, None).await.unwrap_err().status(), http::StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_history_and_the_merged_filesystem() {
    let registry = RealRegistry::start();
    let pushed = registry.push_layered_image("whole/app", "v1", 0).await;
    let c = clients(&registry);
    let image: ImageReference = pushed.image.reference.parse().unwrap();
    let fetched = c.registry.manifest(&image).await.unwrap();
    let Manifest::Image(manifest) = &fetched.manifest else { panic!("not an image manifest") };

    // distribution 2.8 has no referrers API: the tag schemes find both.
    let referrers = c.registry.referrers(&image, &fetched.digest).await;
    assert!(referrers.contains(&Referrer::Tag(pushed.signature_tag.clone())), "{referrers:?}");
    assert!(referrers.iter().any(|r| matches!(r, Referrer::Manifest { digest, artifact_type }
        if digest.as_str() == pushed.sbom_digest && artifact_type == "application/spdx+json")));
    // An image nothing refers to has none, and no error.
    let plain = registry.push_oci_image("whole/plain", "v1").await;
    let plain_ref: ImageReference = plain.reference.parse().unwrap();
    let plain_digest = plain.digest.parse().unwrap();
    assert_eq!(c.registry.referrers(&plain_ref, &plain_digest).await, []);

    let loader = ImageLoader::default();
    let config = loader.config(&c.registry, &image, &manifest.config).await.unwrap();
    let timeline = history::pair(&manifest.layers, &config.config.history);
    assert_eq!(timeline.mismatch, None);
    let rows: Vec<String> = timeline
        .steps
        .iter()
        .map(|s| match s {
            Step::Layer { index, history, .. } => {
                format!("{index}: {}", history::command(history.unwrap().created_by.as_deref().unwrap()))
            }
            Step::Empty(h) => format!("-: {}", history::command(h.created_by.as_deref().unwrap())),
        })
        .collect();
    assert_eq!(
        rows,
        [
            "0: ADD file:base in /",
            "-: ENV APP_MODE=<prod>",
            "1: RUN rm /etc/secret.key && useradd app",
            "2: COPY main.py /app/",
            "-: CMD [\"/app/main.py\"]",
        ]
    );
    assert_eq!(config.config.config.as_ref().unwrap().working_dir, "/app");

    let merged = loader.merged(&c.registry, &c.inspector, &image, &fetched.digest, manifest).await.unwrap();
    let fates =
        |path: &str| -> Vec<(u32, Fate)> { merged.at(path.as_bytes()).iter().map(|v| (v.layer, v.fate)).collect() };
    assert_eq!(fates("etc/secret.key"), [(0, Fate::Deleted { by: 1 })]);
    assert_eq!(fates("etc/passwd"), [(0, Fate::Overwritten { by: 1 }), (1, Fate::Visible)]);
    assert_eq!(fates("var/cache/apt/pkg.deb"), [(0, Fate::Deleted { by: 1 })]);
    assert_eq!(fates("opt/tool/run"), [(0, Fate::Overwritten { by: 1 })]);
    assert_eq!(fates("app/main.py"), [(2, Fate::Visible)]);
    let s = sizes::of(&merged);
    assert_eq!(s.largest[0].entry.path(), b"var/cache/apt/pkg.deb");
    // The deleted secret, the hidden package, the first passwd and the replaced tool.
    let wasted = (layered_secret_len() + 64 * 1024 + 26 + 10) as u64;
    assert_eq!(s.wasted, wasted);
    assert_eq!(s.wasted_by_layer, [wasted, 0, 0]);
}

fn layered_secret_len() -> usize {
    real::layered::SECRET.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_of_a_tag_cost_one_manifest_get() {
    let registry = RealRegistry::start();
    let pushed = registry.push_oci_image("whole/quota", "v1").await;
    let c = clients(&registry);
    let image: ImageReference = pushed.reference.parse().unwrap();
    for _ in 0..3 {
        let fetched = c.registry.manifest(&image).await.unwrap();
        assert_eq!(fetched.digest.as_str(), pushed.digest);
    }
    // By digest, as platform pages and layer pages address it: no request at all.
    let by_digest: ImageReference =
        format!("{}@{}", pushed.reference.split(':').take(2).collect::<Vec<_>>().join(":"), pushed.digest)
            .parse()
            .unwrap();
    c.registry.manifest(&by_digest).await.unwrap();
    assert_eq!(registry.requests("GET", "/manifests/"), 1, "{}", registry.log_tail());
    assert_eq!(registry.requests("HEAD", "/manifests/v1"), 3, "{}", registry.log_tail());
    assert_eq!(c.registry.pull_quota(&registry.host()).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_by_digest_say_they_never_change() {
    use http_body_util::{BodyExt as _, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let registry = RealRegistry::start();
    let pushed = registry.push_oci_image("whole/cache", "v1").await;
    let lp = real::Layerpipe::start(&registry, true).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let cache_control = |reference: String| {
        let client = client.clone();
        let url = lp.url(&format!("?image={}", layerpipe::query::encode(&reference)));
        async move {
            let response = client.get(url.parse().unwrap()).await.unwrap();
            let status = response.status();
            let value = response.headers().get(http::header::CACHE_CONTROL).unwrap().to_str().unwrap().to_owned();
            response.into_body().collect().await.unwrap();
            (status, value)
        }
    };
    let by_digest = format!("{}/whole/cache@{}", registry.host(), pushed.digest);
    assert_eq!(cache_control(by_digest).await, (http::StatusCode::OK, "max-age=31536000, immutable".to_owned()));
    assert_eq!(cache_control(pushed.reference.clone()).await, (http::StatusCode::OK, "no-store".to_owned()));
    let missing = format!("{}/whole/cache@sha256:{}", registry.host(), "0".repeat(64));
    assert_eq!(cache_control(missing).await.1, "no-store");
}
