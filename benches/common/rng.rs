//! xorshift64 for the benchmarks' synthetic data: fast, and the same data on every run.
//! Shared by `benches/index.rs` and `benches/catalog.rs` (`#[path]`), so both draw their
//! file sizes the same way.

/// The generator; its seed is the state.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// From 0 to `n - 1`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// From `lo` to `hi`, evenly on a log scale: as many files of 100 B–1 KiB as of
    /// 1–10 KiB, as file (and package) sizes in real layers go.
    pub fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((lo as f64).ln() + u * ((hi as f64).ln() - (lo as f64).ln())).exp() as u64
    }
}
