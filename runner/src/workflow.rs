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
pub mod resolved;
pub mod schema;
pub mod validate;

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::document::kind::read_kind;
use crate::document::layers::{Layers, get, read_file};
use crate::document::merge::merge;
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
use resolved::ResolvedVar;
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
    /// sha256 of the file, its templates and overrides, to notice edits
    /// between runs.
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
    let text = read_file(file).map_err(|source| WorkflowError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    parse(file, &text, options)
}

/// The workflow as the runner reads it (`runner plan --resolved`): its
/// templates merged and variables expanded, each value with the file and
/// line it comes from. It needs only that far to be valid.
pub fn resolve(file: &Path, options: &LoadOptions) -> Result<String, WorkflowError> {
    let text = read_file(file).map_err(|source| WorkflowError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let layers = Layers::read(file, &text)?;
    Ok(assemble(file, &layers, options)?.resolved)
}

/// The document put together: the files merged, `[vars]` resolved and
/// expanded everywhere. What is left is reading its sections.
struct Assembled<'l> {
    doc: DeTable<'l>,
    section: WorkflowSection,
    dir: PathBuf,
    state_dir: PathBuf,
    vars: vars::Vars,
    resolved: String,
}

/// Like [`load`], from text already read (the templates it extends are
/// read from disk).
pub fn parse(file: &Path, text: &str, options: &LoadOptions) -> Result<Workflow, WorkflowError> {
    let layers = Layers::read(file, text)?;
    let errors = layers.errors();
    let Assembled {
        mut doc,
        section,
        dir,
        state_dir,
        vars,
        ..
    } = assemble(file, &layers, options)?;
    let name = section.name.get_ref().clone();

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
    // A workflow without a template keeps the fingerprint it always had.
    let mut fingerprint_input = text.to_string();
    for layer in layers.iter().skip(1) {
        fingerprint_input.push_str(&format!(
            "\n--template {}\n{}",
            layer.file.display(),
            layer.text()
        ));
    }
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

fn assemble<'l>(
    file: &Path,
    layers: &'l Layers,
    options: &LoadOptions,
) -> Result<Assembled<'l>, WorkflowError> {
    let errors = layers.errors();
    let mut documents = layers.documents()?;
    for doc in &documents {
        check_sections(doc, errors)?;
    }
    let own = documents.remove(0);
    if layers.extends() && !names_itself(&own) {
        return Err(errors.at(
            get(&own, "workflow").map_or(0..0, |w| w.span()),
            "a workflow that extends a template writes its own `[workflow] name`, so services sharing a template keep their own state",
        ));
    }
    // The deepest template first, each file laid on the one it extends.
    let mut doc = match documents.pop() {
        None => own,
        Some(deepest) => {
            let mut merged = deepest;
            for over in documents.into_iter().rev().chain([own]) {
                merged = merge(merged, over, errors)?;
            }
            merged
        }
    };
    let Some(workflow) = vars::take(&mut doc, "workflow") else {
        return Err(errors.at(0..0, "missing `[workflow]` section with a `name`"));
    };
    let section: WorkflowSection = deserialize(workflow.clone(), errors)?;
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
    let declared = declared_vars(&doc);
    let vars = vars::resolve(&mut doc, &builtins, &options.overrides, errors)?;
    let resolved_vars: Vec<ResolvedVar> = declared
        .into_iter()
        .map(|(name, span)| ResolvedVar {
            value: vars.get(&name).cloned().unwrap_or_default(),
            from: if options.overrides.iter().any(|(k, _)| *k == name) {
                "--var".to_string()
            } else {
                let at = errors.location(span.start);
                format!("{}:{}", at.file.display(), at.line)
            },
            name,
        })
        .collect();
    let used = vars::expand_document(&mut doc, &vars, errors)?;
    // A value that is wrong because of a variable names where that
    // variable was set: often another file than the value's own.
    let mut via = std::collections::BTreeMap::new();
    for (at, names) in used {
        let set: Vec<&ResolvedVar> = names
            .iter()
            .filter_map(|n| resolved_vars.iter().find(|v| v.name == *n))
            .collect();
        if !set.is_empty() {
            let shown: Vec<String> = set
                .iter()
                .map(|v| format!("${{{}}} from {}", v.name, v.from))
                .collect();
            via.insert(at, shown.join(", "));
        }
        let said: Vec<String> = set
            .into_iter()
            .map(|v| match v.from.as_str() {
                "--var" => format!("`${{{}}}` is {:?}, given with --var", v.name, v.value),
                at => format!("`${{{}}}` is {:?}, set at {at}", v.name, v.value),
            })
            .collect();
        if !said.is_empty() {
            layers.explain(at, said.join("; "));
        }
    }
    let resolved = resolved::text(&workflow, &doc, &resolved_vars, &via, errors);
    Ok(Assembled {
        doc,
        section,
        dir,
        state_dir,
        vars,
        resolved,
    })
}

/// Refuses top-level keys that are not sections.
fn check_sections(doc: &DeTable<'_>, errors: Errors<'_>) -> Result<(), WorkflowError> {
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
    Ok(())
}

/// Whether the document writes `[workflow] name`.
fn names_itself(doc: &DeTable<'_>) -> bool {
    match get(doc, "workflow").map(|w| w.get_ref()) {
        Some(DeValue::Table(t)) => get(t, "name").is_some(),
        _ => false,
    }
}

/// The names in `[vars]` and where each is written.
fn declared_vars(doc: &DeTable<'_>) -> Vec<(String, std::ops::Range<usize>)> {
    match get(doc, "vars").map(|v| v.get_ref()) {
        Some(DeValue::Table(t)) => t
            .iter()
            .map(|(k, v)| (k.get_ref().to_string(), v.span()))
            .collect(),
        _ => Vec::new(),
    }
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
        PluginSource::Crate(crate_dir) if !crate_dir.join("Cargo.toml").is_file() => {
            return Err(errors.at(
                span,
                format!(
                    "plugin `{name}`: `{written}` is not a crate folder (no Cargo.toml in {}; paths are relative to the folder of the workflow you run)",
                    crate_dir.display()
                ),
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

    /// Writes `files` into a new folder and parses the first.
    fn parse_files(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Workflow, WorkflowError>) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let file = dir.path().join(files[0].0);
        let result = load(&file, &LoadOptions::default());
        (dir, result)
    }

    const TEMPLATE: &str = "[workflow]\ndescription = \"shared\"\n\n[vars]\nwhere = \"${state_dir}/blue.db\"\n\n[store.blue]\nkind = \"sqlite\"\npath = \"${where}\"\n\n[store.green]\nkind = \"sqlite\"\npath = \"green.db\"\n\n[[step]]\nid = \"one\"\nkind = \"shell\"\ncommand = [\"true\"]\n\n[[step]]\nid = \"two\"\nkind = \"shell\"\ncommand = [\"true\"]\n";

    #[test]
    fn a_service_overrides_vars_stores_and_steps_of_its_template() {
        let service = "[workflow]\nname = \"svc\"\nextends = \"t/base.toml\"\n\n[vars]\nwhere = \"elsewhere.db\"\n\n[store.green]\nkind = \"null\"\n\n[[step]]\nid = \"two\"\ntimeout = \"5s\"\n\n[[step]]\nid = \"first\"\nbefore = \"one\"\nkind = \"shell\"\ncommand = [\"true\"]\n";
        let (dir, w) = parse_files(&[("svc.toml", service), ("t/base.toml", TEMPLATE)]);
        let w = w.unwrap();
        assert_eq!(w.name, "svc");
        assert_eq!(w.description.as_deref(), Some("shared"));
        assert_eq!(w.vars["where"], "elsewhere.db");
        // A store that names another kind drops the template's settings.
        assert_eq!(w.open_store("green").unwrap().tables().unwrap().len(), 0);
        let ids: Vec<&str> = w.steps.iter().map(|s| s.id.get_ref().as_str()).collect();
        assert_eq!(ids, ["first", "one", "two"]);
        // Relative paths are the service's folder's.
        assert!(w.state_dir.starts_with(dir.path()));
        let resolved = resolve(&dir.path().join("svc.toml"), &LoadOptions::default()).unwrap();
        assert!(resolved.contains("timeout = \"5s\""), "{resolved}");
        let template = dir.path().join("t/base.toml").display().to_string();
        let own = dir.path().join("svc.toml").display().to_string();
        assert!(
            resolved.contains(&format!(
                "path = \"elsewhere.db\"  # {template}:9, ${{where}} from {own}:6"
            )),
            "{resolved}"
        );
    }

    #[test]
    fn errors_point_into_the_file_that_holds_the_offending_line() {
        let service = "[workflow]\nname = \"svc\"\nextends = \"t/base.toml\"\n";
        let broken = TEMPLATE.replace("path = \"green.db\"", "path = 7");
        let (dir, w) = parse_files(&[("svc.toml", service), ("t/base.toml", &broken)]);
        let err = w.unwrap_err().to_string();
        let template = dir.path().join("t/base.toml").display().to_string();
        assert!(err.starts_with(&format!("{template}:13:8: ")), "{err}");

        let service = format!("{service}\n[store.blue]\npath = [1]\n");
        let (dir, w) = parse_files(&[("svc.toml", &service), ("t/base.toml", TEMPLATE)]);
        let err = w.unwrap_err().to_string();
        let own = dir.path().join("svc.toml").display().to_string();
        assert!(err.starts_with(&format!("{own}:6:8: ")), "{err}");

        let service = "[workflow]\nname = \"svc\"\nextends = \"t/base.toml\"\n\n[[step]]\nid = \"x\"\nafter = \"nine\"\nkind = \"shell\"\ncommand = [\"true\"]\n";
        let (_dir, w) = parse_files(&[("svc.toml", service), ("t/base.toml", TEMPLATE)]);
        let err = w.unwrap_err().to_string();
        assert!(
            err.contains("svc.toml:") && err.contains("no step `nine`"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_template_a_cycle_and_a_nameless_service_are_refused() {
        let (_dir, w) = parse_files(&[(
            "svc.toml",
            "[workflow]\nname = \"svc\"\nextends = \"nope.toml\"\n",
        )]);
        let err = w.unwrap_err().to_string();
        assert!(
            err.contains("svc.toml:3:11: cannot read template `nope.toml`"),
            "{err}"
        );

        let (_dir, w) = parse_files(&[
            ("a.toml", "[workflow]\nname = \"a\"\nextends = \"b.toml\"\n"),
            ("b.toml", "[workflow]\nextends = \"a.toml\"\n"),
        ]);
        let err = w.unwrap_err().to_string();
        assert!(
            err.contains("templates extend each other in a cycle"),
            "{err}"
        );

        let (_dir, w) = parse_files(&[
            ("svc.toml", "[workflow]\nextends = \"t.toml\"\n"),
            ("t.toml", "[workflow]\nname = \"shared\"\n"),
        ]);
        let err = w.unwrap_err().to_string();
        assert!(err.contains("writes its own `[workflow] name`"), "{err}");
    }

    #[test]
    fn a_misspelt_step_a_duplicate_and_a_plugin_of_its_own_are_not_merged_quietly() {
        let head = "[workflow]\nname = \"svc\"\nextends = \"t/base.toml\"\n";
        let misspelt = format!("{head}\n[[step]]\nid = \"tow\"\ntimeout = \"5s\"\n");
        let (_dir, w) = parse_files(&[("svc.toml", &misspelt), ("t/base.toml", TEMPLATE)]);
        let err = w.unwrap_err().to_string();
        assert!(
            err.contains("the template has no step `tow` to merge this into (it has `one`, `two`)"),
            "{err}"
        );

        let twice = format!("{head}\n[[step]]\nid = \"two\"\n\n[[step]]\nid = \"two\"\n");
        let (_dir, w) = parse_files(&[("svc.toml", &twice), ("t/base.toml", TEMPLATE)]);
        let err = w.unwrap_err().to_string();
        assert!(err.contains("duplicate step id `two`"), "{err}");

        // A plugin that names its own crate keeps nothing of the template's.
        let dir = tempfile::tempdir().unwrap();
        for c in ["a", "b"] {
            std::fs::create_dir_all(dir.path().join(c)).unwrap();
            std::fs::write(dir.path().join(c).join("Cargo.toml"), "").unwrap();
        }
        let template = "[workflow]\n[plugin.p]\ncrate = \"a\"\nmemory_limit = \"16MiB\"\nconfig = { x = \"1\" }\n";
        let service = format!("{head}[plugin.p]\ncrate = \"b\"\nconfig = {{ y = \"2\" }}\n");
        std::fs::create_dir_all(dir.path().join("t")).unwrap();
        std::fs::write(dir.path().join("t/base.toml"), template).unwrap();
        std::fs::write(dir.path().join("svc.toml"), &service).unwrap();
        let w = load(&dir.path().join("svc.toml"), &LoadOptions::default()).unwrap();
        let p = &w.plugins[0];
        assert_eq!(p.limits.memory_bytes, DEFAULT_MEMORY);
        assert_eq!(p.config, vec![("y".to_string(), "2".to_string())]);
    }

    #[test]
    fn an_error_in_a_value_made_by_a_variable_names_where_the_variable_was_set() {
        let service = "[workflow]\nname = \"svc\"\nextends = \"t/base.toml\"\n\n[vars]\nwhere = [\"not a path\"]\n";
        let (_dir, w) = parse_files(&[("svc.toml", service), ("t/base.toml", TEMPLATE)]);
        let err = w.unwrap_err().to_string();
        assert!(err.contains("variable `where` must be a string"), "{err}");

        let template = TEMPLATE
            .replace(
                "path = \"green.db\"",
                "path = \"green.db\"\nsync = \"${durable}\"",
            )
            .replace("[vars]\n", "[vars]\ndurable = \"full\"\n");
        let service =
            "[workflow]\nname = \"svc\"\nextends = \"t/base.toml\"\n\n[vars]\ndurable = \"soon\"\n";
        let (dir, w) = parse_files(&[("svc.toml", service), ("t/base.toml", &template)]);
        let err = w.unwrap_err().to_string();
        let own = dir.path().join("svc.toml").display().to_string();
        assert!(
            err.contains(&format!("(`${{durable}}` is \"soon\", set at {own}:6)")),
            "{err}"
        );
    }

    #[test]
    fn templates_extend_each_other_at_most_eight_deep() {
        // t0 extends t1 … extends tN; the last has no `extends`.
        let chain = |n: usize| {
            let mut files: Vec<(String, String)> = (0..n)
                .map(|i| {
                    let name = if i == 0 { "\nname = \"w\"" } else { "" };
                    (
                        format!("t{i}.toml"),
                        format!("[workflow]{name}\nextends = \"t{}.toml\"\n", i + 1),
                    )
                })
                .collect();
            files.push((format!("t{n}.toml"), "[workflow]\n".to_string()));
            files
        };
        for (n, ok) in [(8, true), (9, false)] {
            let files = chain(n);
            let refs: Vec<(&str, &str)> = files
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            let (_dir, w) = parse_files(&refs);
            match (ok, w) {
                (true, Ok(_)) => {}
                (false, Err(e)) => assert!(
                    e.to_string()
                        .contains("templates extend each other more than 8 deep"),
                    "{e}"
                ),
                (_, w) => panic!("{n} templates: {:?}", w.map(|w| w.name.clone())),
            }
        }
    }

    #[test]
    fn a_workflow_file_that_is_endless_or_not_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        std::fs::write(
            &big,
            "#".repeat(crate::document::layers::MAX_FILE as usize + 1),
        )
        .unwrap();
        let err = load(&big, &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("longer than 4 MiB"), "{err}");
        let err = load(Path::new("/dev/zero"), &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");

        let service = "[workflow]\nname = \"svc\"\nextends = \"/dev/zero\"\n";
        let (_dir, w) = parse_files(&[("svc.toml", service)]);
        let err = w.unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
