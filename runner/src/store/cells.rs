//! Which cells of a row are visible, for stores that keep every version
//! and delete markers the way HBase does: a delete hides what was written
//! at or before its version, in its cell, family or whole row. Because the
//! rules only compare versions, applying the same mutations in any order,
//! any number of times, gives the same visible row — replay is idempotent.

use std::collections::BTreeMap;

use crate::model::{Row, StoredCell};

/// What a stored entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    /// A value.
    Put = 0,
    /// Hides one cell.
    DeleteCell = 1,
    /// Hides a family.
    DeleteFamily = 2,
    /// Hides the row.
    DeleteRow = 3,
}

impl EntryKind {
    /// From the stored number.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => EntryKind::Put,
            1 => EntryKind::DeleteCell,
            2 => EntryKind::DeleteFamily,
            3 => EntryKind::DeleteRow,
            _ => return None,
        })
    }
}

/// One stored version of something in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Family (empty for a row delete).
    pub family: String,
    /// Qualifier (empty for family and row deletes).
    pub qualifier: Vec<u8>,
    /// Version.
    pub version: u64,
    /// Put or which delete.
    pub kind: EntryKind,
    /// The value of a put.
    pub value: Vec<u8>,
}

/// The visible row made of `entries` (all versions ≤ the read point), or
/// `None` when nothing is visible.
pub fn visible_row(row_key: Vec<u8>, entries: &[Entry]) -> Option<Row> {
    let row_delete = entries
        .iter()
        .filter(|e| e.kind == EntryKind::DeleteRow)
        .map(|e| e.version)
        .max();
    let mut family_delete: BTreeMap<&str, u64> = BTreeMap::new();
    let mut cell_delete: BTreeMap<(&str, &[u8]), u64> = BTreeMap::new();
    let mut latest_put: BTreeMap<(&str, &[u8]), &Entry> = BTreeMap::new();
    for e in entries {
        let cell = (e.family.as_str(), e.qualifier.as_slice());
        match e.kind {
            EntryKind::DeleteRow => {}
            EntryKind::DeleteFamily => {
                let v = family_delete.entry(&e.family).or_insert(0);
                *v = (*v).max(e.version);
            }
            EntryKind::DeleteCell => {
                let v = cell_delete.entry(cell).or_insert(0);
                *v = (*v).max(e.version);
            }
            EntryKind::Put => {
                let slot = latest_put.entry(cell).or_insert(e);
                if e.version > slot.version {
                    *slot = e;
                }
            }
        }
    }
    let cells: Vec<StoredCell> = latest_put
        .into_iter()
        .filter(|((family, _), put)| {
            let hidden_by = [
                row_delete,
                family_delete.get(family).copied(),
                cell_delete
                    .get(&(*family, put.qualifier.as_slice()))
                    .copied(),
            ];
            // A delete at the same version as the put wins, as in HBase.
            hidden_by.into_iter().flatten().all(|d| put.version > d)
        })
        .map(|(_, put)| StoredCell {
            family: put.family.clone(),
            qualifier: put.qualifier.clone(),
            value: put.value.clone(),
            version: put.version,
        })
        .collect();
    (!cells.is_empty()).then_some(Row { row_key, cells })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(family: &str, q: &str, version: u64, kind: EntryKind, value: &str) -> Entry {
        Entry {
            family: family.into(),
            qualifier: q.as_bytes().to_vec(),
            version,
            kind,
            value: value.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_latest_put_wins_and_deletes_hide_older_versions() {
        let entries = [
            e("d", "text", 1, EntryKind::Put, "a"),
            e("d", "text", 3, EntryKind::Put, "c"),
            e("d", "user", 1, EntryKind::Put, "u"),
            e("d", "user", 2, EntryKind::DeleteCell, ""),
        ];
        let row = visible_row(b"k".to_vec(), &entries).unwrap();
        assert_eq!(row.cells.len(), 1);
        assert_eq!(row.cells[0].value, b"c");
        assert_eq!(row.cells[0].version, 3);
    }

    #[test]
    fn a_row_delete_hides_everything_up_to_its_version_and_wins_ties() {
        let entries = [
            e("d", "text", 5, EntryKind::Put, "a"),
            e("", "", 5, EntryKind::DeleteRow, ""),
        ];
        assert_eq!(visible_row(b"k".to_vec(), &entries), None);
        let later = [
            e("d", "text", 5, EntryKind::Put, "a"),
            e("", "", 5, EntryKind::DeleteRow, ""),
            e("d", "text", 6, EntryKind::Put, "b"),
        ];
        assert_eq!(
            visible_row(b"k".to_vec(), &later).unwrap().cells[0].value,
            b"b"
        );
    }

    #[test]
    fn a_family_delete_spares_other_families() {
        let entries = [
            e("d", "text", 1, EntryKind::Put, "a"),
            e("m", "writer", 1, EntryKind::Put, "rmu"),
            e("m", "", 2, EntryKind::DeleteFamily, ""),
        ];
        let row = visible_row(b"k".to_vec(), &entries).unwrap();
        assert_eq!(row.cells.len(), 1);
        assert_eq!(row.cells[0].family, "d");
    }
}
