//! The load benchmark: `cargo bench --bench load`. See BENCHMARKS.md.
//!
//! Sizes and repeats come from `LOAD_*` environment variables (harness/options.rs,
//! `Options`); a tiny run takes seconds:
//!
//! ```sh
//! LOAD_BLOB_MIB=16 LOAD_RUNS=1 LOAD_CONCURRENCY=4 LOAD_CONCURRENT_MIB=4 \
//!   LOAD_RSS_SMALL_MIB=4 LOAD_RSS_LARGE_MIB=32 LOAD_TTFB_REQUESTS=20 cargo bench --bench load
//! ```

mod harness;

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not, and a load benchmark
    // is not a test (tests/load_bench_smoke.rs checks that it runs).
    if !std::env::args().any(|a| a == "--bench") {
        println!("load benchmark: run it with cargo bench --bench load");
        return;
    }
    // The other profiles print their own table; the main one is below.
    match std::env::var("LOAD_PROFILE").as_deref() {
        Ok("wan") => return profile("wan", |o| harness::wan::run(o).map(|r| r.markdown())),
        Ok("tls") => return profile("tls", |o| harness::tls::run(o).map(|r| r.markdown())),
        Ok("busy") => return profile("busy", |o| harness::busy::run(o).map(|r| r.markdown())),
        _ => {}
    }
    let result =
        harness::Options::from_env(env!("CARGO_BIN_EXE_layerpipe"), env!("CARGO_MANIFEST_DIR")).and_then(|options| {
            eprintln!("load benchmark: {options:?}");
            harness::run(&options)
        });
    match result {
        Ok(report) => print!("{}", report.markdown()),
        Err(e) => {
            eprintln!("load benchmark failed: {e}");
            std::process::exit(1);
        }
    }
}

/// Runs the profile `name` with the options from the environment and prints its table,
/// or exits 1 with why it failed.
fn profile(name: &str, run: impl FnOnce(&harness::Options) -> Result<String, String>) {
    let report = harness::Options::from_env(env!("CARGO_BIN_EXE_layerpipe"), env!("CARGO_MANIFEST_DIR"))
        .and_then(|options| run(&options));
    match report {
        Ok(table) => print!("{table}"),
        Err(e) => {
            eprintln!("load benchmark ({name}) failed: {e}");
            std::process::exit(1);
        }
    }
}
