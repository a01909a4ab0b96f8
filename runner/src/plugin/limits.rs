//! What a plugin may use: memory and time per call, and how much the host
//! takes back from one call.

use std::time::Duration;

/// Limits set by `[plugin.NAME]` (`memory_limit`, `timeout`, `max_output`
/// and the `max_rows_…`/`max_cells_…` caps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory of one instance, in bytes.
    pub memory_bytes: u64,
    /// Wall time of one call (one batch).
    pub timeout: Duration,
    /// What the host materialises from one call's answer.
    pub output: OutputLimits,
}

/// The default memory limit of an instance.
pub const DEFAULT_MEMORY: u64 = 64 << 20;
/// The default time limit of a call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest time limit a call may have (a few epoch ticks).
pub const MIN_TIMEOUT: Duration = Duration::from_millis(10);
/// The longest time limit a call may have.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: DEFAULT_MEMORY,
            timeout: DEFAULT_TIMEOUT,
            output: OutputLimits::for_memory(DEFAULT_MEMORY),
        }
    }
}

/// Bounds on what the host builds from a plugin's answer. A plugin inside
/// its memory limit can still describe far more than it holds (many rows
/// sharing one range of cells, many cells sharing one value), so the host
/// counts what it would build — every row's share, each time it is used —
/// and stops at these bounds with a contract error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    /// Bytes one call's answer may become on the host (`max_output`;
    /// default twice the memory limit). Also the most data the plugin may
    /// pass to the host in one call (wasmtime's hostcall fuel).
    pub bytes_per_batch: u64,
    /// Rows one event may become (`max_rows_per_event`).
    pub rows_per_event: u64,
    /// Cells one event's rows may hold in all (`max_cells_per_event`).
    pub cells_per_event: u64,
    /// Rows one batch may become (`max_rows_per_batch`).
    pub rows_per_batch: u64,
    /// Cells one batch's rows may hold in all (`max_cells_per_batch`).
    pub cells_per_batch: u64,
}

impl OutputLimits {
    /// The defaults for an instance with `memory_bytes` of memory.
    pub fn for_memory(memory_bytes: u64) -> Self {
        OutputLimits {
            bytes_per_batch: memory_bytes.saturating_mul(2),
            rows_per_event: 1_000,
            cells_per_event: 10_000,
            rows_per_batch: 100_000,
            cells_per_batch: 1_000_000,
        }
    }
}

/// The error a memory grow past the limit traps with; the plugin wrapper
/// recognises it and names the limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (asked for {asked} bytes)")]
pub struct MemoryLimitHit {
    /// The limit in force.
    pub limit: u64,
    /// The size the plugin tried to grow to.
    pub asked: u64,
}

/// Enforces [`Limits::memory_bytes`] on one store.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: u64,
}

impl MemoryLimiter {
    /// A limiter for `limit` bytes.
    pub fn new(limit: u64) -> Self {
        MemoryLimiter { limit }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            // Trapping (rather than failing the grow) stops the plugin at the
            // point it overreached, and lets the report name the limit.
            return Err(MemoryLimitHit {
                limit: self.limit,
                asked: desired as u64,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// `64MiB`, `512 KiB`, `1GiB`, `1000000` (bytes) → bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size; expected a number with KiB, MiB or GiB"))?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "KB" => 1 << 10,
        "MiB" | "M" | "MB" => 1 << 20,
        "GiB" | "G" | "GB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}`; expected KiB, MiB or GiB"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Bytes in the largest whole unit, for messages (`16 MiB`).
pub fn show_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_show() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("lots").is_err());
        assert!(
            parse_size("1 TB")
                .unwrap_err()
                .contains("unknown size unit `TB`")
        );
        assert_eq!(show_size(16 << 20), "16 MiB");
        assert_eq!(show_size(1000), "1000 bytes");
    }
}
