//! The whole image, beyond one layer: its config and build history paired with its
//! layers, the merged filesystem a container sees, search by name, and where the bytes
//! go. All of it is pure: `crate::explore::images` fetches the config and the listings
//! through the registry client and the layer inspector (and caches them by digest), and
//! these modules make views of them.

/// The config blob's types live with the manifests (a schema 1 manifest carries its
/// config inside it); they are named here too, where pages and services look for them.
pub use crate::manifest::config;
pub mod changes;
pub mod check;
pub mod diff;
pub mod dockerfile;
pub mod hexdump;
pub mod history;
pub mod merged;
pub mod search;
pub mod sizes;
