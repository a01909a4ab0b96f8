//! CPU time of the calling thread, for benchmarks on a noisy machine: what
//! the thread ran, not what the clock on the wall says.

use std::time::Duration;

/// The time the calling thread has run on a CPU (Linux's schedstat).
pub fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(
        stat.split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    )
}
