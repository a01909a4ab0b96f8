//! Pausing a step for an operator. A `shift` or `mirror` stage that ends
//! inconclusive, with `on_inconclusive = "pause"`, asks in the routing
//! state whether to count the stage as passed or to hold it again, and
//! waits: reads stay as they are (the router keeps serving) and the
//! step's gates keep being watched, so a green that starts failing
//! meanwhile is still sent back. The answer comes from the admin endpoint
//! (`POST /resume`) or from `runner resume FILE pass|again` in any shell.
//! A rollback, a cutover or a share set by hand meanwhile ends the wait
//! and the step stops; a run stopped while paused holds the stage again
//! when it resumes.
//!
//! Every write is made only over the state the step wrote itself (see
//! `RoutingFile::update_if`), so a pause never lands on top of an
//! operator's rollback, nor an answer undo one.

use std::time::Duration;

use super::shift::sleep;
use super::{StepContext, StepError};
use crate::router::routing::{MAX_QUESTION, MAX_TEXT};
use crate::router::{Answer, Mode, Paused, Routing, RoutingFile};

/// How often the routing file and the gates are looked at.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// How a pause ended.
pub enum Asked {
    /// The operator answered; the routing is at this generation, written
    /// by the step.
    Answered(Answer, u64),
    /// A gate failed while waiting: why.
    Failed(String),
}

/// Asks `question` on behalf of step `id` at `stage`, over the routing
/// the step wrote at generation `expected`, and waits for the answer;
/// `watch` says why the stage fails, if it does meanwhile.
pub fn ask(
    ctx: &StepContext,
    file: &RoutingFile,
    id: &str,
    stage: &str,
    question: &str,
    expected: u64,
    mut watch: impl FnMut() -> Option<String>,
) -> Result<Asked, StepError> {
    let asked = file
        .update_if(
            &format!("step `{id}` paused at stage {stage}"),
            expected,
            |r| {
                r.paused = Some(Paused {
                    step: id.to_string(),
                    question: crate::text::cut(question, MAX_QUESTION),
                    answer: None,
                });
                r.stage = crate::text::cut(&format!("{stage}, paused"), MAX_TEXT);
                Ok(())
            },
        )?
        .map_err(|now| changed(id, &now))?;
    tracing::warn!(
        step = %id,
        "paused at stage {stage}: {question}; reads stay as they are. Answer `runner resume {} pass` (count the stage as passed) or `again` (hold it again), or POST /resume to the admin endpoint; `runner rollback` sends every read to blue",
        ctx.setup.file.display()
    );
    loop {
        sleep(ctx, LOOK_EVERY)?;
        if let Some(why) = watch() {
            file.clear_pause(id)?;
            return Ok(Asked::Failed(why));
        }
        let now = file.read()?;
        if now.mode != asked.mode || now.green_share != asked.green_share {
            // A rollback ended the pause itself; a share set by hand did not.
            file.clear_pause(id)?;
            return Err(changed(id, &now));
        }
        let answer = match &now.paused {
            Some(p) if p.step == id => p.answer,
            _ => {
                return Err(StepError::Gate(format!(
                    "the pause of step `{id}` was cleared by someone else ({}); the step stops",
                    crate::text::foreign(&now.reason)
                )));
            }
        };
        let Some(answer) = answer else { continue };
        let cleared = file.update_if(
            &format!("step `{id}` answered `{}`", answer.name()),
            now.generation,
            |r| {
                r.paused = None;
                r.stage = stage.to_string();
                Ok(())
            },
        )?;
        // Changed since it was read: look again.
        if let Ok(written) = cleared {
            tracing::info!(step = %id, "answered `{}`", answer.name());
            return Ok(Asked::Answered(answer, written.generation));
        }
    }
}

fn changed(id: &str, now: &Routing) -> StepError {
    let what = match now.mode {
        Mode::AllBlue => "rolled back",
        Mode::AllGreen => "cut over",
        Mode::Shift => "changed",
    };
    StepError::Gate(format!(
        "the routing was {what} while step `{id}` was pausing ({}); the step stops",
        crate::text::foreign(&now.reason)
    ))
}
