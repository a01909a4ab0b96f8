//! The sections of a workflow file, as serde reads them. Every struct
//! denies unknown fields, so a misspelt key is an error that names it.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::values::{Size, Span};

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
}

/// `kind = "file"`: one event per line, as
/// `{"partition":0,"offset":0,"timestamp":…,"key":"…","value":…}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// The file.
    pub path: String,
}

/// `[store.NAME]`, by `kind`.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreConfig {
    /// A SQLite database file.
    Sqlite(SqliteStore),
}

/// `kind = "sqlite"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteStore {
    /// The database file (created if missing).
    pub path: String,
    /// `full` (default: a committed batch survives power loss) or `normal`
    /// (survives a crash of the runner, not of the machine; faster).
    #[serde(default)]
    pub sync: SqliteSync,
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
    pub memory_limit: Option<Size>,
    /// Time of one call (default 5s).
    #[serde(default)]
    pub timeout: Option<Span>,
    /// Grant the clocks.
    #[serde(default)]
    pub clock: bool,
    /// Environment variables to pass in, by name.
    #[serde(default)]
    pub env: Vec<String>,
    /// Folders to make visible, read-only, under the same path.
    #[serde(default)]
    pub read_dirs: Vec<String>,
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
