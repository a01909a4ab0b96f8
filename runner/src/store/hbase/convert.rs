//! Between the runner's types and Thrift1's: mutations become the calls
//! that write them, result rows become [`Row`]s.
//!
//! Thrift1 gives one timestamp per call, not per cell, so the mutations
//! of a batch are grouped by table and version: one `mutateRowsTs` per
//! group (split every `batch_rows` rows), plus one `deleteAllRowTs` per
//! row delete. The cell's timestamp is the mutation's version.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use hbase_thrift::hbase::{BatchMutation, Mutation, TRowResult};

use crate::model::{CellRef, Row, RowRef, StoredCell};

/// One Thrift call of an apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `mutateRowsTs`: rows of one table, every cell at `timestamp`.
    Rows {
        /// The table.
        table: Arc<str>,
        /// The cells' timestamp.
        timestamp: i64,
        /// One entry per row.
        batches: Vec<BatchMutation>,
    },
    /// `deleteAllRowTs`: a whole row at or before `timestamp`.
    DeleteRow {
        /// The table.
        table: Arc<str>,
        /// The row.
        row: Vec<u8>,
        /// The marker's timestamp.
        timestamp: i64,
    },
}

impl Call {
    /// The table written.
    pub fn table(&self) -> &str {
        match self {
            Call::Rows { table, .. } | Call::DeleteRow { table, .. } => table,
        }
    }

    /// Rows written (a row delete counts one).
    pub fn rows(&self) -> usize {
        match self {
            Call::Rows { batches, .. } => batches.len(),
            Call::DeleteRow { .. } => 1,
        }
    }
}

/// What one row gets at one version.
#[derive(Default)]
struct RowWrite<'a> {
    puts: BTreeMap<(&'a str, &'a [u8]), &'a [u8]>,
    cell_deletes: BTreeSet<(&'a str, &'a [u8])>,
    family_deletes: BTreeSet<&'a str>,
    row_delete: bool,
}

/// Rows to write, by table and version.
type Groups<'a> = BTreeMap<(&'a str, i64), BTreeMap<&'a [u8], RowWrite<'a>>>;

/// The calls that write `rows` (borrowed from mutations or from a
/// transform's batches). Within a batch, the same cell put twice at the
/// same version keeps the later one in log order, as HBase itself does
/// for two writes (and as every store does).
pub fn calls<'a>(
    rows: impl Iterator<Item = RowRef<'a>>,
    batch_rows: usize,
) -> Result<Vec<Call>, String> {
    let mut groups = Groups::new();
    for m in rows {
        let timestamp = i64::try_from(m.version).map_err(|_| {
            format!(
                "version {} of row {:?} in `{}` is above the largest HBase timestamp",
                m.version,
                String::from_utf8_lossy(m.row_key),
                m.table
            )
        })?;
        let row = groups
            .entry((m.table, timestamp))
            .or_default()
            .entry(m.row_key)
            .or_default();
        for cell in m.cells() {
            match cell {
                CellRef::Put {
                    family,
                    qualifier,
                    value,
                } => {
                    row.puts.insert((family, qualifier), value);
                }
                CellRef::DeleteCell { family, qualifier } => {
                    row.cell_deletes.insert((family, qualifier));
                }
                CellRef::DeleteFamily { family } => {
                    row.family_deletes.insert(family);
                }
                CellRef::DeleteRow => row.row_delete = true,
            }
        }
    }
    let mut out = Vec::new();
    for ((table, timestamp), rows) in groups {
        let table: Arc<str> = table.into();
        let mut batches = Vec::new();
        for (key, write) in rows {
            if write.row_delete {
                out.push(Call::DeleteRow {
                    table: table.clone(),
                    row: key.to_vec(),
                    timestamp,
                });
            }
            let mutations: Vec<Mutation> = write
                .puts
                .iter()
                .map(|((f, q), v)| mutation(false, column(f, Some(q)), Some(v.to_vec())))
                .chain(
                    write
                        .cell_deletes
                        .iter()
                        .map(|(f, q)| mutation(true, column(f, Some(q)), None)),
                )
                .chain(
                    write
                        .family_deletes
                        .iter()
                        .map(|f| mutation(true, column(f, None), None)),
                )
                .collect();
            if !mutations.is_empty() {
                batches.push(BatchMutation::new(key.to_vec(), mutations));
            }
        }
        while !batches.is_empty() {
            let rest = batches.split_off(batches.len().min(batch_rows.max(1)));
            out.push(Call::Rows {
                table: table.clone(),
                timestamp,
                batches,
            });
            batches = rest;
        }
    }
    Ok(out)
}

fn mutation(is_delete: bool, column: Vec<u8>, value: Option<Vec<u8>>) -> Mutation {
    Mutation::new(is_delete, column, value, true)
}

/// `family:qualifier`, or `family` alone (a whole family).
pub fn column(family: &str, qualifier: Option<&[u8]>) -> Vec<u8> {
    let mut name = family.as_bytes().to_vec();
    if let Some(q) = qualifier {
        name.push(b':');
        name.extend_from_slice(q);
    }
    name
}

/// A result row as a [`Row`], cells ordered by family, then qualifier,
/// as the SQLite store orders them.
pub fn row(result: TRowResult) -> Result<Row, String> {
    let row_key = result.row.unwrap_or_default();
    let named = result.columns.unwrap_or_default().into_iter().chain(
        result
            .sorted_columns
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                (
                    c.column_name.unwrap_or_default(),
                    c.cell.unwrap_or_default(),
                )
            }),
    );
    let mut cells = Vec::new();
    for (name, cell) in named {
        let split = name.iter().position(|&b| b == b':').unwrap_or(name.len());
        let family = String::from_utf8(name[..split].to_vec()).map_err(|_| {
            format!(
                "column `{}` of row {:?}: the family is not UTF-8",
                String::from_utf8_lossy(&name),
                String::from_utf8_lossy(&row_key)
            )
        })?;
        cells.push(StoredCell {
            family,
            qualifier: name.get(split + 1..).unwrap_or_default().to_vec(),
            value: cell.value.unwrap_or_default(),
            version: cell.timestamp.unwrap_or(0).max(0) as u64,
        });
    }
    cells.sort_by(|a, b| (&a.family, &a.qualifier).cmp(&(&b.family, &b.qualifier)));
    Ok(Row { row_key, cells })
}

#[cfg(test)]
mod tests {
    use hbase_thrift::hbase::{TCell, TColumn};

    use super::*;
    use crate::model::{Cell, RowMutation};

    fn calls(mutations: &[RowMutation], batch_rows: usize) -> Result<Vec<Call>, String> {
        super::calls(mutations.iter().map(RowMutation::as_row), batch_rows)
    }

    fn mutation_of(version: u64, key: &str, cells: Vec<Cell>) -> RowMutation {
        RowMutation {
            table: "messages".into(),
            row_key: key.as_bytes().to_vec().into(),
            cells,
            version,
        }
    }

    #[test]
    fn mutations_group_by_version_and_split_by_rows() {
        let batch = vec![
            mutation_of(2, "b", vec![Cell::put("d", &b"text"[..], &b"x"[..])]),
            mutation_of(1, "a", vec![Cell::put("d", &b"text"[..], &b"y"[..])]),
            mutation_of(2, "a", vec![Cell::put("d", &b"text"[..], &b"z"[..])]),
            mutation_of(2, "c", vec![Cell::put("d", &b"text"[..], &b"w"[..])]),
            mutation_of(
                3,
                "a",
                vec![
                    Cell::DeleteRow,
                    Cell::DeleteFamily { family: "m".into() },
                    Cell::DeleteCell {
                        family: "d".into(),
                        qualifier: b"x:y"[..].into(),
                    },
                ],
            ),
        ];
        let calls = calls(&batch, 2).unwrap();
        let shape: Vec<(i64, usize)> = calls
            .iter()
            .map(|c| match c {
                Call::Rows {
                    timestamp, batches, ..
                } => (*timestamp, batches.len()),
                Call::DeleteRow { timestamp, .. } => (-timestamp, 1),
            })
            .collect();
        assert_eq!(shape, vec![(1, 1), (2, 2), (2, 1), (-3, 1), (3, 1)]);
        let Call::Rows { batches, .. } = &calls[4] else {
            panic!("expected mutateRowsTs");
        };
        let columns: Vec<(bool, Vec<u8>)> = batches[0]
            .mutations
            .iter()
            .flatten()
            .map(|m| (m.is_delete.unwrap(), m.column.clone().unwrap()))
            .collect();
        assert_eq!(
            columns,
            vec![(true, b"d:x:y".to_vec()), (true, b"m".to_vec())]
        );
    }

    #[test]
    fn the_same_cell_twice_keeps_the_later_write() {
        let one = mutation_of(1, "a", vec![Cell::put("d", &b"t"[..], &b"10"[..])]);
        let two = mutation_of(1, "a", vec![Cell::put("d", &b"t"[..], &b"2"[..])]);
        let value = |calls: Vec<Call>| {
            let Call::Rows { batches, .. } = &calls[0] else {
                panic!("expected mutateRowsTs");
            };
            batches[0].mutations.as_ref().unwrap()[0].value.clone()
        };
        assert_eq!(
            value(calls(&[one.clone(), two.clone()], 10).unwrap()),
            Some(b"2".to_vec())
        );
        assert_eq!(value(calls(&[two, one], 10).unwrap()), Some(b"10".to_vec()));
    }

    #[test]
    fn versions_above_i64_are_refused() {
        let m = mutation_of(u64::MAX, "a", vec![Cell::DeleteRow]);
        assert!(
            calls(&[m], 10)
                .unwrap_err()
                .contains("largest HBase timestamp")
        );
    }

    #[test]
    fn result_rows_come_back_in_family_then_qualifier_order() {
        // `a-b:x` sorts before `a:x` as bytes, but family `a` comes first.
        let columns = [
            (b"a-b:x".to_vec(), TCell::new(b"1".to_vec(), 5)),
            (b"a:x".to_vec(), TCell::new(b"2".to_vec(), 6)),
        ];
        let r = row(TRowResult::new(
            b"k".to_vec(),
            columns.into_iter().collect::<BTreeMap<_, _>>(),
            None,
        ))
        .unwrap();
        let order: Vec<(&str, u64)> = r
            .cells
            .iter()
            .map(|c| (c.family.as_str(), c.version))
            .collect();
        assert_eq!(order, vec![("a", 6), ("a-b", 5)]);
        let sorted = row(TRowResult::new(
            b"k".to_vec(),
            None,
            vec![TColumn::new(b"d:".to_vec(), TCell::new(b"v".to_vec(), 1))],
        ))
        .unwrap();
        assert_eq!(sorted.cells[0].qualifier, b"");
    }
}
