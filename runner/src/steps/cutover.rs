//! `cutover`: stops the replays syncing in the background (they commit what
//! the store acknowledged, so the service's own consumer can take over
//! from there) and records that reads now go to the new store. Routing
//! traffic itself is the router's job; here the switch is made durable in
//! the state so `runner status` shows it and later steps know it happened.

use serde::Deserialize;
use toml::Spanned;

use super::checking::Checking;
use super::uses::Uses;
use super::{StepConfig, StepContext, StepError, StepFile};
use crate::document::{Kind, WorkflowError};
use crate::setup::Setup;
use crate::state::State;

/// The kind, for the registration list.
pub const KIND: Kind<dyn StepFile> = Kind {
    name: "cutover",
    read: |table| Ok(Box::new(table.read::<CutoverStep>()?)),
};

/// `kind = "cutover"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutoverStep {
    /// The store that becomes the primary.
    pub to: Spanned<String>,
    /// The store being retired.
    #[serde(default)]
    pub from: Option<Spanned<String>>,
}

impl StepFile for CutoverStep {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        c.store(&self.to)?;
        if let Some(from) = &self.from {
            c.store(from)?;
        }
        Ok(self)
    }
}

impl StepConfig for CutoverStep {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self, _setup: &Setup) -> String {
        match &self.from {
            Some(from) => format!(
                "switch from `{}` to `{}`",
                from.get_ref(),
                self.to.get_ref()
            ),
            None => format!("switch to `{}`", self.to.get_ref()),
        }
    }

    fn uses<'s>(&'s self, _uses: &mut Uses<'s>) {}

    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError> {
        run(ctx, id, self)
    }

    fn reads(&self) -> Vec<&str> {
        vec![self.to.get_ref().as_str()]
    }

    fn forget(&self, state: &mut State) {
        state.cutover_to = None;
    }
}

/// Records the switch.
fn run(ctx: &StepContext, _id: &str, c: &CutoverStep) -> Result<String, StepError> {
    let to = c.to.get_ref();
    let stopped = super::background::stop_and_record(ctx, &[])?;
    for line in &stopped {
        tracing::info!("background replay {line}");
    }
    let mut state = ctx.lock_state();
    state.data.cutover_to = Some(to.clone());
    state.save()?;
    Ok(match &c.from {
        Some(from) => format!(
            "switched from `{}` to `{to}`; `{}` may be retired",
            from.get_ref(),
            from.get_ref()
        ),
        None => format!("switched to `{to}`"),
    })
}
