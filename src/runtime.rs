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
//!
//! Danger of `SO_REUSEPORT`: the kernel lets any process of the same user bind the same
//! address, so a second layerpipe (a stale one, a restarted unit racing the old one)
//! would start without complaint and silently take part of the connections (issue 22).
//! The first listener therefore claims the address as a plain bind would, and only then
//! opens it to the others (`claimed_listener`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Runtime;

use crate::config::Config;
use crate::config::RuntimeKind;
use crate::routes::App;

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
    // The first listener claims the address and settles the port (the config may say 0);
    // the rest share it.
    let mut address = config.listen;
    let mut listeners = Vec::with_capacity(threads);
    for (i, runtime) in runtimes.iter().enumerate() {
        let _entered = runtime.enter();
        let listener = if i == 0 { claimed_listener(address) } else { reuseport_listener(address) }
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
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

/// The first listener on `address`: fails with "address already in use" when another
/// socket listens there, and otherwise lets this process's [`reuseport_listener`]s join.
///
/// - It binds and listens *without* `SO_REUSEPORT`, so the kernel refuses it while any
///   socket listens on the address, shared or not, exactly as a plain bind is refused.
/// - Only once it listens is `SO_REUSEPORT` turned on; the kernel then lets the other
///   listeners join it, and spreads connections over all of them. From that moment to
///   the end the address always has a listener of ours, so another layerpipe's claim
///   fails: there is no gap between the check and the listening.
/// - A probe that is bound but not listening would leave that gap: two such probes do
///   not conflict (with `SO_REUSEADDR`), so two layerpipes starting at once could both
///   pass, and both then share the port.
/// - Known gap: a program of the same user that binds with `SO_REUSEPORT` without
///   claiming first can still join; under another user the kernel refuses it.
fn claimed_listener(address: SocketAddr) -> io::Result<TcpListener> {
    let listener = listening_socket(address, false)?;
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is the listener's own, open for the whole call, and the
    // option value points at a c_int of the length given.
    let set = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

/// A listener on `address` that joins this process's [`claimed_listener`] there
/// (`SO_REUSEPORT`); the kernel hands each new connection to one of them.
fn reuseport_listener(address: SocketAddr) -> io::Result<TcpListener> {
    listening_socket(address, true)
}

fn listening_socket(address: SocketAddr, reuseport: bool) -> io::Result<TcpListener> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As std's and tokio's own bind do: a restart may listen while old connections
    // linger in TIME_WAIT. It never lets two sockets listen on one address.
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(reuseport)?;
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
        let first = claimed_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = first.local_addr().unwrap();
        let second = reuseport_listener(address).unwrap();
        assert_eq!(second.local_addr().unwrap(), address);
    }

    fn in_use(result: io::Result<TcpListener>) -> bool {
        matches!(result, Err(e) if e.kind() == io::ErrorKind::AddrInUse)
    }

    #[test]
    fn a_claim_fails_while_anyone_listens_and_holds_from_the_start() {
        let runtime = current_thread().unwrap();
        let _entered = runtime.enter();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();

        // Someone else's shared listener: a plain reuseport bind would join it.
        let theirs = reuseport_listener(any).unwrap();
        let address = theirs.local_addr().unwrap();
        assert!(reuseport_listener(address).is_ok(), "the kernel lets a reuseport socket join");
        assert!(in_use(claimed_listener(address)), "a claim must not");
        drop(theirs);

        // A plain listener.
        let plain = std::net::TcpListener::bind(any).unwrap();
        assert!(in_use(claimed_listener(plain.local_addr().unwrap())));

        // Our claim holds before the others join, while they join, and after.
        let ours = claimed_listener(any).unwrap();
        let address = ours.local_addr().unwrap();
        assert!(in_use(claimed_listener(address)));
        let _joined = reuseport_listener(address).unwrap();
        assert!(in_use(claimed_listener(address)));
        drop(ours);
        assert!(in_use(claimed_listener(address)), "the joined listener still holds it");
    }

    #[test]
    fn connections_reach_the_claimed_listener_and_the_joined_ones() {
        let runtime = current_thread().unwrap();
        runtime.block_on(async {
            let first = claimed_listener("127.0.0.1:0".parse().unwrap()).unwrap();
            let address = first.local_addr().unwrap();
            let second = reuseport_listener(address).unwrap();
            // The kernel picks a listener by a hash of the client's address and port, so
            // enough connections reach both; each listener counts its own.
            let mut clients = Vec::new();
            for _ in 0..64 {
                clients.push(tokio::net::TcpStream::connect(address).await.unwrap());
            }
            let (mut a, mut b) = (0, 0);
            while a + b < clients.len() {
                tokio::select! {
                    accepted = first.accept() => { accepted.unwrap(); a += 1; }
                    accepted = second.accept() => { accepted.unwrap(); b += 1; }
                }
            }
            assert!(a > 0 && b > 0, "first {a}, second {b}");
        });
    }
}
