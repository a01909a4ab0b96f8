//! Gets: the `get*` calls of Thrift1, as HBase 2.x's
//! ThriftHBaseServiceHandler makes them. A call with a `timestamp` reads
//! with `setTimeRange(0, timestamp)`: the bound is exclusive. A call
//! without one reads everything (`HConstants.LATEST_TIMESTAMP`). Rows
//! with no visible cell are left out of the results, so `getRows` may
//! return fewer results than keys.

use std::collections::BTreeMap;

use hbase_thrift::hbase::{TCell, TColumn, TRowResult};

use super::state::{State, column_name, columns};
use super::table::ReadCell;

/// No time bound: HBase's `LATEST_TIMESTAMP`.
pub const LATEST: i64 = i64::MAX;

/// `getRowsWithColumnsTs` and every call built on it.
pub fn rows(
    state: &State,
    table_name: &[u8],
    keys: &[Vec<u8>],
    column_names: &[Vec<u8>],
    before: i64,
) -> thrift::Result<Vec<TRowResult>> {
    let table = state.serving(table_name)?;
    let wanted = columns(table_name, table, column_names)?;
    Ok(keys
        .iter()
        .filter_map(|key| {
            let cells = table.rows.get(key)?.read(&wanted, before, 1);
            (!cells.is_empty()).then(|| row_result(key.clone(), cells, false))
        })
        .collect())
}

/// `getVerTs` and the calls built on it: versions of one column (or of
/// every column of a family), newest first.
pub fn versions(
    state: &State,
    table_name: &[u8],
    key: &[u8],
    column: &[u8],
    before: i64,
    versions: i32,
) -> thrift::Result<Vec<TCell>> {
    let table = state.serving(table_name)?;
    let wanted = columns(table_name, table, &[column.to_vec()])?;
    let cells = table.rows.get(key).map_or_else(Vec::new, |row| {
        row.read(&wanted, before, versions.max(1) as usize)
    });
    Ok(cells
        .into_iter()
        .map(|c| TCell::new(c.value, c.timestamp))
        .collect())
}

/// One row as Thrift1 returns it: a map of `family:qualifier` to cell, or,
/// when the scan asked for sorted columns, a list in column order.
pub fn row_result(key: Vec<u8>, cells: Vec<ReadCell>, sorted: bool) -> TRowResult {
    if sorted {
        let list = cells
            .into_iter()
            .map(|c| TColumn::new(column_name(&c.column), TCell::new(c.value, c.timestamp)))
            .collect::<Vec<_>>();
        TRowResult::new(key, None, list)
    } else {
        let map = cells
            .into_iter()
            .map(|c| (column_name(&c.column), TCell::new(c.value, c.timestamp)))
            .collect::<BTreeMap<_, _>>();
        TRowResult::new(key, map, None)
    }
}
