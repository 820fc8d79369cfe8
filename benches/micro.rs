//! Micro-benchmarks of the per-request work layerpipe does besides moving bytes:
//! parsing what a user typed and what a registry answered, the token-cache hit every
//! request makes, naming the file, rendering a big page, and hashing a blob's frames.
//!
//! `cargo bench --bench micro` (add a filter such as `-- page` to run a few).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use layerpipe::auth::challenge;
use layerpipe::auth::tokens::{Token, TokenCache, TokenKey};
use layerpipe::digest::{Algorithm, Hasher};
use layerpipe::download::{file_name, DownloadLink};
use layerpipe::manifest::{self, FetchedManifest, LayerFormat};
use layerpipe::reference::ImageReference;

const REFERENCE: &str =
    "ghcr.io/owner/app:v1.2@sha256:0b342bf7e74f5fbef621a6d413a2a56088d405057e0e165e383904fe37fe28a2";

const CHALLENGE: &str = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#;

fn references(c: &mut Criterion) {
    let mut g = c.benchmark_group("reference");
    g.bench_function("parse ghcr.io/owner/app:v1.2@sha256", |b| {
        b.iter(|| black_box(REFERENCE).parse::<ImageReference>().unwrap())
    });
    g.bench_function("parse ubuntu (Docker Hub, defaults)", |b| {
        b.iter(|| black_box("ubuntu").parse::<ImageReference>().unwrap())
    });
    g.finish();
}

fn challenges(c: &mut Criterion) {
    c.bench_function("challenge/parse Bearer realm,service,scope", |b| {
        b.iter(|| challenge::parse(black_box(CHALLENGE)).unwrap())
    });
}

fn token_key() -> TokenKey {
    TokenKey {
        registry: "ghcr.io".into(),
        realm: "https://ghcr.io/token".into(),
        service: "ghcr.io".into(),
        scope: "repository:owner/app:pull".into(),
        username: None,
    }
}

fn token_cache(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime");
    let cache = TokenCache::new(10_000);
    let token = Token::from_response(br#"{"token":"abc","expires_in":300}"#, std::time::SystemTime::now()).unwrap();
    runtime.block_on(async {
        let token = token.clone();
        cache.get_or_fetch(token_key(), async move { Ok(token) }).await.unwrap();
    });
    // The key is built per request in layerpipe too (registry::authorization), so its
    // allocation is part of what a hit costs.
    c.bench_function("tokens/get_or_fetch warm key", |b| {
        b.to_async(&runtime)
            .iter(|| async { cache.get_or_fetch(token_key(), async { panic!("the key is warm") }).await.unwrap() })
    });
}

fn file_names(c: &mut Criterion) {
    let mut g = c.benchmark_group("file_name");
    let reference: ImageReference = REFERENCE.parse().unwrap();
    let format = LayerFormat::from_media_type("application/vnd.oci.image.layer.v1.tar+gzip");
    g.bench_function("download::file_name", |b| b.iter(|| file_name(black_box(&reference), black_box(3), format)));
    let link = DownloadLink {
        image: reference.clone(),
        digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111".parse().unwrap(),
        layer: 3,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    };
    g.bench_function("DownloadLink::file_name", |b| b.iter(|| black_box(&link).file_name()));
    g.finish();
}

/// An OCI manifest with `n` layers, as a registry would send it.
fn manifest_json(n: usize) -> String {
    let descriptor = |media_type: &str, i: usize, size: u64| {
        format!(r#"{{"mediaType":"{media_type}","digest":"sha256:{i:064x}","size":{size}}}"#)
    };
    let layers: Vec<String> = (0..n)
        .map(|i| descriptor("application/vnd.oci.image.layer.v1.tar+gzip", i + 1, 1_000_000 + i as u64 * 7919))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{},"layers":[{}]}}"#,
        manifest::OCI_MANIFEST,
        descriptor("application/vnd.oci.image.config.v1+json", 0, 1234),
        layers.join(",")
    )
}

fn page(c: &mut Criterion) {
    let json = manifest_json(100);
    let (media_type, parsed) = manifest::parse(None, json.as_bytes()).unwrap();
    let fetched = FetchedManifest {
        media_type,
        digest: layerpipe::digest::Digest::of(Algorithm::Sha256, json.as_bytes()),
        manifest: parsed,
        raw: json.clone().into(),
    };
    let reference: ImageReference = "ghcr.io/owner/app:v1.2".parse().unwrap();
    let mut g = c.benchmark_group("page");
    g.bench_function("manifest::parse 100 layers", |b| {
        b.iter(|| manifest::parse(None, black_box(json.as_bytes())).unwrap())
    });
    // Without history or referrers: the table as it was before they came.
    let extras = layerpipe::pages::ImageExtras { config: None, referrers: &[], quota: None, secrets: None };
    g.bench_function("page::image 100 layers", |b| {
        b.iter(|| layerpipe::pages::image(black_box(&reference), black_box(&fetched), black_box(&extras)))
    });
    g.finish();
}

/// What `verify_digests` adds per byte: the hash of a blob's frames, by layerpipe's
/// [`Hasher`] and by each SHA-256 implementation it could use, on one core, at the two
/// frame sizes a download sees (128 KiB reads, 1 MiB from a large read buffer).
fn hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("digest");
    for size in [128 << 10, 1 << 20] {
        let frame = vec![0x5au8; size];
        let kib = size >> 10;
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("layerpipe Hasher sha256, {kib} KiB frame"), |b| {
            b.iter_batched_ref(
                || Hasher::new(Algorithm::Sha256),
                |h| h.update(black_box(&frame)),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("sha2::Sha256, {kib} KiB frame"), |b| {
            b.iter_batched_ref(
                <sha2::Sha256 as sha2::Digest>::new,
                |h| sha2::Digest::update(h, black_box(&frame)),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("ring::digest SHA256, {kib} KiB frame"), |b| {
            b.iter_batched_ref(
                || ring::digest::Context::new(&ring::digest::SHA256),
                |h| h.update(black_box(&frame)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // A shared, noisy 2-core machine: shorter windows, more samples would not help.
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = references, challenges, token_cache, file_names, page, hashing
}
criterion_main!(benches);
