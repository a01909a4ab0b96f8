//! Everything the emulator holds: tables and open scanners, behind one lock.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::errors;
use super::scanner::Scanners;
use super::table::{Column, Columns, Table};

/// The emulator's data.
#[derive(Debug, Default)]
pub struct State {
    /// Tables by name.
    pub tables: BTreeMap<Vec<u8>, Table>,
    /// Open scanners.
    pub scanners: Scanners,
}

impl State {
    /// A table that serves requests: it exists and is enabled.
    pub fn serving(&self, name: &[u8]) -> thrift::Result<&Table> {
        let table = self
            .tables
            .get(name)
            .ok_or_else(|| errors::table_not_found(name))?;
        if !table.enabled {
            return Err(errors::table_disabled(name));
        }
        Ok(table)
    }

    /// Like [`State::serving`], to write.
    pub fn serving_mut(&mut self, name: &[u8]) -> thrift::Result<&mut Table> {
        self.serving(name)?;
        Ok(self.tables.get_mut(name).expect("checked above"))
    }

    /// A table that exists, enabled or not.
    pub fn existing_mut(&mut self, name: &[u8]) -> thrift::Result<&mut Table> {
        self.tables
            .get_mut(name)
            .ok_or_else(|| errors::table_not_found(name))
    }
}

/// A Thrift1 column name split as HBase's `CellUtil.parseColumn` splits
/// it: at the first `:`; `family` alone (no `:`) has no qualifier, while
/// `family:` has the empty qualifier.
pub fn parse_column(name: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    match name.iter().position(|&b| b == b':') {
        Some(i) => (name[..i].to_vec(), Some(name[i + 1..].to_vec())),
        None => (name.to_vec(), None),
    }
}

/// `family:qualifier`, as Thrift1 names a column in results.
pub fn column_name(column: &Column) -> Vec<u8> {
    let mut name = Vec::with_capacity(column.0.len() + 1 + column.1.len());
    name.extend_from_slice(&column.0);
    name.push(b':');
    name.extend_from_slice(&column.1);
    name
}

/// The columns a read asks for, checked against the table's families.
pub fn columns(table_name: &[u8], table: &Table, names: &[Vec<u8>]) -> thrift::Result<Columns> {
    let mut wanted = Columns::default();
    for name in names {
        match parse_column(name) {
            (family, None) => {
                wanted.families.insert(family);
            }
            (family, Some(qualifier)) => {
                wanted.columns.insert((family, qualifier));
            }
        }
    }
    if let Some(missing) = wanted
        .named_families()
        .find(|f| !table.families.contains_key(*f))
    {
        return Err(errors::no_such_family(table_name, missing));
    }
    Ok(wanted)
}

/// The server's clock in milliseconds, the timestamp of writes that give none.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_split_at_the_first_colon() {
        assert_eq!(parse_column(b"d"), (b"d".to_vec(), None));
        assert_eq!(parse_column(b"d:"), (b"d".to_vec(), Some(Vec::new())));
        assert_eq!(
            parse_column(b"d:a:b"),
            (b"d".to_vec(), Some(b"a:b".to_vec()))
        );
        assert_eq!(column_name(&(b"d".to_vec(), b"a:b".to_vec())), b"d:a:b");
    }
}
