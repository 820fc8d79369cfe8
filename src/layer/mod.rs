//! Inside a layer: its files listed, its folders browsed, one file shown or saved.
//!
//! The blob is read from the registry frame by frame and never stored: each frame is
//! decompressed ([`decompress`]: gzip, zstd or none, by the blob's first bytes) into a
//! push-based tar reader ([`tar`]) that sees headers as they pass and skips contents by
//! counting. [`scan`] runs that on a blocking thread fed through a bounded channel.
//! What is seen becomes a [`listing`] of [`entry`]s (cached by blob), the first bytes of
//! one file ([`preview`]), or one file streamed to the client ([`save`]); [`link`] reads
//! and writes the URLs. The fetching, caching and admission that drive them are a
//! service, `crate::explore::layers`.

pub mod decompress;
pub mod entry;
pub mod inflate;
pub mod link;
pub mod listing;
pub mod preview;
pub mod save;
pub mod scan;
pub mod tar;
