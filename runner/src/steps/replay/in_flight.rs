//! How much transformed output may wait for the writer. A plugin inside
//! its limits may answer every batch with up to `max_output` bytes; the
//! transform stage is faster than a slow store, so without a bound the
//! batches waiting between them would hold many times that. The transform
//! stage takes a batch's bytes before passing it on and the writer gives
//! them back once the store has them.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::cancel::Cancel;

/// Bytes of output between the transform stage and the writer.
pub struct InFlight {
    held: Mutex<u64>,
    freed: Condvar,
    limit: u64,
}

impl InFlight {
    /// At most `limit` bytes in flight (one batch always passes, however
    /// large, when nothing else is in flight).
    pub fn new(limit: u64) -> Self {
        InFlight {
            held: Mutex::new(0),
            freed: Condvar::new(),
            limit,
        }
    }

    /// Waits until `bytes` fit; false if `gone` was set first (the writer
    /// stopped, so nothing will be freed).
    pub fn take(&self, bytes: u64, gone: &Cancel) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        while *held > 0 && held.saturating_add(bytes) > self.limit {
            if gone.is_cancelled() {
                return false;
            }
            held = self
                .freed
                .wait_timeout(held, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *held = held.saturating_add(bytes);
        true
    }

    /// The writer is done with `bytes`.
    pub fn give(&self, bytes: u64) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        *held = held.saturating_sub(bytes);
        self.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_waits_until_the_writer_frees_room() {
        let flight = std::sync::Arc::new(InFlight::new(100));
        let gone = Cancel::default();
        assert!(flight.take(80, &gone));
        let (f2, g2) = (flight.clone(), gone.clone());
        let waiter = std::thread::spawn(move || f2.take(50, &g2));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "80 + 50 is over 100");
        flight.give(80);
        assert!(waiter.join().unwrap());
        let stuck = InFlight::new(10);
        assert!(stuck.take(10, &gone));
        gone.cancel();
        assert!(!stuck.take(10, &gone), "a gone writer frees nothing");
    }
}
