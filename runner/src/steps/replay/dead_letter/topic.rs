//! Dead letters in a Kafka topic, on the source's own cluster and with its
//! credentials, as Kafka Connect's dead-letter queue does: each record
//! keeps its key, value, time and headers, and gains headers that say why
//! and where it came from (`switchyard.error`, `switchyard.source.topic`,
//! `…partition`, `…offset`, `switchyard.step`, `switchyard.plugin`). The
//! topic must exist: the runner never creates topics.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use super::DeadLetter;
use crate::model::Event;
use crate::plugin::bindings::types;
use crate::plugin::error::describe;
use crate::source::BadRecord;
use crate::source::kafka::KafkaConfig;
use crate::source::kafka::client::{REQUEST_TIMEOUT, producer_settings, shown};
use crate::steps::StepError;

/// How long a batch's letters may take to be acknowledged.
const SYNC_TIMEOUT: Duration = Duration::from_secs(120);

/// Collects delivery failures, which librdkafka reports on the producer's
/// own poll.
#[derive(Default)]
struct Deliveries {
    failed: Mutex<Vec<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.to_string());
        }
    }
}

/// A producer to the dead-letter topic.
pub struct TopicLetters {
    producer: BaseProducer<Deliveries>,
    topic: String,
    source_topic: String,
    /// Letters sent since the last sync.
    unsynced: u64,
}

impl TopicLetters {
    /// Connects and checks that the topic exists.
    pub fn open(source: &str, cfg: &KafkaConfig, topic: &str) -> Result<Self, StepError> {
        let fail = |message: String| {
            StepError::DeadLetter(format!(
                "dead-letter topic `{topic}` ({}): {message}",
                cfg.brokers
            ))
        };
        let settings = producer_settings(&format!("{source}-dead-letter"), cfg).map_err(fail)?;
        tracing::debug!(settings = %shown(&settings), "dead-letter producer");
        let producer: BaseProducer<Deliveries> = settings
            .create_with_context(Deliveries::default())
            .map_err(|e| fail(format!("cannot create a producer: {e}")))?;
        let metadata = producer
            .client()
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .map_err(|e| fail(format!("cannot read the topic's metadata: {e}")))?;
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .is_some_and(|t| t.error().is_none() && !t.partitions().is_empty());
        if !found {
            return Err(fail(
                "the topic does not exist; create it first (the runner never creates topics)"
                    .into(),
            ));
        }
        Ok(TopicLetters {
            producer,
            topic: topic.to_string(),
            source_topic: cfg.topic.clone(),
            unsynced: 0,
        })
    }

    /// Queues one record, waiting while librdkafka's queue is full.
    fn send(
        &mut self,
        key: Option<&[u8]>,
        value: &[u8],
        timestamp: Option<i64>,
        headers: OwnedHeaders,
    ) -> Result<(), StepError> {
        let mut record = BaseRecord::to(&self.topic).payload(value).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(t) = timestamp {
            record = record.timestamp(t);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => {
                    return Err(StepError::DeadLetter(format!(
                        "dead-letter topic `{}`: cannot send: {e}",
                        self.topic
                    )));
                }
            }
        }
        self.unsynced += 1;
        Ok(())
    }
}

/// Adds a text header.
fn header(headers: OwnedHeaders, key: &str, value: &str) -> OwnedHeaders {
    headers.insert(Header {
        key,
        value: Some(value.as_bytes()),
    })
}

impl DeadLetter for TopicLetters {
    fn refused(
        &mut self,
        step: &str,
        plugin: &str,
        event: &Event,
        error: &types::PluginError,
    ) -> Result<(), StepError> {
        let mut headers = OwnedHeaders::new_with_capacity(event.headers.len() + 6);
        for h in &event.headers {
            headers = headers.insert(Header {
                key: &h.key,
                value: Some(h.value.as_slice()),
            });
        }
        for (key, value) in [
            ("switchyard.error", describe(error)),
            ("switchyard.step", step.to_string()),
            ("switchyard.plugin", plugin.to_string()),
            ("switchyard.source.topic", self.source_topic.clone()),
            ("switchyard.source.partition", event.partition.to_string()),
            ("switchyard.source.offset", event.offset.to_string()),
        ] {
            headers = header(headers, key, &value);
        }
        self.send(
            event.key.as_deref(),
            &event.value,
            Some(event.timestamp_ms),
            headers,
        )
    }

    fn unreadable(&mut self, step: &str, bad: &BadRecord) -> Result<(), StepError> {
        let mut headers = OwnedHeaders::new_with_capacity(4);
        for (key, value) in [
            ("switchyard.error", bad.error.as_str()),
            ("switchyard.step", step),
            ("switchyard.source.topic", self.source_topic.as_str()),
            ("switchyard.place", bad.place.as_str()),
        ] {
            headers = header(headers, key, value);
        }
        self.send(None, &bad.raw, None, headers)
    }

    fn sync(&mut self) -> Result<(), StepError> {
        if std::mem::take(&mut self.unsynced) == 0 {
            return Ok(());
        }
        let flushed = self.producer.flush(SYNC_TIMEOUT);
        self.producer.poll(Duration::ZERO);
        let failed = std::mem::take(
            &mut *self
                .producer
                .context()
                .failed
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        if let Some(first) = failed.first() {
            return Err(StepError::DeadLetter(format!(
                "dead-letter topic `{}`: {} record(s) were not acknowledged (first: {first}); nothing of the batch was committed",
                self.topic,
                failed.len()
            )));
        }
        flushed.map_err(|e| {
            StepError::DeadLetter(format!(
                "dead-letter topic `{}`: not acknowledged within {}s ({e}); nothing of the batch was committed",
                self.topic,
                SYNC_TIMEOUT.as_secs()
            ))
        })
    }
}
