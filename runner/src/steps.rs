//! The step kinds. Each file (or folder) holds one kind: its settings and
//! how it runs, behind [`StepConfig`], registered in [`KINDS`]. All run on
//! the calling thread (replay starts its own pipeline threads) and report
//! one summary line, which the engine saves with the step's state.
//!
//! - `shell`: a command with a timeout, its output in the log.
//! - `restore`: load green from blue as of a point, or run a restore command.
//! - `replay`: source → transform plugin → store, committing after acknowledgement.
//! - `compare`: merge-join of blue and green as of a watermark, with a gate.
//! - `serve`: serve a store as an example read-api, left running.
//! - `route`: start the router in front of the read-apis, left running.
//! - `traffic`: send a recorded request log through the router.
//! - `mirror`: mirror reads and judge the answers' mismatches.
//! - `shift`: move reads to green in stages, with gates and rollback.
//! - `stop`: stop background replays.
//! - `cutover`: send every read to green, stop background replays and
//!   record the switch.
//!
//! Beside them, `plugins` loads each plugin once and shares it between
//! steps; `background` holds what a step leaves running (a replay syncing
//! until cutover); `current` makes a step that reads stores wait for the
//! background tasks that keep them current; `checking` and `uses` serve
//! the kinds' validation and the preflight.

pub mod background;
pub mod checking;
pub mod compare;
pub mod copy;
pub mod current;
pub mod cutover;
pub mod hooks;
pub mod mirror;
pub mod pause;
pub mod plugins;
pub mod replay;
pub mod restore;
pub mod route;
pub mod serve;
pub mod shell;
pub mod shift;
pub mod stop;
pub mod touched;
pub mod traffic;
pub mod uses;

use std::any::Any;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use toml::Spanned;

use crate::cancel::Cancel;
use crate::document::{Kind, WorkflowError};
use crate::plugin::{LoadError, PluginFailure};
use crate::setup::Setup;
use crate::source::SourceError;
use crate::state::{State, StateError, StateFile, StepState};
use crate::store::{Store, StoreError};
use background::{BackgroundTask, BackgroundTasks};
use checking::Checking;
use plugins::PluginRegistry;
use uses::Uses;

/// One `[[step]]`: what is common to every kind, and the kind's settings:
/// checked ones that know how to run it, or (while the workflow is being
/// read) a [`StepFile`] not yet checked.
#[derive(Debug)]
pub struct Step<C: ?Sized = dyn StepConfig> {
    /// Unique name of the step, used in state and logs.
    pub id: Spanned<String>,
    /// What it is for.
    pub description: Option<String>,
    /// The kind's settings.
    pub config: Box<C>,
}

impl Step {
    /// The kind's name in the file.
    pub fn kind(&self) -> &'static str {
        self.config.kind()
    }
}

/// A step's table as its kind read it from the file, before it is checked
/// against the setup and the steps before it. Checking turns it into the
/// typed settings the step runs with ([`StepConfig`]), so code that runs a
/// step never meets a value that validation refuses.
pub trait StepFile: std::fmt::Debug {
    /// Checks its values and references, knowing the steps before it, and
    /// gives the settings the step runs with.
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError>;
}

/// One kind of step as a workflow configures it, checked: what the plan
/// says of it, what it uses, and how it runs. Each kind keeps its config
/// type beside its implementation and registers it in [`KINDS`] (its name
/// and reader). The hooks after `run` let the engine treat a step that
/// leaves something running, or records something outside its own state,
/// without knowing its kind.
pub trait StepConfig: std::fmt::Debug + Send + Sync + Any {
    /// `kind = "…"`.
    fn kind(&self) -> &'static str;

    /// What it will do, for `runner plan`.
    fn describe(&self, setup: &Setup) -> String;

    /// Notes the sources, stores and plugins it uses, for the preflight.
    fn uses<'s>(&'s self, uses: &mut Uses<'s>);

    /// Runs it; returns its summary line.
    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError>;

    /// The stores it reads as the truth: it runs only while every
    /// background task keeping one of them current is caught up.
    fn reads(&self) -> Vec<&str> {
        Vec::new()
    }

    /// The store it loads as of a restore point, which later steps may
    /// start relative to.
    fn restores(&self) -> Option<&str> {
        None
    }

    /// Whether it is a hook: skipped in order, run only when a step names
    /// it (see [`hooks::run`]).
    fn is_hook(&self) -> bool {
        false
    }

    /// Whether it leaves a task running in the background when it returns.
    fn leaves_running(&self) -> bool {
        false
    }

    /// The store its background task keeps current, and how long a step
    /// that reads that store waits for it to catch up.
    fn keeps_current(&self) -> Option<(&str, Duration)> {
        None
    }

    /// Starts again the task it left running when the last run ended.
    fn restart(&self, _ctx: &StepContext, _id: &str) -> Option<Box<dyn BackgroundTask>> {
        None
    }

    /// Whether it stops the background task of `step`.
    fn stops(&self, _step: &Step) -> bool {
        false
    }

    /// Checks the part of the state file its kind keeps (see
    /// [`StepState::own`]), so a damaged state file is refused when the
    /// run starts rather than when the step gets to it.
    fn saved(&self, _state: &StepState) -> Result<(), StateError> {
        Ok(())
    }

    /// Forgets what it recorded outside its own step's state (a restore
    /// point, a cutover), so that it runs again from scratch.
    fn forget(&self, _state: &mut State) {}

    /// Whether it records the keys it writes (a replay with
    /// `record_touched`), for a `compare` in `touched` mode.
    fn records_touched(&self) -> bool {
        false
    }
}

/// Every kind of step, in the order messages list them.
pub const KINDS: &[Kind<dyn StepFile>] = &[
    restore::KIND,
    copy::KIND,
    replay::config::KIND,
    compare::config::KIND,
    shell::KIND,
    serve::KIND,
    route::KIND,
    traffic::KIND,
    mirror::KIND,
    shift::KIND,
    cutover::KIND,
    stop::KIND,
];

/// Events a replay batch holds, rows a restore copies and keys a compare
/// reads at a time, unless the step sets `batch_size`.
pub const DEFAULT_BATCH_SIZE: usize = 1000;

/// What every step gets.
#[derive(Clone)]
pub struct StepContext {
    /// What the workflow declares: its folders, sources, stores, plugins.
    pub setup: Arc<Setup>,
    /// Every step of the workflow, in order.
    pub steps: Arc<[Step]>,
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
        if let Some(config) = self.setup.store(name) {
            self.own(&config.files(&self.setup.home()))?;
        }
        Ok(self.setup.open_store(name)?)
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
    /// The routing state could not be changed.
    #[error(transparent)]
    Routing(#[from] crate::router::RoutingError),
    /// A command failed or timed out.
    #[error("{0}")]
    Command(String),
    /// What a step left running in the background failed, stalled, or
    /// is not there when a step needs it.
    #[error("{0}")]
    Background(String),
    /// Setting a refused event aside failed.
    #[error("{0}")]
    DeadLetter(String),
    /// What the step needs is not there: a table, a watermark, a restore
    /// point.
    #[error("{0}")]
    Missing(String),
    /// A file the step keeps in the state folder (saved progress, the
    /// touched-keys log) could not be read or written.
    #[error("{0}")]
    Local(String),
    /// A thread of the step panicked.
    #[error("{0}")]
    Panicked(String),
    /// Stopped by Ctrl-C; progress was saved.
    #[error("interrupted; progress is saved and `runner exec` resumes from here")]
    Interrupted,
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
/// first waits until the background tasks keeping them current are
/// caught up.
pub fn run(ctx: &StepContext, step: &Step) -> Result<String, StepError> {
    current::require(ctx, step)?;
    step.config.run(ctx, step.id.get_ref())
}
