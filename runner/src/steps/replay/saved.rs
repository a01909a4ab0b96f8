//! What a replay keeps in its step's state: the position the store
//! acknowledged (the checkpoint a resumed run starts from), and each
//! partition as last seen, for `runner status`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::source::Checkpoint;
use crate::state::StepState;

/// A replay's own part of its step's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplayState {
    /// The acknowledged position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// The partitions as last seen: log end, acknowledged position, lag
    /// and throughput.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partitions: BTreeMap<i32, PartitionStatus>,
}

impl ReplayState {
    /// Writes the checkpoint into `step`'s state. Once per batch, so it
    /// touches that field alone instead of reading and writing the whole
    /// part.
    pub fn set_checkpoint(step: &mut StepState, checkpoint: &Checkpoint) {
        step.set_own_field("checkpoint", Some(checkpoint));
    }

    /// Writes the partitions as last seen into `step`'s state.
    pub fn set_partitions(step: &mut StepState, partitions: &BTreeMap<i32, PartitionStatus>) {
        step.set_own_field("partitions", (!partitions.is_empty()).then_some(partitions));
    }
}

/// Where one partition of a replay stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionStatus {
    /// The log end (high watermark); `None` while the source cannot be
    /// asked (a broker unreachable).
    pub high: Option<i64>,
    /// The next offset not yet acknowledged by the store.
    pub acked: i64,
    /// Messages behind the log end; `None` while unknown.
    pub lag: Option<u64>,
    /// Events applied from this partition in this run.
    pub events: u64,
    /// Events per second over the last interval.
    pub rate: f64,
    /// When this was measured (ms since the epoch).
    pub at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;

    /// A replay step's state as the runner before kinds kept their own
    /// part wrote it: its fields flat in the step.
    const EARLIER: &str = r#"{
      "workflow": "chat", "format": 1, "fingerprint": "f", "made": [],
      "started_at_ms": 1, "restore_points": {"green": 5},
      "steps": {"sync": {
        "status": "done", "kind": "replay", "started_at_ms": 2, "finished_at_ms": 3,
        "attempts": 1, "summary": "caught up",
        "checkpoint": {"next": {"0": 40, "1": 7}, "event_times": {"0": 99}},
        "metrics": {"events": 47},
        "live": true,
        "partitions": {"0": {"high": 50, "acked": 40, "lag": 10, "events": 40, "rate": 2.5, "at_ms": 9}}
      }}
    }"#;

    #[test]
    fn a_state_file_of_the_earlier_layout_resumes_and_is_written_back_alike() {
        let state: State = serde_json::from_str(EARLIER).unwrap();
        let step = &state.steps["sync"];
        assert!(
            step.syncing(),
            "`live` is read as running in the background"
        );
        assert_eq!(step.metrics["events"], 47);
        let saved: ReplayState = step.own().unwrap();
        let checkpoint = saved.checkpoint.unwrap();
        assert_eq!(checkpoint.next, BTreeMap::from([(0, 40), (1, 7)]));
        assert_eq!(checkpoint.event_times, BTreeMap::from([(0, 99)]));
        assert_eq!(saved.partitions[&0].lag, Some(10));

        let earlier: serde_json::Value = serde_json::from_str(EARLIER).unwrap();
        let written = serde_json::to_value(&state).unwrap();
        assert_eq!(written["steps"], earlier["steps"]);
    }
}
