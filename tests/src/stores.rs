//! Reads stores back whole, to check two runs left identical data.

use std::path::Path;

/// Every entry of every table of a SQLite store, in key order: table, row
/// key, family, qualifier, version, kind, value.
pub type Dump = Vec<(String, Vec<u8>, String, Vec<u8>, i64, i64, Vec<u8>)>;

/// Dumps a SQLite store.
pub fn dump_sqlite(path: &Path) -> Dump {
    let conn = rusqlite::Connection::open(path).expect("open store");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 't\\_%' ESCAPE '\\' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("list tables");
    let mut out = Dump::new();
    for t in tables {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT row_key, family, qualifier, version, kind, value FROM \"{t}\" ORDER BY row_key, family, qualifier, version, kind"
            ))
            .expect("select");
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    t.clone(),
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .expect("query");
        out.extend(rows.map(|r| r.expect("row")));
    }
    out
}
