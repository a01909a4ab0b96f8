//! Replays that keep syncing in the background (`until = "cutover"`) while
//! later steps run. Each runs on its own thread with its own stop signal.
//!
//! They belong to the workflow, not to one process: the state marks each
//! one `live` until a `stop` or `cutover` step stops it, and every run of
//! an unfinished workflow starts the live ones again from their committed
//! position (see `engine::run`). While they run, the engine's watch
//! (`engine::watch`) looks at them every few hundred milliseconds: a
//! replay that ends by itself failed, and one that makes no progress
//! while behind has stalled; either fails the run at once. The watch also
//! keeps each one's catch-up gate, so `compare` and `cutover` can tell
//! whether what they read is current.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use crate::steps::StepError;
use crate::steps::replay::live::{Gate, Live};

/// How long a stopped replay may take to finish what it has in flight
/// before the runner goes on without it (its last commit stands).
const FINISH_LIMIT: Duration = Duration::from_secs(60);

/// After this long without progress while behind, a warning is logged
/// (the failure comes after the replay's `stall` time).
const STALL_WARNING: Duration = Duration::from_secs(30);

/// One background replay.
pub struct Background {
    /// Its step id.
    pub id: String,
    /// The store it keeps in sync.
    pub store: String,
    /// Asks it to stop.
    pub stop: Cancel,
    /// Where it stands.
    pub live: Arc<Live>,
    /// Its thread; returns the replay's summary.
    pub thread: JoinHandle<Result<String, StepError>>,
    /// Its catch-up gate, fed by the watch.
    pub gate: Gate,
    /// No progress while behind for this long is a stall.
    pub stall_after: Duration,
    /// Acknowledged events when progress was last seen, and when.
    progress: (u64, Instant),
    warned: bool,
    caught_up: bool,
}

impl Background {
    /// A replay running on `thread`; `caught_up` says whether its gate
    /// holds already.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: &str,
        store: &str,
        stop: Cancel,
        live: Arc<Live>,
        thread: JoinHandle<Result<String, StepError>>,
        gate: Gate,
        stall_after: Duration,
        caught_up: bool,
    ) -> Self {
        Background {
            id: id.to_string(),
            store: store.to_string(),
            stop,
            live,
            thread,
            gate,
            stall_after,
            progress: (0, Instant::now()),
            warned: false,
            caught_up,
        }
    }

    /// Its gate held from `since` on (it passed it in the foreground).
    pub fn caught_up_since(&mut self, since: Instant) {
        let (max_lag, hold) = self.gate.bounds();
        self.gate = Gate::held_since(max_lag, hold, since);
        self.caught_up = true;
    }

    /// Stops it and waits (boundedly) until it committed what it had.
    pub fn finish(self) -> (String, Result<String, StepError>) {
        self.stop.cancel();
        let deadline = Instant::now() + FINISH_LIMIT;
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !self.thread.is_finished() {
            return (
                self.id,
                Err(StepError::Other(format!(
                    "did not stop within {}; its last commit stands and the next run resumes from there",
                    humantime::format_duration(FINISH_LIMIT)
                ))),
            );
        }
        let result = self.thread.join().unwrap_or_else(|_| {
            Err(StepError::Other(
                "the background replay panicked; nothing after its last checkpoint was committed"
                    .into(),
            ))
        });
        (self.id, result)
    }

    /// One look: the gate and the stall clock. Returns why it stalled.
    pub fn look(&mut self, now: Instant) -> Option<String> {
        let lag = self.live.lag();
        self.caught_up = self.gate.observe(lag, now);
        let acked = self.live.acknowledged_events();
        if lag == Some(0) || acked != self.progress.0 {
            self.progress = (acked, now);
            self.warned = false;
            return None;
        }
        let still = now - self.progress.1;
        let behind = match lag {
            Some(l) => format!("{l} messages behind"),
            None => "the end of the log unknown (the source cannot be asked)".into(),
        };
        if still >= self.stall_after {
            return Some(format!(
                "stalled: no event acknowledged for {} with {behind}{}",
                humantime::format_duration(Duration::from_secs(still.as_secs())),
                positions(&self.live)
            ));
        }
        if still >= STALL_WARNING && !self.warned {
            self.warned = true;
            tracing::warn!(
                step = %self.id,
                "no progress for {} with {behind}; the run fails if this lasts {}",
                humantime::format_duration(Duration::from_secs(still.as_secs())),
                humantime::format_duration(self.stall_after)
            );
        }
        None
    }
}

/// `; partition 0 at 120 of 400, …` for an error.
fn positions(live: &Live) -> String {
    let parts: Vec<String> = live
        .partitions()
        .iter()
        .map(|(p, s)| match s.high {
            Some(h) => format!("partition {p} at offset {} of {h}", s.acked),
            None => format!("partition {p} at offset {}", s.acked),
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join(", "))
    }
}

/// Whether a background replay can be relied on now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Not running in this process.
    NotRunning,
    /// Running, with its gate not holding: this far behind.
    Behind(Option<u64>),
    /// Running and within its gate.
    CaughtUp,
}

#[derive(Default)]
struct Inner {
    list: Vec<Background>,
    /// The first failure, kept for the run's error.
    failure: Option<(String, StepError)>,
}

/// The background replays of one run.
#[derive(Default, Clone)]
pub struct BackgroundReplays(Arc<Mutex<Inner>>);

impl BackgroundReplays {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one.
    pub fn add(&self, b: Background) {
        self.inner().list.push(b);
    }

    /// One look at every replay (see `engine::watch`): takes out the ones
    /// that ended by themselves or stalled, and returns each with its error.
    /// `interrupted` says whether the run is stopping, in which case an
    /// ended replay is not a failure.
    pub fn look(&self, interrupted: bool) -> Vec<(String, StepError)> {
        let now = Instant::now();
        let mut inner = self.inner();
        let mut failed = Vec::new();
        let mut keep = Vec::new();
        for mut b in inner.list.drain(..) {
            if b.thread.is_finished() {
                let (id, result) = b.finish();
                let error = match result {
                    Err(StepError::Interrupted) if interrupted => continue,
                    Err(e) => e,
                    Ok(_) if interrupted => continue,
                    Ok(summary) => {
                        StepError::Other(format!("stopped unexpectedly after {summary}"))
                    }
                };
                failed.push((id, error));
            } else if let Some(why) = b.look(now) {
                failed.push((b.id.clone(), StepError::Other(why)));
                // Asked to stop; it commits what the store acknowledged.
                b.stop.cancel();
                keep.push(b);
            } else {
                keep.push(b);
            }
        }
        inner.list = keep;
        failed
    }

    /// Records the first failure of the run.
    pub fn failed(&self, id: &str, error: StepError) {
        self.inner().failure.get_or_insert((id.to_string(), error));
    }

    /// The run's first background failure, if any; taken out.
    pub fn take_failure(&self) -> Option<(String, StepError)> {
        self.inner().failure.take()
    }

    /// The replay whose failure stopped the run, if one did.
    pub fn failed_id(&self) -> Option<String> {
        self.inner().failure.as_ref().map(|(id, _)| id.clone())
    }

    /// Whether a background replay failed in this run.
    pub fn has_failed(&self) -> bool {
        self.inner().failure.is_some()
    }

    /// Whether replay `id` runs and is within its gate.
    pub fn freshness(&self, id: &str) -> Freshness {
        match self.inner().list.iter().find(|b| b.id == id) {
            None => Freshness::NotRunning,
            Some(b) if b.caught_up => Freshness::CaughtUp,
            Some(b) => Freshness::Behind(b.live.lag()),
        }
    }

    /// The gate of replay `id`: lag allowed and for how long.
    pub fn gate_of(&self, id: &str) -> Option<(u64, Duration)> {
        self.inner()
            .list
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.gate.bounds())
    }

    /// Each running replay's id and board.
    pub fn boards(&self) -> Vec<(String, Arc<Live>)> {
        self.inner()
            .list
            .iter()
            .map(|b| (b.id.clone(), b.live.clone()))
            .collect()
    }

    /// Stops the given replays (all when `ids` is empty) and waits for them.
    pub fn stop(&self, ids: &[String]) -> Vec<(String, Result<String, StepError>)> {
        let mut inner = self.inner();
        let (chosen, rest): (Vec<_>, Vec<_>) = inner
            .list
            .drain(..)
            .partition(|b| ids.is_empty() || ids.contains(&b.id));
        inner.list = rest;
        drop(inner);
        for b in &chosen {
            b.stop.cancel();
        }
        chosen.into_iter().map(Background::finish).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::source::PartitionEnd;

    fn replay(live: Arc<Live>, stall_after: Duration) -> Background {
        let stop = Cancel::default();
        let waiting = stop.clone();
        let thread = std::thread::spawn(move || {
            while !waiting.is_cancelled() {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok("stopped".to_string())
        });
        Background::new(
            "sync",
            "green",
            stop,
            live,
            thread,
            Gate::new(0, Duration::ZERO),
            stall_after,
            false,
        )
    }

    #[test]
    fn a_replay_behind_without_progress_stalls_and_one_at_the_end_does_not() {
        let live = Arc::new(Live::default());
        live.set_ends(Some(BTreeMap::from([(
            3,
            PartitionEnd { high: 50, read: 40 },
        )])));
        live.acknowledged(&BTreeMap::from([(3, 40)]), &BTreeMap::from([(3, 40)]));
        let replays = BackgroundReplays::default();
        replays.add(replay(live.clone(), Duration::from_millis(100)));
        assert!(replays.look(false).is_empty());
        assert_eq!(replays.freshness("sync"), Freshness::Behind(Some(10)));
        std::thread::sleep(Duration::from_millis(150));
        let failed = replays.look(false);
        assert_eq!(failed.len(), 1);
        let why = failed[0].1.to_string();
        assert!(
            why.starts_with("stalled: no event acknowledged for ")
                && why.ends_with("with 10 messages behind; partition 3 at offset 40 of 50"),
            "{why}"
        );

        // Progress, or nothing left to read, is no stall.
        let live = Arc::new(Live::default());
        live.set_ends(Some(BTreeMap::from([(
            0,
            PartitionEnd { high: 9, read: 9 },
        )])));
        live.acknowledged(&BTreeMap::from([(0, 9)]), &BTreeMap::new());
        let replays = BackgroundReplays::default();
        replays.add(replay(live, Duration::from_millis(50)));
        std::thread::sleep(Duration::from_millis(100));
        assert!(replays.look(false).is_empty());
        assert_eq!(replays.freshness("sync"), Freshness::CaughtUp);
        let stopped = replays.stop(&[]);
        assert_eq!(stopped[0].1.as_deref().ok(), Some("stopped"));
    }

    #[test]
    fn a_replay_that_ends_by_itself_failed_unless_the_run_is_stopping() {
        let replays = BackgroundReplays::default();
        let mut b = replay(Arc::new(Live::default()), Duration::from_secs(60));
        b.stop.cancel();
        b.thread =
            std::thread::spawn(|| Err(StepError::Refused("event partition 1 offset 7".into())));
        replays.add(b);
        std::thread::sleep(Duration::from_millis(50));
        let failed = replays.look(false);
        assert_eq!(failed[0].1.to_string(), "event partition 1 offset 7");
        assert_eq!(replays.freshness("sync"), Freshness::NotRunning);

        let mut b = replay(Arc::new(Live::default()), Duration::from_secs(60));
        b.stop.cancel();
        b.thread = std::thread::spawn(|| Err(StepError::Interrupted));
        replays.add(b);
        std::thread::sleep(Duration::from_millis(50));
        assert!(replays.look(true).is_empty());
    }
}
