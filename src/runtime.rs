//! Which threads serve requests: tokio's multi-threaded runtime, or one current-thread
//! runtime per core, each with a listener of its own (`runtime` in the config).
//!
//! A download is one task that reads the registry and writes to the client; it needs one
//! thread at a time. Under the multi-threaded runtime, every time that task is woken by
//! the I/O driver the runtime also wakes an idle worker to look for work to steal, and
//! the idle worker finds none and parks again: a few `epoll_wait` and `futex` calls per
//! read, and a core that the registry and the client could have used (issue 13).
//!
//! With `per_core`, each thread runs a current-thread runtime with its own
//! `SO_REUSEPORT` listener on the same address: the kernel spreads connections over the
//! listeners, and a connection, its requests and their registry connections stay on the
//! thread that accepted it. No thread wakes another for a download. What is shared is
//! shared as before: the caches, the token cache, the download slots and the multipart
//! budget are thread-safe, and a pooled registry connection may be used from any thread.
//! The cost: a thread busy with one connection is not helped by an idle one, so many
//! streams on a few connections can spread less evenly than tasks do.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Deserialize;
use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Runtime;

use crate::config::Config;
use crate::routes::App;

/// How requests are spread over threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    /// One tokio multi-threaded runtime with `worker_threads` workers, one listener.
    MultiThread,
    /// `worker_threads` threads, each a current-thread runtime with its own
    /// `SO_REUSEPORT` listener. The default: on loopback it took half the CPU per GiB of
    /// the multi-threaded runtime, and a tenth of its `epoll_wait` calls (BENCHMARKS.md).
    #[default]
    PerCore,
}

/// Connections a listener lets wait for `accept`.
const BACKLOG: u32 = 1024;

/// Serves `config` until `shutdown` completes, on the threads `config.runtime` asks for;
/// then lets requests in flight finish (see [`crate::server::serve`]) and returns.
/// `shutdown` is polled on the calling thread's runtime, so it may use tokio's signals.
/// Fails when the address cannot be listened on.
pub fn serve<F, S>(config: Config, shutdown: F) -> Result<(), String>
where
    F: FnOnce() -> S,
    S: Future<Output = ()>,
{
    let threads = config.worker_threads;
    match (config.runtime, threads) {
        (RuntimeKind::MultiThread, 1) => serve_on(current_thread()?, config, shutdown),
        (RuntimeKind::MultiThread, n) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(n)
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the runtime: {e}"))?;
            serve_on(runtime, config, shutdown)
        }
        (RuntimeKind::PerCore, n) => serve_per_core(config, n, shutdown),
    }
}

fn current_thread() -> Result<Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))
}

/// One runtime, one listener.
fn serve_on<F, S>(runtime: Runtime, config: Config, shutdown: F) -> Result<(), String>
where
    F: FnOnce() -> S,
    S: Future<Output = ()>,
{
    runtime.block_on(async {
        let listener =
            TcpListener::bind(config.listen).await.map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        log_serving(&listener, &config, 1);
        let app = Arc::new(App::try_new(Arc::new(config))?);
        crate::server::serve(listener, app, shutdown()).await;
        Ok(())
    })
}

/// `threads` current-thread runtimes, each with its own listener on the same address;
/// the calling thread runs the first and tells the others when to stop.
fn serve_per_core<F, S>(config: Config, threads: usize, shutdown: F) -> Result<(), String>
where
    F: FnOnce() -> S,
    S: Future<Output = ()>,
{
    let runtimes = (0..threads).map(|_| current_thread()).collect::<Result<Vec<_>, _>>()?;
    // The first listener settles the port (the config may say 0); the rest share it.
    let mut address = config.listen;
    let mut listeners = Vec::with_capacity(threads);
    for runtime in &runtimes {
        let _entered = runtime.enter();
        let listener = reuseport_listener(address).map_err(|e| format!("cannot listen on {address}: {e}"))?;
        address = listener.local_addr().map_err(|e| format!("cannot listen on {address}: {e}"))?;
        listeners.push(listener);
    }
    log_serving(&listeners[0], &config, threads);
    let app = {
        let _entered = runtimes[0].enter();
        Arc::new(App::try_new(Arc::new(config))?)
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut pairs = runtimes.into_iter().zip(listeners);
    let (first_runtime, first_listener) = pairs.next().expect("at least one thread");
    let others: Vec<_> = pairs
        .enumerate()
        .map(|(i, (runtime, listener))| {
            let (app, mut stopped) = (app.clone(), stopped.clone());
            std::thread::Builder::new()
                .name(format!("layerpipe-{}", i + 1))
                .spawn(move || {
                    runtime.block_on(crate::server::serve(listener, app, async move {
                        // A dropped sender means the first thread is gone: stop too.
                        let _ = stopped.wait_for(|&stop| stop).await;
                    }));
                })
                .map_err(|e| format!("cannot start a serving thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let shutdown = shutdown();
    first_runtime.block_on(crate::server::serve(first_listener, app, async move {
        shutdown.await;
        let _ = stop.send(true);
    }));
    for thread in others {
        let _ = thread.join();
    }
    Ok(())
}

/// A listener on `address` that other sockets of this process may bind too
/// (`SO_REUSEPORT`); the kernel hands each new connection to one of them.
fn reuseport_listener(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As std's and tokio's own bind do: a restart may listen while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

fn log_serving(listener: &TcpListener, config: &Config, listeners: usize) {
    let bound = listener.local_addr().map_or_else(|_| config.listen.to_string(), |a| a.to_string());
    tracing::info!(
        listen = %bound,
        registries = config.registries.len(),
        runtime = ?config.runtime,
        threads = config.worker_threads,
        listeners,
        "layerpipe serving"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_core_listeners_share_one_port() {
        let runtime = current_thread().unwrap();
        let _entered = runtime.enter();
        let first = reuseport_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = first.local_addr().unwrap();
        let second = reuseport_listener(address).unwrap();
        assert_eq!(second.local_addr().unwrap(), address);
    }
}
