//! `cutover`: stops the replays syncing in the background (they commit what
//! the store acknowledged, so the service's own consumer can take over
//! from there) and records that reads now go to the new store. Routing
//! traffic itself is the router's job; here the switch is made durable in
//! the state so `runner status` shows it and later steps know it happened.

use super::{StepContext, StepError};
use crate::workflow::steps::CutoverStep;

/// Records the switch.
pub fn run(ctx: &StepContext, _id: &str, c: &CutoverStep) -> Result<String, StepError> {
    let to = c.to.get_ref();
    let stopped = super::stop::stop_replays(ctx, &[])?;
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
