//! What /proc says about a proxy process: its children (nginx's worker), its CPU time
//! and its peak RSS, which can be reset so that each measurement starts from the
//! current RSS. Linux only, as the benchmark is.

use std::process::Command;

/// The fields of /proc/PID/stat after the command name (field 3, state, is index 0).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The processes whose parent is `pid`.
pub(super) fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| stat_fields(child).and_then(|f| f.get(1)?.parse::<u32>().ok()) == Some(pid))
        .collect()
}

/// User + system CPU time of `pid` (all its threads), in seconds.
pub(super) fn cpu_seconds(pid: u32, ticks_per_second: f64) -> Result<f64, String> {
    let fields = stat_fields(pid).ok_or_else(|| format!("no /proc/{pid}/stat"))?;
    let ticks = |i: usize| -> Result<u64, String> {
        fields.get(i).and_then(|t| t.parse().ok()).ok_or_else(|| format!("/proc/{pid}/stat has no field {}", i + 3))
    };
    // utime and stime are fields 14 and 15.
    Ok((ticks(11)? + ticks(12)?) as f64 / ticks_per_second)
}

pub(super) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Sets the peak RSS (VmHWM) of `pid` back to its current RSS.
pub(super) fn reset_peak_rss(pid: u32) -> Result<(), String> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .map_err(|e| format!("cannot reset the peak RSS of {pid} (/proc/{pid}/clear_refs): {e}"))
}

/// VmHWM of `pid`, in MiB.
pub(super) fn peak_rss_mib(pid: u32) -> Result<f64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("/proc/{pid}/status has no VmHWM"))?;
    Ok(kib / 1024.0)
}
