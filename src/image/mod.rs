//! The whole image, beyond one layer: its config and build history paired with its
//! layers, the merged filesystem a container sees, search by name, and where the bytes
//! go. Everything but [`load`] is pure: `load` fetches the config and the listings
//! through the registry client and the layer inspector (and caches them by digest), and
//! the other modules make views of them.

pub mod config;
pub mod diff;
pub mod dockerfile;
pub mod history;
pub mod load;
pub mod merged;
pub mod search;
pub mod sizes;
