//! `stop`: stops background replays (`until = "cutover"`) before the
//! cutover, for workflows that evaluate green with the log frozen. Each
//! finishes what it has in flight, commits, and records its final summary.

use serde::Deserialize;
use toml::Spanned;

use super::background;
use super::checking::Checking;
use super::uses::Uses;
use super::{Step, StepConfig, StepContext, StepError, StepFile};
use crate::document::{Kind, WorkflowError};
use crate::setup::Setup;

/// The kind, for the registration list.
pub const KIND: Kind<dyn StepFile> = Kind {
    name: "stop",
    read: |table| Ok(Box::new(table.read::<StopStep>()?)),
};

/// `kind = "stop"`: stops background replays (`until = "cutover"`) before
/// the cutover: each finishes what it has in flight and commits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopStep {
    /// The replay steps to stop (default: every one still running).
    #[serde(default)]
    pub replays: Vec<Spanned<String>>,
}

impl StepFile for StopStep {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        for replay in &self.replays {
            let runs_in_background = c
                .earlier
                .iter()
                .any(|s| s.id.get_ref() == replay.get_ref() && s.config.leaves_running());
            if !runs_in_background {
                return Err(c.at(
                    replay.span(),
                    format!(
                        "`{}` is not an earlier replay step with `until = \"cutover\"`; only those run in the background",
                        replay.get_ref()
                    ),
                ));
            }
        }
        Ok(self)
    }
}

impl StepConfig for StopStep {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self, _setup: &Setup) -> String {
        if self.replays.is_empty() {
            return "stop every background replay".into();
        }
        format!(
            "stop the background replays {}",
            crate::text::quoted(
                &self
                    .replays
                    .iter()
                    .map(|r| r.get_ref().as_str())
                    .collect::<Vec<_>>()
            )
        )
    }

    fn uses<'s>(&'s self, _uses: &mut Uses<'s>) {}

    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError> {
        run(ctx, id, self)
    }

    fn stops(&self, step: &Step) -> bool {
        if self.replays.is_empty() {
            return step.config.keeps_current().is_some();
        }
        self.replays
            .iter()
            .any(|r| r.get_ref() == step.id.get_ref())
    }
}

/// Stops the listed background replays (all when none are listed).
fn run(ctx: &StepContext, _id: &str, s: &StopStep) -> Result<String, StepError> {
    let ids: Vec<String> = if s.replays.is_empty() {
        background::replays(ctx)
    } else {
        s.replays.iter().map(|r| r.get_ref().clone()).collect()
    };
    let stopped = if ids.is_empty() {
        Vec::new()
    } else {
        background::stop_and_record(ctx, &ids)?
    };
    Ok(if stopped.is_empty() {
        "no background replay was running".into()
    } else {
        format!("stopped {}", stopped.join("; "))
    })
}
