//! Replays that keep syncing in the background (`until = "cutover"`) while
//! later steps run. Each runs on its own thread with its own stop signal;
//! the engine checks between steps that none has failed, `stop` and
//! `cutover` steps stop them (they finish what is in flight and commit),
//! and whatever still runs when the workflow ends or fails is stopped the
//! same way, so no acknowledged position is ever left uncommitted.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::cancel::Cancel;
use crate::steps::StepError;
use crate::steps::replay::live::Live;

/// One background replay.
pub struct Background {
    /// Its step id.
    pub id: String,
    /// Asks it to stop.
    pub stop: Cancel,
    /// Where it stands.
    pub live: Arc<Live>,
    /// Its thread; returns the replay's summary.
    pub thread: JoinHandle<Result<String, StepError>>,
}

impl Background {
    /// Stops it and waits until it committed what it had.
    pub fn finish(self) -> (String, Result<String, StepError>) {
        self.stop.cancel();
        let result = self.thread.join().unwrap_or_else(|_| {
            Err(StepError::Other(
                "the background replay panicked; nothing after its last checkpoint was committed"
                    .into(),
            ))
        });
        (self.id, result)
    }
}

/// The background replays of one run.
#[derive(Default, Clone)]
pub struct BackgroundReplays(Arc<Mutex<Vec<Background>>>);

impl BackgroundReplays {
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Background>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one.
    pub fn add(&self, b: Background) {
        self.list().push(b);
    }

    /// Takes out the replays that ended by themselves (a failure: they only
    /// end when asked to).
    pub fn ended(&self) -> Vec<(String, Result<String, StepError>)> {
        let mut list = self.list();
        let (ended, running): (Vec<_>, Vec<_>) =
            list.drain(..).partition(|b| b.thread.is_finished());
        *list = running;
        drop(list);
        ended.into_iter().map(Background::finish).collect()
    }

    /// Stops the given replays (all when `ids` is empty) and waits for them.
    pub fn stop(&self, ids: &[String]) -> Vec<(String, Result<String, StepError>)> {
        let mut list = self.list();
        let (chosen, rest): (Vec<_>, Vec<_>) = list
            .drain(..)
            .partition(|b| ids.is_empty() || ids.contains(&b.id));
        *list = rest;
        drop(list);
        for b in &chosen {
            b.stop.cancel();
        }
        chosen.into_iter().map(Background::finish).collect()
    }
}
