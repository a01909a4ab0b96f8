//! Writes: `mutateRow*`, `mutateRows*` and `deleteAll*`, as HBase 2.x's
//! ThriftHBaseServiceHandler turns them into Puts and Deletes.
//!
//! - Every cell of a call gets the call's timestamp (the server's clock
//!   when the call has none).
//! - A delete of `family:qualifier` is `Delete.addColumns` (every version
//!   at or before the timestamp); of `family` alone, `Delete.addFamily`.
//! - `mutateRows*` sends all the batch's Puts, then all its Deletes; a row
//!   whose Put (or Delete) names a missing family fails alone, the others
//!   are applied, and the call answers `RetriesExhaustedWithDetailsException`.
//! - `mutateRow*` sends the Delete, then the Put, and a missing family fails
//!   the call with `NoSuchColumnFamilyException`.

use hbase_thrift::hbase::Mutation;

use super::errors;
use super::state::{State, parse_column};
use super::table::{Column, Table};

/// What one row's mutations amount to.
#[derive(Debug, Default)]
struct RowChange {
    row: Vec<u8>,
    puts: Vec<(Column, Vec<u8>)>,
    column_deletes: Vec<Column>,
    family_deletes: Vec<Vec<u8>>,
}

impl RowChange {
    /// Reads one row's mutations. In a batch a put of a family alone is an
    /// error; for a single row HBase only logs a warning and skips it.
    fn parse(row: Vec<u8>, mutations: Vec<Mutation>, batch: bool) -> thrift::Result<Self> {
        if row.is_empty() {
            return Err(errors::illegal(
                "java.lang.IllegalArgumentException: Row length is 0",
            ));
        }
        let mut change = RowChange {
            row,
            ..RowChange::default()
        };
        for m in mutations {
            let Some(name) = m.column else {
                return Err(errors::illegal(
                    "java.lang.IllegalArgumentException: a mutation without a column",
                ));
            };
            let (family, qualifier) = parse_column(&name);
            match (m.is_delete.unwrap_or(false), qualifier) {
                (true, Some(q)) => change.column_deletes.push((family, q)),
                (true, None) => change.family_deletes.push(family),
                (false, Some(q)) => change.puts.push(((family, q), m.value.unwrap_or_default())),
                (false, None) if batch => {
                    return Err(errors::illegal(
                        "java.lang.IllegalArgumentException: Invalid famAndQf provided.",
                    ));
                }
                (false, None) => {}
            }
        }
        Ok(change)
    }

    /// The first family of the puts that the table lacks.
    fn missing_put_family<'a>(&'a self, table: &Table) -> Option<&'a [u8]> {
        self.puts
            .iter()
            .map(|((f, _), _)| f.as_slice())
            .find(|f| !table.families.contains_key(*f))
    }

    /// The first family of the deletes that the table lacks.
    fn missing_delete_family<'a>(&'a self, table: &Table) -> Option<&'a [u8]> {
        self.column_deletes
            .iter()
            .map(|(f, _)| f)
            .chain(&self.family_deletes)
            .map(Vec::as_slice)
            .find(|f| !table.families.contains_key(*f))
    }

    fn has_deletes(&self) -> bool {
        !self.column_deletes.is_empty() || !self.family_deletes.is_empty()
    }

    fn apply_puts(&self, table: &mut Table, timestamp: i64) {
        for (column, value) in &self.puts {
            table.put(&self.row, column.clone(), timestamp, value.clone());
        }
    }

    fn apply_deletes(&self, table: &mut Table, timestamp: i64) {
        for column in &self.column_deletes {
            table.delete_column(&self.row, column.clone(), timestamp);
        }
        for family in &self.family_deletes {
            table.delete_family(&self.row, family, timestamp);
        }
    }
}

fn check_timestamp(timestamp: i64) -> thrift::Result<()> {
    if timestamp < 0 {
        return Err(errors::illegal(format!(
            "java.lang.IllegalArgumentException: Timestamp cannot be negative. ts={timestamp}"
        )));
    }
    Ok(())
}

/// `mutateRowTs` (and `mutateRow`, with the server's clock).
pub fn row(
    state: &mut State,
    table_name: &[u8],
    row: Vec<u8>,
    mutations: Vec<Mutation>,
    timestamp: i64,
) -> thrift::Result<()> {
    check_timestamp(timestamp)?;
    let change = RowChange::parse(row, mutations, false)?;
    let table = state.serving_mut(table_name)?;
    if change.has_deletes() {
        if let Some(f) = change.missing_delete_family(table) {
            return Err(errors::no_such_family(table_name, f));
        }
        change.apply_deletes(table, timestamp);
    }
    if let Some(f) = change.missing_put_family(table) {
        return Err(errors::no_such_family(table_name, f));
    }
    change.apply_puts(table, timestamp);
    Ok(())
}

/// `mutateRowsTs` (and `mutateRows`, with the server's clock).
pub fn rows(
    state: &mut State,
    table_name: &[u8],
    batches: Vec<(Vec<u8>, Vec<Mutation>)>,
    timestamp: i64,
) -> thrift::Result<()> {
    check_timestamp(timestamp)?;
    let changes = batches
        .into_iter()
        .map(|(row, mutations)| RowChange::parse(row, mutations, true))
        .collect::<thrift::Result<Vec<_>>>()?;
    let table = state.serving_mut(table_name)?;
    let mut failed = 0;
    let mut cause = None;
    let mut fail = |family: &[u8]| {
        failed += 1;
        cause.get_or_insert_with(|| errors::no_such_family_text(table_name, family));
    };
    for change in &changes {
        match change.missing_put_family(table) {
            Some(f) => fail(f),
            None => change.apply_puts(table, timestamp),
        }
    }
    for change in changes.iter().filter(|c| c.has_deletes()) {
        match change.missing_delete_family(table) {
            Some(f) => fail(f),
            None => change.apply_deletes(table, timestamp),
        }
    }
    match cause {
        Some(cause) => Err(errors::batch_failed(failed, &cause)),
        None => Ok(()),
    }
}

/// `deleteAllTs` (and `deleteAll`): one column, or a family named alone.
pub fn delete_column(
    state: &mut State,
    table_name: &[u8],
    row: &[u8],
    column: &[u8],
    timestamp: i64,
) -> thrift::Result<()> {
    let table = state.serving_mut(table_name)?;
    let (family, qualifier) = parse_column(column);
    if !table.families.contains_key(&family) {
        return Err(errors::no_such_family(table_name, &family));
    }
    match qualifier {
        Some(q) => table.delete_column(row, (family, q), timestamp),
        None => table.delete_family(row, &family, timestamp),
    }
    Ok(())
}

/// `deleteAllRowTs` (and `deleteAllRow`).
pub fn delete_row(
    state: &mut State,
    table_name: &[u8],
    row: &[u8],
    timestamp: i64,
) -> thrift::Result<()> {
    state.serving_mut(table_name)?.delete_row(row, timestamp);
    Ok(())
}
