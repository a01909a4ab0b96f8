//! The engine: runs a workflow's steps in order, persisting each step's
//! outcome in the state folder, so `exec` after a crash resumes where the
//! last run stopped and a finished workflow is not run twice. It treats
//! every step through `StepConfig` and every background task through
//! `BackgroundTask`, and knows no kind by name.
//!
//! - `run`: the step loop and its report.
//! - `watch`: looks at what steps left running in the background, and
//!   writes the heartbeat.
//! - `preflight`: sources, stores and plugins checked before anything runs.

pub mod preflight;
pub mod run;
pub mod watch;

pub use crate::cancel::{Cancel, Signal};
pub use run::{EngineError, ExecOptions, ExecResult, RunReport, StepReport, exec};
