//! The event time a consumer group has reached on a topic: per partition,
//! the time of the last record before the group's committed offset; the
//! lowest over the partitions that hold records. A consumer commits after
//! it wrote, so a store written by that consumer holds every event up to
//! that time. Read only: the group is asked for its offsets, never joined.

use std::collections::BTreeMap;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::by_time::Probe;
use super::client::{self, REQUEST_TIMEOUT};
use super::fault_of;
use crate::fault::Fault;
use crate::source::SourceError;
use crate::source::kafka::KafkaConfig;

/// How many offsets before a commit are searched for a record.
const LOOK_BACK: i64 = 16;

/// The time `group` has reached on the topic of `cfg` (source `name`).
pub fn reached(name: &str, cfg: &KafkaConfig, group: &str) -> Result<i64, SourceError> {
    let error = |fault: Fault, message: String| SourceError::new(name, fault, message);
    let refused = |message: String| error(Fault::Refused, message);
    let transient = |message: String| error(Fault::Transient, message);
    let settings = client::settings(name, cfg, group).map_err(refused)?;
    let consumer: BaseConsumer = settings
        .create()
        .map_err(|e| error(fault_of(&e), format!("cannot create a kafka consumer: {e}")))?;
    let topic = &cfg.topic;
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(|e| {
            error(
                fault_of(&e),
                format!("cannot reach the brokers `{}`: {e}", cfg.brokers),
            )
        })?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(refused(format!("the brokers know no topic `{topic}`")));
    }
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition(topic, *p);
    }
    let committed = consumer
        .committed_offsets(tpl, REQUEST_TIMEOUT)
        .map_err(|e| {
            error(
                fault_of(&e),
                format!("cannot read the offsets of group `{group}`: {e}"),
            )
        })?;
    // The record whose time says where the group stands, per partition:
    // the last one it consumed, or (nothing consumed of what is left) the
    // next one, whose time it has not reached.
    let mut last = BTreeMap::new();
    let mut next = BTreeMap::new();
    for p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, REQUEST_TIMEOUT)
            .map_err(|e| {
                error(
                    fault_of(&e),
                    format!("cannot read the ends of partition {p}: {e}"),
                )
            })?;
        if low >= high {
            continue; // Empty: holds nothing back.
        }
        let at = committed
            .find_partition(topic, *p)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .ok_or_else(|| {
                refused(format!(
                    "group `{group}` has committed nothing on partition {p} of `{topic}`, so where its consumer stands is unknown"
                ))
            })?;
        if at < low {
            return Err(refused(format!(
                "group `{group}` is behind the retention of partition {p} of `{topic}` (committed {at}, the oldest record is {low}), so what its store holds cannot be told"
            )));
        }
        if at > low {
            last.insert(*p, at.min(high) - 1);
        } else {
            next.insert(*p, low);
        }
    }
    let mut probe = Probe::new(&settings, topic).map_err(transient)?;
    let mut times = probe.times_at(&last).map_err(transient)?;
    // The offset before a commit may hold no record (a transaction's
    // marker, a compacted record): the last record before it tells.
    for (p, o) in &last {
        let mut back = *o;
        while !times.contains_key(p) && back > 0 && o - back < LOOK_BACK {
            back -= 1;
            if let Some(t) = probe
                .times_at(&BTreeMap::from([(*p, back)]))
                .map_err(transient)?
                .get(p)
            {
                times.insert(*p, *t);
            }
        }
    }
    let before = probe.times_at(&next).map_err(transient)?;
    let mut lowest: Option<i64> = None;
    for (p, o) in last.iter().chain(next.iter()) {
        let time = match (times.get(p), before.get(p)) {
            (Some(t), _) => *t,
            (None, Some(t)) => t.saturating_sub(1),
            (None, None) => {
                return Err(transient(format!(
                    "cannot read the time of partition {p} offset {o} of `{topic}`"
                )));
            }
        };
        lowest = Some(lowest.map_or(time, |l| l.min(time)));
    }
    lowest.ok_or_else(|| refused(format!("topic `{topic}` holds no records")))
}
