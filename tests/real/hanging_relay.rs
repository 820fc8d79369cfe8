//! An HTTP relay on 127.0.0.1 in front of the real registry that never answers the
//! requests a test picks by path (the referrers API, say) and passes every other one
//! on: a registry that hangs on one kind of request only, which the real one cannot be
//! made to do.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// The relay; it runs until the test's runtime ends.
pub struct HangingRelay {
    addr: SocketAddr,
    hung: Arc<AtomicUsize>,
}

impl HangingRelay {
    /// A relay to `target` that never answers a request whose path `hangs` picks.
    pub async fn start(target: SocketAddr, hangs: fn(&str) -> bool) -> HangingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the relay");
        let addr = listener.local_addr().unwrap();
        let hung = Arc::new(AtomicUsize::new(0));
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let counter = hung.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (client, counter) = (client.clone(), counter.clone());
                let service = service_fn(move |request: Request<Incoming>| {
                    let (client, counter) = (client.clone(), counter.clone());
                    async move {
                        if hangs(request.uri().path()) {
                            counter.fetch_add(1, Ordering::SeqCst);
                            std::future::pending::<()>().await;
                        }
                        let (mut parts, body) = request.into_parts();
                        let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                        parts.uri = format!("http://{target}{path}").parse().unwrap();
                        client.request(Request::from_parts(parts, Full::new(body))).await
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        HangingRelay { addr, hung }
    }

    /// `http://127.0.0.1:PORT`, to configure as the registry's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests it has left unanswered so far.
    pub fn hung(&self) -> usize {
        self.hung.load(Ordering::SeqCst)
    }
}
