//! What keeps running after its step returned: today a replay that keeps
//! green in sync until cutover; next a routing proxy during a ramp. Each
//! is a [`BackgroundTask`] on its own thread with its own stop signal; the
//! engine holds them in [`BackgroundTasks`] without knowing their kind.
//!
//! They belong to the workflow, not to one process: the state marks each
//! step whose task keeps running (`background`) until a `stop` or `cutover` step
//! stops it, and every run of an unfinished workflow starts them again
//! (see `engine::run`). While they run, the engine's watch looks at them a
//! few times a second: a task that ends by itself failed, and one that
//! says it must fail (a stalled replay) is stopped; either fails the run
//! at once (see [`fail`]).

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{StepContext, StepError};
use crate::cancel::Signal;
use crate::state::{StateFile, Status, now_ms};
use crate::text::{STEP_TEXT_LIMIT, bounded};

/// How long a stopped task may take to finish what it has in flight
/// before the runner goes on without it (its last commit stands).
const FINISH_LIMIT: Duration = Duration::from_secs(60);

/// Something a step left running.
pub trait BackgroundTask: Send {
    /// Asks it to stop; it finishes what it has in flight.
    fn stop(&self);
    /// Whether its thread has ended.
    fn finished(&self) -> bool;
    /// Waits for its thread: its final summary, or why it failed (a
    /// panic included).
    fn join(self: Box<Self>) -> Result<String, StepError>;
    /// One look while it runs (a few times a second): why it must fail
    /// now, if it must.
    fn look(&mut self, now: Instant) -> Option<String>;
    /// Whether what it keeps current can be relied on now.
    fn freshness(&self) -> Freshness;
    /// Writes its figures as they are now into its step's state.
    fn status(&self, state: &mut crate::state::StepState);
    /// What it shares with later steps while it runs (the router's
    /// counts, which a `shift` step judges), found by type through
    /// [`BackgroundTasks::shared`].
    fn shared(&self) -> Option<Arc<dyn Any + Send + Sync>> {
        None
    }
}

/// Whether a background task can be relied on now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Not running in this process.
    NotRunning,
    /// Running, not within its gate: this far behind, and the gate
    /// (at most `max_lag` behind for `hold`).
    Behind {
        /// Messages behind, when known.
        lag: Option<u64>,
        /// The gate's lag.
        max_lag: u64,
        /// How long the gate must hold.
        hold: Duration,
    },
    /// Running and within its gate.
    CaughtUp,
}

/// A task and the step it belongs to.
struct Running {
    id: String,
    kind: &'static str,
    task: Box<dyn BackgroundTask>,
}

impl Running {
    fn finish(self) -> Stopped {
        Stopped {
            id: self.id,
            kind: self.kind,
            result: finish(self.task),
        }
    }
}

/// A task stopped, and how it ended.
pub struct Stopped {
    /// Its step's id.
    pub id: String,
    /// Its step's kind.
    pub kind: &'static str,
    /// Its final summary, or why it failed.
    pub result: Result<String, StepError>,
}

/// Stops `task` and waits (boundedly) until it committed what it had.
pub fn finish(task: Box<dyn BackgroundTask>) -> Result<String, StepError> {
    task.stop();
    let deadline = Instant::now() + FINISH_LIMIT;
    while !task.finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if !task.finished() {
        return Err(StepError::Background(format!(
            "did not stop within {}; its last commit stands and the next run resumes from there",
            humantime::format_duration(FINISH_LIMIT)
        )));
    }
    task.join()
}

#[derive(Default)]
struct Inner {
    list: Vec<Running>,
    /// The first failure, kept for the run's error: step id and kind.
    failure: Option<(String, &'static str, StepError)>,
}

/// The background tasks of one run.
#[derive(Default, Clone)]
pub struct BackgroundTasks(Arc<Mutex<Inner>>);

impl BackgroundTasks {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds the task of step `id` (of `kind`).
    pub fn add(&self, id: &str, kind: &'static str, task: Box<dyn BackgroundTask>) {
        self.inner().list.push(Running {
            id: id.to_string(),
            kind,
            task,
        });
    }

    /// One look at every task (see `engine::watch`): takes out the ones
    /// that ended by themselves, stops those that must fail, and returns
    /// each with its error. `interrupted` says whether the run is
    /// stopping, in which case an ended task is not a failure.
    pub fn look(&self, interrupted: bool) -> Vec<(String, StepError)> {
        let now = Instant::now();
        let mut inner = self.inner();
        let mut failed = Vec::new();
        let mut keep = Vec::new();
        for mut running in inner.list.drain(..) {
            if running.task.finished() {
                let Stopped { id, result, .. } = running.finish();
                let error = match result {
                    Err(StepError::Interrupted) if interrupted => continue,
                    Err(e) => e,
                    Ok(_) if interrupted => continue,
                    Ok(summary) => {
                        StepError::Background(format!("stopped unexpectedly after {summary}"))
                    }
                };
                failed.push((id, error));
            } else if let Some(why) = running.task.look(now) {
                failed.push((running.id.clone(), StepError::Background(why)));
                // Asked to stop; it commits what it has.
                running.task.stop();
                keep.push(running);
            } else {
                keep.push(running);
            }
        }
        inner.list = keep;
        failed
    }

    /// Records the first failure of the run.
    fn failed(&self, id: &str, kind: &'static str, error: StepError) {
        self.inner()
            .failure
            .get_or_insert((id.to_string(), kind, error));
    }

    /// The run's first background failure, if any, taken out: the step's
    /// id, its kind and why.
    pub fn take_failure(&self) -> Option<(String, &'static str, StepError)> {
        self.inner().failure.take()
    }

    /// The step whose task's failure stopped the run, if one did.
    pub fn failed_id(&self) -> Option<String> {
        self.inner().failure.as_ref().map(|(id, ..)| id.clone())
    }

    /// Whether the task of step `id` runs in this process.
    pub fn runs(&self, id: &str) -> bool {
        self.inner().list.iter().any(|r| r.id == id)
    }

    /// Whether a background task failed in this run.
    pub fn has_failed(&self) -> bool {
        self.inner().failure.is_some()
    }

    /// Whether the task of step `id` runs and is within its gate.
    pub fn freshness(&self, id: &str) -> Freshness {
        self.inner()
            .list
            .iter()
            .find(|r| r.id == id)
            .map_or(Freshness::NotRunning, |r| r.task.freshness())
    }

    /// What the first running task that shares a `T` shares.
    pub fn shared<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.inner()
            .list
            .iter()
            .filter_map(|r| r.task.shared())
            .find_map(|s| s.downcast::<T>().ok())
    }

    /// Writes every running task's figures into the state (unsaved). The
    /// list is locked before the state, never the other way round.
    pub fn status(&self, state: &Mutex<StateFile>) {
        let inner = self.inner();
        let mut sf = state.lock().unwrap_or_else(|p| p.into_inner());
        for r in inner.list.iter() {
            r.task.status(sf.step_mut(&r.id, r.kind));
        }
    }

    /// Stops the tasks of the given steps (all when `ids` is empty) and
    /// waits for them.
    pub fn stop(&self, ids: &[String]) -> Vec<Stopped> {
        let mut inner = self.inner();
        let (chosen, rest): (Vec<_>, Vec<_>) = inner
            .list
            .drain(..)
            .partition(|r| ids.is_empty() || ids.contains(&r.id));
        inner.list = rest;
        drop(inner);
        // The last started first: traffic before the router it goes
        // through, the router before the read-apis behind it.
        chosen.into_iter().rev().map(Running::finish).collect()
    }
}

/// A background task failed: said at once, recorded in its step, and the
/// run stops. Its first error is the one kept (stopping a stalled replay
/// may fail too, and must not hide why it stalled).
pub fn fail(ctx: &StepContext, id: &str, error: StepError) {
    let kind = ctx
        .steps
        .iter()
        .find(|s| s.id.get_ref() == id)
        .map_or("background", |s| s.kind());
    if ctx.background.failed_id().as_deref() == Some(id) {
        tracing::warn!(step = %id, "background {kind}, after it failed: {error}");
        return;
    }
    tracing::error!(step = %id, "background {kind} failed: {error}");
    {
        let mut sf = ctx.lock_state();
        let st = sf.step_mut(id, kind);
        st.status = Status::Failed;
        st.background = false;
        st.finished_at_ms = Some(now_ms());
        st.error = Some(bounded(&error.to_string(), STEP_TEXT_LIMIT));
        if let Err(e) = sf.save() {
            tracing::error!("cannot record the failure in the state folder: {e}");
        }
    }
    ctx.background.failed(id, kind, error);
    ctx.cancel.signal(Signal::Failed);
}

/// The steps whose background task keeps a store current (replays until
/// cutover), as opposed to one that serves (the router).
pub fn replays(ctx: &StepContext) -> Vec<String> {
    ctx.steps
        .iter()
        .filter(|s| s.config.keeps_current().is_some())
        .map(|s| s.id.get_ref().clone())
        .collect()
}

/// Stops the tasks steps left running (those of steps `ids`, or all),
/// records each one's final summary in its step and clears its background
/// mark. One that failed is recorded as failed (the next run starts its
/// step again, a replay from its committed position) and fails the run;
/// one stopped by Ctrl-C meanwhile keeps its mark to resume.
pub fn stop_and_record(ctx: &StepContext, ids: &[String]) -> Result<Vec<String>, StepError> {
    let mut lines = Vec::new();
    let mut first_error = None;
    for Stopped { id, kind, result } in ctx.background.stop(ids) {
        match result {
            Ok(summary) => {
                let mut state = ctx.lock_state();
                let st = state.step_mut(&id, kind);
                st.background = false;
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
                fail(ctx, &id, e);
                first_error.get_or_insert(StepError::Background(text));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(lines),
    }
}
