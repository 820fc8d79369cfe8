//! The load benchmark's logic, shared by `cargo bench --bench load` (benches/load/main.rs)
//! and its smoke test (tests/load_bench_smoke.rs). BENCHMARKS.md says what it measures
//! and why; in short: one large blob, served from memory by a fast Bearer-auth origin on
//! loopback, downloaded
//!
//! - directly from the origin (with the token),
//! - through Debian's nginx, as the project's reverse-proxy config has it
//!   (`proxy_buffering off`) and tuned (`proxy_buffering on`, 16 × 256k buffers, no temp
//!   file), adding the `Authorization` header itself,
//! - through the release `layerpipe` binary, with `verify_digests` off and on,
//!
//! interleaved (A B C D E, A B C D E, …), each run with fresh proxy processes so that peak
//! RSS and CPU time belong to that run alone. The client is a hyper 1 client in this
//! process that reads frames and drops them, and for the single stream also `curl`, a
//! client of its own process as a user would run it.
//!
//! The modules, each taking only from those above it (this file only declares them and
//! names what the bench and the smoke test use):
//!
//! - `options`: the `LOAD_*` knobs;
//! - `blobs`: the pattern every blob is a prefix of, and the digests;
//! - `origin`: the fake registry in this process;
//! - `nginx`: the project's nginx directives, and the tuned ones;
//! - `routes`: the paths measured, in interleaving order;
//! - `procfs`: a process's CPU time and peak RSS, from /proc;
//! - `proxy`: nginx and layerpipe as processes of their own;
//! - `client`: the hyper client and curl;
//! - `report`: the samples, the table and the targets;
//! - `profile`: perf and strace, with `LOAD_PERF_DIR`;
//! - `run`: the main profile's measurements;
//! - `tls`, `wan` and `busy`: the other profiles (`LOAD_PROFILE`), from the same parts.
// The smoke test runs only the main profile: much here is dead code in its binary.
#![allow(dead_code)]

mod blobs;
pub mod busy;
mod client;
mod nginx;
mod options;
mod origin;
mod procfs;
mod profile;
mod proxy;
mod report;
mod routes;
mod run;
pub mod tls;
pub mod wan;

// The bench and the smoke test each name only some of these.
#[allow(unused_imports)]
pub use self::{
    options::{require_nginx, Options, Variant},
    report::{row_labels, Report, Samples},
    run::run,
};
