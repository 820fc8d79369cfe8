//! Listing a layer: how long layerpipe takes to list a 1 GiB tar+gzip layer, against
//! `gzip -dc FILE | tar -t > /dev/null` on the same blob, and what listing does to the
//! rest of the server while it runs.
//!
//! `cargo bench --bench listing` (`-- --mib 256` for a smaller layer). The layer is made
//! at run time (many files of compressible pseudo-random text, gzip level 6) in a
//! temporary directory and deleted afterwards; nothing is committed. Prints a table for
//! BENCHMARKS.md ("Listing a layer").
//!
//! Figures, each the best of three, wall time and CPU time (the machine is shared, so
//! wall time includes waiting for a core; CPU time does not):
//! - `gzip -dc | tar -t`: the reference (and `gzip -dc` alone, to show its share).
//! - scanner: the blob from memory through layerpipe's decompressor and tar reader on
//!   one thread, in 64 KiB frames (the work itself).
//! - layerpipe `/files`: the whole path, an in-process fake registry serving the blob
//!   over loopback, layerpipe reading it and rendering the page (cache off: a new
//!   layerpipe each run), with digest verification off and on. Its CPU time includes
//!   the fake registry's and the client's.
//! - `/healthz` latency while two listings run at once, with decompression on blocking
//!   threads (what layerpipe does) and, for comparison, inline on the runtime's workers
//!   (per frame, yielding between frames).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use layerpipe::layer::decompress::Decompressor;
use layerpipe::layer::listing::{ListingBuilder, Summary};
use layerpipe::layer::tar::Scanner;
use support::*;

const FRAME: usize = 64 * 1024;
const RUNS: usize = 3;

fn main() {
    let mib = std::env::args()
        .skip_while(|a| a != "--mib")
        .nth(1)
        .map_or(1024, |n| n.parse::<usize>().expect("--mib takes a number"));
    let dir = tempfile::Builder::new().prefix("layerpipe-listing-").tempdir().expect("temp dir");
    let path = dir.path().join("layer.tar.gz");

    let started = Instant::now();
    let (tar_bytes, files) = write_layer(&path, mib << 20);
    let blob = Bytes::from(std::fs::read(&path).expect("read the layer"));
    println!(
        "layer: {files} files, {:.0} MiB of tar, {:.0} MiB gzip -6 ({:.2}:1), made in {:.1?}",
        tar_bytes as f64 / 1048576.0,
        blob.len() as f64 / 1048576.0,
        tar_bytes as f64 / blob.len() as f64,
        started.elapsed()
    );

    let (reference, reference_cpu) = best(|| shell("gzip -dc \"$0\" | tar -t > /dev/null", &path));
    report("gzip -dc FILE | tar -t > /dev/null", (reference, reference_cpu), tar_bytes, None);
    let gunzip = best(|| shell("gzip -dc \"$0\" > /dev/null", &path));
    report("gzip -dc FILE > /dev/null (decompression alone)", gunzip, tar_bytes, Some(reference));

    let scanner = best(|| {
        let (t, cpu) = (Instant::now(), cpu_time());
        let entries = scan_in_memory(&blob);
        assert_eq!(entries, files + 1, "every file and the directory");
        (t.elapsed(), cpu_time() - cpu)
    });
    report("layerpipe scanner, one thread, from memory", scanner, tar_bytes, Some(reference));

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    for verify in [false, true] {
        let took = best(|| {
            let cpu = cpu_time();
            let took = runtime.block_on(list_over_http(&blob, verify));
            (took, cpu_time() - cpu)
        });
        let label = format!("layerpipe GET /files, fake registry, verify_digests={verify}");
        report(&label, took, tar_bytes, Some(reference));
    }

    println!("\n/healthz while 2 listings run at once (2 cores, 2 runtime workers):");
    for inline in [false, true] {
        let (p50, p99, max, n) = runtime.block_on(responsiveness(&blob, inline));
        let how = if inline { "inline on the runtime" } else { "on blocking threads (layerpipe)" };
        println!("  decompression {how:34} p50 {p50:>8.2?}  p99 {p99:>8.2?}  max {max:>8.2?}  ({n} probes)");
    }
}

/// Best of [`RUNS`] by wall time: (wall, CPU).
fn best(mut run: impl FnMut() -> (Duration, Duration)) -> (Duration, Duration) {
    (0..RUNS).map(|_| run()).min().expect("at least one run")
}

/// Runs a bash `command` with `$0` set to `file`: (wall, CPU of user and system).
fn shell(command: &str, file: &std::path::Path) -> (Duration, Duration) {
    let t = Instant::now();
    let script = format!("set -o pipefail; TIMEFORMAT='%U %S'; time ( {command} )");
    let out = Command::new("bash").arg("-c").arg(script).arg(file).output().expect("run bash");
    let took = t.elapsed();
    assert!(out.status.success(), "{command} failed: {}", String::from_utf8_lossy(&out.stderr));
    let times = String::from_utf8_lossy(&out.stderr);
    let cpu: f64 = times.split_whitespace().map(|s| s.parse::<f64>().expect("seconds")).sum();
    (took, Duration::from_secs_f64(cpu))
}

/// CPU time (user and system) this process has used, from `/proc/self/stat` (in
/// clock ticks of 1/100 s, Linux's USER_HZ).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat.rsplit_once(')').expect("comm").1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

fn report(label: &str, (took, cpu): (Duration, Duration), tar_bytes: u64, reference: Option<Duration>) {
    let rate = tar_bytes as f64 / took.as_secs_f64() / 1048576.0;
    let relative = reference
        .map_or(String::new(), |r| format!("  {:.2}x the reference's time", took.as_secs_f64() / r.as_secs_f64()));
    println!(
        "{label:58} {:>6.2} s wall {:>6.2} s CPU  {rate:>4.0} MiB/s of tar{relative}",
        took.as_secs_f64(),
        cpu.as_secs_f64()
    );
}

/// Writes a tar+gzip layer of about `target` bytes of tar: files of 1 to 256 KiB of
/// words drawn from a small vocabulary (text that gzip -6 compresses about 2.3:1).
fn write_layer(path: &std::path::Path, target: usize) -> (u64, usize) {
    let file = std::fs::File::create(path).expect("create the layer");
    let gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::new(6));
    let mut tar = tar::Builder::new(gz);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let words: Vec<Vec<u8>> =
        (0..4096).map(|_| (0..3 + next() % 8).map(|_| b'a' + (next() % 26) as u8).collect()).collect();
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o755);
    header.set_cksum();
    tar.append_data(&mut header, "data/", std::io::empty()).expect("append a dir");
    let (mut written, mut files, mut text) = (0usize, 0usize, Vec::new());
    while written < target {
        let size = 1024 + (next() % (255 * 1024)) as usize;
        text.clear();
        while text.len() < size {
            text.extend_from_slice(&words[(next() % words.len() as u64) as usize]);
            text.push(if next() % 12 == 0 { b'\n' } else { b' ' });
        }
        text.truncate(size);
        let mut header = tar::Header::new_ustar();
        header.set_size(size as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("data/d{:03}/file-{files:06}.txt", files % 500), &text[..])
            .expect("append");
        written += size;
        files += 1;
    }
    let gz = tar.into_inner().expect("finish the tar");
    let mut out = gz.finish().expect("finish gzip");
    out.flush().expect("flush");
    let tar_bytes = std::process::Command::new("bash")
        .arg("-c")
        .arg("gzip -dc \"$0\" | wc -c")
        .arg(path)
        .output()
        .expect("count the tar");
    let tar_bytes = String::from_utf8_lossy(&tar_bytes.stdout).trim().parse().expect("a byte count");
    (tar_bytes, files)
}

/// The blob through the decompressor and tar reader on this thread; the entry count.
fn scan_in_memory(blob: &[u8]) -> usize {
    let mut scanner = Scanner::new(ListingBuilder::default());
    let mut decompressor = Decompressor::new(&mut scanner);
    for frame in blob.chunks(FRAME) {
        decompressor.write(frame).expect("decompress");
    }
    decompressor.finish().expect("finish");
    drop(decompressor);
    let (builder, _) = scanner.finish();
    builder.finish(Summary::default()).len()
}

/// A fake registry holding `blob` as layer 1 of `team/app:v1`.
async fn fake_with(blob: &Bytes) -> (FakeRegistry, String) {
    let config = Bytes::from_static(b"{}");
    let manifest = oci_manifest(&config, &[(GZIP_LAYER, blob)]);
    let mut blobs = HashMap::new();
    blobs.insert(digest(blob), FakeBlob::new(blob.clone()));
    let mut manifests = HashMap::new();
    manifests.insert("v1".to_owned(), (OCI_MANIFEST.to_owned(), manifest));
    let fake = FakeRegistry::start(manifests, blobs).await;
    let query = format!(
        "image={}&digest={}&layer=1&mt={}",
        layerpipe::query::encode(&format!("{}/{REPO}:v1", fake.host())),
        layerpipe::query::encode(&digest(blob)),
        layerpipe::query::encode(GZIP_LAYER)
    );
    (fake, query)
}

/// `GET /files` from a fresh layerpipe (so nothing is cached): the wall time.
async fn list_over_http(blob: &Bytes, verify: bool) -> Duration {
    let (fake, query) = fake_with(blob).await;
    let lp = Layerpipe::for_fake(&fake, verify).await;
    // The token and manifest round trips are not the listing: warm them up.
    let _ =
        fetch(&lp.url(&format!("/?image={}", layerpipe::query::encode(&format!("{}/{REPO}:v1", fake.host())))), &[])
            .await;
    let t = Instant::now();
    let page = fetch(&lp.url(&format!("/files?{query}")), &[]).await;
    let took = t.elapsed();
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(!page.text().contains("id=\"stopped\""), "the listing is complete");
    took
}

/// `/healthz` round trips, every 5 ms, while two listings run: (p50, p99, max, count).
/// With `inline`, each listing is instead the same decompression and tar reading done
/// on the runtime's worker threads as each frame of the blob arrives from the registry.
async fn responsiveness(blob: &Bytes, inline: bool) -> (Duration, Duration, Duration, usize) {
    let (fake, query) = fake_with(blob).await;
    // Two layerpipes, so that two listings are two reads (one layerpipe would share one).
    let lps = [Layerpipe::for_fake(&fake, false).await, Layerpipe::for_fake(&fake, false).await];
    let running = Arc::new(AtomicUsize::new(2));
    let mut work = Vec::new();
    for lp in &lps {
        let running = running.clone();
        let url = if inline {
            format!("{}/v2/{REPO}/blobs/{}", fake.registry.url(), digest(blob))
        } else {
            lp.url(&format!("/files?{query}"))
        };
        work.push(tokio::spawn(async move {
            if inline {
                let request = http::Request::get(&url)
                    .header("authorization", "Bearer token-1")
                    .body(http_body_util::Empty::new())
                    .expect("request");
                let mut body = client().request(request).await.expect("blob").into_body();
                let mut scanner = Scanner::new(ListingBuilder::default());
                let mut decompressor = Decompressor::new(&mut scanner);
                while let Some(frame) = body.frame().await {
                    if let Some(data) = frame.expect("frame").data_ref() {
                        decompressor.write(data).expect("decompress");
                    }
                }
            } else {
                let page = fetch(&url, &[]).await;
                assert_eq!(page.status, StatusCode::OK);
            }
            running.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    let healthz = lps[0].url("/healthz");
    let mut samples = Vec::new();
    while running.load(Ordering::SeqCst) > 0 {
        let t = Instant::now();
        let got = fetch(&healthz, &[]).await;
        samples.push(t.elapsed());
        assert_eq!(got.status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for w in work {
        w.await.expect("listing task");
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99), *samples.last().expect("a probe"), samples.len())
}
