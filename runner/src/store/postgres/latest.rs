//! The `latest` layout of a PostgreSQL table: one row per key, the state
//! after the newest event, as a service's read model keeps it and queries
//! it. Cells the workflow maps become typed columns (`text`, `bytea`,
//! `bigint`, `jsonb`); every other cell is kept in one `cells` jsonb, so
//! nothing a transform writes is lost.
//!
//! Versions are per row, as in Kafka Connect's JDBC sink with a version
//! guard: an event older than the row is dropped whole (`WHERE
//! stored.version <= excluded.version`), one at the row's version is
//! applied on top (the later in log order wins, as in every store), and a
//! deleted row stays as a tombstone at its version, so an older event
//! replayed after the delete cannot bring it back. What this layout
//! cannot do is read as of an earlier version: a read before a row's
//! version is refused, naming the row.
//!
//! A batch is applied as the events would be one by one: the rows of its
//! keys are read and locked (`FOR UPDATE`), the mutations applied to them
//! here in log order ([`Latest::apply`]), and the rows that changed written
//! back with one guarded upsert.

use std::collections::BTreeMap;

use postgres::types::ToSql;
use serde_json::Value;

use super::names;
use crate::model::{CellRef, Row, StoredCell};

/// The store's own columns, which no mapped column may be called.
const OWN_COLUMNS: [&str; 4] = ["row_key", "version", "deleted", "cells"];

/// A column's SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 text.
    Text,
    /// Bytes as they are.
    Bytea,
    /// A decimal integer written as text in the cell.
    Bigint,
    /// A JSON document written as text in the cell (read back normalised,
    /// as PostgreSQL stores jsonb).
    Jsonb,
}

impl ColumnType {
    fn sql(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Bytea => "bytea",
            ColumnType::Bigint => "bigint",
            ColumnType::Jsonb => "jsonb",
        }
    }
}

/// A typed column and the cell it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// The cell's family.
    pub family: String,
    /// The cell's qualifier.
    pub qualifier: Vec<u8>,
    /// Its type.
    pub ty: ColumnType,
}

/// A table kept in the `latest` layout: its typed columns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LatestLayout {
    /// The typed columns, in the order written.
    pub columns: Vec<Column>,
}

impl LatestLayout {
    /// Reads `columns = { text = "d:text", posted_at = "d:posted_at bigint" }`.
    pub fn parse(columns: &BTreeMap<String, String>) -> Result<LatestLayout, String> {
        let mut out = Vec::new();
        for (name, spec) in columns {
            names::check_table(name).map_err(|_| {
                format!(
                    "column name `{}` may only use letters, digits, `_`, `-` and `.`",
                    crate::text::foreign(name)
                )
            })?;
            if OWN_COLUMNS.contains(&name.as_str()) {
                return Err(format!("column name `{name}` is the store's own"));
            }
            let mut words = spec.split_whitespace();
            let cell = words.next().unwrap_or("");
            let ty = match words.next() {
                None | Some("text") => ColumnType::Text,
                Some("bytea") => ColumnType::Bytea,
                Some("bigint") => ColumnType::Bigint,
                Some("jsonb") => ColumnType::Jsonb,
                Some(other) => {
                    return Err(format!(
                        "column `{name}`: type `{other}`; expected text, bytea, bigint or jsonb"
                    ));
                }
            };
            let (family, qualifier) = match cell.split_once(':') {
                Some((f, q)) if !f.is_empty() && words.next().is_none() => (f, q),
                _ => {
                    return Err(format!(
                        "column `{name}` = `{spec}`: write the cell and, if not text, its type: `d:posted_at bigint`"
                    ));
                }
            };
            if out
                .iter()
                .any(|c: &Column| c.family == family && c.qualifier == qualifier.as_bytes())
            {
                return Err(format!("cell `{cell}` is mapped to two columns"));
            }
            out.push(Column {
                name: name.clone(),
                family: family.to_string(),
                qualifier: qualifier.as_bytes().to_vec(),
                ty,
            });
        }
        Ok(LatestLayout { columns: out })
    }

    /// What the registry keeps of it, to tell a table made with other
    /// columns.
    pub fn signature(&self) -> String {
        self.columns
            .iter()
            .map(|c| {
                format!(
                    "{}={}:{} {}",
                    c.name,
                    c.family,
                    String::from_utf8_lossy(&c.qualifier),
                    c.ty.sql()
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The table's definition.
    pub fn create(&self, table_sql: &str) -> String {
        let typed: String = self
            .columns
            .iter()
            .map(|c| format!(", \"{}\" {}", c.name, c.ty.sql()))
            .collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {table_sql} (
                row_key bytea PRIMARY KEY,
                version bigint NOT NULL,
                deleted boolean NOT NULL,
                cells jsonb NOT NULL{typed}
             )"
        )
    }

    /// The columns read, in the order [`LatestLayout::read`] takes them.
    pub fn select(&self) -> String {
        let typed: String = self
            .columns
            .iter()
            .map(|c| format!(", \"{}\"", c.name))
            .collect();
        format!("row_key, version, deleted, cells{typed}")
    }

    /// One row as read by [`LatestLayout::select`].
    pub fn read(&self, r: &postgres::Row) -> Result<(Vec<u8>, Latest), String> {
        let row_key: Vec<u8> = r.get(0);
        let version: i64 = r.get(1);
        let deleted: bool = r.get(2);
        let cells_json: Value = r.get(3);
        let mut cells = BTreeMap::new();
        if let Value::Object(map) = cells_json {
            for (name, value) in map {
                let (family, qualifier) = name.split_once(':').ok_or_else(|| {
                    format!("a cell named `{name}` in `cells`; it was not written by this runner")
                })?;
                cells.insert(
                    (family.to_string(), qualifier.as_bytes().to_vec()),
                    bytes_of_json(&value).ok_or_else(|| {
                        format!("cell `{name}` holds {value}; it was not written by this runner")
                    })?,
                );
            }
        }
        for (i, c) in self.columns.iter().enumerate() {
            let at = i + 4;
            let value: Option<Vec<u8>> = match c.ty {
                ColumnType::Text => r.get::<_, Option<String>>(at).map(String::into_bytes),
                ColumnType::Bytea => r.get::<_, Option<Vec<u8>>>(at),
                ColumnType::Bigint => r
                    .get::<_, Option<i64>>(at)
                    .map(|n| n.to_string().into_bytes()),
                ColumnType::Jsonb => r
                    .get::<_, Option<Value>>(at)
                    .map(|v| serde_json::to_vec(&v).unwrap_or_default()),
            };
            if let Some(v) = value {
                cells.insert((c.family.clone(), c.qualifier.clone()), v);
            }
        }
        Ok((
            row_key,
            Latest {
                version,
                deleted,
                cells,
            },
        ))
    }

    /// The upsert of rows given as arrays (see [`LatestLayout::params`]):
    /// a row is replaced only by one at its version or later.
    pub fn upsert(&self, table_sql: &str) -> String {
        let names: String = self
            .columns
            .iter()
            .map(|c| format!(", \"{}\"", c.name))
            .collect();
        let arrays: String = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!(", ${}::{}[]", i + 5, c.ty.sql()))
            .collect();
        let updates: String = self
            .columns
            .iter()
            .map(|c| format!(", \"{0}\" = excluded.\"{0}\"", c.name))
            .collect();
        format!(
            "INSERT INTO {table_sql} AS stored (row_key, version, deleted, cells{names})
             SELECT * FROM unnest($1::bytea[], $2::int8[], $3::bool[], $4::jsonb[]{arrays})
             ON CONFLICT (row_key) DO UPDATE SET version = excluded.version, deleted = excluded.deleted, cells = excluded.cells{updates}
             WHERE stored.version <= excluded.version"
        )
    }

    /// The arrays of [`LatestLayout::upsert`] for `rows`; a value a typed
    /// column cannot hold is refused, naming the row and the cell.
    pub fn params(&self, rows: &[(&[u8], &Latest)]) -> Result<Vec<Box<dyn ToSql + Sync>>, String> {
        let mut keys: Vec<Vec<u8>> = Vec::with_capacity(rows.len());
        let mut versions: Vec<i64> = Vec::with_capacity(rows.len());
        let mut deleted: Vec<bool> = Vec::with_capacity(rows.len());
        let mut rest: Vec<Value> = Vec::with_capacity(rows.len());
        let mut text: Vec<Vec<Option<String>>> = vec![Vec::new(); self.columns.len()];
        let mut bytea: Vec<Vec<Option<Vec<u8>>>> = vec![Vec::new(); self.columns.len()];
        let mut bigint: Vec<Vec<Option<i64>>> = vec![Vec::new(); self.columns.len()];
        let mut jsonb: Vec<Vec<Option<Value>>> = vec![Vec::new(); self.columns.len()];
        for (key, row) in rows {
            keys.push(key.to_vec());
            versions.push(row.version);
            deleted.push(row.deleted);
            let mut others = serde_json::Map::new();
            for ((family, qualifier), value) in &row.cells {
                if self
                    .columns
                    .iter()
                    .any(|c| c.family == *family && c.qualifier == *qualifier)
                {
                    continue;
                }
                let qualifier = std::str::from_utf8(qualifier)
                    .ok()
                    .filter(|q| !q.contains('\0'))
                    .ok_or_else(|| {
                        format!(
                            "row {}: a qualifier that is not text in family `{family}`; the `latest` layout names cells as text",
                            crate::text::foreign_bytes(key)
                        )
                    })?;
                if family.contains(':') || family.contains('\0') {
                    return Err(format!(
                        "row {}: family `{}` holds `:` or a NUL; the `latest` layout names cells `family:qualifier`",
                        crate::text::foreign_bytes(key),
                        crate::text::foreign(family)
                    ));
                }
                others.insert(format!("{family}:{qualifier}"), json_of_bytes(value));
            }
            rest.push(Value::Object(others));
            for (i, c) in self.columns.iter().enumerate() {
                let value = row.cells.get(&(c.family.clone(), c.qualifier.clone()));
                let bad = |what: &str| {
                    format!(
                        "row {}: cell `{}:{}` is not {what}, which column `{}` holds",
                        crate::text::foreign_bytes(key),
                        c.family,
                        String::from_utf8_lossy(&c.qualifier),
                        c.name
                    )
                };
                match c.ty {
                    ColumnType::Text => text[i].push(
                        value
                            .map(|v| {
                                String::from_utf8(v.clone())
                                    .ok()
                                    .filter(|t| !t.contains('\0'))
                                    .ok_or_else(|| {
                                        bad("text without NUL bytes (make the column bytea)")
                                    })
                            })
                            .transpose()?,
                    ),
                    ColumnType::Bytea => bytea[i].push(value.cloned()),
                    ColumnType::Bigint => bigint[i].push(
                        value
                            .map(|v| {
                                canonical_integer(v)
                                    .ok_or_else(|| bad("an integer written as PostgreSQL writes it back (`-12`, not `+12`, `012` or ` 12`)"))
                            })
                            .transpose()?,
                    ),
                    ColumnType::Jsonb => jsonb[i].push(
                        value
                            .map(|v| serde_json::from_slice(v).map_err(|_| bad("JSON")))
                            .transpose()?,
                    ),
                }
            }
        }
        let mut params: Vec<Box<dyn ToSql + Sync>> = vec![
            Box::new(keys),
            Box::new(versions),
            Box::new(deleted),
            Box::new(rest),
        ];
        for (i, c) in self.columns.iter().enumerate() {
            params.push(match c.ty {
                ColumnType::Text => Box::new(std::mem::take(&mut text[i])),
                ColumnType::Bytea => Box::new(std::mem::take(&mut bytea[i])),
                ColumnType::Bigint => Box::new(std::mem::take(&mut bigint[i])),
                ColumnType::Jsonb => Box::new(std::mem::take(&mut jsonb[i])),
            });
        }
        Ok(params)
    }
}

/// A row as the `latest` layout keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Latest {
    /// The version of the newest event applied.
    pub version: i64,
    /// Deleted (a tombstone), and nothing written since.
    pub deleted: bool,
    /// Its cells.
    pub cells: BTreeMap<(String, Vec<u8>), Vec<u8>>,
}

impl Latest {
    /// Applies one mutation at `version` to `row` as the guarded upsert
    /// would: an older one is dropped whole; one at the row's version or
    /// later is applied on top. Says whether the row changed.
    pub fn apply<'a>(
        row: &mut Option<Latest>,
        version: i64,
        cells: impl Iterator<Item = CellRef<'a>>,
    ) -> bool {
        if row.as_ref().is_some_and(|r| r.version > version) {
            return false;
        }
        let r = row.get_or_insert_with(Latest::default);
        let before = r.clone();
        // A delete at this very version hides what is written at it,
        // whatever the order, as in HBase and the other layout.
        let mut tombstone_here = r.deleted && r.version == version;
        r.version = version;
        for cell in cells {
            match cell {
                CellRef::Put { .. } if tombstone_here => {}
                CellRef::Put {
                    family,
                    qualifier,
                    value,
                } => {
                    r.cells
                        .insert((family.to_string(), qualifier.to_vec()), value.to_vec());
                    r.deleted = false;
                }
                CellRef::DeleteCell { family, qualifier } => {
                    r.cells.remove(&(family.to_string(), qualifier.to_vec()));
                }
                CellRef::DeleteFamily { family } => r.cells.retain(|(f, _), _| f != family),
                CellRef::DeleteRow => {
                    r.cells.clear();
                    r.deleted = true;
                    tombstone_here = true;
                }
            }
        }
        *r != before
    }

    /// The row as a read shows it: every cell at the row's version, `None`
    /// when it has none.
    pub fn visible(&self, row_key: Vec<u8>) -> Option<Row> {
        if self.cells.is_empty() {
            return None;
        }
        Some(Row {
            row_key,
            cells: self
                .cells
                .iter()
                .map(|((family, qualifier), value)| StoredCell {
                    family: family.clone(),
                    qualifier: qualifier.clone(),
                    value: value.clone(),
                    version: self.version as u64,
                })
                .collect(),
        })
    }
}

/// The integer `value` spells, when it spells it the one way a bigint
/// reads back: anything else would come back as other bytes and a
/// compare with the old store would report a difference the layout made.
fn canonical_integer(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

/// A value in the `cells` jsonb: its text when UTF-8, else `{"hex": …}`.
fn json_of_bytes(value: &[u8]) -> Value {
    match std::str::from_utf8(value) {
        // jsonb cannot hold a NUL, even escaped.
        Ok(text) if !text.contains('\0') => Value::String(text.to_string()),
        _ => serde_json::json!({ "hex": hex::encode(value) }),
    }
}

fn bytes_of_json(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::String(text) => Some(text.as_bytes().to_vec()),
        Value::Object(o) => o.get("hex")?.as_str().and_then(|h| hex::decode(h).ok()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put<'a>(q: &'a str, v: &'a str) -> CellRef<'a> {
        CellRef::Put {
            family: "d",
            qualifier: q.as_bytes(),
            value: v.as_bytes(),
        }
    }

    fn text(row: &Option<Latest>) -> Vec<String> {
        row.iter()
            .flat_map(|r| r.cells.iter())
            .map(|((f, q), v)| {
                format!(
                    "{f}:{}={}",
                    String::from_utf8_lossy(q),
                    String::from_utf8_lossy(v)
                )
            })
            .collect()
    }

    #[test]
    fn older_events_are_dropped_ties_go_to_the_later_and_tombstones_stay() {
        let mut row = None;
        assert!(Latest::apply(
            &mut row,
            5,
            [put("text", "five"), put("room", "r")].into_iter()
        ));
        assert!(
            !Latest::apply(&mut row, 3, [put("text", "three")].into_iter()),
            "older: dropped"
        );
        assert!(
            Latest::apply(&mut row, 5, [put("text", "again")].into_iter()),
            "tie: applied"
        );
        assert_eq!(text(&row), ["d:room=r", "d:text=again"]);
        assert!(
            !Latest::apply(&mut row, 5, [put("text", "again")].into_iter()),
            "the same: no change"
        );
        assert!(Latest::apply(&mut row, 9, [CellRef::DeleteRow].into_iter()));
        assert!(!Latest::apply(
            &mut row,
            7,
            [put("text", "replayed")].into_iter()
        ));
        let r = row.as_ref().unwrap();
        assert!(r.deleted && r.cells.is_empty() && r.version == 9);
        assert!(r.visible(b"k".to_vec()).is_none());
        assert!(Latest::apply(
            &mut row,
            10,
            [put("text", "back")].into_iter()
        ));
        assert!(!row.as_ref().unwrap().deleted);
        // A put at the version of a delete stays hidden, as in HBase.
        let mut row = None;
        Latest::apply(&mut row, 4, [CellRef::DeleteRow].into_iter());
        Latest::apply(&mut row, 4, [put("text", "same version")].into_iter());
        assert!(row.as_ref().unwrap().cells.is_empty());
        assert_eq!(json_of_bytes(b"a\0b"), serde_json::json!({"hex": "610062"}));
        assert_eq!(canonical_integer(b"-12"), Some(-12));
        for other in [
            &b"+12"[..],
            b"012",
            b" 12",
            b"1e3",
            b"",
            b"99999999999999999999",
        ] {
            assert_eq!(
                canonical_integer(other),
                None,
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn columns_are_read_from_their_spec() {
        let spec: BTreeMap<String, String> = [
            ("text".to_string(), "d:text".to_string()),
            ("posted_at".to_string(), "d:posted_at bigint".to_string()),
        ]
        .into();
        let layout = LatestLayout::parse(&spec).unwrap();
        assert_eq!(layout.columns[0].ty, ColumnType::Bigint);
        assert_eq!(
            layout.signature(),
            "posted_at=d:posted_at bigint,text=d:text text"
        );
        for bad in ["d", "d:x float", ":x", "d:x text extra"] {
            let spec: BTreeMap<String, String> = [("c".to_string(), bad.to_string())].into();
            assert!(LatestLayout::parse(&spec).is_err(), "{bad}");
        }
        let own: BTreeMap<String, String> = [("version".to_string(), "d:v".to_string())].into();
        assert!(LatestLayout::parse(&own).is_err());
    }
}
