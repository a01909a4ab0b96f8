//! `copy`: the initial load of a new store from the old one, as of a
//! restore point T0: blue's rows are scanned in key order, page by page
//! (a page is a key range), as of T0, and written into green — as they
//! are (every visible cell keeps its version), or through a `row-map`
//! plugin that turns each row of the old layout into rows of the new one
//! (the "initial migration program" of a move to another database). T0
//! is recorded, so a replay can start at `restore - 10m`; after each page
//! the last key done is saved, so a copy stopped anywhere goes on after
//! the last page the new store acknowledged. A `restore` step that copies
//! from a store is this step without a plugin.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::checking::Checking;
use super::uses::Uses;
use super::{StepConfig, StepContext, StepError, StepFile};
use crate::document::values::{AsOf, Point, whole};
use crate::document::{Kind, WorkflowError};
use crate::model::{Cell, Row, RowMutation};
use crate::plugin::RowMapPlugin;
use crate::plugin::contract::RowMap;
use crate::setup::Setup;
use crate::state::{State, StateError, StepState, now_ms};
use crate::store::Store;

/// The kind, for the registration list.
pub const KIND: Kind<dyn StepFile> = Kind {
    name: "copy",
    read: |table| Ok(Box::new(table.read::<CopyFile>()?)),
};

/// `kind = "copy"` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CopyFile {
    /// The store to copy from.
    from: Spanned<String>,
    /// The store to load.
    into: Spanned<String>,
    /// The restore point T0 (default `latest`); recorded for later steps.
    #[serde(default)]
    as_of: Option<Point>,
    /// Tables to copy (default: every table of `from`).
    #[serde(default)]
    tables: Vec<String>,
    /// A `row-map` plugin each row goes through (default: copied as is).
    #[serde(default)]
    map: Option<Spanned<String>>,
    /// Rows per page read and written (default 1000).
    #[serde(default, deserialize_with = "whole")]
    batch_size: Option<usize>,
}

/// What to copy, from where to where, as of when: a `copy` step, or a
/// `restore` that copies.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    /// The store read.
    pub from: Spanned<String>,
    /// The store loaded.
    pub into: Spanned<String>,
    /// The restore point T0.
    pub as_of: AsOf,
    /// Tables to copy (empty: every table of `from`).
    pub tables: Vec<String>,
    /// The `row-map` plugin, if rows are mapped.
    pub map: Option<Spanned<String>>,
    /// Rows per page.
    pub batch_size: Option<usize>,
}

impl Copy {
    /// Checks the two stores and the point; `map`'s world too.
    pub fn checked(
        c: &Checking<'_>,
        from: Spanned<String>,
        into: Spanned<String>,
        as_of: Option<&Point>,
        tables: Vec<String>,
        map: Option<Spanned<String>>,
        batch_size: Option<usize>,
    ) -> Result<Copy, WorkflowError> {
        c.store(&into)?;
        c.store(&from)?;
        if from.get_ref() == into.get_ref() {
            return Err(c.at(from.span(), "`from` and `into` are the same store"));
        }
        let as_of = match as_of {
            None => AsOf::Latest,
            Some(point) => AsOf::from_point(point)
                .ok_or_else(|| c.step("`as_of` must be `latest`, `watermark - …` or a time"))?,
        };
        if let Some(m) = &map {
            c.plugin(m)?;
            c.world::<RowMap>(m)?;
            // As for a replay: a plugin writes only to tables the workflow
            // declares.
            if c.setup
                .store(into.get_ref())
                .is_some_and(|s| s.declared_tables().is_none_or(|t| t.is_empty()))
            {
                return Err(c.at(
                    into.span(),
                    format!(
                        "store `{}` declares no `tables`; list the tables plugin `{}` writes in `[store.{}]`: a plugin writes only to tables the workflow declares",
                        into.get_ref(),
                        m.get_ref(),
                        into.get_ref()
                    ),
                ));
            }
        }
        c.positive(batch_size, "batch_size")?;
        Ok(Copy {
            from,
            into,
            as_of,
            tables,
            map,
            batch_size,
        })
    }

    /// Its words in the plan.
    pub fn describe(&self, setup: &Setup) -> String {
        format!(
            "copy {} into {} as of {}{}, and record it as the restore point",
            setup.store_text(self.from.get_ref()),
            setup.store_text(self.into.get_ref()),
            self.as_of,
            self.map.as_ref().map_or(String::new(), |m| format!(
                ", each row mapped by plugin `{}`",
                m.get_ref()
            ))
        )
    }
}

impl StepFile for CopyFile {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        Ok(Box::new(CopyStep(Copy::checked(
            c,
            self.from,
            self.into,
            self.as_of.as_ref(),
            self.tables,
            self.map,
            self.batch_size,
        )?)))
    }
}

/// `kind = "copy"`.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyStep(pub Copy);

impl StepConfig for CopyStep {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self, setup: &Setup) -> String {
        self.0.describe(setup)
    }

    fn uses<'s>(&'s self, uses: &mut Uses<'s>) {
        uses.store(self.0.into.get_ref());
        uses.store(self.0.from.get_ref());
    }

    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError> {
        copy(ctx, id, KIND.name, &self.0)
    }

    fn restores(&self) -> Option<&str> {
        Some(self.0.into.get_ref())
    }

    fn saved(&self, state: &StepState) -> Result<(), StateError> {
        state.own::<CopyState>().map(drop)
    }

    fn forget(&self, state: &mut State) {
        state.restore_points.remove(self.0.into.get_ref());
    }
}

/// Copies as `spec` says, for step `id` of `kind`, resuming after the
/// last page done.
pub fn copy(
    ctx: &StepContext,
    id: &str,
    kind: &'static str,
    spec: &Copy,
) -> Result<String, StepError> {
    let (from_name, into) = (spec.from.get_ref(), spec.into.get_ref());
    let mut from = ctx.store(from_name)?;
    let mut green = ctx.store(into)?;
    let mapper: Option<RowMapPlugin> = spec
        .map
        .as_ref()
        .map(|m| ctx.plugins.get::<RowMap>(&ctx.setup, m.get_ref()))
        .transpose()?;
    let mut instance = mapper.as_ref().map(|p| p.instance());
    let allowed = ctx.setup.store(into).and_then(|s| s.declared_tables());

    // The restore point is fixed on the first attempt, so a resumed copy
    // continues the same snapshot.
    let recorded = ctx.lock_state().data.restore_points.get(into).copied();
    let t0 = match recorded {
        Some(t0) => t0,
        None => {
            let t0 = resolve_point(spec.as_of, &mut *from)?;
            record(ctx, into, t0)?;
            t0
        }
    };
    let existing = from.tables()?;
    if let Some(missing) = spec.tables.iter().find(|t| !existing.contains(t)) {
        return Err(StepError::Missing(format!(
            "table `{missing}` is not in `{from_name}`; it has {}",
            if existing.is_empty() {
                "no tables".to_string()
            } else {
                existing.join(", ")
            }
        )));
    }
    let tables = if spec.tables.is_empty() {
        existing
    } else {
        spec.tables.clone()
    };
    let batch = spec.batch_size.unwrap_or(super::DEFAULT_BATCH_SIZE);
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
            let mutations: Vec<RowMutation> = match instance.as_mut() {
                None => page
                    .rows
                    .iter()
                    .flat_map(|row| copy_of(table, row))
                    .collect(),
                Some(instance) => mapped(instance, table, &page.rows, allowed.as_deref())?,
            };
            green.apply(&mutations, Some(t0))?;
            rows_copied += page.rows.len() as u64;
            after = page.next_after;
            let mut state = ctx.lock_state();
            let st = state.step_mut(id, kind);
            *st.metrics.entry("rows".into()).or_insert(0) += page.rows.len() as u64;
            *st.metrics.entry("written".into()).or_insert(0) += mutations.len() as u64;
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
    let (rows_copied, written) = {
        let mut state = ctx.lock_state();
        let st = state.step_mut(id, kind);
        (
            st.metrics.get("rows").copied().unwrap_or(rows_copied),
            st.metrics.get("written").copied().unwrap_or(0),
        )
    };
    let how = match &spec.map {
        Some(m) => format!(" through plugin `{}` ({written} rows written)", m.get_ref()),
        None => String::new(),
    };
    Ok(format!(
        "copied {rows_copied} rows of {} from `{from_name}` into `{into}`{how} as of {}, the restore point",
        tables.join(", "),
        crate::report::version_time(t0)
    ))
}

/// The rows of one page of `table` through the row-map plugin; a row the
/// plugin refuses, or a table the new store does not take, stops the copy
/// naming the row.
fn mapped(
    instance: &mut crate::plugin::instance::Instance<RowMap>,
    table: &str,
    rows: &[Row],
    allowed: Option<&[String]>,
) -> Result<Vec<RowMutation>, StepError> {
    let answers = instance.map(table, rows)?;
    let mut out = Vec::new();
    for (row, answer) in rows.iter().zip(answers) {
        let key = crate::text::foreign_bytes(&row.row_key);
        match answer {
            Err(e) => {
                return Err(StepError::Refused(format!(
                    "plugin `{}` refused row {key} of `{table}`: {}",
                    instance.name(),
                    crate::plugin::error::describe(&e)
                )));
            }
            Ok(mutations) => {
                if let Some(allowed) = allowed
                    && let Some(m) = mutations
                        .iter()
                        .find(|m| !allowed.iter().any(|t| t.as_str() == &*m.table))
                {
                    return Err(StepError::Refused(format!(
                        "plugin `{}` mapped row {key} of `{table}` into table `{}`, which the store does not list in `tables`",
                        instance.name(),
                        crate::text::foreign(&m.table)
                    )));
                }
                out.extend(mutations);
            }
        }
    }
    Ok(out)
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
pub fn resolve_point(point: AsOf, from: &mut dyn Store) -> Result<i64, StepError> {
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
    let mut by_version: BTreeMap<u64, Vec<Cell>> = Default::default();
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

/// Records `t0` as the restore point of `store`.
pub fn record(ctx: &StepContext, store: &str, t0: i64) -> Result<(), StepError> {
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
pub struct CopyState {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    resume: BTreeMap<String, String>,
}
