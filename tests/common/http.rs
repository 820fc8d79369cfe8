//! A plain GET against layerpipe, as the end-to-end tests read its pages.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// `GET url`: its status and its body as text.
pub async fn get(url: &str) -> (StatusCode, String) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.get(url.parse().unwrap()).await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let status = response.status();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// `GET base/href` (a page's relative link), which must answer 200: its body.
pub async fn page(base: &str, href: &str) -> String {
    let url = format!("{base}/{}", href.trim_start_matches("./"));
    let (status, body) = get(&url).await;
    assert_eq!(status, StatusCode::OK, "GET {url}: {body}");
    body
}
