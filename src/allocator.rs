//! How freed memory goes back to the system: glibc malloc's mmap and trim thresholds.
//!
//! A blob connection reads the registry into buffers of up to 4 MiB
//! ([`crate::upstream::dedicated`]), and the frame it passes on keeps its buffer alive
//! while the client takes it, so the next read often needs another buffer. With glibc's
//! default (dynamic) thresholds, freed buffers of that size are unmapped or trimmed back
//! to the system at once, and the next buffer faults every page in again, zeroed by the
//! kernel: 5,000–18,000 page faults per GiB and about 15% of layerpipe's CPU time (page
//! faults, page clearing and unmapping in `perf report`; BENCHMARKS.md, "Page faults").
//! The large buffers are now reused by the connections themselves
//! (`upstream/dedicated/buffers.rs`); the 128 KiB ones of the many connections without
//! a loan, and everything else, still come from malloc.
//!
//! Fixed thresholds keep freed buffers in the heap for the next read, as nginx keeps its
//! `proxy_buffers`: page faults per GiB fall to nginx's (under 1,000). The price is that
//! memory once used stays with the process, up to [`TRIM_THRESHOLD`] of free space per
//! malloc arena, for the next download: resident memory stays near its high-water mark
//! rather than falling back between downloads.
//!
//! Only glibc has these knobs; elsewhere this does nothing. `MALLOC_MMAP_THRESHOLD_` or
//! `MALLOC_TRIM_THRESHOLD_` in the environment, glibc's own settings, win over ours.

/// Allocations at least this large get their own mapping (glibc's largest allowed).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Free space at the top of an arena beyond this is given back to the system.
pub const TRIM_THRESHOLD: usize = 64 << 20;

/// Sets the thresholds, unless the environment sets glibc's own. Call before any thread
/// is started.
pub fn keep_freed_buffers() {
    let set_by_user =
        ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"].iter().any(|v| std::env::var_os(v).is_some());
    if !set_by_user {
        set_thresholds();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() {
    // SAFETY: mallopt only changes malloc's tuning parameters; both values are in range
    // (glibc accepts mmap thresholds up to 32 MiB on 64-bit targets, any trim threshold).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() {}
