//! Reads stores back whole, to check two runs left identical data.

use std::path::Path;

/// Every stored row version of every table of a SQLite store, in key
/// order: table, row key, version, packed cells.
pub type Dump = Vec<(String, Vec<u8>, i64, Vec<u8>)>;

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
                "SELECT row_key, version, cells FROM \"{t}\" ORDER BY row_key, version"
            ))
            .expect("select");
        let rows = stmt
            .query_map([], |r| Ok((t.clone(), r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query");
        out.extend(rows.map(|r| r.expect("row")));
    }
    out
}
