//! `kind = "kafka"`: the settings of a kafka source, how they are read
//! and checked, and how the source opens.

use std::any::Any;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::{KafkaSource, group_of};
use crate::cancel::Cancel;
use crate::document::values::flag;
use crate::document::{Home, Kind};
use crate::source::{Follow, Source, SourceConfig, SourceError};

/// The kind, for the registration list.
pub const KIND: Kind<dyn SourceConfig> = Kind {
    name: "kafka",
    read: |table| Ok(Box::new(table.read::<KafkaConfig>()?)),
};

/// `kind = "kafka"`: one topic, read by the replay's own consumer group.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port,host:port`.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// The consumer group (default `switchyard.WORKFLOW.SOURCE`). Runners
    /// sharing a group split the topic's partitions between them.
    #[serde(default)]
    pub group: Option<String>,
    /// Share the group with other runners and split the partitions with
    /// them (Kafka group membership). Off (the default), this runner reads
    /// every partition itself and uses the group only for its committed
    /// positions, so a restarted runner never waits for the group to
    /// notice that its previous process died.
    #[serde(default, deserialize_with = "flag")]
    pub scale_out: bool,
    /// librdkafka settings passed through as they are
    /// (`"security.protocol" = "SASL_SSL"`, `"sasl.mechanism" = "SCRAM-SHA-512"`, …).
    #[serde(default)]
    pub client: BTreeMap<String, String>,
    /// librdkafka settings read from environment variables when the source
    /// opens, so secrets stay out of the file: `"sasl.password" = "KAFKA_PASSWORD"`.
    #[serde(default)]
    pub client_env: BTreeMap<String, String>,
    /// How a time start finds its offsets: `auto` (ask the broker, check
    /// its answer against the records, search them if it is wrong), `broker`
    /// (trust the broker) or `search` (search record timestamps).
    #[serde(default)]
    pub time_lookup: TimeLookup,
}

/// Settings values are left out: they may hold passwords and keys.
impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("group", &self.group)
            .field("scale_out", &self.scale_out)
            .field("client", &self.client.keys().collect::<Vec<_>>())
            .field("client_env", &self.client_env)
            .field("time_lookup", &self.time_lookup)
            .finish()
    }
}

/// See [`KafkaConfig::time_lookup`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeLookup {
    /// Ask the broker and check the answer.
    #[default]
    Auto,
    /// Trust the broker.
    Broker,
    /// Search the records.
    Search,
}

impl SourceConfig for KafkaConfig {
    fn can_follow(&self) -> bool {
        true
    }

    fn describe(&self, home: &Home, name: &str) -> String {
        format!(
            "kafka topic `{}` on {}, group `{}`",
            self.topic,
            self.brokers,
            group_of(self, &home.workflow, name)
        )
    }

    fn probe(
        &self,
        home: &Home,
        name: &str,
        topics: &[&str],
        _made_earlier: bool,
    ) -> Result<String, SourceError> {
        KafkaSource::open(
            name,
            self,
            &group_of(self, &home.workflow, name),
            Follow::UntilEnd,
        )?
        .probe(topics)
    }

    fn open(
        &self,
        home: &Home,
        name: &str,
        follow: Follow,
        _stop: &Cancel,
    ) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(KafkaSource::open(
            name,
            self,
            &group_of(self, &home.workflow, name),
            follow,
        )?))
    }
}

/// The settings of `config`, if it is a kafka source.
pub fn kafka(config: &dyn SourceConfig) -> Option<&KafkaConfig> {
    (config as &dyn Any).downcast_ref()
}
