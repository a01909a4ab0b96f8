//! The stop signal: set on Ctrl-C or SIGTERM, by the engine when a
//! background replay failed (and, one per replay, to stop a background
//! replay). Replays stop reading, finish what they have in
//! flight, save their checkpoint and return; a plugin call in progress is
//! interrupted at its next deadline check.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// What asked the runner to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C), or a stop asked for by the runner itself.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// A background replay failed: the step in the foreground stops too.
    Failed,
}

impl Signal {
    /// The exit code of a process stopped by this signal (128 + its number).
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
            Signal::Failed => 1,
        }
    }

    fn code(self) -> u8 {
        match self {
            Signal::Interrupt => 1,
            Signal::Terminate => 2,
            Signal::Failed => 3,
        }
    }
}

/// A shared stop flag that remembers the first signal that set it.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicU8>);

impl Cancel {
    /// Asks every step to stop (as Ctrl-C does).
    pub fn cancel(&self) {
        self.signal(Signal::Interrupt);
    }

    /// Asks every step to stop because of `signal`; the first one is kept.
    pub fn signal(&self, signal: Signal) {
        let _ = self
            .0
            .compare_exchange(0, signal.code(), Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst) != 0
    }

    /// The signal that asked for the stop, if any.
    pub fn reason(&self) -> Option<Signal> {
        match self.0.load(Ordering::SeqCst) {
            1 => Some(Signal::Interrupt),
            2 => Some(Signal::Terminate),
            3 => Some(Signal::Failed),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_is_kept() {
        let c = Cancel::default();
        assert_eq!(c.reason(), None);
        c.signal(Signal::Terminate);
        c.cancel();
        assert!(c.is_cancelled());
        assert_eq!(c.reason(), Some(Signal::Terminate));
        assert_eq!(Signal::Terminate.exit_code(), 143);
    }
}
