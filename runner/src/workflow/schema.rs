//! The sections of a workflow file, as serde reads them. Every struct
//! denies unknown fields, so a misspelt key is an error that names it.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::document::values::{Period, Size, flag, whole};

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
    pub timeout: Option<Spanned<Period>>,
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
