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
    if std::env::var("LOAD_PROFILE").as_deref() == Ok("wan") {
        let report = harness::Options::from_env(env!("CARGO_BIN_EXE_layerpipe"), env!("CARGO_MANIFEST_DIR"))
            .and_then(|options| harness::wan::run(&options));
        match report {
            Ok(report) => print!("{}", report.markdown()),
            Err(e) => {
                eprintln!("load benchmark (wan) failed: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if std::env::var("LOAD_PROFILE").as_deref() == Ok("busy") {
        let report = harness::Options::from_env(env!("CARGO_BIN_EXE_layerpipe"), env!("CARGO_MANIFEST_DIR"))
            .and_then(|options| harness::busy::run(&options));
        match report {
            Ok(report) => print!("{}", report.markdown()),
            Err(e) => {
                eprintln!("load benchmark (busy) failed: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if std::env::var("LOAD_PROFILE").as_deref() == Ok("tls") {
        let report = harness::Options::from_env(env!("CARGO_BIN_EXE_layerpipe"), env!("CARGO_MANIFEST_DIR"))
            .and_then(|options| harness::tls::run(&options));
        match report {
            Ok(report) => print!("{}", report.markdown()),
            Err(e) => {
                eprintln!("load benchmark (tls) failed: {e}");
                std::process::exit(1);
            }
        }
        return;
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
