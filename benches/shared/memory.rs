//! Resident memory, read from `/proc/<pid>/status` (Linux only).

#![allow(dead_code)] // each includer uses some of it

/// A value in KiB from `/proc/<pid>/status` (`pid` may be `self`), such as
/// `VmRSS:` (resident now) or `VmHWM:` (peak resident).
pub fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// This process's resident memory now, in KiB.
pub fn rss_kib() -> Option<u64> {
    status_kib("self", "VmRSS:")
}
