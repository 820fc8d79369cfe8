//! The `registry` label: one set of counters per registry host, at most
//! [`MAX_REGISTRY_LABELS`] of them.
//!
//! Danger first: a client names the registry in its request (`?image=any.host/x`), so a
//! label per host seen would let anyone grow `/metrics` (and Prometheus' series) without
//! bound. The first hosts seen get labels of their own; every later one is counted
//! under `other`. Only the host is a label, never a repository.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::UpstreamError;

/// Distinct `registry` label values, `other` aside.
pub const MAX_REGISTRY_LABELS: usize = 32;

/// What folds every host past the cap.
pub const OTHER: &str = "other";

/// One registry's counters.
#[derive(Default)]
pub struct RegistryStats {
    /// Blob bytes read from it (downloads and reads inside layers), as they arrive.
    pub(super) bytes: AtomicU64,
    pub(super) token_fetches: AtomicU64,
    pub(super) errors: Mutex<BTreeMap<UpstreamError, u64>>,
}

impl RegistryStats {
    /// Counts `bytes` read from this registry.
    pub fn add_bytes(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Relaxed);
    }
}

/// Every registry's counters, by label.
#[derive(Default)]
pub struct Registries {
    table: Mutex<BTreeMap<String, Arc<RegistryStats>>>,
}

impl Registries {
    /// The counters of `host`: its own while fewer than the cap are known, else `other`'s.
    pub fn get(&self, host: &str) -> Arc<RegistryStats> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stats) = table.get(host) {
            return stats.clone();
        }
        let own = table.keys().filter(|k| *k != OTHER).count() < MAX_REGISTRY_LABELS && label_safe(host);
        let key = if own { host } else { OTHER };
        table.entry(key.to_owned()).or_default().clone()
    }

    /// Each label with its counters, in label order.
    pub fn each(&self) -> Vec<(String, Arc<RegistryStats>)> {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Hosts come from parsed references, but a label value is written into the text format
/// as is: anything beyond a host's characters is folded into `other` rather than escaped.
fn label_safe(host: &str) -> bool {
    !host.is_empty()
        && host != OTHER
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_past_the_cap_fold_into_other() {
        let registries = Registries::default();
        for i in 0..MAX_REGISTRY_LABELS + 10 {
            registries.get(&format!("r{i}.example")).add_bytes(1);
        }
        registries.get("r0.example").add_bytes(1);
        let each = registries.each();
        assert_eq!(each.len(), MAX_REGISTRY_LABELS + 1);
        let other = each.iter().find(|(k, _)| k == OTHER).unwrap();
        assert_eq!(other.1.bytes.load(Relaxed), 10);
        let first = each.iter().find(|(k, _)| k == "r0.example").unwrap();
        assert_eq!(first.1.bytes.load(Relaxed), 2);
    }

    #[test]
    fn odd_hosts_are_never_labels() {
        let registries = Registries::default();
        registries.get("a\"b").add_bytes(1);
        registries.get("").add_bytes(1);
        assert_eq!(registries.each().iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), [OTHER]);
    }
}
