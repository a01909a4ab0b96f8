//! Writing row mutations straight into the packed form a batch returns in
//! (contract 0.2; see `mutation-batch` in `sdk/wit/plugin.wit`): names,
//! keys and values appended to one buffer, everything else as words, so a
//! cell costs no allocation of its own.

use crate::{Cell, RowMutation};

/// Operation words of a packed cell.
const PUT: u32 = 0;
const DELETE_CELL: u32 = 1;
const DELETE_FAMILY: u32 = 2;
const DELETE_ROW: u32 = 3;
/// Words of a row before its cells: event, table range, key range,
/// version (two words), cell count.
const ROW_WORDS: usize = 8;
/// Words of a cell: operation, family, qualifier and value ranges.
const CELL_WORDS: usize = 7;
/// How many distinct table and family names are looked for before a name
/// is written again.
const NAMES_KEPT: usize = 16;

/// The rows a batch of events becomes, written in place.
///
/// The fast form of a transform writes into one (see
/// [`transform`](crate::transform)). Natively, make one with
/// [`Rows::new`] and read what was written with [`Rows::mutations`]:
///
/// ```
/// use switchyard_sdk::{Cell, RowMutation, Rows};
/// let mut rows = Rows::new();
/// rows.row("messages", "room-1#1", 7).put("d", "text", "hi").delete_cell("d", "old");
/// assert_eq!(
///     rows.mutations(),
///     vec![RowMutation::new("messages", "room-1#1", 7)
///         .with(Cell::put("d", "text", "hi"))
///         .with(Cell::delete_cell("d", "old"))]
/// );
/// ```
#[derive(Debug, Default)]
pub struct Rows {
    pub(crate) bytes: Vec<u8>,
    pub(crate) words: Vec<u32>,
    /// The event of the batch the next rows belong to.
    pub(crate) event: u32,
    /// Table and family names already in `bytes`.
    names: Vec<(u32, u32)>,
}

/// One row being written: add its cells, in order.
#[derive(Debug)]
#[must_use = "a row without cells writes nothing: add `.put(..)`, `.delete_cell(..)`, `.delete_family(..)` or `.delete_row()`"]
pub struct RowWriter<'a> {
    rows: &'a mut Rows,
    /// Where the row's cell count is.
    count_at: usize,
}

impl Rows {
    /// Nothing written yet.
    pub fn new() -> Self {
        Rows::default()
    }

    /// With room for a batch of about this many bytes, rows and cells.
    #[cfg_attr(
        not(target_family = "wasm"),
        allow(
            dead_code,
            reason = "the wasm glue reads batches; natively only the tests do"
        )
    )]
    pub(crate) fn with_capacity(bytes: usize, words: usize) -> Self {
        Rows {
            bytes: Vec::with_capacity(bytes),
            words: Vec::with_capacity(words),
            ..Rows::default()
        }
    }

    /// Starts a row of `table` at `version`; its cells follow.
    ///
    /// The version must come from the event, never from the clock (see
    /// [`RowMutation`]).
    pub fn row(&mut self, table: &str, row_key: impl AsRef<[u8]>, version: u64) -> RowWriter<'_> {
        let table = self.name(table);
        let key = self.bytes(row_key.as_ref());
        let event = self.event;
        self.words.extend([
            event,
            table.0,
            table.1,
            key.0,
            key.1,
            version as u32,
            (version >> 32) as u32,
            0,
        ]);
        let count_at = self.words.len() - 1;
        RowWriter {
            rows: self,
            count_at,
        }
    }

    /// Writes a whole mutation.
    pub fn push(&mut self, mutation: &RowMutation) {
        let mut row = self.row(&mutation.table, &mutation.row_key, mutation.version);
        for cell in &mutation.cells {
            match cell {
                Cell::Put {
                    family,
                    qualifier,
                    value,
                } => row.put(family, qualifier, value),
                Cell::DeleteCell { family, qualifier } => row.delete_cell(family, qualifier),
                Cell::DeleteFamily { family } => row.delete_family(family),
                Cell::DeleteRow => row.delete_row(),
            };
        }
    }

    /// What was written, as mutations (for tests; the host reads the
    /// packed form).
    pub fn mutations(&self) -> Vec<RowMutation> {
        let text = |at: &[u32]| {
            String::from_utf8_lossy(&self.bytes[at[0] as usize..][..at[1] as usize]).into_owned()
        };
        let raw = |at: &[u32]| self.bytes[at[0] as usize..][..at[1] as usize].to_vec();
        let mut out = Vec::new();
        let mut words = self.words.as_slice();
        while let Some(row) = words.get(..ROW_WORDS) {
            let version = u64::from(row[5]) | (u64::from(row[6]) << 32);
            let mut mutation = RowMutation::new(text(&row[1..3]), raw(&row[3..5]), version);
            words = &words[ROW_WORDS..];
            for _ in 0..row[7] {
                let c = &words[..CELL_WORDS];
                mutation.cells.push(match c[0] {
                    PUT => Cell::Put {
                        family: text(&c[1..3]),
                        qualifier: raw(&c[3..5]),
                        value: raw(&c[5..7]),
                    },
                    DELETE_CELL => Cell::delete_cell(text(&c[1..3]), raw(&c[3..5])),
                    DELETE_FAMILY => Cell::DeleteFamily {
                        family: text(&c[1..3]),
                    },
                    _ => Cell::DeleteRow,
                });
                words = &words[CELL_WORDS..];
            }
            out.push(mutation);
        }
        out
    }

    /// Where the rows of the current event start, to drop them if the
    /// event is refused after all.
    #[cfg_attr(
        not(target_family = "wasm"),
        allow(
            dead_code,
            reason = "the wasm glue reads batches; natively only the tests do"
        )
    )]
    pub(crate) fn mark(&self) -> (usize, usize) {
        (self.bytes.len(), self.words.len())
    }

    /// Drops what was written since `mark`.
    #[cfg_attr(
        not(target_family = "wasm"),
        allow(
            dead_code,
            reason = "the wasm glue reads batches; natively only the tests do"
        )
    )]
    pub(crate) fn rewind(&mut self, (bytes, words): (usize, usize)) {
        self.bytes.truncate(bytes);
        self.words.truncate(words);
        self.names.retain(|(start, _)| (*start as usize) < bytes);
    }

    fn bytes(&mut self, data: &[u8]) -> (u32, u32) {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(data);
        (start, data.len() as u32)
    }

    /// A table or family name, sharing an earlier copy when there is one.
    fn name(&mut self, name: &str) -> (u32, u32) {
        let found = self.names.iter().copied().find(|&(start, len)| {
            self.bytes.get(start as usize..(start + len) as usize) == Some(name.as_bytes())
        });
        found.unwrap_or_else(|| {
            let range = self.bytes(name.as_bytes());
            if self.names.len() < NAMES_KEPT {
                self.names.push(range);
            }
            range
        })
    }
}

impl RowWriter<'_> {
    fn cell(&mut self, op: u32, family: (u32, u32), qualifier: (u32, u32), value: (u32, u32)) {
        self.rows.words.extend([
            op,
            family.0,
            family.1,
            qualifier.0,
            qualifier.1,
            value.0,
            value.1,
        ]);
        self.rows.words[self.count_at] += 1;
    }

    /// Writes `value` to `family:qualifier`.
    pub fn put(
        &mut self,
        family: &str,
        qualifier: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> &mut Self {
        let family = self.rows.name(family);
        let qualifier = self.rows.bytes(qualifier.as_ref());
        let value = self.rows.bytes(value.as_ref());
        self.cell(PUT, family, qualifier, value);
        self
    }

    /// Deletes the cell `family:qualifier`.
    pub fn delete_cell(&mut self, family: &str, qualifier: impl AsRef<[u8]>) -> &mut Self {
        let family = self.rows.name(family);
        let qualifier = self.rows.bytes(qualifier.as_ref());
        self.cell(DELETE_CELL, family, qualifier, (0, 0));
        self
    }

    /// Deletes every cell of `family`.
    pub fn delete_family(&mut self, family: &str) -> &mut Self {
        let family = self.rows.name(family);
        self.cell(DELETE_FAMILY, family, (0, 0), (0, 0));
        self
    }

    /// Deletes the whole row.
    pub fn delete_row(&mut self) -> &mut Self {
        self.cell(DELETE_ROW, (0, 0), (0, 0), (0, 0));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_read_back_as_written_and_names_are_stored_once() {
        let first = RowMutation::new("t", "k1", u64::from(u32::MAX) + 5)
            .with(Cell::put("d", "q", "v"))
            .with(Cell::DeleteFamily { family: "d".into() })
            .with(Cell::DeleteRow);
        let second = RowMutation::new("t", "k2", 1).with(Cell::delete_cell("m", "w"));
        let mut rows = Rows::new();
        rows.push(&first);
        rows.push(&second);
        assert_eq!(rows.mutations(), vec![first, second]);
        assert_eq!(rows.bytes, b"tk1dqvk2mw");
    }

    #[test]
    fn a_refused_event_leaves_nothing_behind() {
        let mut rows = Rows::new();
        rows.row("t", "k1", 1).put("d", "q", "v");
        let mark = rows.mark();
        rows.event = 1;
        rows.row("u", "k2", 2).put("e", "q", "v");
        rows.rewind(mark);
        rows.row("u", "k3", 3).delete_row();
        assert_eq!(rows.mutations().len(), 2);
        assert_eq!(rows.mutations()[1].table, "u");
        assert_eq!(rows.words[ROW_WORDS + CELL_WORDS], 1, "the event index");
    }
}
