//! A batch's row mutations as a transform returned them, once checked:
//! every key, qualifier and value stays in the one buffer the plugin sent,
//! and rows and cells are ranges into it. Nothing is built per cell (no
//! reference-counted slice, no shared name), and stores read them in
//! place: [`Mutations`] hands a store either these batches or owned
//! [`RowMutation`]s, both read as borrowed [`RowRef`]s.

use std::sync::Arc;

use bytes::Bytes;

use super::rows::{Cell, RowMutation};

/// A byte range of a batch's buffer: start and length.
pub(crate) type Range = (u32, u32);

/// What a cell does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Put,
    DeleteCell,
    DeleteFamily,
    DeleteRow,
}

/// One checked row: its table (an index into the names), key, version
/// and cells.
#[derive(Debug, Clone, Copy)]
struct RowAt {
    table: u32,
    row_key: Range,
    version: u64,
    first_cell: u32,
    cell_count: u32,
}

/// One checked cell: its family (an index into the names), qualifier and
/// value; ranges an operation does not use are empty.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CellAt {
    pub op: Op,
    pub family: u32,
    pub qualifier: Range,
    pub value: Range,
}

/// The rows of one batch, read in place.
#[derive(Debug, Default)]
pub struct RowBatch {
    bytes: Vec<u8>,
    /// Table and family names, checked UTF-8.
    names: Vec<Box<str>>,
    rows: Vec<RowAt>,
    cells: Vec<CellAt>,
}

/// What a store is asked to write: owned mutations (restores, copies,
/// tests) or batches as transforms returned them (replays).
#[derive(Debug, Clone, Copy)]
pub enum Mutations<'a> {
    /// Owned mutations.
    Owned(&'a [RowMutation]),
    /// A transform's batches, read in place.
    Packed(&'a [RowBatch]),
}

impl<'a> Mutations<'a> {
    /// Every row, in order, borrowed.
    pub fn rows(self) -> impl Iterator<Item = RowRef<'a>> + Clone {
        let (owned, packed) = match self {
            Mutations::Owned(m) => (m, &[][..]),
            Mutations::Packed(b) => (&[][..], b),
        };
        owned
            .iter()
            .map(RowMutation::as_row)
            .chain(packed.iter().flat_map(RowBatch::rows))
    }

    /// How many rows.
    pub fn len(self) -> usize {
        match self {
            Mutations::Owned(m) => m.len(),
            Mutations::Packed(b) => b.iter().map(RowBatch::len).sum(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// One row of a batch (or of a [`RowMutation`]), borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    /// Logical table name.
    pub table: &'a str,
    /// Row key.
    pub row_key: &'a [u8],
    /// Version of every change.
    pub version: u64,
    cells: CellsOf<'a>,
}

#[derive(Debug, Clone, Copy)]
enum CellsOf<'a> {
    Packed {
        cells: &'a [CellAt],
        batch: &'a RowBatch,
    },
    Owned(&'a [Cell]),
}

/// One change to a row, borrowed (see [`Cell`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellRef<'a> {
    /// Writes a value.
    Put {
        /// Column family.
        family: &'a str,
        /// Column qualifier.
        qualifier: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// Deletes one cell.
    DeleteCell {
        /// Column family.
        family: &'a str,
        /// Column qualifier.
        qualifier: &'a [u8],
    },
    /// Deletes a family.
    DeleteFamily {
        /// Column family.
        family: &'a str,
    },
    /// Deletes the row.
    DeleteRow,
}

impl RowBatch {
    /// An empty batch with room for about `rows` rows; the unpacker adds
    /// them once checked, then the buffer they point into.
    pub(crate) fn with_capacity(rows: usize) -> Self {
        RowBatch {
            bytes: Vec::new(),
            names: Vec::new(),
            rows: Vec::with_capacity(rows),
            cells: Vec::with_capacity(rows),
        }
    }

    /// A name by its index.
    pub(crate) fn name(&self, index: u32) -> &str {
        &self.names[index as usize]
    }

    /// Puts in the buffer every range was checked against.
    pub(crate) fn set_bytes(&mut self, bytes: Vec<u8>) {
        self.bytes = bytes;
    }

    /// Keeps a checked name; its index.
    pub(crate) fn add_name(&mut self, name: &str) -> u32 {
        self.names.push(name.into());
        (self.names.len() - 1) as u32
    }

    /// Adds a checked row whose cells follow.
    pub(crate) fn add_row(&mut self, table: u32, row_key: Range, version: u64, cells: u32) {
        self.rows.push(RowAt {
            table,
            row_key,
            version,
            first_cell: self.cells.len() as u32,
            cell_count: cells,
        });
    }

    /// Adds a checked cell of the last row.
    pub(crate) fn add_cell(&mut self, cell: CellAt) {
        self.cells.push(cell);
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, in order.
    pub fn rows(&self) -> impl Iterator<Item = RowRef<'_>> + Clone {
        self.rows.iter().map(move |r| RowRef {
            table: &self.names[r.table as usize],
            row_key: self.range(r.row_key),
            version: r.version,
            cells: CellsOf::Packed {
                cells: &self.cells[r.first_cell as usize..][..r.cell_count as usize],
                batch: self,
            },
        })
    }

    fn range(&self, (start, len): Range) -> &[u8] {
        &self.bytes[start as usize..][..len as usize]
    }

    fn cell(&self, c: &CellAt) -> CellRef<'_> {
        let family = || &*self.names[c.family as usize];
        match c.op {
            Op::Put => CellRef::Put {
                family: family(),
                qualifier: self.range(c.qualifier),
                value: self.range(c.value),
            },
            Op::DeleteCell => CellRef::DeleteCell {
                family: family(),
                qualifier: self.range(c.qualifier),
            },
            Op::DeleteFamily => CellRef::DeleteFamily { family: family() },
            Op::DeleteRow => CellRef::DeleteRow,
        }
    }

    /// The rows as owned mutations (sharing one copy of the buffer).
    pub fn to_mutations(&self) -> Vec<RowMutation> {
        let bytes = Bytes::copy_from_slice(&self.bytes);
        let names: Vec<Arc<str>> = self.names.iter().map(|n| Arc::from(&**n)).collect();
        let slice = |(start, len): Range| bytes.slice(start as usize..(start + len) as usize);
        self.rows
            .iter()
            .map(|r| RowMutation {
                table: names[r.table as usize].clone(),
                row_key: slice(r.row_key),
                version: r.version,
                cells: self.cells[r.first_cell as usize..][..r.cell_count as usize]
                    .iter()
                    .map(|c| {
                        let family = || names[c.family as usize].clone();
                        match c.op {
                            Op::Put => Cell::Put {
                                family: family(),
                                qualifier: slice(c.qualifier),
                                value: slice(c.value),
                            },
                            Op::DeleteCell => Cell::DeleteCell {
                                family: family(),
                                qualifier: slice(c.qualifier),
                            },
                            Op::DeleteFamily => Cell::DeleteFamily { family: family() },
                            Op::DeleteRow => Cell::DeleteRow,
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// Adds the rows of `other` after these.
    pub fn append(&mut self, other: RowBatch) {
        let (bytes, names, cells) = (
            self.bytes.len() as u32,
            self.names.len() as u32,
            self.cells.len() as u32,
        );
        let shift = |(start, len): Range| (start + bytes, len);
        self.bytes.extend_from_slice(&other.bytes);
        self.names.extend(other.names);
        self.rows.extend(other.rows.into_iter().map(|r| RowAt {
            table: r.table + names,
            row_key: shift(r.row_key),
            first_cell: r.first_cell + cells,
            ..r
        }));
        self.cells.extend(other.cells.into_iter().map(|c| CellAt {
            family: c.family + names,
            qualifier: shift(c.qualifier),
            value: shift(c.value),
            ..c
        }));
    }
}

impl<'a> RowRef<'a> {
    /// The changes, in order.
    pub fn cells(&self) -> impl Iterator<Item = CellRef<'a>> + 'a {
        let (packed, owned) = match self.cells {
            CellsOf::Packed { cells, batch } => (Some((cells, batch)), None),
            CellsOf::Owned(cells) => (None, Some(cells)),
        };
        let packed = packed
            .into_iter()
            .flat_map(|(cells, batch)| cells.iter().map(move |c| batch.cell(c)));
        let owned = owned.into_iter().flatten().map(|c| match c {
            Cell::Put {
                family,
                qualifier,
                value,
            } => CellRef::Put {
                family,
                qualifier,
                value,
            },
            Cell::DeleteCell { family, qualifier } => CellRef::DeleteCell { family, qualifier },
            Cell::DeleteFamily { family } => CellRef::DeleteFamily { family },
            Cell::DeleteRow => CellRef::DeleteRow,
        });
        packed.chain(owned)
    }
}

impl RowMutation {
    /// This mutation, borrowed as a batch's row is.
    pub fn as_row(&self) -> RowRef<'_> {
        RowRef {
            table: &self.table,
            row_key: &self.row_key,
            version: self.version,
            cells: CellsOf::Owned(&self.cells),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Table `t`, row `k1` at 9: put d:q = v, then a row delete.
    fn batch(key: &[u8]) -> RowBatch {
        let mut bytes = b"tdqv".to_vec();
        bytes.extend_from_slice(key);
        let mut b = RowBatch::with_capacity(1);
        let (t, d) = (b.add_name("t"), b.add_name("d"));
        b.add_row(t, (4, key.len() as u32), 9, 2);
        b.add_cell(CellAt {
            op: Op::Put,
            family: d,
            qualifier: (2, 1),
            value: (3, 1),
        });
        b.add_cell(CellAt {
            op: Op::DeleteRow,
            family: 0,
            qualifier: (0, 0),
            value: (0, 0),
        });
        b.set_bytes(bytes);
        b
    }

    fn read(b: &RowBatch) -> Vec<(String, Vec<u8>, u64, Vec<CellRef<'_>>)> {
        b.rows()
            .map(|r| {
                (
                    r.table.to_string(),
                    r.row_key.to_vec(),
                    r.version,
                    r.cells().collect(),
                )
            })
            .collect()
    }

    #[test]
    fn rows_read_in_place_are_the_rows_made_into_mutations() {
        let b = batch(b"k1");
        let put = CellRef::Put {
            family: "d",
            qualifier: b"q",
            value: b"v",
        };
        assert_eq!(
            read(&b),
            vec![("t".into(), b"k1".to_vec(), 9, vec![put, CellRef::DeleteRow])]
        );
        let owned = b.to_mutations();
        let again: Vec<_> = owned
            .iter()
            .map(|m| {
                let r = m.as_row();
                (
                    r.table.to_string(),
                    r.row_key.to_vec(),
                    r.version,
                    r.cells().collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(again, read(&b));
    }

    #[test]
    fn an_appended_batch_keeps_its_own_names_and_ranges() {
        let mut b = batch(b"k1");
        b.append(batch(b"other"));
        let rows = read(&b);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].1, b"other");
        assert_eq!(rows[1].3, rows[0].3);
        assert_eq!(
            b.to_mutations()[1].cells[0],
            Cell::put("d", &b"q"[..], &b"v"[..])
        );
    }
}
