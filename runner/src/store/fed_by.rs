//! A store written by a service's own consumer (`fed_by` in the workflow):
//! everything is the store's own, except its watermark, which is the event
//! time the consumer's group has reached on the topic (see
//! `source::kafka::group_time`), asked at most once a second.

use std::time::{Duration, Instant};

use serde::Deserialize;
use toml::Spanned;

use super::digest::{Digest, Ignored};
use super::{KeyRange, NewerPage, Page, Store, StoreError};
use crate::model::{Mutations, Row};
use crate::source::kafka::KafkaConfig;

/// `fed_by = { source = "chat-events", group = "chat-rmu" }`: the store is
/// written by a service's own consumer (group `group` of the Kafka source
/// `source`), which records no Switchyard watermark. The store's watermark
/// is then the event time that group has reached: per partition, the time
/// of the last record before its committed offset, the lowest over the
/// partitions. A consumer commits after it wrote, so every event up to
/// that time is in the store: a restore point and a compare point that a
/// real cluster has.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FedBy {
    /// A `[source.NAME]` of kind `kafka`: the topic and brokers.
    pub source: Spanned<String>,
    /// The writer's consumer group.
    pub group: String,
}

/// How long an answer of the brokers is reused.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// The store, with the group's position as its watermark.
pub struct FedStore {
    inner: Box<dyn Store>,
    source: String,
    kafka: KafkaConfig,
    group: String,
    asked: Option<(Instant, i64)>,
}

impl FedStore {
    /// `inner`, positioned by `group` on the topic of source `source`.
    pub fn new(inner: Box<dyn Store>, source: &str, kafka: &KafkaConfig, group: &str) -> Self {
        FedStore {
            inner,
            source: source.to_string(),
            kafka: kafka.clone(),
            group: group.to_string(),
            asked: None,
        }
    }
}

impl Store for FedStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn write(
        &mut self,
        mutations: Mutations<'_>,
        watermark: Option<i64>,
    ) -> Result<(), StoreError> {
        self.inner.write(mutations, watermark)
    }

    fn scan(
        &mut self,
        table: &str,
        range: &KeyRange,
        limit: usize,
        as_of: Option<u64>,
    ) -> Result<Page, StoreError> {
        self.inner.scan(table, range, limit, as_of)
    }

    fn get(
        &mut self,
        table: &str,
        keys: &[Vec<u8>],
        as_of: Option<u64>,
    ) -> Result<Vec<Option<Row>>, StoreError> {
        self.inner.get(table, keys, as_of)
    }

    fn tables(&mut self) -> Result<Vec<String>, StoreError> {
        self.inner.tables()
    }

    fn newer(
        &mut self,
        table: &str,
        range: &KeyRange,
        point: u64,
        limit: usize,
    ) -> Result<NewerPage, StoreError> {
        self.inner.newer(table, range, point, limit)
    }

    fn scan_newer(
        &mut self,
        table: &str,
        range: &KeyRange,
        limit: usize,
        point: u64,
    ) -> Result<(Page, super::NewerKeys), StoreError> {
        self.inner.scan_newer(table, range, limit, point)
    }

    fn digest(
        &mut self,
        table: &str,
        range: &KeyRange,
        as_of: Option<u64>,
        ignore: &Ignored,
    ) -> Result<Digest, StoreError> {
        self.inner.digest(table, range, as_of, ignore)
    }

    fn watermark(&mut self) -> Result<Option<i64>, StoreError> {
        if let Some((at, w)) = self.asked
            && at.elapsed() < FRESH_FOR
        {
            return Ok(Some(w));
        }
        let w = crate::source::kafka::group_time::reached(&self.source, &self.kafka, &self.group)
            .map_err(|e| {
            StoreError::new(
                self.inner.name(),
                e.fault,
                format!(
                    "its position is that of consumer group `{}`, which cannot be read: {e}",
                    self.group
                ),
            )
        })?;
        self.asked = Some((Instant::now(), w));
        Ok(Some(w))
    }
}
