//! The explorer's services that read inside layers on a page's behalf, above the pure
//! building blocks of `layer/`, `index/` and `image/`. For now: file hashes for diffs
//! ([`contents`]). `layer/inspect.rs` and `image/load.rs` are services of the same kind
//! and belong here too (issue 21).

pub mod contents;
