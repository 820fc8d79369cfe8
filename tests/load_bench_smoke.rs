//! The load benchmark (benches/load, BENCHMARKS.md) still runs: at tiny sizes, one run,
//! through every path, and prints a table with every row. No timing is asserted:
//! benchmarks are not tests, and this machine is shared.

#[path = "../benches/load/harness/mod.rs"]
mod harness;

use std::path::PathBuf;

#[test]
fn load_benchmark_runs_at_tiny_sizes_and_prints_every_row() {
    let options = harness::Options {
        blob_mib: 4,
        runs: 1,
        concurrency: 2,
        concurrent_mib: 1,
        ttfb_requests: 5,
        rss_small_mib: 1,
        rss_large_mib: 4,
        layerpipe: PathBuf::from(env!("CARGO_BIN_EXE_layerpipe")),
        nginx: PathBuf::from("/usr/sbin/nginx"),
        project_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        perf_dir: None,
        variants: Vec::new(),
    };
    if let Err(e) = harness::require_nginx(&options.nginx) {
        panic!("{e}");
    }
    let report = harness::run(&options).unwrap_or_else(|e| panic!("the load benchmark failed: {e}"));
    let table = report.markdown();
    println!("{table}");

    let labels = harness::row_labels(&report);
    assert_eq!(labels.len(), 7, "direct, 2 × nginx, 2 × layerpipe, sha256sum, openssl");
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 1 + labels.len(), "a header and one row per path:\n{table}");
    assert!(rows[0].contains("1 stream of 4 MiB, MB/s"), "{table}");
    for (label, row) in labels.iter().zip(&rows[1..]) {
        assert!(row.starts_with(&format!("| {label} |")), "{label}:\n{table}");
        assert_eq!(row.trim_matches('|').split('|').count(), 14, "fourteen columns in {row}");
    }
    // Every proxy path measured every column (a "—" there would be a lost measurement).
    for row in &rows[2..6] {
        assert!(!row.contains('—'), "a proxy row without a value: {row}");
    }
    for target in [
        "≥ 1.1×",
        "CPU per GiB",
        "with curl as the client",
        "CPU bound on",
        "≤ 32 MiB",
        "≤ 64 MiB",
        "peaks no higher",
        "time-to-first-byte",
        "sha256sum",
        "openssl dgst",
    ] {
        assert!(table.contains(target), "the targets name {target:?}:\n{table}");
    }
    assert_eq!(report.tokens_during_ttfb, 0, "layerpipe's token cache stayed warm");
}
