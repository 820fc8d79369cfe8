//! The HTTP server: accepts connections, serves each with hyper's HTTP/1 machinery, ends
//! those whose client takes nothing (`client_idle`), and writes one access log line per
//! request when its response has been sent (or cut off).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::client_idle::{ended_when_idle, Progress, Watched};
use crate::error::BoxError;
use crate::routes::{route_label, App, Body};

/// How much of a response hyper queues for the socket before it asks the body for the
/// next frame (its default is ~400 KiB). A queued frame keeps its whole read buffer
/// alive, so with 128 KiB frames the default held four buffers per download on top of
/// the socket's own buffer: most of the 64-streams peak (BENCHMARKS.md, "One download in
/// a few MiB"). The kernel's send buffer keeps the socket busy meanwhile. It also bounds
/// hyper's read buffer, so it is never below the request header limit.
const WRITE_QUEUE_MAX: usize = 64 << 10;

/// Serves `app` on `listener` until `shutdown` completes. Then it stops accepting (new
/// connections are refused), lets in-flight requests finish within the configured grace
/// period, and returns.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let config = app.config();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.timeouts.client_header_read())
        .max_header_size(config.limits.max_request_header_bytes)
        .max_buf_size(WRITE_QUEUE_MAX.max(config.limits.max_request_header_bytes + 8192));
    let grace = config.timeouts.shutdown_grace();
    let client_idle = config.timeouts.client_idle();
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let progress = Progress::new();
        let service = {
            let (app, progress) = (app.clone(), progress.clone());
            service_fn(move |request: Request<Incoming>| {
                let (app, progress) = (app.clone(), progress.clone());
                async move { Ok::<_, std::convert::Infallible>(handle(&app, request, peer, &progress).await) }
            })
        };
        let io = TokioIo::new(Watched::new(stream, progress.clone()));
        let connection = graceful.watch(http.serve_connection(io, service));
        let app = app.clone();
        tokio::spawn(async move {
            match ended_when_idle(connection, &progress, client_idle).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "connection ended with an error"),
                Err(route) => {
                    app.metrics().client_idle_closed(route);
                    tracing::info!(
                        %peer,
                        route,
                        idle_secs = client_idle.as_secs_f64(),
                        "the client took nothing for timeouts.client_idle_secs: connection ended, its slot freed"
                    );
                }
            }
        });
    }
    drop(listener);
    tracing::info!(grace_secs = grace.as_secs_f64(), "shutting down: no new connections, finishing requests in flight");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections finished"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over: cutting off the requests still in flight"),
    }
}

async fn handle(app: &App, request: Request<Incoming>, peer: SocketAddr, progress: &Progress) -> Response<Logged> {
    let started = Instant::now();
    let method = request.method().clone();
    let route = route_label(request.uri().path());
    progress.answering(route);
    let target = request.uri().path_and_query().map_or_else(|| "/".to_owned(), ToString::to_string);
    let response = app.handle(request).await;
    app.metrics().request(route, response.status().as_u16(), started.elapsed());
    let status = response.status();
    response
        .map(|body| Logged { body, access: Access { method, target, peer, status, started, bytes: 0, failed: false } })
}

/// What the access line says about one request.
struct Access {
    method: Method,
    target: String,
    peer: SocketAddr,
    status: StatusCode,
    started: Instant,
    bytes: u64,
    failed: bool,
}

/// A response body that counts what it sends and logs the request when dropped.
pub struct Logged {
    body: Body,
    access: Access,
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                this.access.bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            Poll::Ready(Some(Err(_))) => this.access.failed = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let a = &self.access;
        let outcome = if a.failed {
            "aborted"
        } else if self.body.is_end_stream() {
            "complete"
        } else {
            "client gone"
        };
        tracing::info!(
            target: "access",
            method = %a.method,
            path = %a.target,
            status = a.status.as_u16(),
            bytes = a.bytes,
            ms = a.started.elapsed().as_secs_f64() * 1000.0,
            peer = %a.peer,
            outcome,
        );
    }
}
