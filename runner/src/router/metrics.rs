//! What the router counts: requests, failures and latency per side, and
//! how the route plugin fared. Lock-free counters, read by the admin
//! endpoint, `runner status` and (next) the shift step's gates.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::mirror::{MirrorCounts, MirrorSnapshot};

use super::routing::Side;

/// Latency buckets: four per doubling from 1 µs, up to about 70 s.
const LATENCY_BUCKETS: usize = 4 * 26;

/// Counts of one side.
#[derive(Debug)]
pub struct SideMetrics {
    requests: AtomicU64,
    /// Answered 5xx by the read-api, or not answered at all.
    failures: AtomicU64,
    /// Not answered: connection refused or broken, or past the timeout.
    unreachable: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS],
}

impl Default for SideMetrics {
    fn default() -> Self {
        SideMetrics {
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            unreachable: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

fn latency_bucket(d: Duration) -> usize {
    let micros = d.as_micros().max(1) as f64;
    ((micros.log2() * 4.0) as usize).min(LATENCY_BUCKETS - 1)
}

fn bucket_upper(i: usize) -> Duration {
    Duration::from_secs_f64(2f64.powf((i + 1) as f64 / 4.0) / 1e6)
}

impl SideMetrics {
    /// One answer, `failed` if 5xx, after `took` (to the response head).
    pub fn answered(&self, took: Duration, failed: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.latency[latency_bucket(took)].fetch_add(1, Ordering::Relaxed);
    }

    /// One request the read-api did not answer.
    pub fn unreachable(&self, took: Duration) {
        self.unreachable.fetch_add(1, Ordering::Relaxed);
        self.answered(took, true);
    }

    /// The counts as they are now.
    pub fn snapshot(&self) -> SideSnapshot {
        SideSnapshot::of(
            self.requests.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
            self.unreachable.load(Ordering::Relaxed),
            self.latency
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
        )
    }
}

/// The `q` quantile of latencies counted in `buckets`, in ms (the upper
/// edge of its bucket).
fn quantile(buckets: &[u64], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let want = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, c) in buckets.iter().enumerate() {
        seen += c;
        if seen >= want {
            return Some(bucket_upper(i).as_secs_f64() * 1000.0);
        }
    }
    None
}

/// One side's counts at one moment, or over a window between two.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SideSnapshot {
    /// Requests sent to it.
    pub requests: u64,
    /// Answered 5xx or not at all.
    pub failures: u64,
    /// Not answered at all.
    pub unreachable: u64,
    /// Median time to the response head, in ms (upper edge of its bucket).
    pub p50_ms: Option<f64>,
    /// 99th percentile, in ms.
    pub p99_ms: Option<f64>,
    /// Requests by latency bucket, for windows.
    #[serde(skip)]
    buckets: Vec<u64>,
}

impl SideSnapshot {
    fn of(requests: u64, failures: u64, unreachable: u64, buckets: Vec<u64>) -> Self {
        SideSnapshot {
            requests,
            failures,
            unreachable,
            p50_ms: quantile(&buckets, 0.50),
            p99_ms: quantile(&buckets, 0.99),
            buckets,
        }
    }

    /// What happened between `earlier` and this one.
    pub fn since(&self, earlier: &SideSnapshot) -> SideSnapshot {
        let buckets = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, c)| c.saturating_sub(earlier.buckets.get(i).copied().unwrap_or(0)))
            .collect();
        SideSnapshot::of(
            self.requests.saturating_sub(earlier.requests),
            self.failures.saturating_sub(earlier.failures),
            self.unreachable.saturating_sub(earlier.unreachable),
            buckets,
        )
    }

    /// Failures per request (0 without requests).
    pub fn failure_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failures as f64 / self.requests as f64
        }
    }
}

/// Everything the router counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Blue's counts.
    pub blue: SideMetrics,
    /// Green's counts.
    pub green: SideMetrics,
    /// Route plugin calls that trapped, timed out or returned an error;
    /// each such request went to blue.
    pub plugin_failures: AtomicU64,
    /// Requests sent to blue without asking the plugin, because it had
    /// just failed several times in a row.
    pub plugin_skipped: AtomicU64,
    /// Requests refused because they could not be forwarded (a bad URI).
    pub refused: AtomicU64,
    /// How mirrored pairs fared.
    pub mirror: Arc<MirrorCounts>,
}

impl Metrics {
    /// The counts of `side`.
    pub fn side(&self, side: Side) -> &SideMetrics {
        match side {
            Side::Blue => &self.blue,
            Side::Green => &self.green,
        }
    }

    /// Everything as it is now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            blue: self.blue.snapshot(),
            green: self.green.snapshot(),
            plugin_failures: self.plugin_failures.load(Ordering::Relaxed),
            plugin_skipped: self.plugin_skipped.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            mirror: self.mirror.snapshot(),
        }
    }
}

/// The router's counts at one moment, or over a window between two.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricsSnapshot {
    /// Blue's.
    pub blue: SideSnapshot,
    /// Green's.
    pub green: SideSnapshot,
    /// Failed route plugin calls.
    pub plugin_failures: u64,
    /// Requests that skipped a failing plugin.
    pub plugin_skipped: u64,
    /// Requests refused.
    pub refused: u64,
    /// Mirrored pairs.
    pub mirror: MirrorSnapshot,
}

impl MetricsSnapshot {
    /// What happened between `earlier` and this one.
    pub fn since(&self, earlier: &MetricsSnapshot) -> MetricsSnapshot {
        MetricsSnapshot {
            blue: self.blue.since(&earlier.blue),
            green: self.green.since(&earlier.green),
            plugin_failures: self.plugin_failures.saturating_sub(earlier.plugin_failures),
            plugin_skipped: self.plugin_skipped.saturating_sub(earlier.plugin_skipped),
            refused: self.refused.saturating_sub(earlier.refused),
            mirror: self.mirror.since(&earlier.mirror),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_latency_buckets() {
        let m = SideMetrics::default();
        assert_eq!(m.snapshot().p99_ms, None);
        for _ in 0..98 {
            m.answered(Duration::from_micros(500), false);
        }
        m.answered(Duration::from_millis(40), true);
        m.answered(Duration::from_millis(40), false);
        let s = m.snapshot();
        assert_eq!((s.requests, s.failures), (100, 1));
        let p50 = s.p50_ms.unwrap();
        assert!((0.5..0.6).contains(&p50), "{p50}");
        let p99 = s.p99_ms.unwrap();
        assert!((40.0..48.0).contains(&p99), "{p99}");

        // A window sees only what happened in it.
        for _ in 0..10 {
            m.answered(Duration::from_millis(40), true);
        }
        let w = m.snapshot().since(&s);
        assert_eq!((w.requests, w.failures), (10, 10));
        assert!(w.p50_ms.unwrap() >= 40.0);
        assert_eq!(w.failure_rate(), 1.0);
    }
}
