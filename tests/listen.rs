//! Listening: a layerpipe refuses an address that another process listens on, as a plain
//! bind would, although its per-core listeners share the address with `SO_REUSEPORT`
//! (issue 22: a second layerpipe on the same port used to start without complaint and
//! take half the connections). The real binary, started as an operator would.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a layerpipe may take to say where it listens, or to give up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the kernel's EADDRINUSE reads as, in the message layerpipe prints.
const IN_USE: &str = "Address already in use";

/// Per-core listeners, two of them (as on this two-core machine), and no index store.
const CONFIG: &str = r#"{"runtime":"per_core","worker_threads":2,"index":{"dir":""}}"#;

/// A layerpipe process, killed when dropped; its stderr lines are collected.
struct Layerpipe {
    child: Child,
    lines: mpsc::Receiver<String>,
    reader: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Layerpipe {
    fn spawn(listen: SocketAddr) -> Layerpipe {
        let dir = tempfile::Builder::new().prefix("layerpipe-listen-").tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(&config, CONFIG).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_layerpipe"))
            .arg("--config")
            .arg(&config)
            .args(["--listen", &listen.to_string()])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Layerpipe { child, lines, reader: Some(reader), _dir: dir }
    }

    /// The address it says it serves on (its "layerpipe serving" line).
    fn serving_address(&self) -> SocketAddr {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else { break };
            if let Some(rest) = line.split("listen=").nth(1) {
                return rest.split_whitespace().next().unwrap().parse().unwrap();
            }
            seen.push(line);
        }
        panic!("layerpipe did not say where it listens:\n{}", seen.join("\n"));
    }

    /// Its exit status and everything it logged, once it exits by itself; a layerpipe
    /// still running after [`START_TIMEOUT`] is killed and reported.
    fn exit(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + START_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let log: Vec<String> = self.lines.try_iter().collect();
                panic!("layerpipe is still running after {START_TIMEOUT:?}:\n{}", log.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.reader.take().unwrap().join().unwrap();
        (status, self.lines.try_iter().collect::<Vec<_>>().join("\n"))
    }
}

impl Drop for Layerpipe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status line of `GET /healthz` at `address`.
fn healthz(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(START_TIMEOUT)).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

/// Starts a layerpipe on `address` and checks that it refuses it: a non-zero exit, and
/// the reason in what it prints.
fn assert_refused(address: SocketAddr) {
    let (status, log) = Layerpipe::spawn(address).exit();
    assert!(!status.success(), "layerpipe on a taken {address} exited with {status}:\n{log}");
    assert!(log.contains(IN_USE) && log.contains(&address.to_string()), "no reason given:\n{log}");
    assert!(!log.contains("layerpipe serving"), "it served before giving up:\n{log}");
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[test]
fn a_second_layerpipe_on_a_bound_address_exits_with_the_reason() {
    let first = Layerpipe::spawn(any_port());
    let address = first.serving_address();
    assert_refused(address);
    // The first goes on serving, alone: every connection reaches it.
    for _ in 0..8 {
        assert_eq!(healthz(address), "HTTP/1.1 200 OK");
    }
    drop(first);
}

#[test]
fn a_port_held_by_a_plain_listener_is_refused() {
    let plain = std::net::TcpListener::bind(any_port()).unwrap();
    assert_refused(plain.local_addr().unwrap());
}

#[test]
fn a_port_held_by_another_process_shared_listener_is_refused() {
    // A listener that lets others join (SO_REUSEPORT), of the same user: the kernel
    // would let layerpipe's per-core listeners join it and share its connections.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _entered = runtime.enter();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseport(true).unwrap();
    socket.bind(any_port()).unwrap();
    let shared = socket.listen(16).unwrap();
    assert_refused(shared.local_addr().unwrap());
}
