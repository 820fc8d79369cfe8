//! layerpipe itself, served in the test's runtime on a free 127.0.0.1 port until dropped.
//! Both kits' `Layerpipe` types build a [`Config`] their way (from a fake's or a real
//! registry's address) and start it here.

use std::net::SocketAddr;
use std::sync::Arc;

use layerpipe::config::Config;
use layerpipe::routes::App;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// layerpipe serving; it stops when this is dropped.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Running {
    /// Serves `config` as it is, on a port the system picks.
    pub async fn start(config: Config) -> Running {
        let app = Arc::new(App::new(Arc::new(config)));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind layerpipe");
        let addr = listener.local_addr().expect("layerpipe's address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(layerpipe::server::serve(listener, app, async {
            let _ = stopped.await;
        }));
        Running { addr, stop: Some(stop) }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
