//! `cutover`: sends every read to green (when the workflow has a
//! `[router]`: the routing state says so, and every router serving the
//! workflow follows within a fraction of a second), stops the replays
//! syncing in the background (they commit what the store acknowledged, so
//! the service's own consumer can take over from there) and records the
//! switch in the state, so `runner status` shows it and later steps know
//! it happened. The router itself keeps serving until the workflow ends.

use serde::Deserialize;
use toml::Spanned;

use super::checking::Checking;
use super::uses::Uses;
use super::{StepConfig, StepContext, StepError, StepFile};
use crate::document::{Kind, WorkflowError};
use crate::router::{Mode, RoutingFile};
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
    /// Hooks to run once reads are on green.
    #[serde(default)]
    pub on_cutover: Vec<Spanned<String>>,
}

impl StepFile for CutoverStep {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        c.store(&self.to)?;
        if let Some(from) = &self.from {
            c.store(from)?;
        }
        super::hooks::check(c, &self.on_cutover, "on_cutover")?;
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

/// Sends every read to green, stops the replays and records the switch.
fn run(ctx: &StepContext, id: &str, c: &CutoverStep) -> Result<String, StepError> {
    let to = c.to.get_ref();
    if ctx.setup.router.is_some() {
        let routing = RoutingFile::new(&ctx.setup.state_dir).update(
            &format!("cut over by step `{id}`"),
            |r| {
                // An operator's rollback is not undone by the next step.
                if r.mode == Mode::AllBlue {
                    return Err(format!(
                        "every read was sent back to blue ({}); set a share again (admin endpoint) or run the ramp again (`runner exec --from STEP`) before cutting over",
                        r.reason
                    ));
                }
                r.mode = Mode::AllGreen;
                r.stage = "cut over".into();
                Ok(())
            },
        )?;
        tracing::info!("routing is now {}", routing.describe());
    }
    let replays = super::background::replays(ctx);
    if !replays.is_empty() {
        for line in super::background::stop_and_record(ctx, &replays)? {
            tracing::info!("background replay {line}");
        }
    }
    {
        let mut state = ctx.lock_state();
        state.data.cutover_to = Some(to.clone());
        state.save()?;
    }
    let mut line = match &c.from {
        Some(from) => format!(
            "switched from `{}` to `{to}`; `{}` may be retired",
            from.get_ref(),
            from.get_ref()
        ),
        None => format!("switched to `{to}`"),
    };
    for hook in super::hooks::run(ctx, &c.on_cutover, "cutover") {
        line.push_str(&format!("; {hook}"));
    }
    Ok(line)
}
