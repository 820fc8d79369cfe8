//! A TCP relay on 127.0.0.1 in front of the real registry that counts the bytes the
//! registry sends: what a layerpipe configured with the relay as the registry's
//! endpoint fetched, measured outside layerpipe.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The relay; it runs until the test's runtime ends.
pub struct CountingRelay {
    addr: SocketAddr,
    from_registry: Arc<AtomicU64>,
}

impl CountingRelay {
    /// A relay to `target`.
    pub async fn start(target: SocketAddr) -> CountingRelay {
        CountingRelay::throttled(target, None).await
    }

    /// A relay to `target` that passes the registry's bytes at most at
    /// `bytes_per_sec` per connection (a slow link), or as fast as they come.
    pub async fn throttled(target: SocketAddr, bytes_per_sec: Option<u64>) -> CountingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the relay");
        let addr = listener.local_addr().unwrap();
        let from_registry = Arc::new(AtomicU64::new(0));
        let counter = from_registry.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(upstream) = TcpStream::connect(target).await else { return };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut upstream_read, mut upstream_write) = upstream.into_split();
                    let up = async move {
                        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
                        let _ = upstream_write.shutdown().await;
                    };
                    let down = async move {
                        let mut buffer = vec![0; 64 * 1024];
                        let (started, mut sent) = (tokio::time::Instant::now(), 0u64);
                        loop {
                            let n = match upstream_read.read(&mut buffer).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            counter.fetch_add(n as u64, Ordering::SeqCst);
                            if client_write.write_all(&buffer[..n]).await.is_err() {
                                break;
                            }
                            sent += n as u64;
                            if let Some(rate) = bytes_per_sec {
                                let due = std::time::Duration::from_secs_f64(sent as f64 / rate as f64);
                                tokio::time::sleep_until(started + due).await;
                            }
                        }
                        let _ = client_write.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        CountingRelay { addr, from_registry }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Bytes the registry has sent through the relay so far.
    pub fn bytes_from_registry(&self) -> u64 {
        self.from_registry.load(Ordering::SeqCst)
    }
}
