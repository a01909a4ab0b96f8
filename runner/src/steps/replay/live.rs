//! Where a running replay stands per partition, shared by its reader (the
//! log end), its writer (what the store acknowledged) and whoever watches
//! it: the catch-up gate and the state that `runner status` shows.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::source::PartitionEnd;
use crate::state::{PartitionStatus, now_ms};

/// The shared board.
#[derive(Default)]
pub struct Live {
    inner: Mutex<Board>,
}

#[derive(Default)]
struct Board {
    /// From the reader; `None` while the source does not know them all.
    ends: Option<BTreeMap<i32, PartitionEnd>>,
    /// The next offset the store has not acknowledged, per partition.
    acked: BTreeMap<i32, i64>,
    /// Events applied per partition in this run.
    events: BTreeMap<i32, u64>,
    /// Events per partition at the last rate sample, and when.
    sampled: (BTreeMap<i32, u64>, Option<Instant>),
    rates: BTreeMap<i32, f64>,
}

impl Live {
    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reader saw these ends.
    pub fn set_ends(&self, ends: Option<BTreeMap<i32, PartitionEnd>>) {
        self.board().ends = ends;
    }

    /// The store acknowledged up to `next`, with `counts` more events.
    pub fn acknowledged(&self, next: &BTreeMap<i32, i64>, counts: &BTreeMap<i32, u64>) {
        let mut b = self.board();
        for (p, o) in next {
            b.acked.insert(*p, *o);
        }
        for (p, n) in counts {
            *b.events.entry(*p).or_insert(0) += n;
        }
    }

    /// Messages behind the log end over all partitions this runner owns;
    /// `None` while unknown.
    pub fn lag(&self) -> Option<u64> {
        let b = self.board();
        let ends = b.ends.as_ref()?;
        Some(ends.iter().map(|(p, e)| behind(e, b.acked.get(p))).sum())
    }

    /// Per partition: end, acknowledged position, lag, events and rate.
    pub fn partitions(&self) -> BTreeMap<i32, PartitionStatus> {
        let mut b = self.board();
        let now = Instant::now();
        let elapsed = b.sampled.1.map(|t| now - t);
        if elapsed.is_none_or(|d| d >= Duration::from_millis(500)) {
            let rates: BTreeMap<i32, f64> = b
                .events
                .iter()
                .map(|(p, n)| {
                    let before = b.sampled.0.get(p).copied().unwrap_or(0);
                    let secs = elapsed.map_or(0.0, |d| d.as_secs_f64());
                    let rate = if secs > 0.0 {
                        (n - before) as f64 / secs
                    } else {
                        0.0
                    };
                    (*p, rate)
                })
                .collect();
            b.rates = rates;
            b.sampled = (b.events.clone(), Some(now));
        }
        let at_ms = now_ms();
        // While the ends are unknown (the broker cannot be asked), what the
        // store acknowledged is still shown, with the end and lag unknown.
        let partitions: std::collections::BTreeSet<i32> = match &b.ends {
            Some(ends) => ends.keys().copied().collect(),
            None => b.acked.keys().copied().collect(),
        };
        partitions
            .into_iter()
            .filter_map(|p| {
                let end = b.ends.as_ref().and_then(|ends| ends.get(&p));
                let acked = b.acked.get(&p).copied().or(end.map(|e| e.read))?;
                Some((
                    p,
                    PartitionStatus {
                        high: end.map(|e| e.high),
                        acked,
                        lag: end.map(|e| behind(e, b.acked.get(&p))),
                        events: b.events.get(&p).copied().unwrap_or(0),
                        rate: b.rates.get(&p).copied().unwrap_or(0.0),
                        at_ms,
                    },
                ))
            })
            .collect()
    }

    /// Events the store acknowledged in this run, over all partitions: a
    /// stall is a lag that stays above 0 while this does not move.
    pub fn acknowledged_events(&self) -> u64 {
        self.board().events.values().sum()
    }
}

/// Messages of one partition not yet in the store: from what the store
/// acknowledged (or, before the first acknowledgement, from where reading
/// stands) to the log end.
fn behind(end: &PartitionEnd, acked: Option<&i64>) -> u64 {
    let from = acked.copied().unwrap_or(end.read).min(end.read);
    (end.high - from).max(0) as u64
}

/// The catch-up gate: lag at or below `max_lag` for `hold` without a break.
pub struct Gate {
    max_lag: u64,
    hold: Duration,
    low_since: Option<Instant>,
}

impl Gate {
    /// A gate.
    pub fn new(max_lag: u64, hold: Duration) -> Self {
        Gate {
            max_lag,
            hold,
            low_since: None,
        }
    }

    /// A gate that has held since `since` (a replay that passed its gate
    /// and goes on in the background).
    pub fn held_since(max_lag: u64, hold: Duration, since: Instant) -> Self {
        Gate {
            max_lag,
            hold,
            low_since: Some(since),
        }
    }

    /// The lag allowed, and for how long.
    pub fn bounds(&self) -> (u64, Duration) {
        (self.max_lag, self.hold)
    }

    /// Feeds the current lag; true once the gate holds.
    pub fn observe(&mut self, lag: Option<u64>, now: Instant) -> bool {
        match lag {
            Some(l) if l <= self.max_lag => {
                let since = *self.low_since.get_or_insert(now);
                now - since >= self.hold
            }
            _ => {
                self.low_since = None;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_acknowledged_position_and_the_gate_needs_a_steady_low_lag() {
        let live = Live::default();
        assert_eq!(live.lag(), None);
        live.set_ends(Some(BTreeMap::from([
            (
                0,
                PartitionEnd {
                    high: 100,
                    read: 60,
                },
            ),
            (1, PartitionEnd { high: 10, read: 10 }),
        ])));
        // Nothing acknowledged yet: counted from where reading stands.
        assert_eq!(live.lag(), Some(40));
        live.acknowledged(
            &BTreeMap::from([(0, 50), (1, 10)]),
            &BTreeMap::from([(0, 50)]),
        );
        assert_eq!(live.lag(), Some(50));
        let parts = live.partitions();
        assert_eq!(parts[&0].lag, Some(50));
        assert_eq!(parts[&0].events, 50);

        let mut gate = Gate::new(5, Duration::from_secs(2));
        let t = Instant::now();
        assert!(!gate.observe(Some(3), t));
        assert!(!gate.observe(Some(4), t + Duration::from_secs(1)));
        assert!(!gate.observe(Some(9), t + Duration::from_millis(1500)));
        assert!(!gate.observe(Some(0), t + Duration::from_secs(2)));
        assert!(!gate.observe(None, t + Duration::from_secs(3)));
        assert!(!gate.observe(Some(0), t + Duration::from_secs(4)));
        assert!(gate.observe(Some(1), t + Duration::from_secs(6)));
    }
}
