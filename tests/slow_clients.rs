//! Clients that ask and then read nothing, against the real registry (tests/real/):
//!
//! - 32 saves of a 16 MiB file whose clients never read take at most the saves' share
//!   of the slots (24), the rest answered 503 at once, so a new preview still answers
//!   200 while they hang;
//! - with `timeouts.client_idle_secs` short, stuck saves are ended, counted in
//!   `layerpipe_client_idle_closed_total{route="save"}`, and their slots freed: a save
//!   read to the end afterwards gets every byte.
//!
//! The stuck clients shrink their receive buffers so that the server's writes are
//! refused soon, as a real stalled browser's would be once its buffers fill.
//!
//! Needs `/usr/bin/docker-registry` (`apt-get install -y docker-registry`).

mod real;

use std::time::{Duration, Instant};

use http::StatusCode;
use layerpipe::config::Config;
use layerpipe::query::encode;
use real::images::{self, BuiltLayer};
use real::{Layerpipe, RealRegistry};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// 16 MiB that gzip cannot shrink: more than a socket's buffers hold.
fn incompressible(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An image with `big.bin` and `small.txt` in one layer; layerpipe serving it with
/// `client_idle_secs`; and the layer's `save/` and `fs/` query, indexed already.
async fn setup(client_idle_secs: f64) -> (RealRegistry, Layerpipe, String, Vec<u8>) {
    let registry = RealRegistry::start();
    let big = incompressible(16 << 20);
    let layer = BuiltLayer::new(images::OCI_LAYER_GZIP, &[("big.bin", &big), ("small.txt", b"hello\n")]);
    let pusher = registry.pusher("slow/app").await;
    let image = pusher.push_image(Some("v1"), images::OCI_MANIFEST, images::OCI_CONFIG, "amd64", vec![layer]).await;
    let config = Config::parse(&format!(
        r#"{{"timeouts": {{"client_idle_secs": {client_idle_secs}}},
            "registries": {{"{host}": {{"endpoint": "{endpoint}"}}}}}}"#,
        host = registry.host(),
        endpoint = registry.endpoint(),
    ))
    .unwrap();
    let lp = Layerpipe::with_config(config).await;
    let query = format!(
        "?image={}&digest={}&layer=1&mt={}",
        encode(&image.reference),
        encode(&image.layers[0].digest),
        encode(images::OCI_LAYER_GZIP)
    );
    // The first visit reads the layer into its index: saves and previews then read by range.
    let (status, _) = get(&lp.url(&format!("files{query}"))).await;
    assert_eq!(status, StatusCode::OK);
    (registry, lp, query, big)
}

async fn get(url: &str) -> (StatusCode, bytes::Bytes) {
    use http_body_util::{BodyExt as _, Empty};
    let client: hyper_util::client::legacy::Client<_, Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let response = client.get(url.parse().unwrap()).await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let status = response.status();
    (status, response.into_body().collect().await.unwrap().to_bytes())
}

/// A client that asks for `target` and reads only the status line; its receive buffer
/// is small, so the rest stays in flight.
async fn stuck_client(base: &str, target: &str) -> (TcpStream, String) {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(format!("GET {target} HTTP/1.1\r\nHost: layerpipe\r\n\r\n").as_bytes()).await.unwrap();
    let mut status = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut status))
        .await
        .expect("a status line within 30 s")
        .unwrap();
    (stream, String::from_utf8_lossy(&status).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_saves_leave_previews_their_slots() {
    // Long enough that nothing is ended during the test.
    let (_registry, lp, query, _) = setup(600.0).await;
    let mut stuck = Vec::new();
    for _ in 0..32 {
        stuck.push(stuck_client(&lp.base, &format!("/save/big.bin{query}")).await);
    }
    let statuses: Vec<&str> = stuck.iter().map(|(_, s)| s.as_str()).collect();
    let held = statuses.iter().filter(|s| **s == "HTTP/1.1 200").count();
    let refused = statuses.iter().filter(|s| **s == "HTTP/1.1 503").count();
    assert_eq!((held, refused), (24, 8), "saves may take 24 of the 32 slots: {statuses:?}");

    // A preview still gets a slot while they hang, and shows the file.
    let (status, page) = get(&lp.url(&format!("fs/small.txt{query}"))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&page));
    assert!(String::from_utf8_lossy(&page).contains("hello"));
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_takes_nothing_is_ended_and_its_slot_freed() {
    let (_registry, lp, query, big) = setup(1.0).await;
    let mut stuck = Vec::new();
    for _ in 0..24 {
        let (stream, status) = stuck_client(&lp.base, &format!("/save/big.bin{query}")).await;
        assert_eq!(status, "HTTP/1.1 200");
        stuck.push(stream);
    }
    // Each is ended after about a second of refused writes, and counted.
    let started = Instant::now();
    loop {
        let (_, metrics) = get(&lp.url("metrics")).await;
        let metrics = String::from_utf8_lossy(&metrics).into_owned();
        if metrics.contains("layerpipe_client_idle_closed_total{route=\"save\"} 24") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "stuck clients were not ended: {metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Their connections are closed: what was in flight drains, then the end.
    for mut stream in stuck {
        let mut sink = vec![0u8; 1 << 16];
        let read = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
        read.await.expect("an ended connection reaches its end");
    }
    // Every slot is free again: saves read to the end get every byte.
    for _ in 0..24 {
        let (status, body) = get(&lp.url(&format!("save/big.bin{query}"))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body[..] == big[..], "a save after the stuck ones was not the file");
    }
}
