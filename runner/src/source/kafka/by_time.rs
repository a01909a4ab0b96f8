//! Finding the first offset at or after a time in one partition.
//!
//! Kafka answers this with offsets-for-times (ListOffsets by timestamp).
//! Not every Kafka-protocol broker answers it right: Tansu's in-memory
//! storage answers offset 0 whatever the time. So the answer is checked
//! against the records themselves — the record at the answer must be at or
//! after the time and the one before it earlier — and if the check fails,
//! the offset is found by a binary search over record timestamps, which
//! assumes them ordered within a partition (as the broker's own time index
//! does). Either way a wrong answer can only start the replay earlier,
//! never skip an event.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::client::REQUEST_TIMEOUT;
use super::config::TimeLookup;

/// How the offset was found, for the log and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The broker's answer, checked against the records.
    Broker,
    /// The broker's answer, not checked (`time_lookup = "broker"`).
    BrokerUnchecked,
    /// A search over record timestamps.
    Search,
}

/// The probe's client context: the end of a partition is what the probe
/// looks for, so librdkafka reporting it as an error is dropped rather
/// than logged (it can arrive that way when a fetch ends a partition the
/// probe has moved past).
pub struct ProbeContext;

impl ClientContext for ProbeContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
            || matches!(error, KafkaError::PartitionEOF(_))
        {
            return;
        }
        tracing::warn!(target: "librdkafka", "{error}: {reason}");
    }
}

impl ConsumerContext for ProbeContext {}

/// Reads single records by offset, with its own consumer that never joins
/// or commits for a group.
pub struct Probe {
    consumer: BaseConsumer<ProbeContext>,
    topic: String,
    /// Records read, for the log.
    pub reads: u32,
}

impl Probe {
    /// A probe with these client settings.
    pub fn new(settings: &rdkafka::ClientConfig, topic: &str) -> Result<Self, String> {
        let mut settings = settings.clone();
        settings
            .set("group.id", "switchyard-probe")
            .set("enable.partition.eof", "true")
            .set("statistics.interval.ms", "0");
        let consumer: BaseConsumer<ProbeContext> = settings
            .create_with_context(ProbeContext)
            .map_err(|e| format!("cannot create a probe consumer: {e}"))?;
        Ok(Probe {
            consumer,
            topic: topic.to_string(),
            reads: 0,
        })
    }

    /// The offset and time of the first record at or after `offset`, or
    /// `None` when there is none.
    pub fn first_from(
        &mut self,
        partition: i32,
        offset: i64,
    ) -> Result<Option<(i64, i64)>, String> {
        self.reads += 1;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, partition, Offset::Offset(offset))
            .map_err(|e| e.to_string())?;
        self.consumer.assign(&tpl).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        while Instant::now() < deadline {
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) if m.partition() == partition && m.offset() >= offset => {
                    let time = m.timestamp().to_millis().ok_or_else(|| {
                        format!(
                            "record partition {partition} offset {} has no timestamp",
                            m.offset()
                        )
                    })?;
                    return Ok(Some((m.offset(), time)));
                }
                Some(Ok(_)) => {}
                Some(Err(KafkaError::PartitionEOF(p))) if p == partition => return Ok(None),
                Some(Err(e)) => {
                    tracing::debug!("probe of partition {partition} offset {offset}: {e}")
                }
                None => {}
            }
        }
        Err(format!(
            "no answer reading partition {partition} at offset {offset} within {}s",
            REQUEST_TIMEOUT.as_secs()
        ))
    }
}

impl Probe {
    /// The time of the record at each `partition → offset`, read in one go
    /// (all partitions assigned at once, so one fetch round covers them);
    /// a partition whose record is gone is left out.
    pub fn times_at(&mut self, at: &BTreeMap<i32, i64>) -> Result<BTreeMap<i32, i64>, String> {
        let mut found = BTreeMap::new();
        if at.is_empty() {
            return Ok(found);
        }
        self.reads += at.len() as u32;
        let mut tpl = TopicPartitionList::new();
        for (p, o) in at {
            tpl.add_partition_offset(&self.topic, *p, Offset::Offset(*o))
                .map_err(|e| e.to_string())?;
        }
        self.consumer.assign(&tpl).map_err(|e| e.to_string())?;
        let mut open: BTreeSet<i32> = at.keys().copied().collect();
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        while !open.is_empty() && Instant::now() < deadline {
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) if open.contains(&m.partition()) => {
                    let p = m.partition();
                    open.remove(&p);
                    if m.offset() == at[&p]
                        && let Some(time) = m.timestamp().to_millis()
                    {
                        found.insert(p, time);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    open.remove(&p);
                }
                Some(Err(e)) => tracing::debug!("probe of {:?}: {e}", at),
                None => {}
            }
        }
        if open.is_empty() {
            Ok(found)
        } else {
            Err(format!(
                "no answer reading partitions {open:?} within {}s",
                REQUEST_TIMEOUT.as_secs()
            ))
        }
    }
}

/// The first offset of `partition` whose record is at or after `time`
/// (`high` when there is none), between the partition's `low` and `high`.
pub fn offset_at<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    probe: &mut Probe,
    partition: i32,
    time: i64,
    (low, high): (i64, i64),
    lookup: TimeLookup,
) -> Result<(i64, Found), String> {
    if low >= high {
        return Ok((high, Found::Broker));
    }
    let answer = match lookup {
        TimeLookup::Search => None,
        TimeLookup::Auto | TimeLookup::Broker => Some(broker_answer(
            consumer,
            &probe.topic,
            partition,
            time,
            high,
        )?),
    };
    match (lookup, answer) {
        (TimeLookup::Broker, Some(answer)) => Ok((answer, Found::BrokerUnchecked)),
        _ => {
            let topic = probe.topic.clone();
            locate(probe, &topic, partition, time, (low, high), answer)
        }
    }
}

/// Reads the first record at or after an offset: a [`Probe`] against the
/// broker, or a plain list in the unit tests.
pub trait Records {
    /// The offset and time of the first record of `partition` at or after
    /// `offset`, or `None` past the last one.
    fn first_from(&mut self, partition: i32, offset: i64) -> Result<Option<(i64, i64)>, String>;
}

impl Records for Probe {
    fn first_from(&mut self, partition: i32, offset: i64) -> Result<Option<(i64, i64)>, String> {
        Probe::first_from(self, partition, offset)
    }
}

/// Checks the broker's `answer` against the records and searches them when
/// it is wrong or missing.
fn locate(
    records: &mut impl Records,
    topic: &str,
    partition: i32,
    time: i64,
    (low, high): (i64, i64),
    answer: Option<i64>,
) -> Result<(i64, Found), String> {
    if let Some(answer) = answer {
        if (low..=high).contains(&answer) && starts_at(records, partition, time, answer, low)? {
            return Ok((answer, Found::Broker));
        }
        tracing::warn!(
            topic,
            partition,
            answer,
            "the broker's offset for time {} disagrees with the record timestamps; searching the records instead",
            crate::report::version_time(time)
        );
    }
    let (mut lo, mut hi) = (low, high);
    // The broker's log end may be wrong too (Tansu's memory storage counts
    // batches): while records exist past it that are still too early,
    // move the bounds on, doubling the step.
    let mut step = (high - low).max(1);
    loop {
        match records.first_from(partition, hi)? {
            Some((offset, t)) if t < time => {
                lo = offset + 1;
                hi = lo + step;
                step = step.saturating_mul(2);
            }
            _ => break,
        }
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if at_or_after(records, partition, time, mid)? {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok((lo, Found::Search))
}

/// Whether the first record at or after `offset` is at or after `time`
/// (true when there is none: the end of the log is after every time).
fn at_or_after(
    records: &mut impl Records,
    partition: i32,
    time: i64,
    offset: i64,
) -> Result<bool, String> {
    Ok(records
        .first_from(partition, offset)?
        .is_none_or(|(_, t)| t >= time))
}

/// Whether the first offset at or after `time` is `offset`.
fn starts_at(
    records: &mut impl Records,
    partition: i32,
    time: i64,
    offset: i64,
    low: i64,
) -> Result<bool, String> {
    Ok(at_or_after(records, partition, time, offset)?
        && (offset == low || !at_or_after(records, partition, time, offset - 1)?))
}

fn broker_answer<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    time: i64,
    high: i64,
) -> Result<i64, String> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(time))
        .map_err(|e| e.to_string())?;
    let answer = consumer
        .offsets_for_times(tpl, REQUEST_TIMEOUT)
        .map_err(|e| format!("offsets-for-times failed: {e}"))?;
    Ok(
        match answer.find_partition(topic, partition).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            // No record at or after the time.
            Some(Offset::End) => high,
            other => {
                tracing::debug!("offsets-for-times answered {other:?}");
                -1
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One partition whose record at offset `first + i` has time `times[i]`.
    struct Log {
        first: i64,
        times: Vec<i64>,
        reads: u32,
    }

    impl Records for Log {
        fn first_from(&mut self, _: i32, offset: i64) -> Result<Option<(i64, i64)>, String> {
            self.reads += 1;
            let at = offset.max(self.first);
            Ok(self.times.get((at - self.first) as usize).map(|t| (at, *t)))
        }
    }

    /// Offsets 100..200 at times 1000, 1010, …, 1990.
    fn log() -> Log {
        Log {
            first: 100,
            times: (0..100).map(|i| 1000 + 10 * i).collect(),
            reads: 0,
        }
    }

    #[test]
    fn a_right_answer_is_kept_after_two_reads() {
        let mut log = log();
        let found = locate(&mut log, "t", 0, 1255, (100, 200), Some(126)).unwrap();
        assert_eq!(found, (126, Found::Broker));
        assert_eq!(log.reads, 2);
    }

    #[test]
    fn a_wrong_or_missing_answer_is_searched_for() {
        for answer in [Some(0), Some(100), Some(127), Some(500), None] {
            let found = locate(&mut log(), "t", 0, 1255, (100, 200), answer).unwrap();
            assert_eq!(found, (126, Found::Search), "answer {answer:?}");
        }
    }

    #[test]
    fn times_before_the_first_or_after_the_last_record_give_the_ends() {
        assert_eq!(
            locate(&mut log(), "t", 0, 5, (100, 200), None).unwrap().0,
            100
        );
        assert_eq!(
            locate(&mut log(), "t", 0, 9999, (100, 200), None)
                .unwrap()
                .0,
            200
        );
        assert_eq!(
            locate(&mut log(), "t", 0, 1990, (100, 200), None)
                .unwrap()
                .0,
            199
        );
    }

    #[test]
    fn a_log_end_reported_too_low_is_searched_past() {
        // The broker says the log ends at 110; records go on to 199.
        let found = locate(&mut log(), "t", 0, 1755, (100, 110), Some(0)).unwrap();
        assert_eq!(found, (176, Found::Search));
    }
}
