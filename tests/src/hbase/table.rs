//! One emulated table: its column families and its rows, each row keeping
//! cell versions and delete markers the way an HBase region does.
//!
//! Two simplifications, neither visible through Thrift1:
//! - A put that a delete marker masks is dropped at once (HBase drops it
//!   at the next major compaction; no read can see it before that, since
//!   markers mask regardless of a read's time range, see [`Row::read`]).
//! - A column keeps at most its family's `maxVersions` puts, pruned on
//!   write, as if every write were followed by a compaction.
//!
//! Delete markers stay until [`Table::major_compact`], as in HBase, so a
//! put written later with an older or equal timestamp is still masked.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use hbase_thrift::hbase::ColumnDescriptor;

/// A family, then a qualifier.
pub type Column = (Vec<u8>, Vec<u8>);

/// An emulated table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Whether it serves reads and writes.
    pub enabled: bool,
    /// Column families by name (without the `:`), as created.
    pub families: BTreeMap<Vec<u8>, ColumnDescriptor>,
    /// Rows by key.
    pub rows: BTreeMap<Vec<u8>, Row>,
    /// Creation time (ms), used as the region id.
    pub created_ms: i64,
}

/// One row: puts and delete markers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    /// Puts by column, newest first.
    pub puts: BTreeMap<Column, BTreeMap<Reverse<i64>, Vec<u8>>>,
    /// `DeleteFamily` markers: the family's cells at or before each timestamp.
    pub family_markers: BTreeMap<Vec<u8>, BTreeSet<i64>>,
    /// `DeleteColumn` markers: every version of the column at or before each timestamp.
    pub column_markers: BTreeMap<Column, BTreeSet<i64>>,
}

/// Which columns a read returns.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// Whole families.
    pub families: BTreeSet<Vec<u8>>,
    /// Single columns.
    pub columns: BTreeSet<Column>,
}

impl Columns {
    /// Whether nothing was asked for, which means everything.
    pub fn is_all(&self) -> bool {
        self.families.is_empty() && self.columns.is_empty()
    }

    fn wants(&self, column: &Column) -> bool {
        self.is_all() || self.families.contains(&column.0) || self.columns.contains(column)
    }

    /// The families named.
    pub fn named_families(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.families
            .iter()
            .chain(self.columns.iter().map(|(family, _)| family))
    }
}

/// One cell a read returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCell {
    /// The column.
    pub column: Column,
    /// Its timestamp.
    pub timestamp: i64,
    /// Its value.
    pub value: Vec<u8>,
}

impl Table {
    /// A new, enabled table.
    pub fn new(families: BTreeMap<Vec<u8>, ColumnDescriptor>, created_ms: i64) -> Self {
        Table {
            enabled: true,
            families,
            rows: BTreeMap::new(),
            created_ms,
        }
    }

    /// The family's maxVersions.
    fn max_versions(&self, family: &[u8]) -> usize {
        self.families
            .get(family)
            .and_then(|d| d.max_versions)
            .map_or(1, |v| v.max(1) as usize)
    }

    /// Writes a value.
    pub fn put(&mut self, row: &[u8], column: Column, timestamp: i64, value: Vec<u8>) {
        let keep = self.max_versions(&column.0);
        let r = self.rows.entry(row.to_vec()).or_default();
        if r.masked(&column, timestamp) {
            return;
        }
        let versions = r.puts.entry(column).or_default();
        versions.insert(Reverse(timestamp), value);
        while versions.len() > keep {
            versions.pop_last();
        }
    }

    /// Deletes every version of a column at or before `timestamp`.
    pub fn delete_column(&mut self, row: &[u8], column: Column, timestamp: i64) {
        let r = self.rows.entry(row.to_vec()).or_default();
        if let Some(versions) = r.puts.get_mut(&column) {
            versions.retain(|Reverse(ts), _| *ts > timestamp);
            if versions.is_empty() {
                r.puts.remove(&column);
            }
        }
        r.column_markers
            .entry(column)
            .or_default()
            .insert(timestamp);
    }

    /// Deletes a family's cells at or before `timestamp`.
    pub fn delete_family(&mut self, row: &[u8], family: &[u8], timestamp: i64) {
        let r = self.rows.entry(row.to_vec()).or_default();
        r.puts.retain(|(f, _), versions| {
            if f == family {
                versions.retain(|Reverse(ts), _| *ts > timestamp);
            }
            !versions.is_empty()
        });
        r.family_markers
            .entry(family.to_vec())
            .or_default()
            .insert(timestamp);
    }

    /// Deletes the row's cells at or before `timestamp`: HBase turns a
    /// row delete into a `DeleteFamily` marker in every family.
    pub fn delete_row(&mut self, row: &[u8], timestamp: i64) {
        let families: Vec<Vec<u8>> = self.families.keys().cloned().collect();
        for family in families {
            self.delete_family(row, &family, timestamp);
        }
    }

    /// Drops every delete marker (masked puts are gone already).
    pub fn major_compact(&mut self) {
        for row in self.rows.values_mut() {
            row.family_markers.clear();
            row.column_markers.clear();
        }
        self.rows.retain(|_, row| !row.puts.is_empty());
    }
}

impl Row {
    /// Whether a marker masks a put of `column` at `timestamp`.
    fn masked(&self, column: &Column, timestamp: i64) -> bool {
        let newest = |markers: Option<&BTreeSet<i64>>| markers.and_then(|m| m.last().copied());
        [
            newest(self.family_markers.get(&column.0)),
            newest(self.column_markers.get(column)),
        ]
        .into_iter()
        .flatten()
        .any(|marker| marker >= timestamp)
    }

    /// Up to `versions` newest versions of each wanted column with a
    /// timestamp below `before`, in column order, newest first.
    ///
    /// What a marker masked is gone, whatever the marker's timestamp: a
    /// marker newer than `before` still hides older puts. HBase does the
    /// same without KEEP_DELETED_CELLS (which Thrift1 cannot set): its
    /// ScanQueryMatcher tracks every marker "within or after" the time
    /// range, so an as-of read of a row deleted later shows it deleted.
    pub fn read(&self, columns: &Columns, before: i64, versions: usize) -> Vec<ReadCell> {
        let mut out = Vec::new();
        for (column, puts) in &self.puts {
            if !columns.wants(column) {
                continue;
            }
            out.extend(
                puts.iter()
                    .filter(|(Reverse(ts), _)| *ts < before)
                    .take(versions)
                    .map(|(Reverse(ts), value)| ReadCell {
                        column: column.clone(),
                        timestamp: *ts,
                        value: value.clone(),
                    }),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max_versions: i32) -> Table {
        let mut families = BTreeMap::new();
        for f in ["d", "m"] {
            families.insert(
                f.as_bytes().to_vec(),
                ColumnDescriptor {
                    max_versions: Some(max_versions),
                    ..Default::default()
                },
            );
        }
        Table::new(families, 0)
    }

    fn col(f: &str, q: &str) -> Column {
        (f.as_bytes().to_vec(), q.as_bytes().to_vec())
    }

    fn values(t: &Table, before: i64) -> Vec<(i64, String)> {
        t.rows
            .get(&b"r"[..])
            .map(|r| r.read(&Columns::default(), before, 10))
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.timestamp, String::from_utf8(c.value).unwrap()))
            .collect()
    }

    #[test]
    fn markers_mask_older_and_equal_puts_even_written_later() {
        let mut t = table(10);
        t.put(b"r", col("d", "a"), 5, b"five".to_vec());
        t.delete_column(b"r", col("d", "a"), 5);
        t.put(b"r", col("d", "a"), 4, b"four".to_vec());
        t.put(b"r", col("d", "a"), 6, b"six".to_vec());
        assert_eq!(values(&t, i64::MAX), vec![(6, "six".into())]);
        // As of 6 (exclusive), the marker at 5 still masks 4 and 5.
        assert_eq!(values(&t, 6), vec![]);
        t.major_compact();
        t.put(b"r", col("d", "a"), 4, b"four".to_vec());
        assert_eq!(values(&t, 6), vec![(4, "four".into())]);
    }

    #[test]
    fn versions_are_pruned_to_max_versions() {
        let mut t = table(2);
        for ts in [3, 1, 2, 4] {
            t.put(b"r", col("d", "a"), ts, ts.to_string().into_bytes());
        }
        assert_eq!(values(&t, i64::MAX), vec![(4, "4".into()), (3, "3".into())]);
        t.put(b"r", col("d", "a"), 4, b"again".to_vec());
        assert_eq!(values(&t, 4), vec![(3, "3".into())]);
    }

    #[test]
    fn a_row_delete_marks_every_family() {
        let mut t = table(3);
        t.put(b"r", col("d", "a"), 1, b"x".to_vec());
        t.put(b"r", col("m", "w"), 2, b"y".to_vec());
        t.delete_row(b"r", 2);
        assert_eq!(values(&t, i64::MAX), vec![]);
        let row = &t.rows[&b"r"[..]];
        assert_eq!(row.family_markers.len(), 2);
        t.put(b"r", col("m", "w"), 3, b"z".to_vec());
        assert_eq!(values(&t, i64::MAX), vec![(3, "z".into())]);
    }
}
