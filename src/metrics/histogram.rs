//! One Prometheus histogram of durations: fixed buckets, plain atomics, rendered with
//! whatever labels its owner gives it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Counts of observed durations by bucket, with their sum and count.
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// An empty histogram with these bucket upper bounds (seconds, ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Counts one duration.
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, count) in self.bounds.iter().zip(&self.buckets) {
            if secs <= *bound {
                count.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    /// The `_bucket`, `_sum` and `_count` lines of `name`; `labels` is `""` or
    /// `key="value",` pairs, each ending in a comma.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, count) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {}", count.load(Relaxed));
        }
        let total = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {total}");
        let labels = labels.trim_end_matches(',');
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}\n{name}_count{braces} {total}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
    }
}
