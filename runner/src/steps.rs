//! The step kinds. Each file holds one kind; all run on the calling
//! thread (replay starts its own pipeline threads) and report one summary
//! line, which the engine saves with the step's state.
//!
//! - `shell`: a command with a timeout, its output in the log.
//! - `restore`: load green from blue as of a point, or run a restore command.
//! - `replay`: source → transform plugin → store, committing after acknowledgement.
//! - `compare`: merge-join of blue and green as of a watermark, with a gate.
//! - `stop`: stop background replays.
//! - `cutover`: stop background replays and record the switch.
//!
//! Beside them, `plugins` loads each plugin once and shares it between
//! steps; `background` holds what a step leaves running (a replay syncing
//! until cutover); `current` makes `compare` and `cutover` wait for the
//! background replays that keep the stores they read current.

pub mod background;
pub mod compare;
pub mod current;
pub mod cutover;
pub mod plugins;
pub mod replay;
pub mod restore;
pub mod shell;
pub mod stop;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::cancel::Cancel;
use crate::plugin::{LoadError, PluginFailure};
use crate::source::SourceError;
use crate::state::{StateError, StateFile};
use crate::store::{Store, StoreError};
use crate::workflow::{Step, StepKind, Workflow};
use background::{BackgroundTask, BackgroundTasks};
use plugins::PluginRegistry;

/// What every step gets.
#[derive(Clone)]
pub struct StepContext {
    /// The workflow.
    pub workflow: Arc<Workflow>,
    /// The state folder.
    pub state: Arc<Mutex<StateFile>>,
    /// The plugins, loaded on first use.
    pub plugins: Arc<PluginRegistry>,
    /// The stop signal.
    pub cancel: Cancel,
    /// Show progress bars.
    pub progress: bool,
    /// What steps left running in the background.
    pub background: BackgroundTasks,
}

impl StepContext {
    /// The state, locked.
    pub fn lock_state(&self) -> MutexGuard<'_, StateFile> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists files a step is about to create as the runner's own (those in
    /// the state folder are what `--fresh` may remove).
    pub fn own(&self, paths: &[PathBuf]) -> Result<(), StepError> {
        Ok(self.lock_state().own(paths)?)
    }

    /// Opens the store `name`, after listing the files it may create.
    pub fn store(&self, name: &str) -> Result<Box<dyn Store>, StepError> {
        if let Some(config) = self.workflow.store(name) {
            self.own(&config.files(&self.workflow.home()))?;
        }
        Ok(self.workflow.open_store(name)?)
    }

    /// Runs `command` for a step; what it leaves in the state folder is
    /// listed as the runner's.
    pub fn run_command<T>(
        &self,
        command: impl FnOnce() -> Result<T, StepError>,
    ) -> Result<T, StepError> {
        self.lock_state().command_starts()?;
        let result = command();
        self.lock_state().command_ended()?;
        result
    }
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A plugin could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The sandbox stopped a plugin.
    #[error(transparent)]
    Plugin(PluginFailure),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The state folder failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// An input was refused and the policy is to fail.
    #[error("{0}")]
    Refused(String),
    /// A gate did not pass (too many mismatches).
    #[error("{0}")]
    Gate(String),
    /// A command failed or timed out.
    #[error("{0}")]
    Command(String),
    /// Stopped by Ctrl-C; progress was saved.
    #[error("interrupted; progress is saved and `runner exec` resumes from here")]
    Interrupted,
    /// Something else, explained.
    #[error("{0}")]
    Other(String),
}

impl From<PluginFailure> for StepError {
    /// A plugin call stopped because the runner is stopping is an
    /// interruption like any other, not the plugin's failure.
    fn from(failure: PluginFailure) -> Self {
        match failure {
            PluginFailure::Interrupted { .. } => StepError::Interrupted,
            other => StepError::Plugin(other),
        }
    }
}

/// Runs one step; returns its summary line. A step that reads stores
/// first waits until the background replays into them are caught up.
pub fn run(ctx: &StepContext, step: &Step) -> Result<String, StepError> {
    current::require(ctx, step)?;
    let id = step.id.get_ref();
    match &step.kind {
        StepKind::Shell(s) => shell::run(ctx, id, s),
        StepKind::Restore(r) => restore::run(ctx, id, r),
        StepKind::Replay(r) => replay::run(ctx, id, r),
        StepKind::Compare(c) => compare::run(ctx, id, c),
        StepKind::Cutover(c) => cutover::run(ctx, id, c),
        StepKind::Stop(s) => stop::run(ctx, id, s),
    }
}

/// Starts again what `step` left running in the background when the last
/// run ended (a replay syncing until cutover resumes from its committed
/// position); `None` for a kind that leaves nothing running.
pub fn restart(ctx: &StepContext, step: &Step) -> Option<Box<dyn BackgroundTask>> {
    match &step.kind {
        StepKind::Replay(r) => Some(Box::new(replay::spawn(ctx, step.id.get_ref(), r))),
        _ => None,
    }
}
