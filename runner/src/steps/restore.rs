//! `restore`: loads the green store as of a restore point T0, either by
//! copying blue through the store interface (every visible cell keeps its
//! version, so later replays of the same events change nothing: the
//! `copy` step without a plugin, see `copy`) or by running the operator's
//! own snapshot/restore command. T0 is recorded in the state; a replay
//! can then start at `restore - 10m`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::checking::Checking;
use super::copy::{Copy, CopyState, record};
use super::shell::CommandLine;
use super::uses::Uses;
use super::{StepConfig, StepContext, StepError, StepFile};
use crate::document::values::{AsOf, Period, Point, whole};
use crate::document::{Kind, WorkflowError};
use crate::setup::Setup;
use crate::state::{State, StateError, StepState, now_ms};

/// The kind, for the registration list.
pub const KIND: Kind<dyn StepFile> = Kind {
    name: "restore",
    read: |table| Ok(Box::new(table.read::<RestoreFile>()?)),
};

/// `kind = "restore"` as written: copy `from` into `into` as of a point,
/// or run the operator's own restore `command`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreFile {
    /// The store to copy from.
    #[serde(default)]
    from: Option<Spanned<String>>,
    /// The store to load.
    into: Spanned<String>,
    /// The restore point T0 (default `latest`); recorded for later steps.
    #[serde(default)]
    as_of: Option<Point>,
    /// Tables to copy (default: every table of `from`).
    #[serde(default)]
    tables: Vec<String>,
    /// Instead of copying: a snapshot/restore command (a list of arguments,
    /// or a line for `sh -c`).
    #[serde(default)]
    command: Option<CommandLine>,
    /// Extra environment variables for `command`.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Longest `command` may run (default 1h).
    #[serde(default)]
    timeout: Option<Period>,
    /// Rows per write batch (default 1000).
    #[serde(default, deserialize_with = "whole")]
    batch_size: Option<usize>,
}

/// `kind = "restore"`: loads `into` as of a restore point.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreStep {
    /// The store to load.
    pub into: Spanned<String>,
    /// How: a copy from another store, or the operator's own command.
    pub by: RestoreBy,
    /// The restore point T0; recorded for later steps.
    pub as_of: AsOf,
    /// Extra environment variables for a command.
    pub env: BTreeMap<String, String>,
    /// Longest a command may run (default 1h).
    pub timeout: Option<Period>,
}

/// How a restore loads its store.
#[derive(Debug, Clone, PartialEq)]
pub enum RestoreBy {
    /// Copy every visible cell of another store, keeping versions.
    Copy(Copy),
    /// Run a snapshot/restore command.
    Command(CommandLine),
}

impl StepFile for RestoreFile {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        c.store(&self.into)?;
        let by = match (self.from, self.command) {
            (Some(from), None) => RestoreBy::Copy(Copy::checked(
                c,
                from,
                self.into.clone(),
                self.as_of.as_ref(),
                self.tables,
                None,
                self.batch_size,
            )?),
            (None, Some(command)) => RestoreBy::Command(command),
            _ => {
                return Err(c.step(
                    "needs exactly one of `from` (a store to copy) or `command` (your own restore command)",
                ));
            }
        };
        let as_of = match &self.as_of {
            None => AsOf::Latest,
            Some(point) => AsOf::from_point(point)
                .ok_or_else(|| c.step("`as_of` must be `latest`, `watermark - …` or a time"))?,
        };
        c.positive(self.batch_size, "batch_size")?;
        c.not_zero(self.timeout, "timeout")?;
        Ok(Box::new(RestoreStep {
            into: self.into,
            by,
            as_of,
            env: self.env,
            timeout: self.timeout,
        }))
    }
}

impl StepConfig for RestoreStep {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self, setup: &Setup) -> String {
        let point = self.as_of;
        match &self.by {
            RestoreBy::Copy(copy) => copy.describe(setup),
            RestoreBy::Command(cmd) => format!(
                "run `{}` to restore {} as of {point}",
                cmd.shown(),
                setup.store_text(self.into.get_ref())
            ),
        }
    }

    fn uses<'s>(&'s self, uses: &mut Uses<'s>) {
        uses.store(self.into.get_ref());
        match &self.by {
            RestoreBy::Copy(copy) => uses.store(copy.from.get_ref()),
            RestoreBy::Command(_) => uses.command(),
        }
    }

    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError> {
        match &self.by {
            RestoreBy::Command(command) => run_command(ctx, id, self, command),
            RestoreBy::Copy(copy) => super::copy::copy(ctx, id, KIND.name, copy),
        }
    }

    fn restores(&self) -> Option<&str> {
        Some(self.into.get_ref())
    }

    fn saved(&self, state: &StepState) -> Result<(), StateError> {
        state.own::<CopyState>().map(drop)
    }

    fn forget(&self, state: &mut State) {
        state.restore_points.remove(self.into.get_ref());
    }
}

/// Runs the operator's restore command, with the restore point in its
/// environment.
fn run_command(
    ctx: &StepContext,
    id: &str,
    r: &RestoreStep,
    command: &CommandLine,
) -> Result<String, StepError> {
    let into = r.into.get_ref();
    let t0 = match r.as_of {
        AsOf::At(ms) => ms,
        _ => now_ms() as i64,
    };
    let timeout = r.timeout.map_or(Duration::from_secs(3600), |t| t.0);
    let mut env: Vec<(String, String)> =
        r.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.push(("SWITCHYARD_RESTORE_POINT".to_string(), t0.to_string()));
    env.push(("SWITCHYARD_STORE".to_string(), into.clone()));
    ctx.run_command(|| {
        super::shell::run_command(command, &ctx.setup.dir, &env, timeout, &ctx.cancel, id)
    })?;
    record(ctx, into, t0)?;
    Ok(format!(
        "`{}` restored `{into}`; restore point {}",
        command.shown(),
        crate::report::version_time(t0)
    ))
}
