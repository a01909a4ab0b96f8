//! The engine: runs a workflow's steps in order, persisting each step's
//! outcome (and replay checkpoints) in the state folder, so `exec` after a
//! crash resumes where the last run stopped and a finished workflow is not
//! run twice.
//!
//! - `state`: the state folder (atomic writes, lock).
//! - `plugins`: loads each plugin once and shares it between steps.
//! - `run`: the step loop and its report.
//! - `background`: replays that keep syncing while later steps run.
//! - `watch`: looks at them while steps run, and writes the heartbeat.
//! - `current`: `compare` and `cutover` run only on stores kept current.
//! - `preflight`: sources, stores and plugins checked before anything runs.

pub mod background;
pub mod current;
pub mod plugins;
pub mod preflight;
pub mod run;
pub mod state;
pub mod watch;

pub use crate::cancel::{Cancel, Signal};
pub use run::{EngineError, ExecOptions, ExecResult, RunReport, StepReport, exec};
