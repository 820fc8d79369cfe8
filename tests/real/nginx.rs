//! nginx running `deploy/nginx.conf` as shipped, with only its ports changed (or its
//! example upstream of several replicas enabled), its files in a temp dir (`-p`),
//! listening on 127.0.0.1. Shared by the tests that put layerpipe behind nginx.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's nginx packages put nginx.
pub const NGINX: &str = "/usr/sbin/nginx";

/// How long nginx may take to start listening.
const NGINX_START_TIMEOUT: Duration = Duration::from_secs(30);

/// nginx, or the message that says how to install it.
pub fn nginx_binary() -> PathBuf {
    if Path::new(NGINX).is_file() {
        return PathBuf::from(NGINX);
    }
    panic!("nginx not installed: run apt-get install -y nginx-light");
}

/// `deploy/nginx.conf` as shipped.
pub fn deploy_conf_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx.conf")
}

/// `deploy/nginx.conf` with only the ports changed: the upstream (`127.0.0.1:8042`) to
/// `upstream`, and `listen 8080` to 127.0.0.1:`port` (loopback only, for a test).
pub fn render(conf: &str, upstream: SocketAddr, port: u16) -> String {
    const SERVER: &str = "server 127.0.0.1:8042;";
    const LISTEN: &str = "listen 8080;";
    assert_eq!(conf.matches(SERVER).count(), 1, "deploy/nginx.conf should have one `{SERVER}`");
    assert_eq!(conf.matches(LISTEN).count(), 1, "deploy/nginx.conf should have one `{LISTEN}`");
    conf.replace(SERVER, &format!("server {upstream};")).replace(LISTEN, &format!("listen 127.0.0.1:{port};"))
}

/// The example upstream of several replicas that `deploy/nginx.conf` ships commented out
/// (its lines start with `#| `), enabled as its comment says: the single-server upstream
/// deleted, the example uncommented, and its `server` lines pointed at `replicas`, in
/// order. The listen port changes as in [`render`]; nothing else does.
pub fn render_replicas(conf: &str, replicas: &[SocketAddr], port: u16) -> String {
    const SINGLE: &str = "    upstream layerpipe {\n        # layerpipe's default listen address";
    const EXAMPLE: &str = "    #| ";
    const EXAMPLE_SERVER: &str = "        server 10.0.0.1";
    assert_eq!(conf.matches(SINGLE).count(), 1, "deploy/nginx.conf should have one single-server upstream");
    let start = conf.find(SINGLE).unwrap();
    let end = start + conf[start..].find("\n    }\n").expect("the upstream block's end") + "\n    }\n".len();
    let without_single = format!("{}{}", &conf[..start], &conf[end..]);
    assert!(conf.lines().filter(|l| l.starts_with(EXAMPLE)).count() > 3, "deploy/nginx.conf should have the example");
    let mut servers = replicas.iter();
    let mut rendered = String::with_capacity(conf.len());
    for line in without_single.lines() {
        let line = match line.strip_prefix(EXAMPLE) {
            Some(example) => format!("    {example}"),
            None if line == "    #|" => String::new(),
            None => line.to_owned(),
        };
        if line.starts_with(EXAMPLE_SERVER) {
            let replica = servers.next().expect("no more example server lines than replicas");
            rendered.push_str(&format!("        server {replica};\n"));
        } else {
            rendered.push_str(&line);
            rendered.push('\n');
        }
    }
    assert!(servers.next().is_none(), "as many example server lines as replicas");
    const LISTEN: &str = "listen 8080;";
    assert_eq!(rendered.matches(LISTEN).count(), 1, "deploy/nginx.conf should have one `{LISTEN}`");
    rendered.replace(LISTEN, &format!("listen 127.0.0.1:{port};"))
}

/// nginx running the rendered `deploy/nginx.conf` in the foreground (`daemon off`), with
/// a temp dir as its prefix (`-p`): pid, logs and temp dirs all land there.
pub struct Nginx {
    master: Child,
    port: u16,
    /// Its prefix: config, logs, temp dirs.
    pub dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx in front of `upstream` on a free loopback port.
    pub fn start(upstream: SocketAddr) -> Nginx {
        Nginx::start_rendered(|conf, port| render(conf, upstream, port))
    }

    /// Starts nginx in front of the example upstream of several `replicas`.
    pub fn start_replicas(replicas: &[SocketAddr]) -> Nginx {
        Nginx::start_rendered(|conf, port| render_replicas(conf, replicas, port))
    }

    /// Starts nginx on a free loopback port with `render(deploy/nginx.conf, port)`.
    pub fn start_rendered(render: impl Fn(&str, u16) -> String) -> Nginx {
        let binary = nginx_binary();
        let conf = std::fs::read_to_string(deploy_conf_path()).expect("read deploy/nginx.conf");
        let dir = tempfile::Builder::new().prefix("layerpipe-nginx-").tempdir().expect("temp dir for nginx");
        // Started by root, nginx's workers run as `nobody`: let them into the prefix.
        set_mode(dir.path(), 0o755);
        let mut failures = Vec::new();
        // The port was free when asked; another process may take it first. Then nginx
        // exits at start, and another port is tried.
        for _ in 0..5 {
            let port = free_port();
            let rendered = dir.path().join("nginx.conf");
            std::fs::write(&rendered, render(&conf, port)).expect("write the rendered nginx.conf");
            let error_log = dir.path().join("error.log");
            let mut master = Command::new(&binary)
                .arg("-p")
                .arg(format!("{}/", dir.path().display()))
                .arg("-c")
                .arg(&rendered)
                // Where nginx logs before it has read error_log from the config.
                .arg("-e")
                .arg(&error_log)
                .arg("-g")
                .arg("daemon off;")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("nginx stderr file"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            let deadline = Instant::now() + NGINX_START_TIMEOUT;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            loop {
                if let Ok(Some(status)) = master.try_wait() {
                    failures.push(format!("port {port}: nginx exited ({status}):\n{}", read(&error_log)));
                    break;
                }
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Nginx { master, port, dir };
                }
                if Instant::now() > deadline {
                    let _ = master.kill();
                    let _ = master.wait();
                    panic!("nginx did not listen on {addr} within {NGINX_START_TIMEOUT:?}:\n{}", read(&error_log));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("nginx did not start:\n{}", failures.join("\n---\n"));
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// The URL a browser makes of `href`, a link on a page under `/explore/`.
    pub fn resolve(&self, href: &str) -> String {
        assert!(!href.starts_with('/') && !href.contains("://"), "layerpipe's links are relative: {href}");
        self.url(&format!("/explore/{}", href.strip_prefix("./").unwrap_or(href)))
    }

    /// The worker processes (the children of the master).
    pub fn workers(&self) -> Vec<u32> {
        children(self.master.id())
    }

    /// nginx's error log, for failure messages.
    pub fn error_log(&self) -> String {
        read(&self.dir.path().join("error.log"))
    }

    /// nginx's access log.
    pub fn access_log(&self) -> String {
        read(&self.dir.path().join("access.log"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM to the master: it stops its workers (KILL would leave them running).
        let workers = self.workers();
        let _ = Command::new("kill").arg("-TERM").arg(self.master.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.master.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for worker in workers {
            let _ = Command::new("kill").arg("-KILL").arg(worker.to_string()).status();
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()))
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod the temp dir");
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// The fields of /proc/PID/stat after the command name (index 0 is field 3, the state).
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The processes whose parent is `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| stat_fields(child).and_then(|f| f.get(1)?.parse::<u32>().ok()) == Some(pid))
        .collect()
}

/// The files `pid` has open (deleted ones included, as their former paths).
pub fn open_files(pid: u32) -> Vec<PathBuf> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("/proc/PID/fd");
    fds.flatten().filter_map(|fd| std::fs::read_link(fd.path()).ok()).collect()
}

/// Sets the peak RSS (VmHWM) of `pid` back to its current RSS; false if not allowed.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The peak RSS (VmHWM) of `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}
