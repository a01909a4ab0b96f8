//! The step loop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::preflight;
use super::watch::Watch;
use crate::cancel::Cancel;
use crate::state::{Owner, StateError, StateFile, Status, now_ms};
use crate::steps::background::{self, BackgroundTasks, Stopped};
use crate::steps::plugins::PluginRegistry;
use crate::steps::{self, StepContext, StepError};
use crate::text::{STEP_TEXT_LIMIT, bounded};
use crate::workflow::Workflow;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Forget the saved state (and the stores kept in the state folder) first.
    pub fresh: bool,
    /// The stop signal.
    pub cancel: Cancel,
    /// Show progress bars (when stderr is a terminal).
    pub progress: bool,
    /// Run this step and every later one again, even if done (earlier
    /// steps that are done stay done).
    pub from: Option<String>,
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
    /// The command line asked for something the workflow does not have.
    #[error("{0}")]
    Usage(String),
    /// The preflight found problems; nothing was started.
    #[error("preflight: {}; nothing was started or written", .0.join("; "))]
    Preflight(Vec<String>),
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
            .map(|s| (s.id.get_ref().clone(), s.kind().to_string()))
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
    for step in workflow.steps.iter() {
        if let Some(saved) = state.data.steps.get(step.id.get_ref()) {
            step.config.saved(saved)?;
        }
    }
    if let Some(from) = &options.from {
        redo_from(&workflow, &mut state, from)?;
    }
    if workflow.all_done(&state.data) {
        return Ok(ExecResult::AlreadyComplete {
            finished_at_ms: state.data.finished_at_ms,
        });
    }
    if !state.data.fingerprint.is_empty() && state.data.fingerprint != workflow.fingerprint {
        tracing::warn!(
            "the workflow changed since its last run; finished steps are not run again (use `--fresh` to start over)"
        );
    }
    state.data.fingerprint = workflow.fingerprint.clone();
    state.save()?;

    let workflow = Arc::new(workflow);
    let ctx = StepContext {
        setup: workflow.setup.clone(),
        steps: workflow.steps.clone(),
        state: Arc::new(Mutex::new(state)),
        plugins: Arc::new(PluginRegistry::new(options.cancel.clone())),
        cancel: options.cancel.clone(),
        progress: options.progress,
        background: BackgroundTasks::default(),
    };
    // What the steps still to run (and the replays to resume) use is
    // checked before anything starts.
    let pending: Vec<&crate::steps::Step> = workflow
        .steps
        .iter()
        .filter(|s| {
            ctx.lock_state()
                .data
                .steps
                .get(s.id.get_ref())
                .is_none_or(|st| st.status != Status::Done || st.syncing())
        })
        .collect();
    match preflight::check(&workflow, &ctx.plugins, &pending) {
        Ok(lines) => {
            for line in lines {
                tracing::info!("preflight: {line}");
            }
        }
        Err(problems) => return Err(EngineError::Preflight(problems)),
    }
    let watch = Watch::start(&ctx);
    let result = run_steps(&workflow, &ctx, started);
    watch.stop();
    // A background task that failed is why the run stopped, whatever the
    // foreground step said when it was stopped for it.
    let background_failed = |ctx: &StepContext| {
        ctx.background
            .take_failure()
            .map(|(id, kind, source)| EngineError::Step {
                id,
                kind,
                source: Box::new(source),
            })
    };
    let mut report = match result {
        Ok(report) => report,
        Err(e) => {
            // The background tasks stop for now, committing what they
            // have, and stay marked to resume on the next run.
            pause_background(&ctx);
            return Err(background_failed(&ctx).unwrap_or(e));
        }
    };
    if let Some(e) = background_failed(&ctx) {
        pause_background(&ctx);
        return Err(e);
    }
    // The workflow is done: whatever still runs in the background (a
    // workflow without `cutover`) stops for good.
    let kind = background_kind(&ctx);
    match background::stop_and_record(&ctx, &[]) {
        Ok(lines) => {
            for line in lines {
                tracing::info!("stopped in the background: {line}");
            }
        }
        Err(source) => {
            return Err(background_failed(&ctx).unwrap_or(EngineError::Step {
                id: "background".into(),
                kind,
                source: Box::new(source),
            }));
        }
    }
    let mut sf = ctx.lock_state();
    sf.data.finished_at_ms = Some(now_ms());
    sf.save()?;
    report.elapsed = started.elapsed();
    Ok(ExecResult::Completed(report))
}

/// Forgets what `from` and every later step did, so they run again: a
/// restore records a new restore point, a replay starts over (a Kafka
/// source still goes on from its group's committed offsets), a cutover is
/// undone in the state. Earlier steps keep what they did.
fn redo_from(workflow: &Workflow, state: &mut StateFile, from: &str) -> Result<(), EngineError> {
    let Some(at) = workflow.steps.iter().position(|s| s.id.get_ref() == from) else {
        let ids: Vec<&str> = workflow
            .steps
            .iter()
            .map(|s| s.id.get_ref().as_str())
            .collect();
        return Err(EngineError::Usage(format!(
            "`--from {shown}`: the workflow has no step `{shown}`; its steps are {}",
            crate::text::quoted(&ids),
            shown = crate::text::foreign(from)
        )));
    };
    for step in &workflow.steps[at..] {
        state.data.steps.remove(step.id.get_ref());
        step.config.forget(&mut state.data);
    }
    // Background tasks before `from` that a redone `cutover` (or the
    // workflow's end) stopped run again; those a `stop` before `from`
    // stopped stay stopped.
    let mut resume: Vec<&steps::Step> = Vec::new();
    for step in &workflow.steps[..at] {
        resume.retain(|s| !step.config.stops(s));
        if step.config.leaves_running() {
            resume.push(step);
        }
    }
    for id in resume.iter().map(|s| s.id.get_ref()) {
        if let Some(st) = state.data.steps.get_mut(id)
            && st.status == Status::Done
        {
            st.background = true;
        }
    }
    state.data.finished_at_ms = None;
    tracing::info!("running `{from}` and every later step again");
    Ok(state.save()?)
}

/// Stops the background tasks of an unfinished run: each commits what it
/// has and keeps its background mark, so the next run starts it again; one
/// that failed is recorded as failed.
fn pause_background(ctx: &StepContext) {
    for Stopped { id, kind, result } in ctx.background.stop(&[]) {
        match result {
            Ok(summary) => tracing::info!(step = %id, "background {kind} paused: {summary}"),
            Err(StepError::Interrupted) => {
                tracing::info!(step = %id, "background {kind} paused")
            }
            Err(e) => background::fail(ctx, &id, e),
        }
    }
}

/// Starts again what the last run left running in the background,
/// whatever ended it (a failed step, Ctrl-C, a kill): each task resumes
/// from its committed position before any later step runs.
fn restart_background(workflow: &Workflow, ctx: &StepContext) {
    for step in workflow.steps.iter() {
        let id = step.id.get_ref();
        let kind = step.kind();
        if !ctx.lock_state().data.syncing(id) {
            continue;
        }
        if let Some(task) = step.config.restart(ctx, id) {
            tracing::info!(step = %id, "resuming the background {kind} from its committed position");
            ctx.background.add(id, kind, task);
        }
    }
}

/// The kind of the first step still running in the background, for a
/// failure that belongs to none of them in particular.
fn background_kind(ctx: &StepContext) -> &'static str {
    let state = ctx.lock_state();
    ctx.steps
        .iter()
        .find(|s| state.data.syncing(s.id.get_ref()))
        .map_or("background", |s| s.kind())
}

/// A background task that failed stops the run.
fn check_background(ctx: &StepContext) -> Result<(), EngineError> {
    if ctx.background.has_failed() {
        // `exec` puts the task's own error in place of this one.
        return Err(EngineError::Step {
            id: "background".into(),
            kind: background_kind(ctx),
            source: Box::new(StepError::Interrupted),
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
    for step in workflow.steps.iter() {
        check_background(ctx)?;
        // Hooks run when a step names them, not in order.
        if step.config.is_hook() {
            continue;
        }
        let id = step.id.get_ref().clone();
        let kind = step.kind();
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
        // Asked before the state's lock is taken: the watch takes the
        // background list's lock, then the state's.
        let left_running = ctx.background.runs(&id);
        let mut sf = ctx.lock_state();
        let st = sf.step_mut(&id, kind);
        st.finished_at_ms = Some(now_ms());
        match result {
            // The step's own task failed in the background right after it
            // returned: the watch recorded it, and the run stops.
            Ok(_) if st.status == Status::Failed => {
                drop(sf);
                check_background(ctx)?;
                return Err(EngineError::Step {
                    id,
                    kind,
                    source: Box::new(StepError::Background(
                        "failed in the background right after it started".into(),
                    )),
                });
            }
            Ok(summary) => {
                let summary = bounded(&summary, STEP_TEXT_LIMIT);
                st.status = Status::Done;
                // What it left running starts again when a later run
                // resumes, whatever ends this one.
                if left_running {
                    st.background = true;
                }
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
