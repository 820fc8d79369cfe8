//! What a page view costs the registry, its token server and the credential helper, on
//! the real registry (issue 20, cases 6, 7 and 9): repeat views of an image with
//! referrers make no manifest GET, a refused repository neither re-runs the helper nor
//! re-fetches tokens for the whole registry, and odd token answers are neither refused
//! nor fetched again for every request.

mod real;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use layerpipe::config::Config;
use real::issuer::{Wording, REFUSED_PREFIX};
use real::{Layerpipe, RealRegistry, PUSH_PASSWORD, PUSH_USERNAME};
use serde_json::json;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The image page of `reference`: status and HTML.
async fn page(client: &HttpClient, layerpipe: &Layerpipe, reference: &str) -> (StatusCode, String) {
    let url = layerpipe.url(&format!("?image={}", layerpipe::query::encode(reference)));
    let request = Request::get(&url).body(Empty::new()).expect("request");
    let response = client.request(request).await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let status = response.status();
    let body = response.into_body().collect().await.expect("page body").to_bytes();
    (status, String::from_utf8(body.to_vec()).expect("UTF-8 page"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_views_of_an_image_with_referrers_make_no_manifest_get() {
    let registry = RealRegistry::start();
    // A signature under cosign's tag and an SBOM listed in the referrers tag's index.
    let pushed = registry.push_layered_image("trust/referred", "v1", 0).await;
    let layerpipe = Layerpipe::start(&registry, true).await;
    let client = client();
    let mut gets_after_first_view = None;
    for view in 0..5 {
        let (status, html) = page(&client, &layerpipe, &pushed.image.reference).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        // Every view still shows both referrers.
        assert!(html.contains(&pushed.signature_tag), "view {view}: no signature\n{html}");
        assert!(html.contains(&pushed.sbom_digest), "view {view}: no SBOM\n{html}");
        let gets = registry.requests("GET", "/manifests/");
        match gets_after_first_view {
            None => gets_after_first_view = Some(gets),
            Some(first) => assert_eq!(gets, first, "view {view} GET a manifest\n{}", registry.log_tail()),
        }
    }
    // The image's manifest and the referrers tag's index, once each.
    assert_eq!(gets_after_first_view, Some(2), "{}", registry.log_tail());
    // distribution 2.8 has no referrers API: asked once, then remembered.
    assert_eq!(registry.requests("GET", "/referrers/"), 1, "{}", registry.log_tail());
    // The tag is still HEADed each time, so a new referrer shows on the next view.
    let subject_tag = pushed.image.digest.replace(':', "-");
    let heads = registry.requests("HEAD", &format!("/manifests/{subject_tag}"));
    assert!(heads >= 5, "{heads} HEADs\n{}", registry.log_tail());
}

/// A docker `config.json` naming helper `counted` for `host`, and the helper: it notes
/// each run in `runs` and answers the pusher's credentials.
fn counted_helper(dir: &std::path::Path, host: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let runs = dir.join("runs");
    let script = dir.join("docker-credential-counted");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nread server\necho \"$server\" >> {runs}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{PUSH_USERNAME}\",\"Secret\":\"{PUSH_PASSWORD}\"}}' \"$server\"\n",
            runs = runs.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = dir.join("config.json");
    std::fs::write(&config, json!({"credHelpers": {host: "counted"}}).to_string()).unwrap();
    (config, runs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_of_a_refused_repository_run_the_helper_once() {
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("trust/open", "v1").await;
    let dir = tempfile::tempdir().unwrap();
    let (docker_config, runs) = counted_helper(dir.path(), &registry.host());
    let config = json!({
        "index": {"dir": ""},
        "docker_config": docker_config,
        "registries": {registry.host(): {"endpoint": registry.endpoint()}},
    });
    let mut config = Config::parse(&config.to_string()).expect("layerpipe config");
    config.credential_helper_dir = Some(dir.path().to_owned());
    let layerpipe = Layerpipe::with_config(config).await;
    let client = client();
    let pings = || registry.requests_of("GET", "/v2/");

    // The registry refuses the name (as Docker Hub does any name that does not exist).
    let refused = format!("{}/{REFUSED_PREFIX}app:v1", registry.host());
    let pings_before = pings();
    for _ in 0..10 {
        let (status, html) = page(&client, &layerpipe, &refused).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{html}");
    }
    let helper_runs = std::fs::read_to_string(&runs).unwrap_or_default().lines().count();
    assert_eq!(helper_runs, 1, "the helper ran {helper_runs} times for 10 refused views");
    // A token fetched for the request and refused is not fetched again at once.
    let scope = format!("repository:{REFUSED_PREFIX}app:pull");
    assert_eq!(registry.issuer().token_requests(&scope), 10, "{:?}", registry.issuer().token_requests_by_scope());
    // The registry was pinged once, for the first view.
    assert_eq!(pings() - pings_before, 1, "{}", registry.log_tail());

    // Another repository on the registry still works, with the same helper answer.
    let (status, html) = page(&client, &layerpipe, &image.reference).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_token_answers_are_used_and_not_fetched_for_every_request() {
    let registry = RealRegistry::start();
    let image = registry.push_oci_image("trust/tokens", "v1").await;
    let scope = "repository:trust/tokens:pull";
    let client = client();
    let wordings = [
        ("expires_in -1", Wording { expires_in: Some(json!(-1)), ..Wording::default() }),
        ("expires_in 300.0", Wording { expires_in: Some(json!(300.0)), ..Wording::default() }),
        ("no expires_in", Wording { expires_in: None, ..Wording::default() }),
        ("expires_in 0", Wording { expires_in: Some(json!(0)), ..Wording::default() }),
        ("issued_at an hour behind", Wording { issued_at_behind_secs: 3600, ..Wording::default() }),
    ];
    for (what, wording) in wordings {
        registry.issuer().set_wording(wording);
        // A fresh layerpipe: no token cached yet.
        let layerpipe = Layerpipe::start(&registry, true).await;
        let before = registry.issuer().token_requests(scope);
        for _ in 0..2 {
            let (status, html) = page(&client, &layerpipe, &image.reference).await;
            assert_eq!(status, StatusCode::OK, "{what}: {html}");
        }
        // Each view makes several registry requests (manifest, config, referrers); one
        // token serves them all. At most one more, should a view start just as the
        // shortest-kept token is let go.
        let fetched = registry.issuer().token_requests(scope) - before;
        assert!((1..=2).contains(&fetched), "{what}: {fetched} token fetches for 2 views");
    }
}
