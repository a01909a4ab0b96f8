//! Hooks: `shell` steps marked `hook = true`, skipped in the step order
//! and run when a step names them: `on_cutover` of a `cutover` once reads
//! are on green, `on_rollback` of a `shift` once they are back on blue
//! (tell the team, page the on-call, scale the old cluster down). A hook
//! that fails is reported and logged; what it follows has happened anyway.

use toml::Spanned;

use super::checking::Checking;
use super::{Step, StepContext};
use crate::document::WorkflowError;

/// Checks that every name in `names` is an earlier `shell` step with
/// `hook = true`.
pub fn check(
    c: &Checking<'_>,
    names: &[Spanned<String>],
    setting: &str,
) -> Result<(), WorkflowError> {
    for name in names {
        let hook = c.earlier.iter().find(|s| s.id.get_ref() == name.get_ref());
        match hook {
            Some(s) if s.config.is_hook() => {}
            Some(_) => {
                return Err(c.at(
                    name.span(),
                    format!(
                        "`{setting}` names `{}`, which is not a hook: give that `shell` step `hook = true`",
                        name.get_ref()
                    ),
                ));
            }
            None => {
                return Err(c.at(
                    name.span(),
                    format!(
                        "`{setting}` names `{}`, which is no earlier step; declare the hook (a `shell` step with `hook = true`) before it",
                        name.get_ref()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Runs the hooks named in `names`, in order; one line for each, for the
/// summary of the step that ran them.
pub fn run(ctx: &StepContext, names: &[Spanned<String>], when: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for name in names {
        let Some(step) = ctx.steps.iter().find(|s| s.id.get_ref() == name.get_ref()) else {
            continue;
        };
        lines.push(run_one(ctx, step, when));
    }
    lines
}

fn run_one(ctx: &StepContext, step: &Step, when: &str) -> String {
    let id = step.id.get_ref();
    tracing::info!(hook = %id, "running the {when} hook");
    match step.config.run(ctx, id) {
        Ok(summary) => format!("hook `{id}`: {summary}"),
        Err(e) => {
            tracing::error!(hook = %id, "the {when} hook failed: {e}");
            format!("hook `{id}` failed: {e}")
        }
    }
}
