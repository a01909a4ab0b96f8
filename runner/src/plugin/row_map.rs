//! The `row-map` world: what a row of the old store becomes in the new
//! one, for the initial `copy`.

use bytes::Bytes;

use super::bindings::{row_mapper, types};
use super::contract::RowMap;
use super::error::{Input, PluginFailure};
use super::instance::{Instance, Plugin};
use super::rows::{Cell, RowMutation};
use types::Row;

pub use row_mapper::SourceRow;

/// A loaded row-map plugin.
pub type RowMapPlugin = Plugin<RowMap>;

/// What one source row became: its mutations, or the plugin's refusal.
pub type Mapped = Result<Vec<RowMutation>, types::PluginError>;

impl Instance<RowMap> {
    /// Maps the rows of `table`: one answer per row, in order. What a row
    /// may become is bounded by the plugin's output limits per event (a
    /// row counts as one) and per batch; a table the store does not take
    /// is the store's to refuse.
    pub fn map(&mut self, table: &str, rows: &[Row]) -> Result<Vec<Mapped>, PluginFailure> {
        let source: Vec<SourceRow> = rows
            .iter()
            .map(|r| SourceRow {
                table: table.to_string(),
                row: r.clone(),
            })
            .collect();
        let at = Input::Keys { count: rows.len() };
        let answers = self.call(&at, |exports, store| {
            exports
                .call::<_, (Vec<Mapped0>,)>(store, (source.as_slice(),))
                .map(|(answers,)| answers)
        })?;
        let contract = |what: String| PluginFailure::Contract {
            plugin: self.name().to_string(),
            what,
            at: Input::Keys { count: rows.len() },
        };
        if answers.len() != rows.len() {
            return Err(contract(format!(
                "`map-rows` returned {} answers for {} rows",
                answers.len(),
                rows.len()
            )));
        }
        let limits = self.limits().output;
        let (mut all_rows, mut all_cells) = (0u64, 0u64);
        let mut out = Vec::with_capacity(answers.len());
        for answer in answers {
            match answer {
                Err(e) => out.push(Err(super::error::bounded(e))),
                Ok(mutations) => {
                    let cells: u64 = mutations.iter().map(|m| m.cells.len() as u64).sum();
                    all_rows += mutations.len() as u64;
                    all_cells += cells;
                    if mutations.len() as u64 > limits.rows_per_event
                        || cells > limits.cells_per_event
                        || all_rows > limits.rows_per_batch
                        || all_cells > limits.cells_per_batch
                    {
                        return Err(contract(format!(
                            "one row became {} rows and {cells} cells ({all_rows} and {all_cells} in the batch), above the limits of {} and {} a row and {} and {} a batch",
                            mutations.len(),
                            limits.rows_per_event,
                            limits.cells_per_event,
                            limits.rows_per_batch,
                            limits.cells_per_batch
                        )));
                    }
                    let mut mapped = Vec::with_capacity(mutations.len());
                    for m in mutations {
                        mapped.push(from_wit(m).map_err(contract)?);
                    }
                    out.push(Ok(mapped));
                }
            }
        }
        Ok(out)
    }
}

/// The world's answer for one row, as the bindings type it.
type Mapped0 = Result<Vec<types::RowMutation>, types::PluginError>;

fn from_wit(m: types::RowMutation) -> Result<RowMutation, String> {
    if m.row_key.is_empty() {
        return Err(format!(
            "a row of table `{}` with an empty key",
            crate::text::foreign(&m.table)
        ));
    }
    if i64::try_from(m.version).is_err() {
        return Err(format!("version {} is above 2^63 - 1", m.version));
    }
    Ok(RowMutation {
        table: m.table.as_str().into(),
        row_key: Bytes::from(m.row_key),
        version: m.version,
        cells: m
            .cells
            .into_iter()
            .map(|c| match c {
                types::Cell::Put(p) => Cell::put(&p.family, p.qualifier, p.value),
                types::Cell::DeleteCell(r) => Cell::DeleteCell {
                    family: r.family.as_str().into(),
                    qualifier: Bytes::from(r.qualifier),
                },
                types::Cell::DeleteFamily(f) => Cell::DeleteFamily {
                    family: f.as_str().into(),
                },
                types::Cell::DeleteRow => Cell::DeleteRow,
            })
            .collect(),
    })
}
