//! Which cells of a row are visible, for stores that keep every version
//! and delete markers the way HBase does: a delete hides what was written
//! at or before its version, in its cell, family or whole row. Because the
//! rules only compare versions, applying the same mutations in any order,
//! any number of times, gives the same visible row — replay is idempotent.

use std::collections::BTreeMap;

use crate::model::{CellRef, Row, StoredCell};

/// What a stored entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// Packs the entries of one row version (all of the same version) into
/// bytes, sorted so that equal sets always pack to equal bytes:
/// `kind u8, family len u16, family, qualifier len u32, qualifier, value
/// len u32, value`, all little-endian.
pub fn encode(entries: &mut [Entry]) -> Vec<u8> {
    let mut parts: Vec<Part<'_>> = entries
        .iter()
        .map(|e| {
            (
                e.kind,
                e.family.as_str(),
                e.qualifier.as_slice(),
                e.value.as_slice(),
            )
        })
        .collect();
    encode_parts(&mut parts)
}

/// One entry to pack, borrowed from a mutation.
pub type Part<'a> = (EntryKind, &'a str, &'a [u8], &'a [u8]);

/// A cell of a mutation as an entry: its kind, family, qualifier and value
/// (empty where the kind has none).
pub fn part_of(cell: CellRef<'_>) -> Part<'_> {
    match cell {
        CellRef::Put {
            family,
            qualifier,
            value,
        } => (EntryKind::Put, family, qualifier, value),
        CellRef::DeleteCell { family, qualifier } => {
            (EntryKind::DeleteCell, family, qualifier, &[])
        }
        CellRef::DeleteFamily { family } => (EntryKind::DeleteFamily, family, &[], &[]),
        CellRef::DeleteRow => (EntryKind::DeleteRow, "", &[], &[]),
    }
}

/// Packs borrowed entries exactly as [`encode`] packs owned ones.
pub fn encode_parts(parts: &mut Vec<Part<'_>>) -> Vec<u8> {
    // Two writes of the same cell (or marker) at the same version: the
    // later one wins, as in HBase. `parts` come in log order and the sort
    // is stable, so the later one is the last of its kind.
    parts.sort_by(|a, b| (a.1, a.2, a.0).cmp(&(b.1, b.2, b.0)));
    let mut kept: Vec<Part<'_>> = Vec::with_capacity(parts.len());
    for part in parts.drain(..) {
        match kept.last_mut() {
            Some(last) if (last.0, last.1, last.2) == (part.0, part.1, part.2) => *last = part,
            _ => kept.push(part),
        }
    }
    *parts = kept;
    let size: usize = parts
        .iter()
        .map(|p| 11 + p.1.len() + p.2.len() + p.3.len())
        .sum();
    let mut out = Vec::with_capacity(size);
    for (kind, family, qualifier, value) in parts.iter() {
        debug_assert!(
            family.len() <= usize::from(u16::MAX),
            "stores check family lengths"
        );
        out.push(*kind as u8);
        out.extend_from_slice(&(family.len() as u16).to_le_bytes());
        out.extend_from_slice(family.as_bytes());
        out.extend_from_slice(&(qualifier.len() as u32).to_le_bytes());
        out.extend_from_slice(qualifier);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// Unpacks what [`encode`] packed, giving every entry `version`.
pub fn decode(bytes: &[u8], version: u64, out: &mut Vec<Entry>) -> Result<(), String> {
    let mut rest = bytes;
    let mut take = |n: usize| -> Result<&[u8], String> {
        if rest.len() < n {
            return Err(format!(
                "cell data cut short ({} bytes left, {n} needed)",
                rest.len()
            ));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    while let Ok(kind) = take(1) {
        let kind = EntryKind::from_code(kind[0] as i64)
            .ok_or_else(|| format!("unknown cell kind {}", kind[0]))?;
        let family_len =
            u16::from_le_bytes(take(2)?.try_into().map_err(|_| "bad length")?) as usize;
        let family =
            String::from_utf8(take(family_len)?.to_vec()).map_err(|_| "family is not UTF-8")?;
        let qualifier_len =
            u32::from_le_bytes(take(4)?.try_into().map_err(|_| "bad length")?) as usize;
        let qualifier = take(qualifier_len)?.to_vec();
        let value_len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "bad length")?) as usize;
        let value = take(value_len)?.to_vec();
        out.push(Entry {
            family,
            qualifier,
            version,
            kind,
            value,
        });
    }
    Ok(())
}

/// Merges two packed entry sets of one row version: the union, where the
/// same cell written twice keeps the newer write (as [`encode_parts`]).
pub fn merge(older: &[u8], newer: &[u8]) -> Result<Vec<u8>, String> {
    let mut entries = Vec::new();
    decode(older, 0, &mut entries)?;
    decode(newer, 0, &mut entries)?;
    Ok(encode(&mut entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_is_canonical_and_merging_is_idempotent() {
        let mut a = vec![
            e("m", "writer", 1, EntryKind::Put, "rmu"),
            e("d", "text", 1, EntryKind::Put, "hi"),
        ];
        let mut b = vec![a[1].clone(), a[0].clone()];
        let (pa, pb) = (encode(&mut a), encode(&mut b));
        assert_eq!(pa, pb);
        let mut out = Vec::new();
        decode(&pa, 7, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].family.as_str(), out[0].version), ("d", 7));
        let mut newer = vec![e("d", "text", 1, EntryKind::Put, "ok")];
        let merged = merge(&pa, &encode(&mut newer)).unwrap();
        assert_eq!(merge(&merged, &encode(&mut newer)).unwrap(), merged);
        let mut back = Vec::new();
        decode(&merged, 1, &mut back).unwrap();
        assert_eq!(back.iter().find(|x| x.family == "d").unwrap().value, b"ok");
        // The same cell at the same version: the later write wins, as in
        // HBase (`qty` 2 then 10 at one millisecond stores 10).
        let mut two = vec![e("d", "qty", 1, EntryKind::Put, "2")];
        let mut ten = vec![e("d", "qty", 1, EntryKind::Put, "10")];
        let (two, ten) = (encode(&mut two), encode(&mut ten));
        let mut back = Vec::new();
        decode(&merge(&two, &ten).unwrap(), 1, &mut back).unwrap();
        assert_eq!(back[0].value, b"10");
        back.clear();
        decode(&merge(&ten, &two).unwrap(), 1, &mut back).unwrap();
        assert_eq!(back[0].value, b"2");
        let mut in_one_batch = vec![
            e("d", "qty", 1, EntryKind::Put, "2"),
            e("d", "qty", 1, EntryKind::Put, "10"),
        ];
        back.clear();
        decode(&encode(&mut in_one_batch), 1, &mut back).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].value, b"10");
        assert!(decode(&pa[..pa.len() - 1], 1, &mut back).is_err());
    }

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
