//! A replay syncing in the background (`until = "cutover"`): its pipeline
//! on its own thread, the catch-up gate the watch feeds, and the stall
//! clock. A replay that ends by itself failed, and one that makes no
//! progress while behind for its `stall` time has stalled; the gate tells
//! `compare` and `cutover` whether what they read is current.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::saved::ReplayState;
use super::{board::Board, gate::Gate};
use crate::cancel::Cancel;
use crate::state::StepState;
use crate::steps::StepError;
use crate::steps::background::{BackgroundTask, Freshness};

/// After this long without progress while behind, a warning is logged
/// (the failure comes after the replay's `stall` time).
const STALL_WARNING: Duration = Duration::from_secs(30);

/// One replay's running pipeline.
pub struct Syncing {
    /// Its step id, for messages.
    id: String,
    /// Asks it to stop.
    stop: Cancel,
    /// Where it stands.
    pub board: Arc<Board>,
    /// Its thread; returns the replay's summary.
    thread: JoinHandle<Result<String, StepError>>,
    /// Its catch-up gate, fed by the watch.
    pub gate: Gate,
    /// No progress while behind for this long is a stall.
    stall_after: Duration,
    /// Acknowledged events when progress was last seen, and when.
    progress: (u64, Instant),
    warned: bool,
    caught_up: bool,
}

impl Syncing {
    /// The pipeline of replay `id` running on `thread`.
    pub fn new(
        id: &str,
        stop: Cancel,
        board: Arc<Board>,
        thread: JoinHandle<Result<String, StepError>>,
        gate: Gate,
        stall_after: Duration,
    ) -> Self {
        Syncing {
            id: id.to_string(),
            stop,
            board,
            thread,
            gate,
            stall_after,
            progress: (0, Instant::now()),
            warned: false,
            caught_up: false,
        }
    }

    /// Its gate held from `since` on (it passed it in the foreground).
    pub fn caught_up_since(&mut self, since: Instant) {
        let (max_lag, hold) = self.gate.bounds();
        self.gate = Gate::held_since(max_lag, hold, since);
        self.caught_up = true;
    }
}

impl BackgroundTask for Syncing {
    fn stop(&self) {
        self.stop.cancel();
    }

    fn finished(&self) -> bool {
        self.thread.is_finished()
    }

    fn join(self: Box<Self>) -> Result<String, StepError> {
        self.thread.join().unwrap_or_else(|_| {
            Err(StepError::Panicked(
                "the background replay panicked; nothing after its last checkpoint was committed"
                    .into(),
            ))
        })
    }

    /// The gate and the stall clock.
    fn look(&mut self, now: Instant) -> Option<String> {
        let lag = self.board.lag();
        self.caught_up = self.gate.observe(lag, now);
        let acked = self.board.acknowledged_events();
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
                positions(&self.board)
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

    fn freshness(&self) -> Freshness {
        if self.caught_up {
            return Freshness::CaughtUp;
        }
        let (max_lag, hold) = self.gate.bounds();
        Freshness::Behind {
            lag: self.board.lag(),
            max_lag,
            hold,
        }
    }

    fn status(&self, state: &mut StepState) {
        ReplayState::set_partitions(state, &self.board.partitions());
    }
}

/// `; partition 0 at 120 of 400, …` for an error.
fn positions(board: &Board) -> String {
    let parts: Vec<String> = board
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::source::PartitionEnd;
    use crate::steps::background::BackgroundTasks;

    /// A replay whose thread runs `body` (by default: until stopped).
    fn replay(
        board: Arc<Board>,
        stall_after: Duration,
        body: Option<fn() -> Result<String, StepError>>,
    ) -> Box<Syncing> {
        let stop = Cancel::default();
        let waiting = stop.clone();
        let thread = std::thread::spawn(move || match body {
            Some(body) => body(),
            None => {
                while !waiting.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok("stopped".to_string())
            }
        });
        Box::new(Syncing::new(
            "sync",
            stop,
            board,
            thread,
            Gate::new(0, Duration::ZERO),
            stall_after,
        ))
    }

    #[test]
    fn a_replay_behind_without_progress_stalls_and_one_at_the_end_does_not() {
        let board = Arc::new(Board::default());
        board.set_ends(Some(BTreeMap::from([(
            3,
            PartitionEnd { high: 50, read: 40 },
        )])));
        board.acknowledged(&BTreeMap::from([(3, 40)]), &BTreeMap::from([(3, 40)]));
        let replays = BackgroundTasks::default();
        replays.add(
            "sync",
            "replay",
            replay(board.clone(), Duration::from_millis(100), None),
        );
        assert!(replays.look(false).is_empty());
        assert_eq!(
            replays.freshness("sync"),
            Freshness::Behind {
                lag: Some(10),
                max_lag: 0,
                hold: Duration::ZERO
            }
        );
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
        let board = Arc::new(Board::default());
        board.set_ends(Some(BTreeMap::from([(
            0,
            PartitionEnd { high: 9, read: 9 },
        )])));
        board.acknowledged(&BTreeMap::from([(0, 9)]), &BTreeMap::new());
        let replays = BackgroundTasks::default();
        replays.add(
            "sync",
            "replay",
            replay(board, Duration::from_millis(50), None),
        );
        std::thread::sleep(Duration::from_millis(100));
        assert!(replays.look(false).is_empty());
        assert_eq!(replays.freshness("sync"), Freshness::CaughtUp);
        let stopped = replays.stop(&[]);
        assert_eq!(stopped[0].result.as_deref().ok(), Some("stopped"));
    }

    #[test]
    fn a_replay_that_ends_by_itself_failed_unless_the_run_is_stopping() {
        let replays = BackgroundTasks::default();
        let refused: fn() -> Result<String, StepError> =
            || Err(StepError::Refused("event partition 1 offset 7".into()));
        let b = replay(
            Arc::new(Board::default()),
            Duration::from_secs(60),
            Some(refused),
        );
        replays.add("sync", "replay", b);
        std::thread::sleep(Duration::from_millis(50));
        let failed = replays.look(false);
        assert_eq!(failed[0].1.to_string(), "event partition 1 offset 7");
        assert_eq!(replays.freshness("sync"), Freshness::NotRunning);

        let interrupted: fn() -> Result<String, StepError> = || Err(StepError::Interrupted);
        let b = replay(
            Arc::new(Board::default()),
            Duration::from_secs(60),
            Some(interrupted),
        );
        replays.add("sync", "replay", b);
        std::thread::sleep(Duration::from_millis(50));
        assert!(replays.look(true).is_empty());
    }
}
