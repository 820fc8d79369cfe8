//! Inside a layer: what its archive holds.
//!
//! The blob is decompressed as it arrives ([`decompress`]: gzip, zstd or none, by the
//! blob's first bytes) into a push-based tar reader ([`tar`]) that sees headers as they
//! pass and skips contents by counting. What it sees becomes a [`listing`] of
//! [`entry`]s.

pub mod decompress;
pub mod entry;
pub mod listing;
pub mod tar;
