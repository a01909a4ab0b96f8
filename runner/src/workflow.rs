//! The workflow file: reading, variables, validation and the plan.
//!
//! Loading goes in passes, each with errors that name file, line and column:
//! TOML syntax → `[vars]` resolved and `${…}` expanded in every string (on
//! the spanned document, so positions stay true) → each section read with
//! serde (`deny_unknown_fields`) → [`validate`] checks references and values
//! without touching any live system.

pub mod error;
pub mod plan;
pub mod quoting;
pub mod schema;
pub mod steps;
pub mod validate;
pub mod values;
pub mod vars;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::plugin::limits::{DEFAULT_MEMORY, DEFAULT_TIMEOUT, MAX_TIMEOUT, MIN_TIMEOUT};
use crate::plugin::{Grants, Limits, OutputLimits, PluginSource, PluginSpec};
use crate::text::quoted;
use error::Errors;
pub use error::{Location, WorkflowError};
use schema::{PluginSection, SourceConfig, StoreConfig, WorkflowSection};
pub use steps::{Step, StepKind};

/// A loaded, expanded and validated workflow.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// The file it was read from.
    pub file: PathBuf,
    /// The folder relative paths are resolved against.
    pub dir: PathBuf,
    /// `[workflow] name`.
    pub name: String,
    /// `[workflow] description`.
    pub description: Option<String>,
    /// Where state is kept.
    pub state_dir: PathBuf,
    /// Every variable, expanded.
    pub vars: vars::Vars,
    /// `[source.NAME]`, in file order.
    pub sources: Vec<(String, SourceConfig)>,
    /// `[store.NAME]`, in file order.
    pub stores: Vec<(String, StoreConfig)>,
    /// `[plugin.NAME]`, in file order.
    pub plugins: Vec<PluginSpec>,
    /// `[[step]]`, in order.
    pub steps: Vec<Step>,
    /// sha256 of the file and overrides, to notice edits between runs.
    pub fingerprint: String,
}

impl Workflow {
    /// The source named `name`.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// The store named `name`.
    pub fn store(&self, name: &str) -> Option<&StoreConfig> {
        self.stores.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// The plugin named `name`.
    pub fn plugin(&self, name: &str) -> Option<&PluginSpec> {
        self.plugins.iter().find(|p| p.name == name)
    }

    /// A path from the file, resolved against the workflow's folder.
    pub fn path(&self, text: &str) -> PathBuf {
        resolve_path(&self.dir, text)
    }
}

/// How to load: `--var` overrides and `--state`.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `name=value` pairs that replace `[vars]`.
    pub overrides: Vec<(String, String)>,
    /// Keep state here instead of the default.
    pub state_dir: Option<PathBuf>,
}

/// The largest event a file source may be set to take.
const MAX_EVENT_SIZE: u64 = 1 << 30;

/// The sections a workflow may have.
const SECTIONS: &[&str] = &["workflow", "vars", "source", "store", "plugin", "step"];

/// Reads, expands and validates a workflow file.
pub fn load(file: &Path, options: &LoadOptions) -> Result<Workflow, WorkflowError> {
    let text = std::fs::read_to_string(file).map_err(|source| WorkflowError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    parse(file, &text, options)
}

/// Like [`load`], from text already read.
pub fn parse(file: &Path, text: &str, options: &LoadOptions) -> Result<Workflow, WorkflowError> {
    let errors = Errors { file, text };
    let whole = 0..text.len();
    let mut doc = DeTable::parse(text)
        .map_err(|e| errors.toml(e, whole.clone()))?
        .into_inner();
    for (key, _) in doc.iter() {
        if !SECTIONS.contains(&key.get_ref().as_ref()) {
            return Err(errors.at(
                key.span(),
                format!(
                    "unknown section `{}`; expected one of {}",
                    key.get_ref(),
                    quoted(SECTIONS)
                ),
            ));
        }
    }
    let section: WorkflowSection = match vars::take(&mut doc, "workflow") {
        Some(v) => deserialize(v, errors)?,
        None => return Err(errors.at(0..0, "missing `[workflow]` section with a `name`")),
    };
    let name = section.name.get_ref().clone();
    if !valid_name(&name) {
        return Err(errors.at(
            section.name.span(),
            format!("invalid workflow name `{name}`; use letters, digits, `-` and `_`"),
        ));
    }
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => absolute(p),
        _ => absolute(Path::new(".")),
    };
    let state_dir = match (&options.state_dir, &section.state_dir) {
        (Some(d), _) => absolute(d),
        (None, Some(d)) => {
            let mut known = vars::Vars::new();
            known.insert("workflow_dir".into(), dir.display().to_string());
            known.insert("workflow".into(), name.clone());
            let d = vars::expand_text(d.get_ref(), &known).map_err(|message| {
                errors.at(
                    d.span(),
                    format!("`[workflow] state_dir`: {message} (only `workflow_dir` and `workflow` can be used there)"),
                )
            })?;
            resolve_path(&dir, &d)
        }
        (None, None) => dir.join(".switchyard").join(&name),
    };
    let mut builtins = vars::Vars::new();
    builtins.insert("workflow_dir".into(), dir.display().to_string());
    builtins.insert("state_dir".into(), state_dir.display().to_string());
    builtins.insert("workflow".into(), name.clone());
    let runner = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("runner"));
    builtins.insert("runner".into(), runner.display().to_string());
    let vars = vars::resolve(&mut doc, &builtins, &options.overrides, errors)?;
    vars::expand_document(&mut doc, &vars, errors)?;

    let sources = named_tables(&mut doc, "source", errors)?
        .into_iter()
        .map(|(n, v)| Ok((n, source_config(v, errors)?)))
        .collect::<Result<Vec<_>, WorkflowError>>()?;
    let stores = named_tables(&mut doc, "store", errors)?
        .into_iter()
        .map(|(n, v)| Ok((n, store_config(v, errors)?)))
        .collect::<Result<Vec<_>, WorkflowError>>()?;
    let mut plugins = Vec::new();
    for (plugin_name, value) in named_tables(&mut doc, "plugin", errors)? {
        let span = value.span();
        let section: PluginSection = deserialize(value, errors)?;
        plugins.push(plugin_spec(&plugin_name, section, &dir, span, errors)?);
    }
    let steps = match vars::take(&mut doc, "step") {
        None => Vec::new(),
        Some(value) => {
            let span = value.span();
            let DeValue::Array(items) = value.into_inner() else {
                return Err(errors.at(span, "`step` must be written as `[[step]]` tables"));
            };
            let items: Vec<_> = items.iter().cloned().collect();
            items
                .into_iter()
                .map(|item| step(item, errors))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let mut fingerprint_input = text.to_string();
    for (k, v) in &options.overrides {
        fingerprint_input.push_str(&format!("\n--var {k}={v}"));
    }
    let workflow = Workflow {
        file: file.to_path_buf(),
        dir,
        name,
        description: section.description,
        state_dir,
        vars,
        sources,
        stores,
        plugins,
        steps,
        fingerprint: crate::plugin::load::sha256_hex(fingerprint_input.as_bytes()),
    };
    validate::validate(&workflow, errors)?;
    Ok(workflow)
}

/// Reads one spanned value as `T`, errors placed at the offending value.
fn deserialize<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    errors: Errors<'_>,
) -> Result<T, WorkflowError> {
    let span = value.span();
    T::deserialize(toml::de::ValueDeserializer::from(value)).map_err(|e| errors.toml(e, span))
}

/// `[section.NAME]` tables, in file order.
fn named_tables<'i>(
    doc: &mut DeTable<'i>,
    section: &str,
    errors: Errors<'_>,
) -> Result<Vec<(String, Spanned<DeValue<'i>>)>, WorkflowError> {
    let Some(value) = vars::take(doc, section) else {
        return Ok(Vec::new());
    };
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        return Err(errors.at(
            span,
            format!("`{section}` must hold `[{section}.NAME]` tables"),
        ));
    };
    let mut out = Vec::new();
    for (key, value) in table {
        let name = key.get_ref().to_string();
        if !valid_name(&name) {
            return Err(errors.at(
                key.span(),
                format!("invalid {section} name `{name}`; use letters, digits, `-` and `_`"),
            ));
        }
        if !matches!(value.get_ref(), DeValue::Table(_)) {
            return Err(errors.at(
                value.span(),
                format!("`{section}.{name}` must be a table (`[{section}.{name}]`)"),
            ));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// Removes `key` from a spanned table value and returns it with the rest.
fn split_key<'i>(
    value: Spanned<DeValue<'i>>,
    key: &str,
) -> (Option<Spanned<DeValue<'i>>>, Spanned<DeValue<'i>>) {
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(mut table) => {
            let found = vars::take(&mut table, key);
            (found, Spanned::new(span, DeValue::Table(table)))
        }
        other => (None, Spanned::new(span, other)),
    }
}

/// The `kind` of a source, store or step table, with its span.
fn kind<'i>(
    value: Spanned<DeValue<'i>>,
    what: &str,
    kinds: &[&str],
    errors: Errors<'_>,
) -> Result<(String, Spanned<DeValue<'i>>), WorkflowError> {
    let span = value.span();
    let (kind, rest) = split_key(value, "kind");
    let Some(kind) = kind else {
        return Err(errors.at(
            span,
            format!("{what} has no `kind`; expected one of {}", quoted(kinds)),
        ));
    };
    match kind.get_ref() {
        DeValue::String(k) if kinds.contains(&k.as_ref()) => Ok((k.to_string(), rest)),
        DeValue::String(k) => Err(errors.at(
            kind.span(),
            format!(
                "unknown {what} kind `{k}`; expected one of {}",
                quoted(kinds)
            ),
        )),
        _ => Err(errors.at(
            kind.span(),
            format!("`kind` must be a string, one of {}", quoted(kinds)),
        )),
    }
}

fn source_config(
    value: Spanned<DeValue<'_>>,
    errors: Errors<'_>,
) -> Result<SourceConfig, WorkflowError> {
    let span = value.span();
    let (kind, rest) = kind(value, "source", &["file", "kafka"], errors)?;
    match kind.as_str() {
        "file" => {
            let file: schema::FileSource = deserialize(rest, errors)?;
            if file
                .max_event_size
                .is_some_and(|s| s.0 == 0 || s.0 > MAX_EVENT_SIZE)
            {
                return Err(errors.at(span, "`max_event_size` must be between 1 byte and 1GiB"));
            }
            Ok(SourceConfig::File(file))
        }
        "kafka" => Ok(SourceConfig::Kafka(deserialize(rest, errors)?)),
        _ => unreachable!("kinds are checked"),
    }
}

fn store_config(
    value: Spanned<DeValue<'_>>,
    errors: Errors<'_>,
) -> Result<StoreConfig, WorkflowError> {
    let span = value.span();
    let (kind, rest) = kind(value, "store", &["sqlite", "hbase", "null"], errors)?;
    match kind.as_str() {
        "sqlite" => {
            let sqlite: schema::SqliteStore = deserialize(rest, errors)?;
            for table in sqlite.tables.iter().flatten() {
                crate::store::sqlite::check_table_name(table)
                    .map_err(|e| errors.at(span.clone(), format!("`tables`: {e}")))?;
            }
            Ok(StoreConfig::Sqlite(sqlite))
        }
        "hbase" => {
            let hbase = deserialize(rest, errors)?;
            validate::hbase_store(&hbase).map_err(|message| errors.at(span, message))?;
            Ok(StoreConfig::Hbase(hbase))
        }
        "null" => Ok(StoreConfig::Null(deserialize(rest, errors)?)),
        _ => unreachable!("kinds are checked"),
    }
}

fn step(value: Spanned<DeValue<'_>>, errors: Errors<'_>) -> Result<Step, WorkflowError> {
    let span = value.span();
    if !matches!(value.get_ref(), DeValue::Table(_)) {
        return Err(errors.at(span, "each `[[step]]` must be a table"));
    }
    let (id, rest) = split_key(value, "id");
    let Some(id) = id else {
        return Err(errors.at(span, "step has no `id`; give every step a unique `id`"));
    };
    let id: Spanned<String> = deserialize(id, errors)?;
    let (description, rest) = split_key(rest, "description");
    let description: Option<String> = description.map(|d| deserialize(d, errors)).transpose()?;
    let (kind_name, rest) = kind(rest, "step", steps::KINDS, errors)?;
    let kind = match kind_name.as_str() {
        "shell" => StepKind::Shell(deserialize(rest, errors)?),
        "restore" => StepKind::Restore(deserialize(rest, errors)?),
        "replay" => StepKind::Replay(deserialize(rest, errors)?),
        "compare" => StepKind::Compare(deserialize(rest, errors)?),
        "cutover" => StepKind::Cutover(deserialize(rest, errors)?),
        "stop" => StepKind::Stop(deserialize(rest, errors)?),
        _ => unreachable!("kinds are checked"),
    };
    Ok(Step {
        id,
        description,
        kind,
    })
}

fn plugin_spec(
    name: &str,
    section: PluginSection,
    dir: &Path,
    span: std::ops::Range<usize>,
    errors: Errors<'_>,
) -> Result<PluginSpec, WorkflowError> {
    let written = section
        .crate_dir
        .as_deref()
        .or(section.wasm.as_deref())
        .unwrap_or("");
    let source = match (&section.crate_dir, &section.wasm) {
        (Some(c), None) => PluginSource::Crate(resolve_path(dir, c)),
        (None, Some(w)) => PluginSource::Wasm(resolve_path(dir, w)),
        _ => {
            return Err(errors.at(
                span,
                format!("plugin `{name}` needs exactly one of `crate` (a plugin crate to build) or `wasm` (a built component)"),
            ));
        }
    };
    match &source {
        PluginSource::Crate(dir) if !dir.join("Cargo.toml").is_file() => {
            return Err(errors.at(
                span,
                format!("plugin `{name}`: `{written}` is not a crate folder (no Cargo.toml in it)"),
            ));
        }
        PluginSource::Wasm(file) if !file.exists() => {
            return Err(errors.at(
                span,
                format!("plugin `{name}`: `{written}` does not exist; build the plugin, or point `wasm` at its .wasm (paths are relative to the workflow's folder)"),
            ));
        }
        PluginSource::Wasm(file) if !file.is_file() => {
            return Err(errors.at(
                span,
                format!("plugin `{name}`: `{written}` is not a regular file; point `wasm` at the .wasm a plugin build produced"),
            ));
        }
        _ => {}
    }
    let memory_bytes = section
        .memory_limit
        .as_ref()
        .map_or(DEFAULT_MEMORY, |s| s.get_ref().0);
    let timeout = section
        .timeout
        .as_ref()
        .map_or(DEFAULT_TIMEOUT, |s| s.get_ref().0);
    if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout) {
        return Err(errors.at(
            section.timeout.as_ref().map_or(span.clone(), |t| t.span()),
            format!(
                "plugin `{name}`: `timeout` = {} is outside {} to {}; a call needs a few ticks of the 10ms clock, and one batch should never take an hour",
                humantime::format_duration(timeout),
                humantime::format_duration(MIN_TIMEOUT),
                humantime::format_duration(MAX_TIMEOUT)
            ),
        ));
    }
    if !(1 << 20..=4 << 30).contains(&memory_bytes) {
        return Err(errors.at(
            section
                .memory_limit
                .as_ref()
                .map_or(span.clone(), |m| m.span()),
            format!(
                "plugin `{name}`: `memory_limit` must be between 1MiB and 4GiB (all a 32-bit WebAssembly memory can hold)"
            ),
        ));
    }
    if let (Some(pin), PluginSource::Wasm(file)) = (&section.sha256, &source) {
        let bytes = crate::plugin::load::read_component(file).map_err(|e| {
            errors.at(
                span.clone(),
                format!("plugin `{name}`: cannot read `{written}`: {e}"),
            )
        })?;
        let actual = crate::plugin::load::sha256_hex(&bytes);
        if !actual.eq_ignore_ascii_case(pin.get_ref().trim()) {
            return Err(errors.at(
                pin.span(),
                format!(
                    "plugin `{name}`: `{written}` has sha256 {actual}, but the workflow pins {}; rebuild the plugin or update `sha256`",
                    pin.get_ref()
                ),
            ));
        }
    }
    let defaults = OutputLimits::for_memory(memory_bytes);
    let output = OutputLimits {
        bytes_per_batch: section.max_output.map_or(defaults.bytes_per_batch, |s| s.0),
        rows_per_event: section
            .max_rows_per_event
            .unwrap_or(defaults.rows_per_event),
        cells_per_event: section
            .max_cells_per_event
            .unwrap_or(defaults.cells_per_event),
        rows_per_batch: section
            .max_rows_per_batch
            .unwrap_or(defaults.rows_per_batch),
        cells_per_batch: section
            .max_cells_per_batch
            .unwrap_or(defaults.cells_per_batch),
    };
    for (setting, value) in [
        ("max_output", output.bytes_per_batch),
        ("max_rows_per_event", output.rows_per_event),
        ("max_cells_per_event", output.cells_per_event),
        ("max_rows_per_batch", output.rows_per_batch),
        ("max_cells_per_batch", output.cells_per_batch),
    ] {
        if value == 0 {
            return Err(errors.at(
                span,
                format!("plugin `{name}`: `{setting}` must be at least 1"),
            ));
        }
    }
    Ok(PluginSpec {
        name: name.to_string(),
        source,
        sha256: section.sha256.as_ref().map(|s| s.get_ref().clone()),
        limits: Limits {
            memory_bytes,
            timeout,
            output,
        },
        grants: Grants {
            clock: section.clock,
            random: section.random,
            env: section
                .env
                .iter()
                .filter_map(|k| match std::env::var(k) {
                    Ok(v) => Some((k.clone(), v)),
                    Err(_) => {
                        tracing::warn!(
                            plugin = name,
                            "`{k}` is granted but not set; the plugin will not see it"
                        );
                        None
                    }
                })
                .collect(),
            environment: !section.env.is_empty(),
            read_dirs: section
                .read_dirs
                .iter()
                .map(|d| {
                    let host = resolve_path(dir, d.get_ref());
                    if host.is_dir() {
                        Ok((host, d.get_ref().clone()))
                    } else {
                        Err(errors.at(
                            d.span(),
                            format!(
                                "plugin `{name}`: `read_dirs` grants `{}`, which is not a folder (paths are relative to the workflow's folder)",
                                d.get_ref()
                            ),
                        ))
                    }
                })
                .collect::<Result<_, _>>()?,
        },
        config: section
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
    })
}

/// Letters, digits, `-` and `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn resolve_path(dir: &Path, text: &str) -> PathBuf {
    let p = Path::new(text);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    };
    // Lexically, so messages show `/repo/plugins/x`, not `/repo/workflows/../plugins/x`.
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir if out.parent().is_some() => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
