//! The librdkafka client of a kafka source: its settings (the workflow's
//! own passed through, secrets read from the environment and never logged)
//! and its context, which routes librdkafka's log to `tracing`, keeps the
//! log end per partition from the statistics, and positions partitions
//! that the group hands over without a committed offset.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use crate::source::kafka::KafkaConfig;

/// How long a metadata or offset request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Names of settings whose values are secret: never shown in logs or errors.
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "key", "token", "jaas"]
        .iter()
        .any(|word| key.contains(word))
}

/// The client settings: ours first, then the workflow's `client` and
/// `client_env`, which may override any of them.
pub fn settings(source: &str, cfg: &KafkaConfig, group: &str) -> Result<ClientConfig, String> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("group.id", group)
        .set("client.id", format!("switchyard-{source}"))
        // Positions are committed by the replay, after the store acknowledged.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "1000")
        // A runner that died gives up its partitions to the others after
        // this long (librdkafka's default is 45s). Some coordinators (Tansu)
        // wait for a dead member up to its rebalance timeout, which is
        // `max.poll.interval.ms` (default 5 minutes), so that is shortened
        // too; the reader polls every 200 ms while it is not blocked.
        .set("session.timeout.ms", "10000")
        .set("max.poll.interval.ms", "20000")
        // Bounds the prefetched backlog, so memory stays flat however far behind.
        .set("queued.max.messages.kbytes", "16384")
        .set_log_level(RDKafkaLogLevel::Warning);
    with_workflow_settings(c, cfg)
}

/// Settings for a producer to the source's cluster (dead letters): ours,
/// then the workflow's `client` and `client_env` (the same credentials).
pub fn producer_settings(name: &str, cfg: &KafkaConfig) -> Result<ClientConfig, String> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("client.id", format!("switchyard-{name}"))
        // A record counts as set aside only once every in-sync replica has it.
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .set("linger.ms", "5")
        .set_log_level(RDKafkaLogLevel::Warning);
    with_workflow_settings(c, cfg)
}

/// Applies the workflow's `client` settings, then `client_env`.
fn with_workflow_settings(mut c: ClientConfig, cfg: &KafkaConfig) -> Result<ClientConfig, String> {
    for (key, value) in &cfg.client {
        c.set(key, value);
    }
    for (key, var) in &cfg.client_env {
        let value = std::env::var(var).map_err(|_| {
            format!(
                "`client_env` sets `{key}` from the environment variable `{var}`, which is not set"
            )
        })?;
        c.set(key, value);
    }
    Ok(c)
}

/// The settings as they may be shown: secret values masked.
pub fn shown(c: &ClientConfig) -> String {
    let mut pairs: Vec<_> = c
        .config_map()
        .iter()
        .map(|(k, v)| {
            if is_secret(k) {
                format!("{k}=***")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    pairs.sort();
    pairs.join(" ")
}

/// Shared between the consumer's callbacks and the source.
#[derive(Default)]
pub struct SourceContext {
    /// The source's name, for log lines.
    pub source: String,
    /// Where to start a partition the group has no committed offset for.
    pub seeds: Mutex<BTreeMap<i32, i64>>,
    /// The log end per partition, from the latest statistics.
    pub high: Mutex<BTreeMap<i32, i64>>,
    /// The partitions assigned to this runner now.
    pub assigned: Mutex<BTreeSet<i32>>,
    /// Set once the group assigned partitions (possibly none) to us.
    pub joined: AtomicBool,
    /// Set on every change of the assignment.
    pub reassigned: AtomicBool,
    /// Set while the latest statistics show no broker up: the log ends
    /// are then unknown, not what they were.
    pub unreachable: AtomicBool,
    /// librdkafka's last word on why it cannot get through, for errors.
    pub last_error: Mutex<Option<String>>,
    /// The last connection error logged, so each is logged once until the
    /// brokers answer again.
    pub last_logged: Mutex<Option<String>>,
}

impl SourceContext {
    /// Keeps librdkafka's latest complaint (its logs come from its own
    /// threads, at once), to quote when a request fails.
    fn remember(&self, message: &str) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.to_string());
    }

    /// The partitions assigned now.
    pub fn assigned(&self) -> BTreeSet<i32> {
        self.assigned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                self.remember(message);
                tracing::error!(target: "librdkafka", source = %self.source, "{fac}: {message}")
            }
            RDKafkaLogLevel::Warning => {
                self.remember(message);
                tracing::warn!(target: "librdkafka", source = %self.source, "{fac}: {message}")
            }
            _ => tracing::debug!(target: "librdkafka", source = %self.source, "{fac}: {message}"),
        }
    }

    fn stats(&self, statistics: Statistics) {
        let up = statistics.brokers.values().any(|b| b.state == "UP");
        if self.unreachable.swap(!up, Ordering::SeqCst) && up {
            tracing::info!(source = %self.source, "the brokers answer again");
            *self.last_logged.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        let mut high = self.high.lock().unwrap_or_else(|p| p.into_inner());
        for topic in statistics.topics.values() {
            for (p, part) in &topic.partitions {
                // -1 is librdkafka's "internal" partition and unknown ends.
                if *p >= 0 && part.hi_offset >= 0 {
                    let e = high.entry(*p).or_insert(0);
                    *e = (*e).max(part.hi_offset);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // The end of a partition is news, not an error.
        if matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(rdkafka::error::RDKafkaErrorCode::PartitionEOF)
        {
            return;
        }
        // librdkafka retries connections itself; these say why it waits,
        // each reason once until the brokers answer again.
        let mut last = self.last_logged.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() != Some(reason) {
            tracing::warn!(target: "librdkafka", source = %self.source, "{error}: {reason}");
            *last = Some(reason.to_string());
        }
        drop(last);
        self.remember(reason);
    }
}

impl ConsumerContext for SourceContext {
    /// Takes the partitions the group hands over, each at its committed
    /// offset or, where the group has none yet, at the replay's start.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let committed = consumer.committed_offsets(tpl.clone(), REQUEST_TIMEOUT);
                if let Err(e) = &committed {
                    tracing::warn!(source = %self.source, "cannot read the group's committed offsets ({e}); starting handed-over partitions at the replay's start, which may re-apply events but never skips any");
                }
                let seeds = self.seeds.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let mut assign = TopicPartitionList::new();
                let mut partitions = BTreeSet::new();
                for e in tpl.elements() {
                    let from_group = committed
                        .as_ref()
                        .ok()
                        .and_then(|c| c.find_partition(e.topic(), e.partition()))
                        .map(|c| c.offset());
                    let offset = match (from_group, seeds.get(&e.partition())) {
                        (Some(Offset::Offset(o)), _) => Offset::Offset(o),
                        (_, Some(seed)) => Offset::Offset(*seed),
                        // A partition added after the replay started: all of it is new.
                        _ => Offset::Beginning,
                    };
                    tracing::info!(source = %self.source, partition = e.partition(), ?offset, "partition assigned");
                    let _ = assign.add_partition_offset(e.topic(), e.partition(), offset);
                    partitions.insert(e.partition());
                }
                if let Err(e) = consumer.assign(&assign) {
                    tracing::error!(source = %self.source, "cannot take the assigned partitions: {e}");
                }
                *self.assigned.lock().unwrap_or_else(|p| p.into_inner()) = partitions;
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(source = %self.source, partitions = tpl.count(), "partitions revoked");
                if let Err(e) = consumer.unassign() {
                    tracing::error!(source = %self.source, "cannot give up the revoked partitions: {e}");
                }
                self.assigned
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
            }
            other => {
                tracing::warn!(source = %self.source, "rebalance failed: {other:?}");
                let _ = consumer.unassign();
                self.assigned
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
            }
        }
        self.reassigned.store(true, Ordering::SeqCst);
        self.joined.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_settings_are_masked_and_env_settings_are_read() {
        let cfg: KafkaConfig = toml::from_str(
            r#"
            brokers = "127.0.0.1:9092"
            topic = "t"
            client = { "security.protocol" = "SASL_SSL", "sasl.username" = "u", "sasl.password" = "hunter2", "ssl.key.pem" = "PEM" }
            "#,
        )
        .unwrap();
        let c = settings("s", &cfg, "g").unwrap();
        let text = shown(&c);
        assert!(text.contains("sasl.username=u"), "{text}");
        assert!(text.contains("sasl.password=***"), "{text}");
        assert!(text.contains("ssl.key.pem=***"), "{text}");
        assert!(!text.contains("hunter2") && !text.contains("PEM"), "{text}");
        assert!(!format!("{cfg:?}").contains("hunter2"));

        let cfg: KafkaConfig = toml::from_str(
            r#"
            brokers = "b"
            topic = "t"
            client_env = { "sasl.password" = "SWITCHYARD_TEST_SURELY_UNSET" }
            "#,
        )
        .unwrap();
        let err = settings("s", &cfg, "g").unwrap_err();
        assert!(err.contains("SWITCHYARD_TEST_SURELY_UNSET"), "{err}");
    }
}
