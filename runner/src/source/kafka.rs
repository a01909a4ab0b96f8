//! The kafka source: one topic, read with rdkafka in the replay's own
//! consumer group.
//!
//! - **Positions.** The group's committed offsets are the checkpoint. When
//!   the group hands this runner a partition it has no offset for yet, the
//!   partition starts where the replay starts (earliest, latest, given
//!   offsets, or the first record at a time — see `by_time`), or where the
//!   runner's own saved checkpoint says, whichever the runner knows.
//! - **Commits** happen only when the replay says the store acknowledged a
//!   batch, and only for partitions this runner still owns: after a
//!   rebalance another runner may own the rest, and a late commit must
//!   never move its position.
//! - **Scale-out** (`scale_out = true`). Runners sharing the group split
//!   the partitions; a partition moving between them is re-read from its
//!   last commit, which idempotent writes make harmless. Without it the
//!   runner reads every partition itself (no group membership, only the
//!   group's committed offsets), so a restarted runner starts at once
//!   instead of waiting for the group to drop its dead predecessor.
//! - **End.** With `until = "end"` the source stops once each partition
//!   it owns reached the log end as it was when the step started; otherwise
//!   it follows the log and reports lag per partition.
//! - **A service's position** (`group_time`): the event time another
//!   consumer group has reached, for stores that group writes.

pub mod by_time;
pub mod client;
pub mod config;
pub mod group_time;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::{
    Batch, BatchLimit, Checkpoint, Follow, PartitionEnd, Progress, Reached, Source, SourceError,
    Start,
};
use crate::fault::Fault;
use crate::model::{Event, Header};
use client::{REQUEST_TIMEOUT, SourceContext};
pub use config::KafkaConfig;

/// How long one read waits for the first message before returning what it
/// has (an empty batch when following a quiet log).
const POLL_WAIT: Duration = Duration::from_millis(200);

/// How often acknowledged positions go to the group while reading. The
/// replay acknowledges a batch many times a second, and each commit is a
/// write on the broker (librdkafka reports nothing back for a manual
/// asynchronous commit, so a broker slow to answer would otherwise gather
/// a queue of them). At the end of the log, and on close, the latest
/// positions go at once.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// The consumer group of a source: the configured one, or one of its own
/// per workflow and source, so a replay never shares positions with the
/// service's own consumer.
pub fn group_of(cfg: &KafkaConfig, workflow: &str, source: &str) -> String {
    cfg.group
        .clone()
        .unwrap_or_else(|| format!("switchyard.{workflow}.{source}"))
}

/// Whether a consumer error will not go away by waiting: no permission,
/// the topic or partition gone, or a fatal client error. The step fails
/// with the broker's words instead of retrying for ever.
fn gives_up(e: &KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::TopicAuthorizationFailed
                | C::GroupAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::SaslAuthenticationFailed
                | C::UnknownTopicOrPartition
                | C::UnknownTopic
                | C::UnknownPartition
                | C::Fatal
        )
    )
}

/// Whether a client error may pass: what [`gives_up`] names, and a
/// configuration the client refuses, will not; the rest (a broker out of
/// reach, a timeout, a leader moving) may.
fn fault_of(e: &KafkaError) -> Fault {
    if gives_up(e)
        || matches!(
            e,
            KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_)
        )
    {
        Fault::Refused
    } else {
        Fault::Transient
    }
}

/// How long the preflight waits for the brokers.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a topic.
pub struct KafkaSource {
    name: String,
    cfg: KafkaConfig,
    settings: rdkafka::ClientConfig,
    consumer: BaseConsumer<SourceContext>,
    follow: Follow,
    /// The log end per partition when the step started (`until = "end"`).
    end: BTreeMap<i32, i64>,
    /// The next offset to read per partition, as far as this runner knows.
    read: BTreeMap<i32, i64>,
    /// Partitions read up to the log end (until a new message arrives).
    /// Partitions read to their end, with the fetch position there (past
    /// any transaction markers after the last record).
    at_eof: BTreeMap<i32, i64>,
    /// Where each partition started (committed or seeded) when the step began.
    started_at: BTreeMap<i32, i64>,
    /// The last positions committed, kept for the closing synchronous commit.
    committed: Option<TopicPartitionList>,
    /// Acknowledged positions not sent to the group yet.
    unsent: Option<BTreeMap<i32, i64>>,
    /// When positions last went to the group.
    last_commit: Option<Instant>,
    events_read: u64,
    total: Option<u64>,
    /// How each partition's start time was found.
    found: BTreeMap<i32, by_time::Found>,
    /// When the group's positions were last asked for (`until = "end"`).
    last_group_check: Option<Instant>,
    /// The time each partition has reached, for the watermark.
    reached: Reached,
}

impl KafkaSource {
    /// Creates the consumer (it connects on first use).
    pub fn open(
        name: &str,
        cfg: &KafkaConfig,
        group: &str,
        follow: Follow,
    ) -> Result<Self, SourceError> {
        let settings = client::settings(name, cfg, group)
            .map_err(|message| SourceError::new(name, Fault::Refused, message))?;
        tracing::debug!(source = name, settings = %client::shown(&settings), "kafka client");
        let context = SourceContext {
            source: name.to_string(),
            ..SourceContext::default()
        };
        let consumer: BaseConsumer<SourceContext> =
            settings.create_with_context(context).map_err(|e| {
                SourceError::new(
                    name,
                    fault_of(&e),
                    format!("cannot create the kafka consumer: {e}"),
                )
            })?;
        Ok(KafkaSource {
            name: name.to_string(),
            cfg: cfg.clone(),
            settings,
            consumer,
            follow,
            end: BTreeMap::new(),
            read: BTreeMap::new(),
            at_eof: BTreeMap::new(),
            started_at: BTreeMap::new(),
            committed: None,
            unsent: None,
            last_commit: None,
            events_read: 0,
            total: None,
            found: BTreeMap::new(),
            last_group_check: None,
            reached: Reached::default(),
        })
    }

    fn error(&self, fault: Fault, message: String) -> SourceError {
        SourceError::new(&self.name, fault, message)
    }

    /// The topic's partitions.
    fn partitions(&self) -> Result<Vec<i32>, SourceError> {
        self.partitions_of(&self.cfg.topic, REQUEST_TIMEOUT)
    }

    /// The partitions of `topic`, asking the brokers for at most `wait`.
    fn partitions_of(&self, topic: &str, wait: Duration) -> Result<Vec<i32>, SourceError> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(topic), wait)
            .map_err(|e| {
                let why = self
                    .librdkafka_reason()
                    .map_or(String::new(), |w| format!(" ({w})"));
                self.error(
                    fault_of(&e),
                    format!(
                        "cannot reach the brokers `{}` within {}: {e}{why}",
                        self.cfg.brokers,
                        humantime::format_duration(wait)
                    ),
                )
            })?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Err(self.error(
                Fault::Refused,
                format!("the brokers know no topic `{topic}`"),
            ));
        };
        if let Some(e) = t.error() {
            let code = rdkafka::error::RDKafkaErrorCode::from(e);
            if code == rdkafka::error::RDKafkaErrorCode::UnknownTopicOrPartition {
                return Err(self.error(
                    Fault::Refused,
                    format!(
                        "topic `{topic}` does not exist on `{}` (the runner never creates topics)",
                        self.cfg.brokers
                    ),
                ));
            }
            let fault = fault_of(&KafkaError::MetadataFetch(code));
            return Err(self.error(fault, format!("topic `{topic}`: {code}")));
        }
        let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        if ps.is_empty() {
            return Err(self.error(Fault::Refused, format!("topic `{topic}` has no partitions")));
        }
        ps.sort_unstable();
        Ok(ps)
    }

    /// Checks, reading nothing and committing nothing, that the brokers
    /// answer, that the topic (and each dead-letter topic in `also`)
    /// exists with partitions, and that the consumer group is not
    /// held by another member unless the source scales out (two
    /// consumers of one group would split the topic between them).
    pub fn probe(&self, also: &[&str]) -> Result<String, SourceError> {
        let partitions = self.partitions_of(&self.cfg.topic, PROBE_TIMEOUT)?;
        for topic in also {
            self.partitions_of(topic, PROBE_TIMEOUT).map_err(|e| {
                self.error(
                    e.fault,
                    format!("dead-letter topic `{topic}`: {}", e.message),
                )
            })?;
        }
        let group = self
            .settings
            .get("group.id")
            .unwrap_or_default()
            .to_string();
        if !self.cfg.scale_out {
            match self.consumer.fetch_group_list(Some(&group), PROBE_TIMEOUT) {
                Ok(list) => {
                    let members: Vec<String> = list
                        .groups()
                        .iter()
                        .filter(|g| g.name() == group)
                        .flat_map(|g| g.members())
                        .map(|m| format!("`{}` on {}", m.client_id(), m.client_host()))
                        .collect();
                    if !members.is_empty() {
                        return Err(self.error(Fault::Refused, format!(
                            "consumer group `{group}` is in use by {} ({}); another consumer would split the topic with this replay: give the source its own `group`, or set `scale_out = true` if these are runners of this workflow",
                            members.len(),
                            members.join(", ")
                        )));
                    }
                }
                // Not every broker lists groups (Tansu 0.6 does not); the
                // replay still works, unchecked.
                Err(e) => tracing::info!(
                    source = %self.name,
                    "cannot check whether consumer group `{group}` is in use ({e}); going on"
                ),
            }
        }
        Ok(format!(
            "topic `{}` with {} partitions on {}, group `{group}`",
            self.cfg.topic,
            partitions.len(),
            self.cfg.brokers
        ))
    }

    /// librdkafka's own words on why a request failed: they come as error
    /// events, served by polling (nothing is assigned yet, so no record is
    /// taken), and may follow the failure by a moment.
    fn librdkafka_reason(&self) -> Option<String> {
        let assigned = self.context().joined.load(Ordering::SeqCst);
        for _ in 0..20 {
            if assigned {
                std::thread::sleep(Duration::from_millis(50));
            } else {
                let _ = self.consumer.poll(Duration::from_millis(50));
            }
            let said = self
                .context()
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if said.is_some() {
                return said;
            }
        }
        None
    }

    /// The consumer's fetch position in `partition`, if known.
    fn position(&self, partition: i32) -> Option<i64> {
        let tpl = self.consumer.position().ok()?;
        match tpl.find_partition(&self.cfg.topic, partition)?.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }
    }

    fn watermarks(&self, partition: i32) -> Result<(i64, i64), SourceError> {
        self.consumer
            .fetch_watermarks(&self.cfg.topic, partition, REQUEST_TIMEOUT)
            .map_err(|e| {
                self.error(
                    fault_of(&e),
                    format!("cannot read the offsets of partition {partition}: {e}"),
                )
            })
    }

    /// The group's committed offset per partition (none for a new group).
    fn group_offsets(&self, partitions: &[i32]) -> Result<BTreeMap<i32, i64>, SourceError> {
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(&self.cfg.topic, *p);
        }
        let committed = self
            .consumer
            .committed_offsets(tpl, REQUEST_TIMEOUT)
            .map_err(|e| {
                self.error(
                    fault_of(&e),
                    format!("cannot read the group's committed offsets: {e}"),
                )
            })?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect())
    }

    /// Where a partition without a committed offset starts.
    fn seed(
        &mut self,
        start: &Start,
        partition: i32,
        (low, high): (i64, i64),
        probe: &mut Option<by_time::Probe>,
    ) -> Result<i64, SourceError> {
        Ok(match start {
            Start::Earliest => low,
            Start::Latest => high,
            Start::Offsets(given) => match given.get(&partition) {
                None => low,
                Some(o) if (low..=high).contains(o) => *o,
                Some(o) => {
                    return Err(self.error(Fault::Refused, format!(
                        "`start_offsets` puts partition {partition} at offset {o}, but it holds offsets {low} to {high}"
                    )));
                }
            },
            Start::Timestamp(time) => {
                if probe.is_none() {
                    *probe = Some(
                        by_time::Probe::new(&self.settings, &self.cfg.topic)
                            .map_err(|e| self.error(Fault::Transient, e))?,
                    );
                }
                let probe = probe.as_mut().expect("set above");
                let (offset, found) = by_time::offset_at(
                    &self.consumer,
                    probe,
                    partition,
                    *time,
                    (low, high),
                    self.cfg.time_lookup,
                )
                .map_err(|e| self.error(Fault::Transient, format!("partition {partition}: {e}")))?;
                self.found.insert(partition, found);
                tracing::info!(
                    source = %self.name,
                    partition,
                    offset,
                    method = ?found,
                    "start time {} is at offset {offset}",
                    crate::report::version_time(*time)
                );
                offset
            }
        })
    }

    /// What the partitions have reached before reading starts at their
    /// positions (`partition → (low, high, from)`): the time of the record
    /// before `from`, all read in one go. A partition with records counts
    /// for the watermark from the start; an empty one holds nothing back.
    fn seed_reached(
        &mut self,
        positions: &BTreeMap<i32, (i64, i64, i64)>,
        probe: &mut Option<by_time::Probe>,
    ) -> Result<(), SourceError> {
        let mut before = BTreeMap::new();
        for (&p, &(low, high, from)) in positions {
            if high <= low || self.reached.has(p) {
                continue;
            }
            self.reached.require(p);
            let last = from.clamp(low, high) - 1;
            if last >= low {
                before.insert(p, last);
            }
        }
        if before.is_empty() {
            return Ok(());
        }
        if probe.is_none() {
            *probe = Some(
                by_time::Probe::new(&self.settings, &self.cfg.topic)
                    .map_err(|e| self.error(Fault::Transient, e))?,
            );
        }
        let probe = probe.as_mut().expect("set above");
        let times = probe
            .times_at(&before)
            .map_err(|e| self.error(Fault::Transient, e))?;
        for (p, time) in times {
            self.reached.saw(p, time);
        }
        Ok(())
    }

    /// How each partition's start time was found (for a time start).
    pub fn time_lookups(&self) -> &BTreeMap<i32, by_time::Found> {
        &self.found
    }

    fn context(&self) -> &SourceContext {
        self.consumer.context()
    }

    /// Whether every partition this runner owns reached the end recorded
    /// when the step started.
    fn reached_end(&self) -> bool {
        let ctx = self.context();
        if !ctx.joined.load(Ordering::SeqCst) {
            return false;
        }
        let assigned = ctx.assigned.lock().unwrap_or_else(|p| p.into_inner());
        assigned.iter().all(|p| {
            let end = self.end.get(p).copied().unwrap_or(0);
            self.at_eof.contains_key(p) || self.read.get(p).is_some_and(|r| *r >= end)
        })
    }

    /// Whether the whole group is done: every partition's committed offset
    /// reached the end. A runner done with its own partitions waits for
    /// this, so partitions still held by a runner that died (until the
    /// group notices, after `session.timeout.ms`) come to it and are not
    /// left behind. Asked at most twice a second.
    fn group_done(&mut self) -> Result<bool, SourceError> {
        if self
            .last_group_check
            .is_some_and(|t| t.elapsed() < Duration::from_millis(500))
        {
            return Ok(false);
        }
        self.last_group_check = Some(Instant::now());
        let pending: Vec<i32> = self
            .end
            .iter()
            .filter(|(p, end)| self.started_at.get(p).is_none_or(|s| s < end))
            .map(|(p, _)| *p)
            .collect();
        if pending.is_empty() {
            return Ok(true);
        }
        let committed = self.group_offsets(&pending)?;
        Ok(pending
            .iter()
            .all(|p| committed.get(p).is_some_and(|c| *c >= self.end[p])))
    }

    /// Sends the acknowledged positions not sent yet to the group: when
    /// `now`, or when [`COMMIT_EVERY`] has passed since the last time.
    fn send_commit(&mut self, now: bool) -> Result<(), SourceError> {
        let held = !now && self.last_commit.is_some_and(|t| t.elapsed() < COMMIT_EVERY);
        if held {
            return Ok(());
        }
        let Some(unsent) = self.unsent.take() else {
            return Ok(());
        };
        let tpl = self.owned_positions(&unsent)?;
        if tpl.count() == 0 {
            return Ok(());
        }
        // Asynchronous: a failed commit only means re-applying a little
        // after a restart; `close` commits the last positions synchronously.
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(source = %self.name, "commit failed ({e}); later positions go with the next commit");
        }
        self.last_commit = Some(Instant::now());
        self.committed = Some(tpl);
        Ok(())
    }

    /// `positions` of the partitions this runner owns now: after a
    /// rebalance another runner may own the rest, and a late commit must
    /// never move its position.
    fn owned_positions(
        &self,
        positions: &BTreeMap<i32, i64>,
    ) -> Result<TopicPartitionList, SourceError> {
        let assigned = self.context().assigned();
        let mut tpl = TopicPartitionList::new();
        for (p, next) in positions {
            if assigned.contains(p) {
                tpl.add_partition_offset(&self.cfg.topic, *p, Offset::Offset(*next))
                    .map_err(|e| self.error(fault_of(&e), e.to_string()))?;
            }
        }
        Ok(tpl)
    }

    fn event(&self, m: &rdkafka::message::BorrowedMessage<'_>) -> Event {
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| Header {
                        key: h.key.to_string(),
                        value: h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Event {
            partition: m.partition(),
            offset: m.offset(),
            // A record without a time (old message format) sorts first.
            timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
            key: m.key().map(<[u8]>::to_vec),
            // A tombstone (no value) reaches the transform as an empty value.
            value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers,
        }
    }
}

impl Source for KafkaSource {
    fn seek(&mut self, start: &Start, resume: Option<&Checkpoint>) -> Result<(), SourceError> {
        let partitions = self.partitions()?;
        let group = self.group_offsets(&partitions)?;
        let mut seeds = BTreeMap::new();
        let mut probe = None;
        let mut total = 0u64;
        if let Some(cp) = resume {
            self.reached.resume(&cp.event_times);
        }
        let mut positions = BTreeMap::new();
        for &p in &partitions {
            let (low, high) = self.watermarks(p)?;
            let from = match (group.get(&p), resume.and_then(|cp| cp.next.get(&p))) {
                (Some(o), _) => *o,
                // The group lost its offsets (expired, or a broker without
                // durable storage): the runner's own checkpoint still holds.
                (None, Some(o)) => {
                    seeds.insert(p, *o);
                    *o
                }
                (None, None) => {
                    let o = self.seed(start, p, (low, high), &mut probe)?;
                    seeds.insert(p, o);
                    o
                }
            };
            self.started_at.insert(p, from);
            positions.insert(p, (low, high, from));
            if self.follow == Follow::UntilEnd {
                self.end.insert(p, high);
            }
            total += (high - from.clamp(low, high)).max(0) as u64;
        }
        self.seed_reached(&positions, &mut probe)?;
        if let Some(probe) = &probe {
            tracing::debug!(source = %self.name, reads = probe.reads, "time lookup done");
        }
        tracing::info!(
            source = %self.name,
            topic = %self.cfg.topic,
            partitions = partitions.len(),
            committed = group.len(),
            backlog = total,
            scale_out = self.cfg.scale_out,
            "reading"
        );
        self.total = (self.follow == Follow::UntilEnd).then_some(total);
        *self
            .context()
            .seeds
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = seeds;
        if self.cfg.scale_out {
            return self.consumer.subscribe(&[&self.cfg.topic]).map_err(|e| {
                self.error(
                    fault_of(&e),
                    format!("cannot subscribe to `{}`: {e}", self.cfg.topic),
                )
            });
        }
        // Alone: every partition, at the positions found above.
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(&self.cfg.topic, *p, Offset::Offset(self.started_at[p]))
                .map_err(|e| self.error(fault_of(&e), e.to_string()))?;
        }
        self.consumer.assign(&tpl).map_err(|e| {
            self.error(
                fault_of(&e),
                format!("cannot read `{}`: {e}", self.cfg.topic),
            )
        })?;
        let ctx = self.context();
        *ctx.assigned.lock().unwrap_or_else(|p| p.into_inner()) = partitions.into_iter().collect();
        ctx.joined.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn next_batch(&mut self, limit: BatchLimit) -> Result<Option<Batch>, SourceError> {
        // Positions held back go out once due, also while the log is quiet.
        self.send_commit(false)?;
        let mut batch = Batch::default();
        let mut bytes = 0u64;
        let deadline = Instant::now() + POLL_WAIT;
        while batch.events.len() < limit.events && bytes < limit.bytes {
            if self.follow == Follow::UntilEnd && batch.events.is_empty() && self.reached_end() {
                // A lone runner read every partition: done. A runner of a
                // shared group waits until the whole group committed the
                // end, and its own last positions go out first.
                if !self.cfg.scale_out {
                    return Ok(None);
                }
                self.send_commit(true)?;
                if self.group_done()? {
                    return Ok(None);
                }
            }
            let wait = if batch.events.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match self.consumer.poll(wait) {
                Some(Ok(m)) => {
                    let owned = self
                        .context()
                        .assigned
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .contains(&m.partition());
                    if !owned {
                        continue;
                    }
                    self.at_eof.remove(&m.partition());
                    self.read.insert(m.partition(), m.offset() + 1);
                    let event = self.event(&m);
                    bytes += (event.value.len()
                        + event.key.as_ref().map_or(0, Vec::len)
                        + event
                            .headers
                            .iter()
                            .map(|h| h.key.len() + h.value.len())
                            .sum::<usize>()) as u64;
                    self.reached.saw(event.partition, event.timestamp_ms);
                    batch.events.push(event);
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    let at = self.position(p).unwrap_or(i64::MIN);
                    self.at_eof.insert(p, at);
                    if self.follow == Follow::UntilEnd && self.reached_end() {
                        break;
                    }
                }
                Some(Err(e)) if gives_up(&e) => {
                    return Err(self.error(
                        Fault::Refused,
                        format!("the brokers refuse to serve `{}`: {e}", self.cfg.topic),
                    ));
                }
                Some(Err(e)) => {
                    // Transport errors are retried by librdkafka itself.
                    tracing::warn!(source = %self.name, "kafka: {e}");
                    if batch.events.is_empty() && Instant::now() >= deadline {
                        break;
                    }
                }
                None => break,
            }
        }
        if self.context().reassigned.swap(false, Ordering::SeqCst) {
            // Forget positions of partitions handed to another runner.
            let assigned = self.context().assigned();
            self.read.retain(|p, _| assigned.contains(p));
            self.at_eof.retain(|p, _| assigned.contains(p));
        }
        self.events_read += batch.events.len() as u64;
        batch.checkpoint = Checkpoint {
            next: self.read.clone(),
            event_times: self.reached.times(),
            ..Checkpoint::default()
        };
        // With scale-out, the partitions this runner owns now.
        let assigned = self.context().assigned();
        batch.watermark = self.reached.watermark(Some(&assigned));
        Ok(Some(batch))
    }

    fn commit(&mut self, checkpoint: &Checkpoint) -> Result<(), SourceError> {
        self.unsent = Some(checkpoint.next.clone());
        self.send_commit(false)
    }

    fn close(&mut self) -> Result<(), SourceError> {
        if let Some(unsent) = self.unsent.take() {
            let tpl = self.owned_positions(&unsent)?;
            if tpl.count() > 0 {
                self.committed = Some(tpl);
            }
        }
        if let Some(tpl) = self.committed.take()
            && let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync)
        {
            tracing::warn!(source = %self.name, "the last commit failed ({e}); the next run re-applies a little");
        }
        if self.cfg.scale_out {
            self.consumer.unsubscribe();
        }
        Ok(())
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.events_read,
            total: self.total,
        }
    }

    fn ends(&self) -> Option<BTreeMap<i32, PartitionEnd>> {
        let ctx = self.context();
        if !ctx.joined.load(Ordering::SeqCst) || ctx.unreachable.load(Ordering::SeqCst) {
            return None;
        }
        let assigned = ctx.assigned.lock().unwrap_or_else(|p| p.into_inner());
        let high = ctx.high.lock().unwrap_or_else(|p| p.into_inner());
        assigned
            .iter()
            .map(|p| {
                let (read, high) = match (self.read.get(p).copied(), high.get(p).copied()) {
                    // Read to the end: what follows the last record up to
                    // the end then (a transaction's commit marker) is no lag.
                    (Some(r), Some(h)) if self.at_eof.get(p).is_some_and(|at| h <= *at) => (r, r),
                    (Some(r), Some(h)) => (r, h.max(r)),
                    (Some(r), None) => (r, r),
                    // Read to the end without a message: nothing behind.
                    (None, h) if self.at_eof.contains_key(p) => {
                        let at = h
                            .unwrap_or(0)
                            .max(self.started_at.get(p).copied().unwrap_or(0));
                        (at, at)
                    }
                    // Nothing read yet and no statistics: unknown.
                    _ => return None,
                };
                Some((*p, PartitionEnd { high, read }))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::RDKafkaErrorCode as C;

    #[test]
    fn what_waiting_cannot_fix_is_refused_and_the_rest_transient() {
        let fault = |code| fault_of(&KafkaError::MetadataFetch(code));
        assert_eq!(fault(C::UnknownTopicOrPartition), Fault::Refused);
        assert_eq!(fault(C::TopicAuthorizationFailed), Fault::Refused);
        assert_eq!(fault(C::BrokerTransportFailure), Fault::Transient);
        assert_eq!(fault(C::LeaderNotAvailable), Fault::Transient);
        assert_eq!(
            fault_of(&KafkaError::ClientCreation("bad".into())),
            Fault::Refused
        );
    }
}
