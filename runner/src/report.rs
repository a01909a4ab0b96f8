//! What the runner shows people while it works: progress lines, and the
//! small formatting helpers (durations, counts, version times) shared by
//! sources, steps and the command line.

pub mod progress;

use std::time::Duration;

/// A duration for people: `850ms`, `4.2s`, `3m 05s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// A version that is a time in ms since the epoch, for people:
/// `1767225600000 (2026-01-01T00:00:00Z)`.
pub fn version_time(ms: i64) -> String {
    match u64::try_from(ms) {
        Ok(m) => format!(
            "{ms} ({})",
            humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(m))
        ),
        Err(_) => ms.to_string(),
    }
}

/// `n` things over `d` as a rate: `52,310 events/s`.
pub fn rate(n: u64, d: Duration, what: &str) -> String {
    let secs = d.as_secs_f64();
    if secs <= 0.0 {
        return format!("{n} {what}");
    }
    format!("{} {what}/s", thousands((n as f64 / secs) as u64))
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_millis(4_200)), "4.2s");
        assert_eq!(duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(rate(1000, Duration::from_secs(2), "events"), "500 events/s");
        assert_eq!(
            version_time(1_767_225_600_000),
            "1767225600000 (2026-01-01T00:00:00Z)"
        );
    }
}
