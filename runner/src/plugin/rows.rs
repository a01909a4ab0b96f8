//! Row mutations as owned values: what stores are given by every writer
//! but a replay (restores, copies, tests; a replay hands them its
//! transform's `RowBatch`es instead). Cells share one buffer (`Bytes`
//! slices) and their table and family names (`Arc<str>`); see `model` for
//! the rest of the data moved between rooms.

use std::sync::Arc;

use bytes::Bytes;

/// A versioned change to one row of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowMutation {
    /// Logical table name.
    pub table: Arc<str>,
    /// Row key.
    pub row_key: Bytes,
    /// The changes, applied together.
    pub cells: Vec<Cell>,
    /// Version of every change (derived from the event).
    pub version: u64,
}

/// One change to a row. Deletes hide what was written at or before the
/// mutation's version, as HBase delete markers do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Writes a value.
    Put {
        /// Column family.
        family: Arc<str>,
        /// Column qualifier.
        qualifier: Bytes,
        /// The value.
        value: Bytes,
    },
    /// Deletes one cell.
    DeleteCell {
        /// Column family.
        family: Arc<str>,
        /// Column qualifier.
        qualifier: Bytes,
    },
    /// Deletes a family.
    DeleteFamily {
        /// Column family.
        family: Arc<str>,
    },
    /// Deletes the row.
    DeleteRow,
}

impl Cell {
    /// What the cell holds on the host: its own size, names and value.
    pub fn host_bytes(&self) -> u64 {
        let held = match self {
            Cell::Put {
                family,
                qualifier,
                value,
            } => family.len() + qualifier.len() + value.len(),
            Cell::DeleteCell { family, qualifier } => family.len() + qualifier.len(),
            Cell::DeleteFamily { family } => family.len(),
            Cell::DeleteRow => 0,
        };
        (std::mem::size_of::<Cell>() + held) as u64
    }

    /// A put (handy in tests and copies).
    pub fn put(family: &str, qualifier: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Cell::Put {
            family: family.into(),
            qualifier: qualifier.into(),
            value: value.into(),
        }
    }
}
