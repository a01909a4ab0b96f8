//! The board: where a running replay stands per partition, shared by its
//! reader (the log end), its writer (what the store acknowledged) and
//! whoever watches it (the catch-up gate, and the state that `runner
//! status` shows).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::saved::PartitionStatus;
use crate::source::PartitionEnd;
use crate::state::now_ms;

/// The shared board.
#[derive(Default)]
pub struct Board {
    inner: Mutex<Figures>,
}

#[derive(Default)]
struct Figures {
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

impl Board {
    fn board(&self) -> std::sync::MutexGuard<'_, Figures> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::replay::gate::Gate;

    #[test]
    fn lag_counts_from_the_acknowledged_position_and_the_gate_needs_a_steady_low_lag() {
        let board = Board::default();
        assert_eq!(board.lag(), None);
        board.set_ends(Some(BTreeMap::from([
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
        assert_eq!(board.lag(), Some(40));
        board.acknowledged(
            &BTreeMap::from([(0, 50), (1, 10)]),
            &BTreeMap::from([(0, 50)]),
        );
        assert_eq!(board.lag(), Some(50));
        let parts = board.partitions();
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
