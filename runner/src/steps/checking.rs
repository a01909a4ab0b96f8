//! What a step kind's `check` works with: the workflow's setup, the steps
//! before it, and helpers for the checks every kind makes (a store or
//! plugin that exists, a plugin of the right world, a batch size in range,
//! a time limit that is not zero), with errors that point into the file.

use std::ops::Range;

use toml::Spanned;

use super::Step;
use crate::document::values::Period;
use crate::document::{Errors, WorkflowError};
use crate::plugin::PluginSource;
use crate::plugin::contract::World;
use crate::setup::Setup;
use crate::source::SourceConfig;
use crate::text::quoted;

/// The most a batch may hold: a batch is held whole in memory.
const MAX_BATCH: usize = 1_000_000;

/// One step being checked.
pub struct Checking<'a> {
    /// What the workflow declares.
    pub setup: &'a Setup,
    /// The steps before this one.
    pub earlier: &'a [Step],
    /// The file, for errors.
    pub errors: Errors<'a>,
    /// The step's id, where errors about the step as a whole point.
    pub id: &'a Spanned<String>,
}

impl Checking<'_> {
    /// An error about the step as a whole.
    pub fn step(&self, message: impl std::fmt::Display) -> WorkflowError {
        self.errors.at(
            self.id.span(),
            format!("step `{}`: {message}", self.id.get_ref()),
        )
    }

    /// An error about the value at `span`.
    pub fn at(&self, span: Range<usize>, message: impl Into<String>) -> WorkflowError {
        self.errors.at(span, message)
    }

    /// `name` is a `[store.NAME]`.
    pub fn store(&self, name: &Spanned<String>) -> Result<(), WorkflowError> {
        match self.setup.store(name.get_ref()) {
            Some(_) => Ok(()),
            None => Err(self.missing(name, "store", self.setup.stores.iter().map(|(n, _)| n))),
        }
    }

    /// `name` is a `[source.NAME]`.
    pub fn source(&self, name: &Spanned<String>) -> Result<&dyn SourceConfig, WorkflowError> {
        self.setup
            .source(name.get_ref())
            .ok_or_else(|| self.missing(name, "source", self.setup.sources.iter().map(|(n, _)| n)))
    }

    /// `name` is a `[plugin.NAME]`.
    pub fn plugin(&self, name: &Spanned<String>) -> Result<(), WorkflowError> {
        match self.setup.plugin(name.get_ref()) {
            Some(_) => Ok(()),
            None => Err(self.missing(
                name,
                "plugin",
                self.setup.plugins.iter().map(|p| p.name.as_str()),
            )),
        }
    }

    /// A prebuilt plugin must be of the world its step needs; a crate is
    /// checked when it is built.
    pub fn world<W: World>(&self, name: &Spanned<String>) -> Result<(), WorkflowError> {
        let (kind, interface) = (W::KIND, W::interface());
        let Some(PluginSource::Wasm(file)) = self.setup.plugin(name.get_ref()).map(|p| &p.source)
        else {
            return Ok(());
        };
        let Ok(bytes) = crate::plugin::load::read_component(file) else {
            return Ok(());
        };
        let problem = match crate::plugin::load::exports(&bytes) {
            Ok(exports) if exports.iter().any(|e| W::exported_as(e)) => return Ok(()),
            Ok(exports) => format!(
                "plugin `{}` is not a {kind} plugin: it exports {}; expected `{interface}` (build it with `#[switchyard_sdk::{}]`)",
                name.get_ref(),
                if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    quoted(&exports.iter().map(String::as_str).collect::<Vec<_>>())
                },
                kind.replace('-', "_")
            ),
            Err(why) => format!(
                "plugin `{}`: `{}` cannot be used: {why}",
                name.get_ref(),
                file.display()
            ),
        };
        Err(self.errors.at(name.span(), problem))
    }

    /// A batch size: at least 1, at most what may be held in memory.
    pub fn positive(&self, value: Option<usize>, name: &str) -> Result<(), WorkflowError> {
        match value {
            Some(0) => Err(self.step(format!("`{name}` must be at least 1"))),
            Some(n) if n > MAX_BATCH => {
                Err(self.step(format!("`{name}` = {n} is more than {MAX_BATCH}")))
            }
            _ => Ok(()),
        }
    }

    /// A time limit of zero would fail at once; it is a mistake, not a
    /// limit.
    pub fn not_zero(&self, value: Option<Period>, name: &str) -> Result<(), WorkflowError> {
        match value {
            Some(t) if t.0.is_zero() => Err(self.step(format!("`{name}` must be longer than 0s"))),
            _ => Ok(()),
        }
    }

    fn missing<'n>(
        &self,
        name: &Spanned<String>,
        what: &str,
        known: impl Iterator<Item = &'n str>,
    ) -> WorkflowError {
        let known: Vec<&str> = known.collect();
        let hint = if known.is_empty() {
            format!("the workflow declares no `[{what}.NAME]`")
        } else {
            format!("declared: {}", quoted(&known))
        };
        self.errors.at(
            name.span(),
            format!("unknown {what} `{}`; {hint}", name.get_ref()),
        )
    }
}
