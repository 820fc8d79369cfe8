//! The deployment files in `deploy/` that can be checked on this machine without a
//! Docker engine, a systemd-run machine or a cluster (see deploy/README.md):
//!
//! - `layerpipe.service`: `systemd-analyze verify` (no unknown keys or bad values) and
//!   `systemd-analyze security --offline` (the sandbox stays tight);
//! - `Dockerfile`: its `HEALTHCHECK` command, run as it is against layerpipe.
//!
//! `nginx.conf` is checked by tests/nginx.rs. Needs `systemd-analyze` (package `systemd`)
//! and `bash`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use layerpipe::config::Config;
use layerpipe::routes::App;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const SYSTEMD_ANALYZE: &str = "/usr/bin/systemd-analyze";

/// The highest `systemd-analyze security` exposure allowed, in its tenths (20 is 2.0,
/// "OK"; the unit scores about 1.1).
const MAX_EXPOSURE: u32 = 20;

/// How long the health check command may take.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(10);

fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(name)
}

fn systemd_analyze() -> &'static str {
    if !Path::new(SYSTEMD_ANALYZE).is_file() {
        panic!("systemd-analyze not installed: run apt-get install -y systemd");
    }
    SYSTEMD_ANALYZE
}

/// `deploy/layerpipe.service` with its binary path pointed at this build's layerpipe
/// (`verify` insists that ExecStart's program exists), in a temp dir.
fn unit_for_this_build() -> (tempfile::TempDir, PathBuf) {
    let unit = std::fs::read_to_string(deploy_file("layerpipe.service")).expect("read deploy/layerpipe.service");
    const BINARY: &str = "/usr/local/bin/layerpipe";
    assert!(unit.contains(&format!("ExecStart={BINARY} ")), "ExecStart runs {BINARY}");
    let dir = tempfile::Builder::new().prefix("layerpipe-unit-").tempdir().expect("temp dir");
    let path = dir.path().join("layerpipe.service");
    std::fs::write(&path, unit.replace(BINARY, env!("CARGO_BIN_EXE_layerpipe"))).expect("write the unit");
    (dir, path)
}

#[test]
fn systemd_unit_verifies_cleanly() {
    let (_dir, unit) = unit_for_this_build();
    let output = Command::new(systemd_analyze())
        .arg("verify")
        .arg("--man=no")
        .arg(&unit)
        .stdin(Stdio::null())
        .output()
        .expect("run systemd-analyze verify");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    // Unknown keys and bad values are only warnings ("…, ignoring."): none is allowed.
    assert!(output.status.success() && said.trim().is_empty(), "systemd-analyze verify layerpipe.service:\n{said}");
}

#[test]
fn systemd_unit_sandbox_exposure_is_low() {
    let (_dir, unit) = unit_for_this_build();
    let output = Command::new(systemd_analyze())
        .arg("security")
        .arg("--offline=yes")
        .arg(format!("--threshold={MAX_EXPOSURE}"))
        .arg("--no-pager")
        .arg(&unit)
        .stdin(Stdio::null())
        .output()
        .expect("run systemd-analyze security");
    let said = String::from_utf8_lossy(&output.stdout);
    let overall = said.lines().find(|l| l.contains("Overall exposure level")).unwrap_or("(no overall level)");
    assert!(
        output.status.success(),
        "exposure above {MAX_EXPOSURE} tenths: {overall}\n{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{overall}");
}

/// The `HEALTHCHECK … CMD [...]` of `deploy/Dockerfile`, as the argument vector Docker runs.
fn dockerfile_healthcheck() -> Vec<String> {
    let dockerfile = std::fs::read_to_string(deploy_file("Dockerfile")).expect("read deploy/Dockerfile");
    // Instructions continue over lines ending in a backslash.
    let joined = dockerfile.replace("\\\n", " ");
    let line = joined.lines().find(|l| l.starts_with("HEALTHCHECK ")).expect("a HEALTHCHECK instruction");
    let (_, command) = line.split_once(" CMD ").expect("HEALTHCHECK … CMD");
    serde_json::from_str(command.trim())
        .unwrap_or_else(|e| panic!("CMD is not an exec-form JSON array ({e}): {command}"))
}

/// Runs the health check against 127.0.0.1:`port` instead of 8042; whether it passed.
async fn run_healthcheck(command: &[String], port: u16) -> bool {
    let args: Vec<String> = command.iter().map(|a| a.replace("127.0.0.1/8042", &format!("127.0.0.1/{port}"))).collect();
    let mut child = Command::new(&args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", args[0]));
    // Polled, not waited on: the runtime must go on serving the layerpipe being checked.
    let deadline = tokio::time::Instant::now() + HEALTHCHECK_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("poll the health check") {
            return status.success();
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the health check did not finish within {HEALTHCHECK_TIMEOUT:?}: {args:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerfile_healthcheck_tells_healthy_from_not() {
    let command = dockerfile_healthcheck();
    assert!(command.iter().any(|a| a.contains("127.0.0.1/8042")), "it checks port 8042: {command:?}");
    assert!(command.iter().any(|a| a.contains("/healthz")), "it asks /healthz: {command:?}");

    // layerpipe, as the container runs it (defaults; nothing asks a registry).
    let app = Arc::new(App::new(Arc::new(Config::default())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind layerpipe");
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(layerpipe::server::serve(listener, app, async {
        let _ = stopped.await;
    }));
    assert!(run_healthcheck(&command, port).await, "healthy layerpipe on port {port}: the check must pass");

    // Something that answers, but not 200.
    let unhealthy = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let unhealthy_port = unhealthy.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = unhealthy.accept().await {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).await;
            let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").await;
        }
    });
    assert!(!run_healthcheck(&command, unhealthy_port).await, "a 503 must fail the check");

    // Nothing listening.
    let closed = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    assert!(!run_healthcheck(&command, closed_port).await, "a closed port must fail the check");
    let _ = stop.send(());
}
