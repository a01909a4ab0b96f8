//! Unpacking a transform's answer: a batch's row mutations packed into one
//! byte buffer plus index words (contract 0.2) or index records (0.1), so
//! that one allocation crosses the boundary instead of one per cell. Every
//! index is checked here; a plugin that points outside its buffer breaks
//! the contract and is reported as such, never trusted.

use std::collections::HashSet;

use super::bindings::types;
use super::bindings::v0_1::transformer as v0_1;
use super::limits::{OutputLimits, show_size};
use super::row_batch::{CellAt, Op, RowBatch};
use super::rows::{Cell, RowMutation};

/// What the plugin made of one event: its mutations, or why it refused it.
pub type Outcome = Result<Vec<RowMutation>, types::PluginError>;

/// What a batch became on the host: every row in event order, which
/// event each came from, and the events refused.
#[derive(Debug, Default)]
pub struct Unpacked {
    /// Every row of the batch, in event order.
    pub rows: RowBatch,
    /// For each row, the index of its event in the batch.
    pub row_events: Vec<u32>,
    /// The refused events, by index in the batch, in increasing order.
    pub refused: Vec<(usize, types::PluginError)>,
    /// Events in the batch.
    pub events: usize,
}

impl Unpacked {
    /// Adds the answer for events that follow these.
    pub fn append(&mut self, next: Unpacked) {
        let offset = self.events;
        self.rows.append(next.rows);
        self.row_events
            .extend(next.row_events.iter().map(|e| e + offset as u32));
        self.refused
            .extend(next.refused.into_iter().map(|(e, why)| (e + offset, why)));
        self.events += next.events;
    }

    /// One outcome per event, in order.
    pub fn outcomes(self) -> Vec<Outcome> {
        let mut outcomes: Vec<Outcome> = (0..self.events).map(|_| Ok(Vec::new())).collect();
        for (row, event) in self.rows.to_mutations().into_iter().zip(self.row_events) {
            if let Some(Ok(rows)) = outcomes.get_mut(event as usize) {
                rows.push(row);
            }
        }
        for (event, why) in self.refused {
            if let Some(slot) = outcomes.get_mut(event) {
                *slot = Err(why);
            }
        }
        outcomes
    }
}

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
/// Host bytes counted for each cell beyond its names and value.
const CELL_COST: u64 = std::mem::size_of::<Cell>() as u64;

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

/// A transform's answer as it crossed the boundary, in either version of
/// the contract.
#[derive(Debug, Clone)]
pub struct Packed {
    /// Every name, key and value of the batch.
    pub bytes: Vec<u8>,
    /// Where rows and cells are in `bytes`.
    pub index: Index,
    /// Events the plugin refused, by their index in the batch.
    pub refused: Vec<(u32, types::PluginError)>,
}

/// The index of a packed answer.
#[derive(Debug, Clone)]
pub enum Index {
    /// 0.2: per row eight words, then seven per cell (see `mutation-batch`
    /// in `sdk/wit/plugin.wit`).
    Words(Vec<u32>),
    /// 0.1: rows that name a range of a list of cell records.
    Records {
        /// The rows.
        rows: Vec<v0_1::PackedRow>,
        /// The cells rows point into.
        cells: Vec<v0_1::PackedCell>,
    },
}

impl From<super::bindings::transformer::MutationBatch> for Packed {
    fn from(batch: super::bindings::transformer::MutationBatch) -> Self {
        Packed {
            bytes: batch.bytes,
            index: Index::Words(batch.words),
            refused: batch
                .refused
                .into_iter()
                .map(|r| (r.event, r.error))
                .collect(),
        }
    }
}

impl From<v0_1::MutationBatch> for Packed {
    fn from(batch: v0_1::MutationBatch) -> Self {
        Packed {
            bytes: batch.bytes,
            index: Index::Records {
                rows: batch.rows,
                cells: batch.cells,
            },
            refused: batch
                .refused
                .into_iter()
                .map(|r| (r.event, r.error))
                .collect(),
        }
    }
}

use super::row_batch::Range;

/// One row as the index describes it, before anything is checked.
struct RowHead<'a> {
    event: u32,
    table: Range,
    row_key: Range,
    version: u64,
    cells: Cells<'a>,
}

/// A row's cells in the index.
enum Cells<'a> {
    Words(&'a [u32]),
    Records(&'a [v0_1::PackedCell]),
}

/// Operation words of a packed cell.
const PUT: u32 = 0;
const DELETE_CELL: u32 = 1;
const DELETE_FAMILY: u32 = 2;
const DELETE_ROW: u32 = 3;
/// Words of a row before its cells, and of each cell.
const ROW_WORDS: usize = 8;
const CELL_WORDS: usize = 7;

impl Cells<'_> {
    fn len(&self) -> usize {
        match self {
            Cells::Words(words) => words.len() / CELL_WORDS,
            Cells::Records(cells) => cells.len(),
        }
    }

    /// Operation, family, qualifier and value of each cell.
    fn each(&self) -> impl Iterator<Item = (u32, Range, Range, Range)> + '_ {
        let words = match self {
            Cells::Words(words) => words.chunks_exact(CELL_WORDS),
            Cells::Records(_) => [].chunks_exact(CELL_WORDS),
        };
        let records = match self {
            Cells::Records(cells) => cells.iter(),
            Cells::Words(_) => [].iter(),
        };
        words
            .map(|w| (w[0], (w[1], w[2]), (w[3], w[4]), (w[5], w[6])))
            .chain(records.map(|c| {
                let op = match c.op {
                    v0_1::CellOp::Put => PUT,
                    v0_1::CellOp::DeleteCell => DELETE_CELL,
                    v0_1::CellOp::DeleteFamily => DELETE_FAMILY,
                    v0_1::CellOp::DeleteRow => DELETE_ROW,
                };
                let range = |s: &v0_1::Span| (s.start, s.len);
                (op, range(&c.family), range(&c.qualifier), range(&c.value))
            }))
    }
}

/// Walks the rows of an index in order.
enum Rows<'a> {
    Words(&'a [u32]),
    Records {
        rows: std::slice::Iter<'a, v0_1::PackedRow>,
        cells: &'a [v0_1::PackedCell],
    },
}

impl<'a> Rows<'a> {
    fn new(index: &'a Index) -> Self {
        match index {
            Index::Words(words) => Rows::Words(words),
            Index::Records { rows, cells } => Rows::Records {
                rows: rows.iter(),
                cells,
            },
        }
    }

    /// The next row, or what is wrong with it (and the event it names, if
    /// that much could be read).
    fn next_row(&mut self) -> Option<Result<RowHead<'a>, Broken>> {
        match self {
            Rows::Words(words) => {
                if words.is_empty() {
                    return None;
                }
                let left = words.len();
                let Some(head) = words.get(..ROW_WORDS) else {
                    *words = &[];
                    return Some(Err(broken(
                        None,
                        format!(
                            "the answer's words end inside a row ({left} words left of {ROW_WORDS})"
                        ),
                    )));
                };
                let count = head[7] as usize;
                let rest = &words[ROW_WORDS..];
                let Some(cells) = count.checked_mul(CELL_WORDS).and_then(|n| rest.get(..n)) else {
                    // No event is named: the row's own event index is
                    // not checked yet, so it could blame another event.
                    *words = &[];
                    return Some(Err(broken(
                        None,
                        format!(
                            "a row's {count} cells run past the {} words returned",
                            rest.len()
                        ),
                    )));
                };
                *words = &rest[cells.len()..];
                Some(Ok(RowHead {
                    event: head[0],
                    table: (head[1], head[2]),
                    row_key: (head[3], head[4]),
                    version: u64::from(head[5]) | (u64::from(head[6]) << 32),
                    cells: Cells::Words(cells),
                }))
            }
            Rows::Records { rows, cells } => {
                let row = rows.next()?;
                let first = row.first_cell as usize;
                let Some(packed) = cells.get(first..first.saturating_add(row.cell_count as usize))
                else {
                    return Some(Err(broken(
                        None,
                        format!(
                            "a row's cells {first}+{} lie outside the {} cells returned",
                            row.cell_count,
                            cells.len()
                        ),
                    )));
                };
                Some(Ok(RowHead {
                    event: row.event,
                    table: (row.table.start, row.table.len),
                    row_key: (row.row_key.start, row.row_key.len),
                    version: row.version,
                    cells: Cells::Records(packed),
                }))
            }
        }
    }
}

/// What a batch of `events` became, or what was wrong.
/// Nothing beyond the tally's limits is built: the returned buffer (which
/// every slice keeps alive) is counted, and each row and cell before it is
/// made, with its key, names and value, each time it is used. A table the
/// tally does not accept breaks the contract before any of its rows is made.
pub fn unpack(batch: Packed, events: usize, tally: &mut Tally<'_>) -> Result<Unpacked, Broken> {
    let Packed {
        bytes,
        index,
        refused,
    } = batch;
    tally.bytes(None, bytes.len() as u64)?;
    let mut out = Unpacked {
        rows: RowBatch::with_capacity(events),
        row_events: Vec::with_capacity(events),
        refused: Vec::new(),
        events,
    };
    let mut names = Names::default();
    let mut last_event = 0;
    let mut rows = Rows::new(&index);
    while let Some(row) = rows.next_row() {
        let row = row?;
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
        let (table, table_len) = names
            .get(&bytes, &mut out.rows, row.table, "a table name")
            .map_err(fail)?;
        tally.accepts(event, out.rows.name(table))?;
        check(&bytes, row.row_key, "a row key").map_err(fail)?;
        if row.row_key.1 == 0 {
            return Err(fail("a row has an empty row key".into()));
        }
        if i64::try_from(row.version).is_err() {
            return Err(fail(format!(
                "a row is at version {}, above the largest version stores accept (2^63 - 1)",
                row.version
            )));
        }
        tally.row(event, ROW_COST + table_len + u64::from(row.row_key.1))?;
        tally.cells(event, row.cells.len() as u64)?;
        out.rows
            .add_row(table, row.row_key, row.version, row.cells.len() as u32);
        for (op, family, qualifier, value) in row.cells.each() {
            let op = match op {
                PUT => Op::Put,
                DELETE_CELL => Op::DeleteCell,
                DELETE_FAMILY => Op::DeleteFamily,
                DELETE_ROW => Op::DeleteRow,
                other => {
                    return Err(fail(format!(
                        "a cell has operation {other}; the contract knows 0 to 3"
                    )));
                }
            };
            let (family, family_len) = match op {
                Op::DeleteRow => (0, 0),
                _ => names
                    .get(&bytes, &mut out.rows, family, "a family")
                    .map_err(fail)?,
            };
            let qualifier = match op {
                Op::Put | Op::DeleteCell => {
                    check(&bytes, qualifier, "a qualifier").map_err(fail)?
                }
                _ => (0, 0),
            };
            let value = match op {
                Op::Put => check(&bytes, value, "a value").map_err(fail)?,
                _ => (0, 0),
            };
            // Counted as the cell would hold it once made (see
            // `Cell::host_bytes`), each time a range is used.
            let held = family_len + u64::from(qualifier.1) + u64::from(value.1);
            tally.bytes(event, CELL_COST + held)?;
            out.rows.add_cell(CellAt {
                op,
                family,
                qualifier,
                value,
            });
        }
        out.row_events.push(row.event);
    }
    out.rows.set_bytes(bytes);
    let mut refused = refused;
    refused.sort_by_key(|(event, _)| *event);
    for (event, error) in refused {
        let event = event as usize;
        if event >= events {
            return Err(broken(
                None,
                format!("a refusal names event {event} of a batch of {events}"),
            ));
        }
        let given_rows = out.row_events.binary_search(&(event as u32)).is_ok();
        let twice = out.refused.last().is_some_and(|(e, _)| *e == event);
        if given_rows || twice {
            return Err(broken(
                event,
                "the event is both refused and given rows".into(),
            ));
        }
        let error = super::error::bounded(error);
        tally.bytes(event, ROW_COST + super::error::message(&error).len() as u64)?;
        out.refused.push((event, error));
    }
    Ok(out)
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

/// The range, once checked to lie inside the buffer.
fn check(bytes: &[u8], (start, len): Range, what: &str) -> Result<Range, String> {
    let end = (start as usize).saturating_add(len as usize);
    if end > bytes.len() {
        return Err(format!(
            "{what} at {start}+{len} lies outside the {} bytes returned",
            bytes.len()
        ));
    }
    Ok((start, len))
}

/// Table and family names of a batch, each checked and kept once.
/// A batch has few of them (the SDK writes each once), so the first ones
/// are looked up by comparing ranges, the rest in a hash map. The ranges
/// are the plugin's choice: foldhash is seeded at random per process, and
/// the map holds at most `max_cells_per_batch` of them.
#[derive(Default)]
struct Names {
    first: Vec<(Range, u32, u64)>,
    more: foldhash::HashMap<Range, (u32, u64)>,
}

/// Names looked up by comparison before the hash map is used.
const FEW_NAMES: usize = 8;

impl Names {
    /// The name's index in `batch` and its length.
    fn get(
        &mut self,
        bytes: &[u8],
        batch: &mut RowBatch,
        range: Range,
        what: &str,
    ) -> Result<(u32, u64), String> {
        if let Some((_, index, len)) = self.first.iter().find(|(r, _, _)| *r == range) {
            return Ok((*index, *len));
        }
        if let Some(found) = self.more.get(&range) {
            return Ok(*found);
        }
        if range.1 > u32::from(u16::MAX) {
            return Err(format!("{what} of {} bytes is longer than 65535", range.1));
        }
        let (start, len) = check(bytes, range, what)?;
        let raw = &bytes[start as usize..][..len as usize];
        let name = std::str::from_utf8(raw).map_err(|_| format!("{what} is not UTF-8"))?;
        let found = (batch.add_name(name), u64::from(len));
        if self.first.len() < FEW_NAMES {
            self.first.push((range, found.0, found.1));
        } else {
            self.more.insert(range, found);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::types::PluginError;
    use v0_1::{CellOp, MutationBatch, PackedCell, PackedRow, Refusal, Span};

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

    fn unpack(b: impl Into<Packed>, events: usize) -> Result<Vec<Outcome>, String> {
        super::unpack(b.into(), events, &mut Tally::new(limits(), "p", None))
            .map(Unpacked::outcomes)
            .map_err(|b| b.what)
    }

    fn unpack_with(
        b: impl Into<Packed>,
        events: usize,
        limits: OutputLimits,
    ) -> Result<Vec<Outcome>, Broken> {
        super::unpack(b.into(), events, &mut Tally::new(limits, "p", None)).map(Unpacked::outcomes)
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
        let err = super::unpack(
            batch().into(),
            3,
            &mut Tally::new(limits(), "p", Some(&tables)),
        )
        .unwrap_err();
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
        assert!(super::unpack(one().into(), 1, &mut tally).is_ok());
        tally.next_call();
        let err = super::unpack(one().into(), 1, &mut tally).unwrap_err();
        assert!(err.what.contains("max_rows_per_batch"), "{}", err.what);
    }

    /// The 0.2 form of `batch()`: the same rows, cells and refusal.
    fn words() -> Packed {
        let mut w = vec![1, 0, 1, 1, 2, 9, 0, 2];
        w.extend([PUT, 3, 1, 4, 1, 5, 1]);
        w.extend([DELETE_ROW, 0, 0, 0, 0, 0, 0]);
        Packed {
            bytes: b"tk1dqv".to_vec(),
            index: Index::Words(w),
            refused: vec![(2, PluginError::Malformed("x".into()))],
        }
    }

    fn with_words(f: impl FnOnce(&mut Vec<u32>)) -> Packed {
        let mut p = words();
        if let Index::Words(w) = &mut p.index {
            f(w);
        }
        p
    }

    #[test]
    fn both_versions_of_the_contract_unpack_to_the_same_rows() {
        assert_eq!(unpack(words(), 3), unpack(batch(), 3));
        let high = with_words(|w| w[6] = 1);
        let rows = unpack(high, 3).unwrap();
        assert_eq!(rows[1].as_ref().unwrap()[0].version, 9 + (1 << 32));
    }

    #[test]
    fn words_that_do_not_add_up_are_contract_errors() {
        let short = with_words(|w| w.truncate(12));
        assert!(
            unpack(short, 3)
                .unwrap_err()
                .contains("2 cells run past the 4 words")
        );
        let huge = with_words(|w| w[7] = u32::MAX);
        assert!(unpack(huge, 3).unwrap_err().contains("cells run past"));
        let torn = with_words(|w| w.extend([1, 0, 1]));
        assert!(unpack(torn, 3).unwrap_err().contains("end inside a row"));
        let op = with_words(|w| w[8] = 7);
        assert!(unpack(op, 3).unwrap_err().contains("operation 7"));
        let outside = with_words(|w| w[14] = 100);
        assert!(
            unpack(outside, 3)
                .unwrap_err()
                .contains("a value at 5+100 lies outside")
        );
        let version = with_words(|w| w[6] = u32::MAX);
        assert!(
            unpack(version, 3)
                .unwrap_err()
                .contains("above the largest version")
        );
    }

    /// Cells that all point at one large value: each use is counted.
    #[test]
    fn a_value_shared_by_many_cells_counts_every_time() {
        let mut p = with_words(|w| {
            w.truncate(ROW_WORDS);
            w[7] = 1000;
            for _ in 0..1000 {
                w.extend([PUT, 0, 1, 0, 1, 0, 4096]);
            }
        });
        p.bytes = vec![b'x'; 4096];
        p.refused.clear();
        let roomy = OutputLimits {
            cells_per_event: u64::MAX,
            cells_per_batch: u64::MAX,
            ..limits()
        };
        let err = unpack_with(p, 3, roomy).unwrap_err();
        assert!(err.what.contains("max_output"), "{}", err.what);
    }
}
