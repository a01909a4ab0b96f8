//! `stop`: stops background replays (`until = "cutover"`) before the
//! cutover, for workflows that evaluate green with the log frozen. Each
//! finishes what it has in flight, commits, and records its final summary.

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
/// and clears its `live` mark; fails with the first replay that failed.
pub fn stop_replays(ctx: &StepContext, ids: &[String]) -> Result<Vec<String>, StepError> {
    let mut lines = Vec::new();
    let mut first_error = None;
    for (id, result) in ctx.background.stop(ids) {
        let mut state = ctx.lock_state();
        let st = state.step_mut(&id, "replay");
        st.live = false;
        match result {
            Ok(summary) => {
                lines.push(format!("`{id}`: {summary}"));
                st.summary = Some(format!(
                    "{}; stopped: {summary}",
                    st.summary.clone().unwrap_or_default()
                ));
            }
            Err(e) => {
                st.error = Some(e.to_string());
                first_error.get_or_insert(StepError::Other(format!(
                    "background replay `{id}` failed: {e}"
                )));
            }
        }
        state.save()?;
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(lines),
    }
}
