//! The whole image, beyond one layer: its config and build history paired with its
//! layers, the merged filesystem a container sees, search by name, and where the bytes
//! go. Everything here is pure: handlers fetch the manifest, config and listings through
//! the registry client and the layer inspector, and these modules make views of them.

pub mod config;
pub mod history;
pub mod merged;
pub mod search;
pub mod sizes;
