//! The explorer's services: they fetch and cache what the pages show, above the pure
//! building blocks of `layer/`, `index/` and `image/`.
//! - [`layers`]: one layer read for its listing and index, a file previewed or saved,
//!   each admitted within its slots;
//! - [`read_log`]: a layer read from its start, logged at its start and end;
//! - [`images`]: an image's config and its merged filesystem, cached by digest;
//! - [`contents`]: file hashes for diffs;
//! - [`secrets`]: an image scanned for secrets, its files read within a budget.

pub mod contents;
pub mod images;
pub mod layers;
pub mod read_log;
pub mod secrets;
