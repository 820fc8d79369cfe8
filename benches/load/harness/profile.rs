//! `LOAD_PERF_DIR`: after the last run, `perf stat`, `perf record -g` and `strace` are
//! attached in turn to each proxy during one more download each, their output left in
//! that directory; then `strace -f -c` during a curl download gives the system calls per
//! GiB the report lists. Profiling slows the proxies, so it never overlaps a measurement.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::client::Download;
use super::proxy::Proxy;
use super::report::GIB;
use super::routes::Route;

/// `perf stat`, `perf record -g` and `strace` (the I/O system calls, with their sizes),
/// each attached to a proxy for one more large download; output goes to `dir`. Then
/// `strace -f -c` (system call counts, all threads) during one more, with curl as the
/// client: `SLUG.syscalls.txt`.
pub(super) async fn profile<F, Fut>(
    dir: &Path,
    routes: &[Route],
    proxies: &[Option<Proxy>],
    get: &F,
    curl: &dyn Fn(usize) -> Result<f64, String>,
) -> Result<(), String>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<Download, String>>,
{
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for (i, proxy) in proxies.iter().enumerate() {
        let Some(p) = proxy else { continue };
        let pid = p.worker.to_string();
        let out = |suffix: &str| dir.join(format!("{}.{suffix}", routes[i].slug)).display().to_string();
        let (stat, record, strace) = (out("stat.txt"), out("perf.data"), out("strace.txt"));
        let tools = [
            ("perf", vec!["stat", "-d", "-p", &pid, "-o", &stat]),
            ("perf", vec!["record", "-g", "-F", "999", "-p", &pid, "-o", &record]),
            (
                "strace",
                vec![
                    "-f",
                    "-qq",
                    "-e",
                    "trace=read,readv,recvfrom,recvmsg,write,writev,sendto,sendmsg,epoll_wait,epoll_pwait",
                    "-p",
                    &pid,
                    "-o",
                    &strace,
                ],
            ),
        ];
        for (program, args) in tools {
            let mut tool = Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot run {program}: {e}"))?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let result = get(i).await;
            let _ = Command::new("kill").arg("-INT").arg(tool.id().to_string()).status();
            let _ = tool.wait();
            result?;
        }
        let counts = out("syscalls.txt");
        let mut strace = Command::new("strace")
            .args(["-f", "-c", "-o", &counts, "-p", &pid])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run strace: {e}"))?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let result = curl(i);
        let _ = Command::new("kill").arg("-INT").arg(strace.id().to_string()).status();
        let _ = strace.wait();
        result?;
    }
    Ok(())
}

/// `epoll_wait` (and `epoll_pwait`), `futex` and read calls per GiB, from each proxy's
/// `strace -c` summary left by [`profile`].
pub(super) fn syscall_counts(dir: &Path, routes: &[Route], bytes: u64) -> Vec<(String, [f64; 3])> {
    let per_gib = bytes as f64 / GIB;
    routes
        .iter()
        .filter_map(|route| {
            let text = std::fs::read_to_string(dir.join(format!("{}.syscalls.txt", route.slug))).ok()?;
            let mut counts = [0.0; 3];
            for line in text.lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // % time, seconds, usecs/call, calls, [errors,] syscall
                let (Some(name), Some(calls)) = (fields.last(), fields.get(3).and_then(|c| c.parse::<f64>().ok()))
                else {
                    continue;
                };
                let slot = match *name {
                    "epoll_wait" | "epoll_pwait" | "epoll_pwait2" => 0,
                    "futex" => 1,
                    "read" | "readv" | "recvfrom" | "recvmsg" => 2,
                    _ => continue,
                };
                counts[slot] += calls / per_gib;
            }
            Some((route.label.clone(), counts))
        })
        .collect()
}
