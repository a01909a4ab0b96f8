//! The sections of a workflow file, as serde reads them. Every struct
//! denies unknown fields, so a misspelt key is an error that names it.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::values::{Size, Span, flag, whole};

/// `[workflow]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSection {
    /// Names the workflow (and its default state folder).
    pub name: Spanned<String>,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Where state is kept (default `.switchyard/NAME` beside the file).
    #[serde(default)]
    pub state_dir: Option<Spanned<String>>,
}

/// `[source.NAME]`, by `kind`.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    /// An NDJSON file of events.
    File(FileSource),
    /// A Kafka topic.
    Kafka(KafkaSource),
}

/// `kind = "file"`: one event per line, as
/// `{"partition":0,"offset":0,"timestamp":…,"key":"…","value":…}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// The file.
    pub path: String,
    /// The longest line taken as an event (default 16MiB); a longer one is
    /// an unreadable record, handled by the replay's `on_error`.
    #[serde(default)]
    pub max_event_size: Option<Size>,
}

/// `kind = "kafka"`: one topic, read by the replay's own consumer group.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSource {
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
impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
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

/// See [`KafkaSource::time_lookup`].
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

/// `[store.NAME]`, by `kind`.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreConfig {
    /// A SQLite database file.
    Sqlite(SqliteStore),
    /// An HBase cluster, through its Thrift1 server.
    Hbase(HbaseStore),
    /// Nowhere: writes are discarded.
    Null(NullStore),
}

impl StoreConfig {
    /// The files the store may create on this machine (a SQLite database
    /// and its journals).
    pub fn files(&self, workflow: &super::Workflow) -> Vec<std::path::PathBuf> {
        match self {
            StoreConfig::Sqlite(s) => {
                let db = workflow.path(&s.path);
                let mut files = vec![db.clone()];
                for suffix in ["-wal", "-shm", "-journal"] {
                    let mut name = db.clone().into_os_string();
                    name.push(suffix);
                    files.push(name.into());
                }
                files
            }
            StoreConfig::Hbase(_) | StoreConfig::Null(_) => Vec::new(),
        }
    }

    /// Where the store's position comes from when its writer is not the
    /// runner (see [`FedBy`]).
    pub fn fed_by(&self) -> Option<&FedBy> {
        match self {
            StoreConfig::Sqlite(s) => s.fed_by.as_ref(),
            StoreConfig::Hbase(s) => s.fed_by.as_ref(),
            StoreConfig::Null(_) => None,
        }
    }

    /// The tables the workflow declares for this store, if it declares any.
    pub fn declared_tables(&self) -> Option<Vec<String>> {
        match self {
            StoreConfig::Sqlite(s) => s.tables.clone(),
            StoreConfig::Null(s) => s.tables.clone(),
            StoreConfig::Hbase(s) if s.tables.is_empty() => None,
            StoreConfig::Hbase(s) => Some(s.tables.keys().cloned().collect()),
        }
    }
}

/// `kind = "sqlite"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteStore {
    /// The database file (created if missing).
    pub path: String,
    /// The tables plugins may write (needed by a replay into this store).
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    /// `full` (default: a committed batch survives power loss) or `normal`
    /// (survives a crash of the runner, not of the machine; faster).
    #[serde(default)]
    pub sync: SqliteSync,
    /// The consumer that writes this store, when it is not the runner.
    #[serde(default)]
    pub fed_by: Option<FedBy>,
}

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

/// `kind = "hbase"`: tables of an HBase cluster, through its Thrift1 server
/// (binary protocol, buffered transport: HBase's defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HbaseStore {
    /// `host:port` of the Thrift1 server.
    pub thrift: String,
    /// The tables and their column families, `{ messages = ["d", "m"] }`.
    /// A missing table is created with these families; an existing one
    /// must have them.
    #[serde(default)]
    pub tables: BTreeMap<String, Vec<String>>,
    /// Versions each family keeps in the tables the runner creates, so
    /// as-of reads see history (default 1000).
    #[serde(default, deserialize_with = "whole")]
    pub max_versions: Option<u32>,
    /// Connections, and so Thrift calls in flight (default 4).
    #[serde(default, deserialize_with = "whole")]
    pub pool: Option<usize>,
    /// Limit of connecting and of waiting for one reply (default 10s).
    #[serde(default)]
    pub timeout: Option<Span>,
    /// How long to keep retrying a call that failed transiently (refused
    /// or broken connection, `IOError` with `canRetry`), with backoff
    /// (default 60s).
    #[serde(default)]
    pub retry_for: Option<Span>,
    /// Rows per `mutateRowsTs` call (default 1000).
    #[serde(default, deserialize_with = "whole")]
    pub batch_rows: Option<usize>,
    /// The consumer that writes this store, when it is not the runner.
    #[serde(default)]
    pub fed_by: Option<FedBy>,
}

/// `kind = "null"`: discards writes, for measuring a source and transform
/// alone, or a dry run. Every batch is acknowledged at once; scans and gets
/// find nothing; the watermark is remembered in memory only.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullStore {
    /// The tables plugins may write (needed by a replay into this store).
    #[serde(default)]
    pub tables: Option<Vec<String>>,
}

/// SQLite's `synchronous` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// fsync on every commit.
    #[default]
    Full,
    /// fsync at checkpoints only.
    Normal,
}

/// `[plugin.NAME]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSection {
    /// A plugin crate to build for wasm32-wasip2.
    #[serde(default, rename = "crate")]
    pub crate_dir: Option<String>,
    /// A prebuilt component.
    #[serde(default)]
    pub wasm: Option<String>,
    /// The component's expected sha256.
    #[serde(default)]
    pub sha256: Option<Spanned<String>>,
    /// Memory of one instance (default 64MiB).
    #[serde(default)]
    pub memory_limit: Option<Spanned<Size>>,
    /// Time of one call (default 5s, at least 10ms, at most 1h).
    #[serde(default)]
    pub timeout: Option<Spanned<Span>>,
    /// What one call's answer may become on the host (default twice
    /// `memory_limit`).
    #[serde(default)]
    pub max_output: Option<Size>,
    /// Rows one event may become (default 1000).
    #[serde(default, deserialize_with = "whole")]
    pub max_rows_per_event: Option<u64>,
    /// Cells one event's rows may hold (default 10000).
    #[serde(default, deserialize_with = "whole")]
    pub max_cells_per_event: Option<u64>,
    /// Rows one batch may become (default 100000).
    #[serde(default, deserialize_with = "whole")]
    pub max_rows_per_batch: Option<u64>,
    /// Cells one batch's rows may hold (default 1000000).
    #[serde(default, deserialize_with = "whole")]
    pub max_cells_per_batch: Option<u64>,
    /// Grant the clocks.
    #[serde(default, deserialize_with = "flag")]
    pub clock: bool,
    /// Grant random numbers.
    #[serde(default, deserialize_with = "flag")]
    pub random: bool,
    /// Environment variables to pass in, by name.
    #[serde(default)]
    pub env: Vec<String>,
    /// Folders to make visible, read-only, under the same path.
    #[serde(default)]
    pub read_dirs: Vec<Spanned<String>>,
    /// Settings for the plugin's `init`.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
}

/// A plugin setting: strings, numbers and booleans are all passed as text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    /// Text.
    Text(String),
    /// A whole number.
    Integer(i64),
    /// A number.
    Float(f64),
    /// A flag.
    Bool(bool),
}

impl std::fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigValue::Text(t) => write!(f, "{t}"),
            ConfigValue::Integer(i) => write!(f, "{i}"),
            ConfigValue::Float(x) => write!(f, "{x}"),
            ConfigValue::Bool(b) => write!(f, "{b}"),
        }
    }
}
