//! The proxies under test, each started as its own process in a directory of its own:
//! layerpipe from a JSON config, nginx from a generated `nginx.conf` (master and one
//! worker; the worker is the process measured). Starting waits until the port accepts
//! connections; dropping stops the process (nginx through its master, so no worker is
//! orphaned).

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::options::require_nginx;
use super::procfs::children;

/// How long a started proxy gets to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A proxy running as its own process.
pub(super) struct Proxy {
    child: Child,
    /// The process that moves the bytes (nginx: the worker, not the master).
    pub(super) worker: u32,
    pub(super) port: u16,
    dir: PathBuf,
    pub(super) nginx: bool,
}

impl Proxy {
    pub(super) fn start_layerpipe(binary: &Path, dir: &Path, origin_host: &str, verify: bool) -> Result<Proxy, String> {
        Proxy::start_layerpipe_with(binary, dir, origin_host, verify, "")
    }

    /// Like [`Proxy::start_layerpipe`], with `extra` (`"key":value,…`) added to its config.
    pub(super) fn start_layerpipe_with(
        binary: &Path,
        dir: &Path,
        origin_host: &str,
        verify: bool,
        extra: &str,
    ) -> Result<Proxy, String> {
        let registry = format!(r#""{origin_host}":{{"endpoint":"http://{origin_host}"}}"#);
        Proxy::start_layerpipe_config(
            binary,
            dir,
            &format!(r#"{{{extra}"verify_digests":{verify},"index":{{"dir":""}},"registries":{{{registry}}}}}"#),
        )
    }

    /// layerpipe with this whole JSON `config`.
    pub(super) fn start_layerpipe_config(binary: &Path, dir: &Path, config: &str) -> Result<Proxy, String> {
        if !binary.is_file() {
            return Err(format!("{} does not exist: run cargo build --release", binary.display()));
        }
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let config_text = config;
        let config = dir.join("layerpipe.json");
        std::fs::write(&config, config_text).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.join("layerpipe.log")).map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", std::env::var("LOAD_LAYERPIPE_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let worker = child.id();
        let mut proxy = Proxy { child, worker, port, dir: dir.to_owned(), nginx: false };
        proxy.wait_until_listening("layerpipe.log")?;
        Ok(proxy)
    }

    pub(super) fn start_nginx(
        binary: &Path,
        dir: &Path,
        origin_host: &str,
        token: &str,
        directives: &[String],
        concurrency: usize,
    ) -> Result<Proxy, String> {
        require_nginx(binary)?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let prefix = dir.display();
        let location: String = directives.iter().map(|d| format!("      {d}\n")).collect();
        let config = format!(
            "pid {prefix}/nginx.pid;
events {{ worker_connections {connections}; }}
http {{
  access_log {prefix}/access.log;
  client_body_temp_path {prefix}/client_body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  upstream origin {{ server {origin_host}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
{location}      proxy_pass http://origin;
      # nginx cannot do the registry's token dance: the token is fixed here.
      proxy_set_header Authorization \"Bearer {token}\";
    }}
  }}
}}
",
            connections = (4 * concurrency).max(1024),
        );
        Proxy::start_nginx_config(binary, dir, port, &config)
    }

    /// nginx with this whole `config` (which listens on 127.0.0.1:`port`), its worker
    /// measured.
    pub(super) fn start_nginx_config(binary: &Path, dir: &Path, port: u16, config: &str) -> Result<Proxy, String> {
        require_nginx(binary)?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("nginx.conf"), config).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("stderr.log")).map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-g")
            .arg("daemon off; master_process on; worker_processes 1;")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let master = child.id();
        let mut proxy = Proxy { child, worker: master, port, dir: dir.to_owned(), nginx: true };
        proxy.wait_until_listening("error.log")?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(worker) = children(master).first() {
                proxy.worker = *worker;
                return Ok(proxy);
            }
            if Instant::now() > deadline {
                return Err("nginx started no worker process".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_until_listening(&mut self, log: &str) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join(log)).unwrap_or_default();
                return Err(format!("the proxy exited ({status}) at start: {log}"));
            }
            if StdStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("the proxy did not listen on {address}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(super) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.nginx {
            // TERM to the master: it stops its worker (a KILL would orphan the worker).
            let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = Command::new("kill").arg("-KILL").arg(self.worker.to_string()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub(super) fn free_port() -> Result<u16, String> {
    let listener = StdListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Sets `path`'s permission bits: nginx's worker runs as `nobody` when started by root,
/// and must still reach its directory and the files it is given.
pub(super) fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}
