//! Event sources: where the log is read from.
//!
//! A source starts at a position (earliest, a time, given offsets, or a
//! saved checkpoint), delivers batches, and after the store acknowledged a
//! batch is told to commit its checkpoint. Nothing is committed before that,
//! so a runner killed at any point resumes from the last acknowledged batch.
//!
//! - `file`: NDJSON, one event per line; the embedded default.
//! - `kafka`: a topic, through rdkafka, in a consumer group.
//!
//! Each kind keeps its settings beside its implementation and implements
//! [`SourceConfig`]; a new kind is one file and one line in [`KINDS`].

pub mod file;
pub mod kafka;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::document::{Home, Kind, Sections};
use crate::fault::Fault;
use crate::model::Event;
pub use crate::report::progress::Progress;

/// Where to start reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The first event of every partition.
    Earliest,
    /// The end of every partition: only events that arrive from now on.
    Latest,
    /// In each partition, the first event at or after this time (ms).
    Timestamp(i64),
    /// Given offsets by partition (partitions not given start at the earliest).
    Offsets(BTreeMap<i32, i64>),
}

/// A position in the log that is safe to resume from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The next offset to read, per partition.
    pub next: BTreeMap<i32, i64>,
    /// A source-specific cursor (the file source's line number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    /// A time start still being applied: partitions not listed have not
    /// reached the start time yet, and their older events are skipped
    /// after a resume too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_filter: Option<StartFilter>,
    /// The latest event time reached per partition, read or skipped (so
    /// the watermark is the same after a resume).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub event_times: BTreeMap<i32, i64>,
}

/// How big one batch may grow: it ends at whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimit {
    /// Events.
    pub events: usize,
    /// Bytes of keys and values (one event larger than this is a batch of
    /// its own).
    pub bytes: u64,
}

/// The event time each partition of a source has reached, for the
/// watermark: the time that *every* partition has reached, over all the
/// partitions the source has, not only those seen lately. A partition
/// holding events counts from the start; until it is reached, there is no
/// watermark. An empty partition holds nothing back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reached {
    partitions: BTreeSet<i32>,
    times: BTreeMap<i32, i64>,
}

impl Reached {
    /// `partition` holds events: the watermark waits for it.
    pub fn require(&mut self, partition: i32) {
        self.partitions.insert(partition);
    }

    /// An event of `partition` at `time` was read (or skipped on purpose).
    pub fn saw(&mut self, partition: i32, time: i64) {
        self.partitions.insert(partition);
        let t = self.times.entry(partition).or_insert(time);
        *t = (*t).max(time);
    }

    /// Picks up the times of a checkpoint.
    pub fn resume(&mut self, times: &BTreeMap<i32, i64>) {
        for (p, t) in times {
            self.saw(*p, *t);
        }
    }

    /// How many partitions the watermark waits for.
    pub fn partitions(&self) -> usize {
        self.partitions.len()
    }

    /// Whether `partition` has a time.
    pub fn has(&self, partition: i32) -> bool {
        self.times.contains_key(&partition)
    }

    /// The time every partition (of `among`, when given) has reached.
    pub fn watermark(&self, among: Option<&BTreeSet<i32>>) -> Option<i64> {
        let mut lowest: Option<i64> = None;
        for p in &self.partitions {
            if among.is_some_and(|a| !a.contains(p)) {
                continue;
            }
            let t = *self.times.get(p)?;
            lowest = Some(lowest.map_or(t, |l| l.min(t)));
        }
        lowest
    }

    /// The times, for a checkpoint.
    pub fn times(&self) -> BTreeMap<i32, i64> {
        self.times.clone()
    }
}

/// See [`Checkpoint::start_filter`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartFilter {
    /// The start time (ms).
    pub at: i64,
    /// Partitions that reached it.
    pub started: Vec<i32>,
}

/// A record the source could not turn into an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// Where it is, in words (`line 17 of events.ndjson`).
    pub place: String,
    /// The raw record.
    pub raw: Vec<u8>,
    /// Why it is bad.
    pub error: String,
}

/// What one read returns.
#[derive(Debug, Default)]
pub struct Batch {
    /// Good events, in log order per partition.
    pub events: Vec<Event>,
    /// Records that are not events.
    pub bad: Vec<BadRecord>,
    /// Where the log stands after this batch.
    pub checkpoint: Checkpoint,
    /// The event time every partition has reached once this batch (and
    /// all before it) is applied; see [`Reached`].
    pub watermark: Option<i64>,
}

/// A source failed (not a bad record: the source itself).
#[derive(Debug, thiserror::Error)]
#[error("source `{source_name}`: {message}")]
pub struct SourceError {
    /// The source's name in the workflow.
    pub source_name: String,
    /// Whether trying again may help.
    pub fault: Fault,
    /// What went wrong.
    pub message: String,
}

impl SourceError {
    /// A failure of the source `source`.
    pub fn new(source: &str, fault: Fault, message: impl Into<String>) -> Self {
        SourceError {
            source_name: source.to_string(),
            fault,
            message: message.into(),
        }
    }
}

/// Where one partition stands against the end of the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionEnd {
    /// The offset after the last message in the log (the high watermark).
    pub high: i64,
    /// The next offset this source will read.
    pub read: i64,
}

/// What every source does.
pub trait Source: Send {
    /// Positions the source at `start`, or where `resume` (a checkpoint
    /// saved by an earlier run) left off.
    fn seek(&mut self, start: &Start, resume: Option<&Checkpoint>) -> Result<(), SourceError>;

    /// The next batch, within `limit`; `None` at the end of input. A source
    /// that follows a live log returns an empty batch when nothing arrived
    /// for a while, so the caller can look at its stop signal.
    fn next_batch(&mut self, limit: BatchLimit) -> Result<Option<Batch>, SourceError>;

    /// Everything up to `checkpoint` is durable in the store.
    fn commit(&mut self, checkpoint: &Checkpoint) -> Result<(), SourceError>;

    /// Makes the commits so far durable before the source is dropped.
    fn close(&mut self) -> Result<(), SourceError> {
        Ok(())
    }

    /// How far along it is.
    fn progress(&self) -> Progress;

    /// Per partition this source reads now: the log end and its position;
    /// `None` while some are not known yet (or the source has no live end).
    fn ends(&self) -> Option<BTreeMap<i32, PartitionEnd>> {
        None
    }
}

/// Whether a replay stops at the end of the log or follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Stop at the log's end as it was when reading started.
    UntilEnd,
    /// Keep reading what arrives.
    Tail,
}

/// One kind of source as a workflow configures it: how its
/// `[source.NAME]` table is described, probed and opened. Each kind keeps
/// its config type beside its implementation and registers it in
/// [`KINDS`] (its name and reader).
pub trait SourceConfig: std::fmt::Debug + Send + Sync + Any {
    /// Whether it is a log that can be followed past its end: started at
    /// `latest` or at given offsets, replayed `until` caught up, and
    /// written to (a dead-letter topic).
    fn can_follow(&self) -> bool {
        false
    }

    /// Its words in the plan: `file /data/events.ndjson`.
    fn describe(&self, home: &Home, name: &str) -> String;

    /// Checks, reading nothing, that it can be reached and has the shape
    /// the workflow declares; `topics` are more topics that must exist
    /// beside a log's own (dead letters); `made_earlier` says a step still
    /// to run may write it first.
    fn probe(
        &self,
        home: &Home,
        name: &str,
        topics: &[&str],
        made_earlier: bool,
    ) -> Result<String, SourceError>;

    /// Opens it; a long opening (a file source reads its file once) ends
    /// early when `stop` is set.
    fn open(
        &self,
        home: &Home,
        name: &str,
        follow: Follow,
        stop: &Cancel,
    ) -> Result<Box<dyn Source>, SourceError>;
}

/// Every kind of source.
pub const KINDS: &[Kind<dyn SourceConfig>] = &[file::KIND, kafka::config::KIND];

/// The `[source.NAME]` sections of a workflow, in file order.
pub type Sources = Sections<dyn SourceConfig>;

impl Sections<dyn SourceConfig> {
    /// Checks, reading nothing, that the source `name` can be reached (see
    /// [`SourceConfig::probe`]).
    pub fn probe(
        &self,
        home: &Home,
        name: &str,
        topics: &[&str],
        made_earlier: bool,
    ) -> Result<String, SourceError> {
        self.named(name)?.probe(home, name, topics, made_earlier)
    }

    /// Opens the source `name`.
    pub fn open(
        &self,
        home: &Home,
        name: &str,
        follow: Follow,
        stop: &Cancel,
    ) -> Result<Box<dyn Source>, SourceError> {
        self.named(name)?.open(home, name, follow, stop)
    }

    fn named(&self, name: &str) -> Result<&dyn SourceConfig, SourceError> {
        self.get(name)
            .ok_or_else(|| SourceError::new(name, Fault::Refused, "no such source in the workflow"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_waits_for_every_partition_that_holds_events() {
        let mut r = Reached::default();
        r.require(0);
        r.require(1);
        r.saw(0, 50);
        assert_eq!(r.watermark(None), None, "partition 1 not reached yet");
        r.saw(1, 10);
        assert_eq!(r.watermark(None), Some(10));
        r.saw(1, 5);
        assert_eq!(r.watermark(None), Some(10), "never goes back");
        let only_0: BTreeSet<i32> = [0].into();
        assert_eq!(r.watermark(Some(&only_0)), Some(50));
        let mut again = Reached::default();
        again.resume(&r.times());
        assert_eq!(again.watermark(None), Some(10));
    }
}
