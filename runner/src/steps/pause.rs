//! Pausing a step for an operator. A `shift` or `mirror` stage that ends
//! inconclusive, with `on_inconclusive = "pause"`, asks in the routing
//! state whether to count the stage as passed or to hold it again, and
//! waits: reads stay as they are (the router keeps serving). The answer
//! comes from the admin endpoint (`POST /resume`) or from
//! `runner resume FILE pass|again` in any shell. A rollback, a cutover or
//! a share set by hand meanwhile ends the wait and the step stops; a run
//! stopped while paused holds the stage again when it resumes.

use std::time::Duration;

use super::shift::sleep;
use super::{StepContext, StepError};
use crate::router::routing::MAX_QUESTION;
use crate::router::{Answer, Paused, RoutingFile};

/// How often the routing file is looked at for the answer.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// Asks `question` on behalf of step `id` at `stage` and waits for the
/// answer.
pub fn ask(
    ctx: &StepContext,
    file: &RoutingFile,
    id: &str,
    stage: &str,
    question: &str,
) -> Result<Answer, StepError> {
    let asked = file.update(&format!("step `{id}` paused at stage {stage}"), |r| {
        r.paused = Some(Paused {
            step: id.to_string(),
            question: crate::text::bounded(question, MAX_QUESTION),
            answer: None,
        });
        r.stage = format!("{stage}, paused");
        Ok(())
    })?;
    tracing::warn!(
        step = %id,
        "paused at stage {stage}: {question}; reads stay as they are. Answer `runner resume {} pass` (count the stage as passed) or `again` (hold it again), or POST /resume to the admin endpoint; `runner rollback` sends every read to blue",
        ctx.setup.file.display()
    );
    loop {
        sleep(ctx, LOOK_EVERY)?;
        let now = file.read()?;
        if now.mode != asked.mode || now.green_share != asked.green_share {
            let reason = format!("{}; step `{id}` no longer paused", now.reason);
            clear(file, id, &reason, None)?;
            return Err(StepError::Gate(format!(
                "the routing changed while step `{id}` was paused ({}); the step stops",
                now.reason
            )));
        }
        match &now.paused {
            Some(p) if p.step == id => {
                if let Some(answer) = p.answer {
                    let reason = format!("step `{id}` answered `{}`", answer.name());
                    clear(file, id, &reason, Some(stage))?;
                    tracing::info!(step = %id, "answered `{}`", answer.name());
                    return Ok(answer);
                }
            }
            _ => {
                return Err(StepError::Gate(format!(
                    "the pause of step `{id}` was cleared by someone else ({}); the step stops",
                    now.reason
                )));
            }
        }
    }
}

/// Takes step `id`'s pause out of the routing state for `reason` (and,
/// given the stage, names the stage without "paused").
fn clear(file: &RoutingFile, id: &str, reason: &str, stage: Option<&str>) -> Result<(), StepError> {
    file.update(reason, |r| {
        if r.paused.as_ref().is_some_and(|p| p.step == id) {
            r.paused = None;
            if let Some(stage) = stage {
                r.stage = stage.to_string();
            }
        }
        Ok(())
    })?;
    Ok(())
}
