//! The workflow file put together: its setup and its steps, validation
//! and the plan.
//!
//! Loading goes in passes, each with errors that name file, line and column:
//! TOML syntax → `[vars]` resolved and `${…}` expanded in every string (on
//! the spanned document, so positions stay true) → each section read with
//! serde (`deny_unknown_fields`), a source, store or step by the kind its
//! `kind` names (from `source::KINDS`, `store::KINDS`, `steps::KINDS`) →
//! [`validate`] checks references and values without touching any live
//! system.

pub mod plan;
pub mod schema;
pub mod validate;

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::document::kind::read_kind;
use crate::document::read::{absolute, deserialize, named_tables, resolve_path, split_key};
pub use crate::document::valid_name;
use crate::document::vars;
use crate::document::{Errors, Sections};
pub use crate::document::{Location, WorkflowError};
use crate::plugin::limits::{DEFAULT_MEMORY, DEFAULT_TIMEOUT, MAX_TIMEOUT, MIN_TIMEOUT};
use crate::plugin::{Grants, Limits, OutputLimits, PluginSource, PluginSpec};
use crate::router::RouterSection;
use crate::setup::Setup;
use crate::source;
use crate::state::{State, Status};
use crate::steps::{self, Step, StepFile};
use crate::store;
use crate::text::quoted;
use schema::{PluginSection, WorkflowSection};

/// A loaded, expanded and validated workflow: its setup (where it lives,
/// its sources, stores and plugins), which it derefs to, and its steps.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// What the steps work with.
    pub setup: Arc<Setup>,
    /// `[workflow] description`.
    pub description: Option<String>,
    /// `[[step]]`, in order.
    pub steps: Arc<[Step]>,
    /// sha256 of the file and overrides, to notice edits between runs.
    pub fingerprint: String,
}

impl Workflow {
    /// Whether `state` records every step done.
    pub fn all_done(&self, state: &State) -> bool {
        !self.steps.is_empty()
            && self.steps.iter().filter(|s| !s.config.is_hook()).all(|s| {
                state
                    .steps
                    .get(s.id.get_ref())
                    .is_some_and(|st| st.status == Status::Done)
            })
    }
}

impl Deref for Workflow {
    type Target = Setup;

    fn deref(&self) -> &Setup {
        &self.setup
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

/// The sections a workflow may have.
const SECTIONS: &[&str] = &[
    "workflow", "vars", "source", "store", "plugin", "router", "step",
];

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

    let sources = Sections(
        named_tables(&mut doc, "source", errors)?
            .into_iter()
            .map(|(n, v)| Ok((n, read_kind(v, "source", source::KINDS, errors)?.into())))
            .collect::<Result<_, WorkflowError>>()?,
    );
    let stores = Sections(
        named_tables(&mut doc, "store", errors)?
            .into_iter()
            .map(|(n, v)| Ok((n, read_kind(v, "store", store::KINDS, errors)?.into())))
            .collect::<Result<_, WorkflowError>>()?,
    );
    let mut plugins = Vec::new();
    for (plugin_name, value) in named_tables(&mut doc, "plugin", errors)? {
        let span = value.span();
        let section: PluginSection = deserialize(value, errors)?;
        plugins.push(plugin_spec(&plugin_name, section, &dir, span, errors)?);
    }
    let router = match vars::take(&mut doc, "router") {
        None => None,
        Some(value) => {
            let span = value.span();
            let section: RouterSection = deserialize(value, errors)?;
            Some(section.check(span, errors, |name| {
                plugins.iter().any(|p: &PluginSpec| p.name == name)
            })?)
        }
    };
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
    let setup = Setup {
        file: file.to_path_buf(),
        dir,
        name,
        state_dir,
        vars,
        sources,
        stores,
        plugins,
        router,
    };
    let steps = validate::validate(&setup, steps, errors)?;
    Ok(Workflow {
        setup: Arc::new(setup),
        description: section.description,
        steps: steps.into(),
        fingerprint: crate::plugin::load::sha256_hex(fingerprint_input.as_bytes()),
    })
}

fn step(
    value: Spanned<DeValue<'_>>,
    errors: Errors<'_>,
) -> Result<Step<dyn StepFile>, WorkflowError> {
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
    let config = read_kind(rest, "step", steps::KINDS, errors)?;
    Ok(Step {
        id,
        description,
        config,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_store_is_named_with_kind_null_and_nothing_else() {
        let text = "[workflow]\nname = \"w\"\n[store.dry]\nkind = \"null\"\n";
        let file = std::path::Path::new("w.toml");
        let options = LoadOptions::default();
        let w = parse(file, text, &options).unwrap();
        let mut store = w.open_store("dry").unwrap();
        assert_eq!(store.name(), "dry");
        assert!(store.tables().unwrap().is_empty());

        let extra = format!("{text}path = \"x\"\n");
        let err = parse(file, &extra, &options).unwrap_err();
        assert!(err.to_string().contains("path"), "{err}");
    }
}
