//! Scanners: opened by the `scannerOpen*` calls, read with
//! `scannerGet`/`scannerGetList`, closed with `scannerClose`. As in
//! HBase's Thrift1 server, scanners belong to the server, not to a
//! connection, and an unknown id is an `IllegalArgument`.
//!
//! A scanner walks the live table from where it stopped (start row
//! inclusive, stop row exclusive, empty meaning open), skipping rows with
//! nothing visible. A reversed scan starts at its start row and walks
//! down to its stop row.

use std::collections::HashMap;
use std::ops::Bound;

use hbase_thrift::hbase::{ScannerID, TRowResult, TScan};

use super::errors;
use super::read::{LATEST, row_result};
use super::state::{State, columns};
use super::table::Columns;

/// The open scanners.
#[derive(Debug, Default)]
pub struct Scanners {
    open: HashMap<ScannerID, Scanner>,
    last_id: ScannerID,
}

/// Where one scanner is.
#[derive(Debug)]
struct Scanner {
    table: Vec<u8>,
    /// The next key to consider.
    from: Bound<Vec<u8>>,
    /// Where to stop (exclusive).
    stop: Option<Vec<u8>>,
    reversed: bool,
    columns: Columns,
    before: i64,
    sorted: bool,
}

/// What a scanner should return.
#[derive(Debug, Default)]
pub struct ScanSpec {
    /// First row (empty: the first of the table).
    pub start: Vec<u8>,
    /// Row to stop before (empty: none).
    pub stop: Vec<u8>,
    /// `family` or `family:qualifier` names (empty: all).
    pub columns: Vec<Vec<u8>>,
    /// Exclusive upper bound on timestamps.
    pub before: i64,
    /// Return `sortedColumns` instead of the `columns` map.
    pub sorted: bool,
    /// Walk down from `start`.
    pub reversed: bool,
}

impl ScanSpec {
    /// From a `TScan`. Filters are refused; caching and batch size are
    /// ignored (every call returns up to the rows asked for).
    pub fn from_tscan(scan: TScan) -> thrift::Result<Self> {
        if scan.filter_string.as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(errors::io(
                "java.io.IOException: filter strings are not supported by the HBase emulator",
                false,
            ));
        }
        Ok(ScanSpec {
            start: scan.start_row.unwrap_or_default(),
            stop: scan.stop_row.unwrap_or_default(),
            columns: scan.columns.unwrap_or_default(),
            before: scan.timestamp.unwrap_or(LATEST),
            sorted: scan.sort_columns.unwrap_or(false),
            reversed: scan.reversed.unwrap_or(false),
        })
    }
}

/// Opens a scanner.
pub fn open(state: &mut State, table_name: &[u8], spec: ScanSpec) -> thrift::Result<ScannerID> {
    let table = state.serving(table_name)?;
    let columns = columns(table_name, table, &spec.columns)?;
    let from = if spec.start.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Included(spec.start)
    };
    let scanners = &mut state.scanners;
    scanners.last_id = scanners.last_id.checked_add(1).unwrap_or(1);
    let id = scanners.last_id;
    scanners.open.insert(
        id,
        Scanner {
            table: table_name.to_vec(),
            from,
            stop: (!spec.stop.is_empty()).then_some(spec.stop),
            reversed: spec.reversed,
            columns,
            before: spec.before,
            sorted: spec.sorted,
        },
    );
    Ok(id)
}

/// Up to `count` more rows.
pub fn next(state: &mut State, id: ScannerID, count: i32) -> thrift::Result<Vec<TRowResult>> {
    let State { tables, scanners } = state;
    let scanner = scanners
        .open
        .get_mut(&id)
        .ok_or_else(|| errors::illegal("scanner ID is invalid"))?;
    let table = tables
        .get(&scanner.table)
        .ok_or_else(|| errors::table_not_found(&scanner.table))?;
    if !table.enabled {
        return Err(errors::table_disabled(&scanner.table));
    }
    let wanted = usize::try_from(count).unwrap_or(0);
    let mut out = Vec::new();
    let stop = scanner.stop.as_deref();
    let reversed = scanner.reversed;
    let rows: Box<dyn Iterator<Item = (&Vec<u8>, &super::table::Row)>> = if reversed {
        Box::new(
            table
                .rows
                .range((Bound::Unbounded, scanner.from.clone()))
                .rev()
                .take_while(|(k, _)| stop.is_none_or(|s| k.as_slice() > s)),
        )
    } else {
        Box::new(
            table
                .rows
                .range((scanner.from.clone(), Bound::Unbounded))
                .take_while(|(k, _)| stop.is_none_or(|s| k.as_slice() < s)),
        )
    };
    let mut last = None;
    for (key, row) in rows {
        if out.len() >= wanted {
            break;
        }
        last = Some(key.clone());
        let cells = row.read(&scanner.columns, scanner.before, 1);
        if !cells.is_empty() {
            out.push(row_result(key.clone(), cells, scanner.sorted));
        }
    }
    if let Some(key) = last {
        scanner.from = Bound::Excluded(key);
    }
    Ok(out)
}

/// Closes a scanner.
pub fn close(state: &mut State, id: ScannerID) -> thrift::Result<()> {
    state
        .scanners
        .open
        .remove(&id)
        .map(|_| ())
        .ok_or_else(|| errors::illegal("scanner ID is invalid"))
}

/// The first key after every key that starts with `prefix` (empty when
/// there is none), the stop row of `scannerOpenWithPrefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    Vec::new()
}
