//! `restore`: loads the green store as of a restore point T0, either by
//! copying blue through the store interface (every visible cell keeps its
//! version, so later replays of the same events change nothing) or by
//! running the operator's own snapshot/restore command. T0 is recorded in
//! the state; a replay can then start at `restore - 10m`. A copy resumes
//! from the last table and key it finished.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::checking::Checking;
use super::shell::CommandLine;
use super::uses::Uses;
use super::{StepConfig, StepContext, StepError, StepFile};
use crate::document::values::{AsOf, Period, Point, whole};
use crate::document::{Kind, WorkflowError};
use crate::model::{Cell, Row, RowMutation};
use crate::setup::Setup;
use crate::state::{State, StateError, StepState, now_ms};
use crate::store::Store;

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
    /// Tables to copy (default: every table of `from`).
    pub tables: Vec<String>,
    /// Extra environment variables for a command.
    pub env: BTreeMap<String, String>,
    /// Longest a command may run (default 1h).
    pub timeout: Option<Period>,
    /// Rows per write batch (default 1000).
    pub batch_size: Option<usize>,
}

/// How a restore loads its store.
#[derive(Debug, Clone, PartialEq)]
pub enum RestoreBy {
    /// Copy every visible cell of the store `from`, keeping versions.
    Copy(Spanned<String>),
    /// Run a snapshot/restore command.
    Command(CommandLine),
}

impl StepFile for RestoreFile {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        c.store(&self.into)?;
        let by = match (self.from, self.command) {
            (Some(from), None) => {
                c.store(&from)?;
                if from.get_ref() == self.into.get_ref() {
                    return Err(c.at(from.span(), "`from` and `into` are the same store"));
                }
                RestoreBy::Copy(from)
            }
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
            tables: self.tables,
            env: self.env,
            timeout: self.timeout,
            batch_size: self.batch_size,
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
            RestoreBy::Copy(from) => format!(
                "copy {} into {} as of {point}, and record it as the restore point",
                setup.store_text(from.get_ref()),
                setup.store_text(self.into.get_ref())
            ),
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
            RestoreBy::Copy(from) => uses.store(from.get_ref()),
            RestoreBy::Command(_) => uses.command(),
        }
    }

    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError> {
        match &self.by {
            RestoreBy::Command(command) => run_command(ctx, id, self, command),
            RestoreBy::Copy(from) => copy(ctx, id, self, from.get_ref()),
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

/// Copies `from_name` into the step's store as of the restore point,
/// resuming from the last table and key it finished.
fn copy(
    ctx: &StepContext,
    id: &str,
    r: &RestoreStep,
    from_name: &str,
) -> Result<String, StepError> {
    let into = r.into.get_ref();
    let mut from = ctx.store(from_name)?;
    let mut green = ctx.store(into)?;

    // The restore point is fixed on the first attempt, so a resumed copy
    // continues the same snapshot.
    let recorded = ctx.lock_state().data.restore_points.get(into).copied();
    let t0 = match recorded {
        Some(t0) => t0,
        None => {
            let t0 = resolve_point(r.as_of, &mut *from)?;
            record(ctx, into, t0)?;
            t0
        }
    };
    let existing = from.tables()?;
    if let Some(missing) = r.tables.iter().find(|t| !existing.contains(t)) {
        return Err(StepError::Missing(format!(
            "table `{missing}` is not in `{from_name}`; it has {}",
            if existing.is_empty() {
                "no tables".to_string()
            } else {
                existing.join(", ")
            }
        )));
    }
    let tables = if r.tables.is_empty() {
        existing
    } else {
        r.tables.clone()
    };
    let batch = r.batch_size.unwrap_or(super::DEFAULT_BATCH_SIZE);
    let mut rows_copied = 0u64;
    for table in &tables {
        let mut after = match resume_key(ctx, id, table)? {
            Resume::Done => continue,
            Resume::After(key) => Some(key),
            Resume::Start => None,
        };
        loop {
            if ctx.cancel.is_cancelled() {
                return Err(StepError::Interrupted);
            }
            let range = crate::store::KeyRange {
                after: after.clone(),
                before: None,
            };
            let page = from.scan(table, &range, batch, Some(t0 as u64))?;
            let mutations: Vec<RowMutation> = page
                .rows
                .iter()
                .flat_map(|row| copy_of(table, row))
                .collect();
            green.apply(&mutations, Some(t0))?;
            rows_copied += page.rows.len() as u64;
            after = page.next_after;
            let mut state = ctx.lock_state();
            let st = state.step_mut(id, "restore");
            *st.metrics.entry("rows".into()).or_insert(0) += page.rows.len() as u64;
            let mut copied: CopyState = st.own()?;
            copied.resume.insert(
                table.clone(),
                after.as_deref().map_or(DONE.to_string(), hex::encode),
            );
            st.set_own(&copied);
            state.save()?;
            if after.is_none() {
                break;
            }
        }
    }
    // Rows of earlier, interrupted attempts count too.
    let rows_copied = ctx
        .lock_state()
        .step_mut(id, "restore")
        .metrics
        .get("rows")
        .copied()
        .unwrap_or(rows_copied);
    Ok(format!(
        "copied {rows_copied} rows of {} from `{from_name}` into `{into}` as of {}, the restore point",
        tables.join(", "),
        crate::report::version_time(t0)
    ))
}

/// Marks a table whose copy is complete (keys are saved in hex, so this
/// cannot be mistaken for one).
const DONE: &str = "done";

/// Where the copy of a table stands.
enum Resume {
    Start,
    After(Vec<u8>),
    Done,
}

/// Resolves the restore point against the source store.
fn resolve_point(point: AsOf, from: &mut dyn Store) -> Result<i64, StepError> {
    Ok(match point {
        AsOf::At(ms) => ms,
        AsOf::Latest => from.watermark()?.unwrap_or(now_ms() as i64),
        AsOf::Watermark(margin) => {
            let w = from.watermark()?.ok_or_else(|| {
                StepError::Missing(format!(
                    "`as_of = \"{point}\"` needs the watermark of `{}`, which records none; for a store written by a service, give it `fed_by = {{ source = \"…\", group = \"…\" }}` so its consumer group's position serves, or give a time",
                    from.name()
                ))
            })?;
            w.saturating_sub(i64::try_from(margin.as_millis()).unwrap_or(i64::MAX))
        }
    })
}

/// The mutations that recreate `row` with its cells' versions.
fn copy_of(table: &str, row: &Row) -> Vec<RowMutation> {
    let table: std::sync::Arc<str> = table.into();
    let row_key = bytes::Bytes::copy_from_slice(&row.row_key);
    let mut by_version: std::collections::BTreeMap<u64, Vec<Cell>> = Default::default();
    for c in &row.cells {
        by_version.entry(c.version).or_default().push(Cell::put(
            &c.family,
            c.qualifier.clone(),
            c.value.clone(),
        ));
    }
    by_version
        .into_iter()
        .map(|(version, cells)| RowMutation {
            table: table.clone(),
            row_key: row_key.clone(),
            cells,
            version,
        })
        .collect()
}

fn record(ctx: &StepContext, store: &str, t0: i64) -> Result<(), StepError> {
    let mut state = ctx.lock_state();
    state.data.restore_points.insert(store.to_string(), t0);
    state.save()?;
    Ok(())
}

fn resume_key(ctx: &StepContext, id: &str, table: &str) -> Result<Resume, StepError> {
    let state = ctx.lock_state();
    let copied: CopyState = match state.data.steps.get(id) {
        Some(st) => st.own()?,
        None => CopyState::default(),
    };
    Ok(match copied.resume.get(table) {
        None => Resume::Start,
        Some(done) if done == DONE => Resume::Done,
        Some(key) => hex::decode(key).map_or(Resume::Start, Resume::After),
    })
}

/// What a copy keeps in its step's state: per table, the last key done
/// (hex), or that the table is done.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CopyState {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    resume: BTreeMap<String, String>,
}
