//! The catch-up gate of a replay: it has caught up once its lag stays at
//! or below `max_lag` for `hold` without a break.

use std::time::{Duration, Instant};

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
