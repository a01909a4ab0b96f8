//! Unpacking a `mutation-batch`: the transform world returns a batch's
//! row mutations packed into one byte buffer plus index records (one
//! allocation crosses the boundary instead of one per cell). Every index is
//! checked here; a plugin that points outside its buffer breaks the
//! contract and is reported as such, never trusted.

use super::bindings::transform::exports::switchyard::plugin::transformer::{
    CellOp, MutationBatch, Span,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;

use super::bindings::types;
use super::limits::{OutputLimits, show_size};
use super::rows::{Cell, RowMutation};

/// What the plugin made of one event: its mutations, or why it refused it.
pub type Outcome = Result<Vec<RowMutation>, types::PluginError>;

/// The tables a transform may write: those the workflow declares for the
/// store its rows go to.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// The store, for messages.
    pub store: String,
    /// Its tables.
    pub names: HashSet<String>,
}

/// Host bytes counted for each row beyond its key and table name (and
/// for each refusal beyond its text).
const ROW_COST: u64 = std::mem::size_of::<RowMutation>() as u64;

/// Why a batch cannot be taken: what is wrong, and the index of the event
/// it is about when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The event of the batch, when the fault lies with one.
    pub event: Option<usize>,
    /// What is wrong, and what to do about it.
    pub what: String,
}

fn broken(event: impl Into<Option<usize>>, what: String) -> Broken {
    Broken {
        event: event.into(),
        what,
    }
}

/// One outcome per event of a batch of `events`, or what was wrong.
/// Nothing beyond the tally's limits is built: the returned buffer (which
/// every slice keeps alive) is counted, and each row and cell before it is
/// made, with its key, names and value, each time it is used. A table the
/// tally does not accept breaks the contract before any of its rows is made.
pub fn unpack(
    batch: MutationBatch,
    events: usize,
    tally: &mut Tally<'_>,
) -> Result<Vec<Outcome>, Broken> {
    let MutationBatch {
        bytes,
        rows,
        cells,
        refused,
    } = batch;
    // Keys, qualifiers and values become slices of this one buffer.
    let bytes = Bytes::from(bytes);
    tally.bytes(None, bytes.len() as u64)?;
    let mut outcomes: Vec<Outcome> = (0..events).map(|_| Ok(Vec::new())).collect();
    let mut names = Names::default();
    let mut last_event = 0;
    for row in &rows {
        let event = row.event as usize;
        if event >= events || event < last_event {
            return Err(broken(
                None,
                format!(
                    "a row names event {event} of a batch of {events} (rows must follow event order)"
                ),
            ));
        }
        last_event = event;
        let fail = |what: String| broken(event, what);
        let first = row.first_cell as usize;
        let packed = cells
            .get(first..first.saturating_add(row.cell_count as usize))
            .ok_or_else(|| {
                fail(format!(
                    "a row's cells {first}+{} lie outside the {} cells returned",
                    row.cell_count,
                    cells.len()
                ))
            })?;
        let table = names
            .get(&bytes, &row.table, "a table name")
            .map_err(fail)?;
        tally.accepts(event, &table)?;
        let row_key = slice(&bytes, &row.row_key, "a row key").map_err(fail)?;
        if row_key.is_empty() {
            return Err(fail("a row has an empty row key".into()));
        }
        if i64::try_from(row.version).is_err() {
            return Err(fail(format!(
                "a row is at version {}, above the largest version stores accept (2^63 - 1)",
                row.version
            )));
        }
        tally.row(event, ROW_COST + table.len() as u64 + row_key.len() as u64)?;
        tally.cells(event, packed.len() as u64)?;
        let mut out = Vec::with_capacity(packed.len());
        for c in packed {
            let family = |names: &mut Names| match c.op {
                CellOp::DeleteRow => Ok(Arc::from("")),
                _ => names.get(&bytes, &c.family, "a family"),
            };
            let family = family(&mut names).map_err(fail)?;
            let qualifier = match c.op {
                CellOp::Put | CellOp::DeleteCell => {
                    slice(&bytes, &c.qualifier, "a qualifier").map_err(fail)?
                }
                _ => Bytes::new(),
            };
            let value = match c.op {
                CellOp::Put => slice(&bytes, &c.value, "a value").map_err(fail)?,
                _ => Bytes::new(),
            };
            let cell = match c.op {
                CellOp::Put => Cell::Put {
                    family,
                    qualifier,
                    value,
                },
                CellOp::DeleteCell => Cell::DeleteCell { family, qualifier },
                CellOp::DeleteFamily => Cell::DeleteFamily { family },
                CellOp::DeleteRow => Cell::DeleteRow,
            };
            // Counted before it is kept; its parts are slices and shared
            // names, so making it cost nothing yet.
            tally.bytes(event, cell.host_bytes())?;
            out.push(cell);
        }
        if let Ok(list) = &mut outcomes[event] {
            list.push(RowMutation {
                table,
                row_key,
                cells: out,
                version: row.version,
            });
        }
    }
    for r in refused {
        let event = r.event as usize;
        let slot = outcomes.get_mut(event).ok_or_else(|| {
            broken(
                None,
                format!("a refusal names event {event} of a batch of {events}"),
            )
        })?;
        if !matches!(slot, Ok(rows) if rows.is_empty()) {
            return Err(broken(
                event,
                "the event is both refused and given rows".into(),
            ));
        }
        let error = super::error::bounded(r.error);
        tally.bytes(event, ROW_COST + super::error::message(&error).len() as u64)?;
        *slot = Err(error);
    }
    Ok(outcomes)
}

/// What a batch's answer has cost so far, against the limits; kept over
/// the calls that run a batch again event by event.
pub struct Tally<'a> {
    limits: OutputLimits,
    plugin: String,
    tables: Option<&'a Tables>,
    bytes: u64,
    rows: u64,
    cells: u64,
    event: usize,
    event_rows: u64,
    event_cells: u64,
}

impl<'a> Tally<'a> {
    /// A tally of nothing yet, for `plugin`'s answers, writing `tables`
    /// (any table, when `None`).
    pub fn new(limits: OutputLimits, plugin: &str, tables: Option<&'a Tables>) -> Self {
        Tally {
            limits,
            plugin: plugin.to_string(),
            tables,
            bytes: 0,
            rows: 0,
            cells: 0,
            event: 0,
            event_rows: 0,
            event_cells: 0,
        }
    }

    /// The next call's events are other events (their counts start anew;
    /// the batch's go on).
    pub fn next_call(&mut self) {
        self.event = 0;
        self.event_rows = 0;
        self.event_cells = 0;
    }

    /// What the answers hold on the host so far.
    pub fn spent(&self) -> u64 {
        self.bytes
    }

    /// Whether rows may go to `table`.
    fn accepts(&self, event: usize, table: &str) -> Result<(), Broken> {
        let Some(tables) = self.tables else {
            return Ok(());
        };
        if tables.names.contains(table) {
            return Ok(());
        }
        let mut declared: Vec<&str> = tables.names.iter().map(String::as_str).collect();
        declared.sort_unstable();
        Err(broken(
            event,
            format!(
                "it wrote to table `{}`, which store `{}` does not declare (it declares {}); add the table to the store's `tables` if it belongs there",
                crate::text::foreign(table),
                tables.store,
                crate::text::quoted(&declared)
            ),
        ))
    }

    fn over(&self, event: impl Into<Option<usize>>, what: String, setting: &str) -> Broken {
        broken(
            event,
            format!(
                "{what}; raise `{setting}` in [plugin.{}] if that is legitimate, or lower the step's `batch_size`",
                self.plugin
            ),
        )
    }

    fn at(&mut self, event: usize) {
        if event != self.event {
            self.event = event;
            self.event_rows = 0;
            self.event_cells = 0;
        }
    }

    fn row(&mut self, event: usize, bytes: u64) -> Result<(), Broken> {
        self.at(event);
        self.rows += 1;
        self.event_rows += 1;
        let l = &self.limits;
        if self.event_rows > l.rows_per_event {
            let what = format!("one event became more than {} rows", l.rows_per_event);
            return Err(self.over(event, what, "max_rows_per_event"));
        }
        if self.rows > l.rows_per_batch {
            let what = format!("the batch became more than {} rows", l.rows_per_batch);
            return Err(self.over(event, what, "max_rows_per_batch"));
        }
        self.bytes(event, bytes)
    }

    fn cells(&mut self, event: usize, count: u64) -> Result<(), Broken> {
        self.at(event);
        self.cells = self.cells.saturating_add(count);
        self.event_cells = self.event_cells.saturating_add(count);
        let l = &self.limits;
        if self.event_cells > l.cells_per_event {
            let what = format!(
                "one event's rows hold more than {} cells",
                l.cells_per_event
            );
            return Err(self.over(event, what, "max_cells_per_event"));
        }
        if self.cells > l.cells_per_batch {
            let what = format!(
                "the batch's rows hold more than {} cells",
                l.cells_per_batch
            );
            return Err(self.over(event, what, "max_cells_per_batch"));
        }
        Ok(())
    }

    fn bytes(&mut self, event: impl Into<Option<usize>>, bytes: u64) -> Result<(), Broken> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.limits.bytes_per_batch {
            let what = format!(
                "the batch's rows come to more than {} on the host (every key, name and value counted each time a row uses it)",
                show_size(self.limits.bytes_per_batch)
            );
            return Err(self.over(event, what, "max_output"));
        }
        Ok(())
    }
}

/// The bytes a span points at, as a shared slice of the batch buffer.
fn slice(bytes: &Bytes, span: &Span, what: &str) -> Result<Bytes, String> {
    let (start, len) = (span.start as usize, span.len as usize);
    let end = start.saturating_add(len);
    if end > bytes.len() {
        return Err(format!(
            "{what} at {start}+{len} lies outside the {} bytes returned",
            bytes.len()
        ));
    }
    Ok(bytes.slice(start..end))
}

/// Table and family names of a batch, each checked and allocated once.
#[derive(Default)]
struct Names {
    known: HashMap<(u32, u32), Arc<str>>,
}

impl Names {
    fn get(&mut self, bytes: &Bytes, span: &Span, what: &str) -> Result<Arc<str>, String> {
        if let Some(name) = self.known.get(&(span.start, span.len)) {
            return Ok(name.clone());
        }
        if span.len > u32::from(u16::MAX) {
            return Err(format!("{what} of {} bytes is longer than 65535", span.len));
        }
        let raw = slice(bytes, span, what)?;
        let name: Arc<str> = std::str::from_utf8(&raw)
            .map_err(|_| format!("{what} is not UTF-8"))?
            .into();
        self.known.insert((span.start, span.len), name.clone());
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::transform::exports::switchyard::plugin::transformer::{
        PackedCell, PackedRow, Refusal,
    };
    use crate::plugin::bindings::types::PluginError;

    fn span(start: u32, len: u32) -> Span {
        Span { start, len }
    }

    fn batch() -> MutationBatch {
        // bytes: "t" "k1" "d" "q" "v"
        MutationBatch {
            bytes: b"tk1dqv".to_vec(),
            rows: vec![PackedRow {
                event: 1,
                table: span(0, 1),
                row_key: span(1, 2),
                version: 9,
                first_cell: 0,
                cell_count: 2,
            }],
            cells: vec![
                PackedCell {
                    op: CellOp::Put,
                    family: span(3, 1),
                    qualifier: span(4, 1),
                    value: span(5, 1),
                },
                PackedCell {
                    op: CellOp::DeleteRow,
                    family: span(0, 0),
                    qualifier: span(0, 0),
                    value: span(0, 0),
                },
            ],
            refused: vec![Refusal {
                event: 2,
                error: PluginError::Malformed("x".into()),
            }],
        }
    }

    fn limits() -> OutputLimits {
        OutputLimits::for_memory(1 << 20)
    }

    fn unpack(b: MutationBatch, events: usize) -> Result<Vec<Outcome>, String> {
        super::unpack(b, events, &mut Tally::new(limits(), "p", None)).map_err(|b| b.what)
    }

    fn unpack_with(
        b: MutationBatch,
        events: usize,
        limits: OutputLimits,
    ) -> Result<Vec<Outcome>, Broken> {
        super::unpack(b, events, &mut Tally::new(limits, "p", None))
    }

    #[test]
    fn rows_and_refusals_land_on_their_events() {
        let out = unpack(batch(), 3).unwrap();
        assert_eq!(out[0], Ok(vec![]));
        let rows = out[1].as_ref().unwrap();
        assert_eq!(&*rows[0].table, "t");
        assert_eq!(&rows[0].row_key[..], b"k1");
        assert_eq!(rows[0].version, 9);
        assert_eq!(rows[0].cells[1], Cell::DeleteRow);
        assert_eq!(out[2], Err(PluginError::Malformed("x".into())));
    }

    #[test]
    fn indexes_outside_the_batch_are_contract_errors() {
        let mut b = batch();
        b.rows[0].row_key = span(4, 10);
        assert!(unpack(b, 3).unwrap_err().contains("outside the 6 bytes"));
        let mut b = batch();
        b.rows[0].cell_count = 5;
        assert!(unpack(b, 3).unwrap_err().contains("outside the 2 cells"));
        let mut b = batch();
        b.rows[0].version = u64::MAX;
        assert!(
            unpack(b, 3)
                .unwrap_err()
                .contains("above the largest version")
        );
        let mut b = batch();
        b.refused[0].event = 1;
        assert!(
            unpack(b, 3)
                .unwrap_err()
                .contains("both refused and given rows")
        );
        assert!(
            unpack(batch(), 1)
                .unwrap_err()
                .contains("names event 1 of a batch of 1")
        );
    }

    /// Rows that all share one range of cells, cells that all share one
    /// value: each use is counted, so the host stops before building them.
    #[test]
    fn shared_cells_and_values_count_every_time_they_are_used() {
        let mut b = batch();
        b.bytes = vec![b'x'; 4096];
        let cells = |value: u32| {
            (0..500)
                .map(|_| PackedCell {
                    op: CellOp::Put,
                    family: span(0, 1),
                    qualifier: span(0, 1),
                    value: span(0, value),
                })
                .collect()
        };
        b.cells = cells(1);
        b.rows = (0..500)
            .map(|i| PackedRow {
                event: 0,
                table: span(0, 1),
                row_key: span(i, 1),
                version: 1,
                first_cell: 0,
                cell_count: 500,
            })
            .collect();
        b.refused.clear();
        let err = unpack_with(b.clone(), 1, limits()).unwrap_err();
        assert_eq!(err.event, Some(0));
        assert!(err.what.contains("max_cells_per_event"), "{}", err.what);
        let roomy = OutputLimits {
            cells_per_event: u64::MAX,
            cells_per_batch: u64::MAX,
            ..limits()
        };
        b.cells = cells(4096);
        let err = unpack_with(b, 1, roomy).unwrap_err();
        assert!(
            err.what
                .starts_with("the batch's rows come to more than 2 MiB")
                && err.what.contains("raise `max_output` in [plugin.p]"),
            "{}",
            err.what
        );
    }

    #[test]
    fn deletes_and_empty_puts_are_counted_too() {
        let mut b = batch();
        b.cells = vec![
            PackedCell {
                op: CellOp::DeleteRow,
                family: span(0, 0),
                qualifier: span(0, 0),
                value: span(0, 0),
            };
            2000
        ];
        b.rows[0].cell_count = 2000;
        b.refused.clear();
        let tight = OutputLimits {
            bytes_per_batch: 64 * 1024,
            ..limits()
        };
        let err = unpack_with(b, 3, tight).unwrap_err();
        assert_eq!(err.event, Some(1));
        assert!(err.what.contains("max_output"), "{}", err.what);
    }

    #[test]
    fn the_returned_buffer_counts_even_when_rows_use_little_of_it() {
        let mut b = batch();
        b.bytes.resize(3 << 20, 0);
        let err = unpack_with(b, 3, limits()).unwrap_err();
        assert_eq!(err.event, None);
        assert!(err.what.contains("max_output"), "{}", err.what);
    }

    #[test]
    fn a_table_the_store_does_not_declare_is_refused_before_its_rows_are_built() {
        let tables = Tables {
            store: "green".into(),
            names: ["other".to_string()].into(),
        };
        let err =
            super::unpack(batch(), 3, &mut Tally::new(limits(), "p", Some(&tables))).unwrap_err();
        assert_eq!(err.event, Some(1));
        assert!(
            err.what.starts_with(
                "it wrote to table `t`, which store `green` does not declare (it declares `other`)"
            ),
            "{}",
            err.what
        );
    }

    /// Run again event by event, a batch keeps one budget: each event alone
    /// fits, all of them together do not.
    #[test]
    fn the_budget_holds_over_calls_event_by_event() {
        let tight = OutputLimits {
            rows_per_batch: 1,
            ..limits()
        };
        let mut tally = Tally::new(tight, "p", None);
        let one = || {
            let mut b = batch();
            b.rows[0].event = 0;
            b.refused.clear();
            b
        };
        assert!(super::unpack(one(), 1, &mut tally).is_ok());
        tally.next_call();
        let err = super::unpack(one(), 1, &mut tally).unwrap_err();
        assert!(err.what.contains("max_rows_per_batch"), "{}", err.what);
    }
}
