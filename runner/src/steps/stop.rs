//! `stop`: stops background replays (`until = "cutover"`) before the
//! cutover, for workflows that evaluate green with the log frozen. Each
//! finishes what it has in flight, commits, and records its final summary.

use super::background::{self, Stopped};
use super::{StepContext, StepError};
use crate::workflow::steps::StopStep;

/// Stops the listed background replays (all when none are listed).
pub fn run(ctx: &StepContext, _id: &str, s: &StopStep) -> Result<String, StepError> {
    let ids: Vec<String> = s.replays.iter().map(|r| r.get_ref().clone()).collect();
    let stopped = stop_replays(ctx, &ids)?;
    Ok(if stopped.is_empty() {
        "no background replay was running".into()
    } else {
        format!("stopped {}", stopped.join("; "))
    })
}

/// Stops background replays, records each one's final summary in its step
/// and clears its `live` mark. One that failed is recorded as failed (the
/// next run replays it again from its committed position) and fails the
/// run; one stopped by Ctrl-C meanwhile keeps its mark to resume.
pub fn stop_replays(ctx: &StepContext, ids: &[String]) -> Result<Vec<String>, StepError> {
    let mut lines = Vec::new();
    let mut first_error = None;
    for Stopped { id, kind, result } in ctx.background.stop(ids) {
        match result {
            Ok(summary) => {
                let mut state = ctx.lock_state();
                let st = state.step_mut(&id, kind);
                st.live = false;
                st.summary = Some(format!(
                    "{}; stopped: {summary}",
                    st.summary.clone().unwrap_or_default()
                ));
                state.save()?;
                lines.push(format!("`{id}`: {summary}"));
            }
            Err(StepError::Interrupted) => {
                first_error.get_or_insert(StepError::Interrupted);
            }
            Err(e) => {
                let text = format!("background {kind} `{id}` failed: {e}");
                background::fail(ctx, &id, e);
                first_error.get_or_insert(StepError::Other(text));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(lines),
    }
}
