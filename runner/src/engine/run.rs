//! The step loop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::background::BackgroundReplays;
use super::plugins::PluginRegistry;
use super::state::{Owner, StateError, StateFile, Status, now_ms};
use crate::cancel::Cancel;
use crate::steps::{self, StepContext, StepError};
use crate::text::{STEP_TEXT_LIMIT, bounded};
use crate::workflow::{StepKind, Workflow};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Forget the saved state (and the stores kept in the state folder) first.
    pub fresh: bool,
    /// The stop signal.
    pub cancel: Cancel,
    /// Show progress bars (when stderr is a terminal).
    pub progress: bool,
}

/// What one step did in this run.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Step id.
    pub id: String,
    /// Step kind.
    pub kind: &'static str,
    /// Ran now, or was already done.
    pub ran: bool,
    /// Time it took now.
    pub elapsed: Duration,
    /// What it did.
    pub summary: String,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The workflow's name.
    pub workflow: String,
    /// Every step, in order.
    pub steps: Vec<StepReport>,
    /// Wall time of this run.
    pub elapsed: Duration,
}

/// The outcome of `exec`.
#[derive(Debug)]
pub enum ExecResult {
    /// Steps ran and all are done.
    Completed(RunReport),
    /// Every step was already done; nothing ran.
    AlreadyComplete {
        /// When the workflow finished (ms since the epoch).
        finished_at_ms: Option<u64>,
    },
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state folder cannot be used.
    #[error(transparent)]
    State(#[from] StateError),
    /// A step failed.
    #[error("step `{id}` ({kind}) failed: {source}")]
    Step {
        /// Step id.
        id: String,
        /// Step kind.
        kind: &'static str,
        /// Why.
        source: Box<StepError>,
    },
}

/// Runs (or resumes) a workflow.
pub fn exec(workflow: Workflow, options: &ExecOptions) -> Result<ExecResult, EngineError> {
    let started = Instant::now();
    let owner = Owner {
        workflow: workflow.name.clone(),
        steps: workflow
            .steps
            .iter()
            .map(|s| (s.id.get_ref().clone(), s.kind.name().to_string()))
            .collect(),
    };
    let mut state = StateFile::open(&workflow.state_dir, &owner)?;
    if options.fresh {
        // Under the lock, so a running runner's state is never removed.
        state.clear(&owner)?;
    } else if let Some(why) = state.other_steps(&owner) {
        return Err(StateError::NotOurs {
            path: workflow.state_dir.clone(),
            why: format!(
                "holds the state of another version of `{}`: {why}; run with `--fresh` to start over, or give it a new `--state` folder",
                workflow.name
            ),
        }
        .into());
    }
    let all_done = !workflow.steps.is_empty()
        && workflow.steps.iter().all(|s| {
            state
                .state
                .steps
                .get(s.id.get_ref())
                .is_some_and(|st| st.status == Status::Done)
        });
    if all_done {
        return Ok(ExecResult::AlreadyComplete {
            finished_at_ms: state.state.finished_at_ms,
        });
    }
    if !state.state.fingerprint.is_empty() && state.state.fingerprint != workflow.fingerprint {
        tracing::warn!(
            "the workflow changed since its last run; finished steps are not run again (use `--fresh` to start over)"
        );
    }
    state.state.fingerprint = workflow.fingerprint.clone();
    state.save()?;

    let workflow = Arc::new(workflow);
    let ctx = StepContext {
        workflow: workflow.clone(),
        state: Arc::new(Mutex::new(state)),
        plugins: Arc::new(PluginRegistry::new(options.cancel.clone())),
        cancel: options.cancel.clone(),
        progress: options.progress,
        background: BackgroundReplays::default(),
    };
    let result = run_steps(&workflow, &ctx, started);
    // Whatever still syncs in the background stops now, committing what the
    // store acknowledged: at the end of the workflow, on a failure, on Ctrl-C.
    let stopped = steps::stop::stop_replays(&ctx, &[]);
    let mut report = result?;
    let lines = stopped.map_err(|source| EngineError::Step {
        id: "background".into(),
        kind: "replay",
        source: Box::new(source),
    })?;
    for line in lines {
        tracing::info!("background replay {line}");
    }
    let mut sf = ctx.lock_state();
    sf.state.finished_at_ms = Some(now_ms());
    sf.save()?;
    report.elapsed = started.elapsed();
    Ok(ExecResult::Completed(report))
}

/// Starts again the background replays a killed run left syncing.
fn restart_background(workflow: &Workflow, ctx: &StepContext) {
    for step in &workflow.steps {
        let StepKind::Replay(r) = &step.kind else {
            continue;
        };
        let id = step.id.get_ref();
        let live = ctx
            .lock_state()
            .state
            .steps
            .get(id)
            .is_some_and(|st| st.status == Status::Done && st.live);
        if live {
            tracing::info!(step = %id, "resuming the background replay");
            ctx.background.add(steps::replay::spawn(ctx, id, r));
        }
    }
}

/// A background replay that ended by itself failed the run.
fn check_background(ctx: &StepContext) -> Result<(), EngineError> {
    // Every ended replay is taken out; the first one fails the run.
    if let Some((id, result)) = ctx.background.ended().into_iter().next() {
        let error = match result {
            Err(e) => e,
            Ok(_) if ctx.cancel.is_cancelled() => StepError::Interrupted,
            Ok(summary) => StepError::Other(format!("stopped unexpectedly after {summary}")),
        };
        let mut sf = ctx.lock_state();
        let st = sf.step_mut(&id, "replay");
        st.error = Some(bounded(&error.to_string(), STEP_TEXT_LIMIT));
        if let Err(e) = sf.save() {
            tracing::error!("cannot record the failure in the state folder: {e}");
        }
        return Err(EngineError::Step {
            id,
            kind: "replay",
            source: Box::new(error),
        });
    }
    Ok(())
}

/// The step loop.
fn run_steps(
    workflow: &Workflow,
    ctx: &StepContext,
    started: Instant,
) -> Result<RunReport, EngineError> {
    restart_background(workflow, ctx);
    let mut reports = Vec::new();
    for step in &workflow.steps {
        check_background(ctx)?;
        let id = step.id.get_ref().clone();
        let kind = step.kind.name();
        {
            let mut sf = ctx.lock_state();
            let st = sf.step_mut(&id, kind);
            if st.status == Status::Done {
                reports.push(StepReport {
                    id,
                    kind,
                    ran: false,
                    elapsed: Duration::ZERO,
                    summary: st.summary.clone().unwrap_or_default(),
                });
                continue;
            }
            st.status = Status::Running;
            st.attempts += 1;
            st.started_at_ms = now_ms();
            st.error = None;
            sf.save()?;
        }
        let span = tracing::info_span!("step", id = %id, kind);
        let _enter = span.enter();
        tracing::info!("starting");
        let step_started = Instant::now();
        let result = steps::run(ctx, step);
        let mut sf = ctx.lock_state();
        let st = sf.step_mut(&id, kind);
        st.finished_at_ms = Some(now_ms());
        match result {
            Ok(summary) => {
                let summary = bounded(&summary, STEP_TEXT_LIMIT);
                st.status = Status::Done;
                st.summary = Some(summary.clone());
                sf.save()?;
                tracing::info!("done: {summary}");
                reports.push(StepReport {
                    id,
                    kind,
                    ran: true,
                    elapsed: step_started.elapsed(),
                    summary,
                });
            }
            Err(source) => {
                // Asked to stop, a step that then fails (a source cut off,
                // a store call given up) was interrupted.
                let source = match source {
                    StepError::Interrupted => source,
                    other if ctx.cancel.is_cancelled() => {
                        tracing::warn!("after the stop was asked for: {other}");
                        StepError::Interrupted
                    }
                    other => other,
                };
                st.status = match source {
                    StepError::Interrupted => Status::Interrupted,
                    _ => Status::Failed,
                };
                st.error = Some(bounded(&source.to_string(), STEP_TEXT_LIMIT));
                if let Err(e) = sf.save() {
                    // The step's own error matters more; the next run redoes the step anyway.
                    tracing::error!("cannot record the failure in the state folder: {e}");
                }
                return Err(EngineError::Step {
                    id,
                    kind,
                    source: Box::new(source),
                });
            }
        }
    }
    check_background(ctx)?;
    Ok(RunReport {
        workflow: workflow.name.clone(),
        steps: reports,
        elapsed: started.elapsed(),
    })
}
