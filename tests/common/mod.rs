//! What both test kits do the same way, kept once: layerpipe served in the test's runtime
//! (`layerpipe`), the built binary as users run it (`process`), SHA-256 and hex as test expectations are written (`digest`), the
//! `[x]` download links of a page (`html`), and a plain GET of a page (`http`).
//!
//! Neither kit's tests name this folder: `tests/support` and `tests/real` each include it
//! (`#[path]`) and re-export it under the names their tests already use, so a test file
//! still declares only `mod support;` or `mod real;`. The helpers' own tests are in
//! tests/test_kits.rs, so that they run once rather than in every binary that includes a
//! kit.

// Each test binary uses only part of this.
#![allow(dead_code)]

pub mod digest;
pub mod html;
pub mod http;
pub mod layerpipe;
pub mod process;
