//! The clients that download: a hyper 1 client in this process that reads frames and
//! drops them (timing the first and the last byte), and `curl` in a process of its own,
//! as a user would run it. Both check the status and the byte count, so a broken path
//! fails the run instead of looking fast.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::origin::REPOSITORY;

/// No single download may take longer (the benchmark stops by itself).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// Media type in the layerpipe download URL (decides only the file name).
const LAYER_MEDIA_TYPE: &str = "application%2Fvnd.oci.image.layer.v1.tar%2Bgzip";

pub(super) type BenchClient = Client<HttpConnector, Empty<Bytes>>;

pub(super) fn client() -> BenchClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector)
}

/// One finished download.
pub(super) struct Download {
    /// From sending the request to the first byte of the body.
    pub(super) first_byte: Duration,
    /// From sending the request to the last byte.
    pub(super) elapsed: Duration,
}

/// Where a path downloads a blob from.
#[derive(Clone)]
pub(super) struct Endpoint {
    /// `http://127.0.0.1:P`
    pub(super) base: String,
    /// `Bearer …` for the origin itself; proxies authenticate on their own.
    pub(super) authorization: Option<HeaderValue>,
    /// True for layerpipe's `/download?…` URLs, false for the registry API's.
    pub(super) layerpipe: bool,
}

impl Endpoint {
    pub(super) fn url(&self, origin_host: &str, digest: &str) -> String {
        if self.layerpipe {
            format!(
                "{}/download?image={}%2F{}%3Alatest&digest={digest}&layer=1&mt={LAYER_MEDIA_TYPE}",
                self.base,
                origin_host.replace(':', "%3A"),
                REPOSITORY.replace('/', "%2F"),
            )
        } else {
            format!("{}/v2/{REPOSITORY}/blobs/{digest}", self.base)
        }
    }
}

pub(super) async fn download(
    client: &BenchClient,
    url: &str,
    authorization: Option<&HeaderValue>,
    size: u64,
) -> Result<Download, String> {
    let fetch = async {
        let started = Instant::now();
        let mut request = Request::get(url).body(Empty::new()).map_err(|e| e.to_string())?;
        if let Some(auth) = authorization {
            request.headers_mut().insert(header::AUTHORIZATION, auth.clone());
        }
        let response = client.request(request).await.map_err(|e| format!("GET {url}: {e}"))?;
        if response.status() != StatusCode::OK {
            let status = response.status();
            let body = response.into_body().collect().await.map(|c| c.to_bytes());
            let body = body.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            return Err(format!("GET {url}: {status}: {}", body.trim()));
        }
        let mut body = response.into_body();
        let mut first_byte = None;
        let mut received = 0u64;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| format!("GET {url}: the body broke after {received} of {size} bytes: {e}"))?;
            if let Some(data) = frame.data_ref() {
                if first_byte.is_none() && !data.is_empty() {
                    first_byte = Some(started.elapsed());
                }
                received += data.len() as u64;
            }
        }
        let elapsed = started.elapsed();
        if received != size {
            return Err(format!("GET {url}: {received} bytes, expected {size}"));
        }
        Ok(Download { first_byte: first_byte.unwrap_or(elapsed), elapsed })
    };
    tokio::time::timeout(DOWNLOAD_TIMEOUT, fetch)
        .await
        .map_err(|_| format!("GET {url}: not done within {DOWNLOAD_TIMEOUT:?}"))?
}

/// One download by `curl` (its own process, output to /dev/null): MB/s as curl measures
/// it, `speed_download`, bytes over the transfer from the request to the last byte.
pub(super) fn curl_download(url: &str, authorization: Option<&HeaderValue>, size: u64) -> Result<f64, String> {
    let mut command = Command::new("curl");
    command.args([
        "-s",
        "-o",
        "/dev/null",
        "--max-time",
        "600",
        "-w",
        "%{http_code} %{size_download} %{speed_download}",
    ]);
    if let Some(auth) = authorization {
        command.arg("-H").arg(format!("Authorization: {}", auth.to_str().map_err(|e| e.to_string())?));
    }
    let output = command
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run curl ({e}): apt-get install -y curl"))?;
    let written = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = written.split_whitespace().collect();
    let [status, bytes, speed] = fields[..] else {
        return Err(format!("curl {url}: {} and {written:?}", output.status));
    };
    if status != "200" || bytes.parse::<u64>().ok() != Some(size) {
        return Err(format!("curl {url}: status {status}, {bytes} bytes, expected 200 and {size}"));
    }
    let speed: f64 = speed.parse().map_err(|_| format!("curl {url}: speed {speed:?}"))?;
    Ok(speed / 1e6)
}
