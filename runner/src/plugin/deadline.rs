//! The deadline of one plugin call, and the stop signal.
//!
//! wasmtime's epoch interruption only stops guest code; a plugin that
//! sleeps or waits on a stream sits in the host, where no epoch check runs.
//! So the deadline is a wall-clock instant kept in the store: the epoch
//! callback compares against it on every tick (and against Ctrl-C), and
//! every host call that may wait does so in slices that check it too.

use std::time::{Duration, Instant};

use crate::cancel::Cancel;

/// Why the host stopped a call that had not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    /// The call ran past its time limit.
    #[error("the call ran past its deadline")]
    Deadline,
    /// The runner was asked to stop (Ctrl-C, SIGTERM).
    #[error("the runner is stopping")]
    Interrupted,
}

/// The longest a host call waits before looking at the deadline and the
/// stop signal again.
const SLICE: Duration = Duration::from_millis(20);

/// The clock of one instance's calls.
#[derive(Debug, Clone)]
pub struct CallClock {
    deadline: Instant,
    stop: Cancel,
}

impl CallClock {
    /// A clock that stops calls when `stop` is set.
    pub fn new(stop: Cancel) -> Self {
        CallClock {
            deadline: Instant::now(),
            stop,
        }
    }

    /// Starts a call that may run for `timeout`.
    pub fn start(&mut self, timeout: Duration) {
        // Validation keeps timeouts far below the overflow of an instant.
        self.deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
    }

    /// Whether the call may go on.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.stop.is_cancelled() {
            return Err(Stopped::Interrupted);
        }
        if Instant::now() >= self.deadline {
            return Err(Stopped::Deadline);
        }
        Ok(())
    }

    /// How long a host call may wait before checking again.
    pub fn slice(&self) -> Result<Duration, Stopped> {
        self.check()?;
        Ok(self
            .deadline
            .saturating_duration_since(Instant::now())
            .min(SLICE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_stops_at_its_deadline_or_when_asked() {
        let stop = Cancel::default();
        let mut clock = CallClock::new(stop.clone());
        clock.start(Duration::from_secs(60));
        assert_eq!(clock.check(), Ok(()));
        assert!(clock.slice().unwrap() <= SLICE);
        clock.start(Duration::ZERO);
        assert_eq!(clock.check(), Err(Stopped::Deadline));
        clock.start(Duration::from_secs(60));
        stop.cancel();
        assert_eq!(clock.slice(), Err(Stopped::Interrupted));
        // An absurd timeout does not overflow.
        clock.start(Duration::MAX);
    }
}
