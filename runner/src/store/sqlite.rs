//! The embedded default store: one SQLite file (bundled SQLite, no server).
//!
//! Each logical table is a SQLite table `t_NAME` with one row per row key
//! and version, holding every cell and delete marker written at that
//! version packed into one value ([`cells::encode`], canonical order).
//! Writing a mutation inserts its version, or merges into the version
//! already there (`sy_merge`: the union, where a cell written twice at the
//! same version keeps the later write, as HBase does), so writing the same
//! mutations again changes nothing. What a read sees is decided by
//! [`cells::visible_row`] as of a version.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;

use super::cells::{self, Entry};
use super::fed_by::FedBy;
use super::{KeyRange, NewerPage, Page, Store, StoreConfig, StoreError};
use crate::document::{Home, Kind};
use crate::fault::Fault;
use crate::model::{Mutations, Row, RowRef};

/// The kind, for the registration list.
pub const KIND: Kind<dyn StoreConfig> = Kind {
    name: "sqlite",
    read: |table| {
        let at = table.at();
        let sqlite: SqliteConfig = table.read()?;
        for table in sqlite.tables.iter().flatten() {
            check_table_name(table).map_err(|e| at.error(format!("`tables`: {e}")))?;
        }
        Ok(Box::new(sqlite))
    },
};

/// `kind = "sqlite"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// The database file (created if missing).
    pub path: String,
    /// The tables plugins may write (needed by a replay into this store).
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    /// `full` (default: a committed batch survives power loss) or `normal`
    /// (survives a crash of the runner, not of the machine; faster).
    #[serde(default)]
    pub sync: SqliteSync,
    /// The consumer that writes this store, when it is not the runner.
    #[serde(default)]
    pub fed_by: Option<FedBy>,
}

/// SQLite's `synchronous` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// fsync on every commit.
    #[default]
    Full,
    /// fsync at checkpoints only.
    Normal,
}

impl StoreConfig for SqliteConfig {
    fn describe(&self, home: &Home) -> String {
        format!("sqlite {}", home.path(&self.path).display())
    }

    fn files(&self, home: &Home) -> Vec<PathBuf> {
        let db = home.path(&self.path);
        let mut files = vec![db.clone()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = db.clone().into_os_string();
            name.push(suffix);
            files.push(name.into());
        }
        files
    }

    fn fed_by(&self) -> Option<&FedBy> {
        self.fed_by.as_ref()
    }

    fn declared_tables(&self) -> Option<Vec<String>> {
        self.tables.clone()
    }

    fn probe(&self, home: &Home, _name: &str) -> Result<String, StoreError> {
        Ok(format!("SQLite file {}", home.path(&self.path).display()))
    }

    fn open(&self, home: &Home, name: &str) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(SqliteStore::open(
            name,
            &home.path(&self.path),
            self.sync,
        )?))
    }
}

/// A SQLite store.
pub struct SqliteStore {
    name: String,
    conn: Connection,
    /// Tables known to exist (created or found), so neither is asked twice.
    known_tables: HashSet<String>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(name: &str, path: &Path, sync: SqliteSync) -> Result<Self, StoreError> {
        let err = |e: rusqlite::Error, what: String| {
            StoreError::new(name, fault_of(&e), format!("{what}: {e}"))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::new(
                    name,
                    Fault::Io,
                    format!("cannot create `{}`: {e}", dir.display()),
                )
            })?;
        }
        let conn = Connection::open(path)
            .map_err(|e| err(e, format!("cannot open `{}`", path.display())))?;
        let sync = match sync {
            SqliteSync::Full => "FULL",
            SqliteSync::Normal => "NORMAL",
        };
        // The write-ahead log is copied back into the database every 64 MiB
        // rather than every 4 MiB (SQLite's default): a replay's random
        // keys dirty the same pages again and again, and each copy writes
        // them and waits for the disk; a replay of 200k chat events took
        // 17% less time.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {sync};
             PRAGMA busy_timeout = 10000;
             PRAGMA cache_size = -65536;
             PRAGMA mmap_size = 268435456;
             PRAGMA temp_store = MEMORY;
             PRAGMA wal_autocheckpoint = 16384;
             CREATE TABLE IF NOT EXISTS sy_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        ))
        .map_err(|e| err(e, format!("cannot prepare `{}`", path.display())))?;
        conn.create_scalar_function(
            "sy_merge",
            2,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8
                | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                let older: Vec<u8> = ctx.get(0)?;
                let newer: Vec<u8> = ctx.get(1)?;
                cells::merge(&older, &newer)
                    .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))
            },
        )
        .map_err(|e| err(e, "cannot register the merge function".into()))?;
        Ok(SqliteStore {
            name: name.to_string(),
            conn,
            known_tables: HashSet::new(),
        })
    }

    /// SQLite failed at `what`.
    fn error(&self, what: &str, e: rusqlite::Error) -> StoreError {
        StoreError::new(&self.name, fault_of(&e), format!("{what}: {e}"))
    }

    /// The file holds what the store did not write: `what`, and why.
    fn corrupt(&self, what: &str, why: impl std::fmt::Display) -> StoreError {
        StoreError::new(&self.name, Fault::Io, format!("{what}: {why}"))
    }

    /// What the store was asked cannot be done: `what`, and why.
    fn refused(&self, what: &str, why: impl std::fmt::Display) -> StoreError {
        StoreError::new(&self.name, Fault::Refused, format!("{what}: {why}"))
    }

    /// Writes rows in one transaction with the watermark.
    fn write_rows<'a>(
        &mut self,
        rows: impl Iterator<Item = RowRef<'a>> + Clone,
        watermark: Option<i64>,
    ) -> Result<(), StoreError> {
        for m in rows.clone() {
            self.create_table(m.table)?;
        }
        let name = self.name.clone();
        let err = |what: &str, e: rusqlite::Error| {
            StoreError::new(&name, fault_of(&e), format!("{what}: {e}"))
        };
        let tx = self
            .conn
            .transaction()
            .map_err(|e| err("cannot begin a write", e))?;
        // Mutations of one row at one version are packed together, so each
        // becomes one SQLite row; one prepared statement per table.
        let mut grouped: BTreeMap<(&str, &[u8], u64), Vec<cells::Part<'_>>> = BTreeMap::new();
        for m in rows {
            if i64::try_from(m.version).is_err() {
                return Err(StoreError::new(
                    &name,
                    Fault::Refused,
                    format!(
                        "version {} of row {:?} is above the largest SQLite integer",
                        m.version,
                        String::from_utf8_lossy(m.row_key)
                    ),
                ));
            }
            let parts = grouped.entry((m.table, m.row_key, m.version)).or_default();
            for cell in m.cells() {
                let part = cells::part_of(cell);
                if part.1.len() > usize::from(u16::MAX) {
                    return Err(StoreError::new(
                        &name,
                        Fault::Refused,
                        format!(
                            "a family name of {} bytes in row {:?}; families are at most 65535 bytes",
                            part.1.len(),
                            String::from_utf8_lossy(m.row_key)
                        ),
                    ));
                }
                parts.push(part);
            }
        }
        let mut current: Option<(&str, rusqlite::CachedStatement<'_>)> = None;
        for ((table, row_key, version), mut parts) in grouped {
            if current.as_ref().is_none_or(|(t, _)| *t != table) {
                let sql = sql_table(table)
                    .map_err(|message| StoreError::new(&name, Fault::Refused, message))?;
                let stmt = tx
                    .prepare_cached(&format!(
                        "INSERT INTO {sql} (row_key, version, cells) VALUES (?1, ?2, ?3)
                         ON CONFLICT (row_key, version) DO UPDATE SET cells = sy_merge(cells, excluded.cells)"
                    ))
                    .map_err(|e| err("cannot write", e))?;
                current = Some((table, stmt));
            }
            let Some((_, insert)) = current.as_mut() else {
                unreachable!("a statement was just prepared");
            };
            insert
                .execute(params![
                    row_key,
                    version as i64,
                    cells::encode_parts(&mut parts)
                ])
                .map_err(|e| err("cannot write", e))?;
        }
        drop(current);
        if let Some(w) = watermark {
            tx.execute(
                "INSERT INTO sy_meta (key, value) VALUES ('watermark', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                [w],
            )
            .map_err(|e| err("cannot record the watermark", e))?;
        }
        tx.commit().map_err(|e| err("cannot commit", e))
    }

    fn create_table(&mut self, table: &str) -> Result<(), StoreError> {
        if self.known_tables.contains(table) {
            return Ok(());
        }
        let sql = sql_table(table).map_err(|m| self.refused("bad table name", m))?;
        self.conn
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {sql} (
                    row_key BLOB NOT NULL,
                    version INTEGER NOT NULL,
                    cells BLOB NOT NULL,
                    PRIMARY KEY (row_key, version)
                 ) WITHOUT ROWID;"
            ))
            .map_err(|e| self.error(&format!("cannot create table `{table}`"), e))?;
        self.known_tables.insert(table.to_string());
        Ok(())
    }

    /// Whether the table exists; a positive answer is remembered, so scans
    /// and gets ask SQLite once per table, not once per page.
    fn table_exists(&mut self, table: &str) -> Result<bool, StoreError> {
        if self.known_tables.contains(table) {
            return Ok(true);
        }
        let exists = self
            .conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [sql_table(table)
                    .map_err(|m| self.refused("bad table name", m))?
                    .trim_matches('"')],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.error("cannot list tables", e))?;
        if exists {
            self.known_tables.insert(table.to_string());
        }
        Ok(exists)
    }

    /// Entries of rows with keys in `first..=last`, versions ≤ `as_of`,
    /// grouped into visible rows.
    fn rows_between(
        &self,
        table: &str,
        first: &[u8],
        last: &[u8],
        as_of: Option<u64>,
    ) -> Result<Vec<Row>, StoreError> {
        let sql = sql_table(table).map_err(|m| self.refused("bad table name", m))?;
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT row_key, version, cells FROM {sql}
                 WHERE row_key >= ?1 AND row_key <= ?2 AND version <= ?3
                 ORDER BY row_key"
            ))
            .map_err(|e| self.error("cannot read", e))?;
        let limit = as_of.map_or(i64::MAX, |v| v.min(i64::MAX as u64) as i64);
        let mut rows = stmt
            .query(params![first, last, limit])
            .map_err(|e| self.error("cannot read", e))?;
        let mut out = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        let mut entries: Vec<Entry> = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.error("cannot read", e))? {
            let row_key: Vec<u8> = r.get(0).map_err(|e| self.error("cannot read", e))?;
            if key.as_deref() != Some(row_key.as_slice()) {
                if let Some(done) = key.take() {
                    out.extend(cells::visible_row(done, &entries));
                }
                entries.clear();
                key = Some(row_key);
            }
            let version: i64 = r.get(1).map_err(|e| self.error("cannot read", e))?;
            let packed = r.get_ref(2).map_err(|e| self.error("cannot read", e))?;
            let packed = packed
                .as_blob()
                .map_err(|e| self.corrupt("cannot read", e))?;
            cells::decode(packed, version as u64, &mut entries)
                .map_err(|e| self.corrupt("corrupt cells", e))?;
        }
        if let Some(done) = key {
            out.extend(cells::visible_row(done, &entries));
        }
        Ok(out)
    }
}

impl Store for SqliteStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(
        &mut self,
        mutations: Mutations<'_>,
        watermark: Option<i64>,
    ) -> Result<(), StoreError> {
        self.write_rows(mutations.rows(), watermark)
    }

    fn scan(
        &mut self,
        table: &str,
        range: &KeyRange,
        limit: usize,
        as_of: Option<u64>,
    ) -> Result<Page, StoreError> {
        if !self.table_exists(table)? {
            return Ok(Page::default());
        }
        let sql = sql_table(table).map_err(|m| self.refused("bad table name", m))?;
        let keys: Vec<Vec<u8>> = {
            let mut stmt = self
                .conn
                .prepare_cached(&format!(
                    "SELECT DISTINCT row_key FROM {sql}
                     WHERE row_key > ?1 AND (?2 IS NULL OR row_key < ?2)
                     ORDER BY row_key LIMIT ?3"
                ))
                .map_err(|e| self.error("cannot scan", e))?;
            // The empty key sorts first; a row key is never empty.
            let start: &[u8] = range.after.as_deref().unwrap_or(&[]);
            stmt.query_map(params![start, range.before, limit as i64], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.error("cannot scan", e))?
        };
        let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
            return Ok(Page::default());
        };
        let rows = self.rows_between(table, first, last, as_of)?;
        let next_after = (keys.len() == limit).then(|| last.to_vec());
        Ok(Page { rows, next_after })
    }

    fn newer(
        &mut self,
        table: &str,
        range: &KeyRange,
        point: u64,
        limit: usize,
    ) -> Result<NewerPage, StoreError> {
        if !self.table_exists(table)? {
            return Ok(NewerPage::default());
        }
        let sql = sql_table(table).map_err(|m| self.refused("bad table name", m))?;
        // Every version is a row, deletes included: the keys come from the
        // primary key's order without decoding a cell. Both bounds must be
        // plain comparisons for the key index to end the range: most keys
        // are not newer, so an open end would read on to the table's end.
        let end = if range.before.is_some() {
            "row_key < ?2"
        } else {
            "?2 IS NULL"
        };
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT row_key, MAX(version) FROM {sql}
                 WHERE row_key > ?1 AND {end}
                 GROUP BY row_key HAVING MAX(version) > ?3
                 ORDER BY row_key LIMIT ?4"
            ))
            .map_err(|e| self.error("cannot read newer writes", e))?;
        let start: &[u8] = range.after.as_deref().unwrap_or(&[]);
        let point = i64::try_from(point).unwrap_or(i64::MAX);
        let keys: Vec<(Vec<u8>, u64)> = stmt
            .query_map(params![start, range.before, point, limit as i64], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.error("cannot read newer writes", e))?;
        let next_after = (keys.len() == limit)
            .then(|| keys.last().map(|(k, _)| k.clone()))
            .flatten();
        Ok(NewerPage { keys, next_after })
    }

    fn get(
        &mut self,
        table: &str,
        keys: &[Vec<u8>],
        as_of: Option<u64>,
    ) -> Result<Vec<Option<Row>>, StoreError> {
        if !self.table_exists(table)? {
            return Ok(vec![None; keys.len()]);
        }
        keys.iter()
            .map(|k| Ok(self.rows_between(table, k, k, as_of)?.pop()))
            .collect()
    }

    fn tables(&mut self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 't\\_%' ESCAPE '\\' ORDER BY name")
            .map_err(|e| self.error("cannot list tables", e))?;
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.error("cannot list tables", e))?;
        Ok(names.iter().filter_map(|n| logical_table(n)).collect())
    }

    fn watermark(&mut self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM sy_meta WHERE key = 'watermark'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.error("cannot read the watermark", e))
    }
}

/// Whether `table` can name a table of this store.
pub fn check_table_name(table: &str) -> Result<(), String> {
    if table.is_empty()
        || !table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!(
            "table name `{}` may only use letters, digits, `_`, `-` and `.`",
            crate::text::foreign(table)
        ));
    }
    Ok(())
}

/// The quoted SQLite name of a logical table.
fn sql_table(table: &str) -> Result<String, String> {
    check_table_name(table)?;
    // SQLite ignores case in names; `^` marks an upper-case letter so that
    // `Messages` and `messages` stay two tables.
    let encoded: String = table
        .chars()
        .flat_map(|c| {
            let upper = c.is_ascii_uppercase();
            [upper.then_some('^'), Some(c.to_ascii_lowercase())]
        })
        .flatten()
        .collect();
    Ok(format!("\"t_{encoded}\""))
}

/// The logical name of a SQLite table name made by [`sql_table`].
fn logical_table(sqlite_name: &str) -> Option<String> {
    let encoded = sqlite_name.strip_prefix("t_")?;
    let mut out = String::new();
    let mut upper = false;
    for c in encoded.chars() {
        if c == '^' {
            upper = true;
        } else {
            out.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        }
    }
    Some(out)
}

/// Whether a SQLite failure may pass: another process holding the lock
/// may let go; a disk, file or permission problem is local I/O; the rest
/// (a constraint, a type, a statement it cannot run) will fail again.
fn fault_of(e: &rusqlite::Error) -> Fault {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => Fault::Transient,
        Some(
            C::SystemIoFailure
            | C::CannotOpen
            | C::DiskFull
            | C::ReadOnly
            | C::PermissionDenied
            | C::DatabaseCorrupt
            | C::NotADatabase
            | C::FileLockingProtocolFailed
            | C::NoLargeFileSupport,
        ) => Fault::Io,
        _ => Fault::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, RowMutation};

    fn put(key: &str, version: u64, text: &str) -> RowMutation {
        RowMutation {
            table: "messages".into(),
            row_key: key.as_bytes().to_vec().into(),
            version,
            cells: vec![Cell::put("d", &b"text"[..], text.as_bytes().to_vec())],
        }
    }

    fn open(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open("s", &dir.path().join("s.sqlite"), SqliteSync::Normal).unwrap()
    }

    #[test]
    fn failures_say_whether_they_are_transient_refused_or_io() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_database = dir.path().join("junk.sqlite");
        std::fs::write(&not_a_database, vec![7u8; 4096]).unwrap();
        let e = SqliteStore::open("s", &not_a_database, SqliteSync::Normal)
            .err()
            .unwrap();
        assert_eq!(e.fault, Fault::Io, "{e}");
        let under_a_file = not_a_database.join("s.sqlite");
        let e = SqliteStore::open("s", &under_a_file, SqliteSync::Normal)
            .err()
            .unwrap();
        assert_eq!(e.fault, Fault::Io, "{e}");
        let mut s = open(&dir);
        let too_new = RowMutation {
            version: u64::MAX,
            ..put("a", 1, "x")
        };
        let e = s.apply(&[too_new], None).unwrap_err();
        assert_eq!(e.fault, Fault::Refused, "{e}");
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert_eq!(fault_of(&busy), Fault::Transient);
    }

    #[test]
    fn writes_are_idempotent_and_reads_can_go_back_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(&dir);
        let batch = [put("a", 1, "one"), put("a", 5, "five"), put("b", 2, "two")];
        s.apply(&batch, Some(5)).unwrap();
        s.apply(&batch, Some(3)).unwrap();
        let page = s.scan("messages", &KeyRange::default(), 10, None).unwrap();
        assert_eq!(page.rows.len(), 2);
        assert_eq!(page.rows[0].cells[0].value, b"five");
        let old = s
            .get("messages", &[b"a".to_vec(), b"zz".to_vec()], Some(4))
            .unwrap();
        assert_eq!(old[0].as_ref().unwrap().cells[0].value, b"one");
        assert!(old[1].is_none());
        assert_eq!(
            s.watermark().unwrap(),
            Some(5),
            "the watermark never goes back"
        );
        assert_eq!(s.tables().unwrap(), vec!["messages".to_string()]);
    }

    #[test]
    fn scans_page_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(&dir);
        let batch: Vec<_> = (0..25)
            .rev()
            .map(|i| put(&format!("k{i:02}"), 1, "x"))
            .collect();
        s.apply(&batch, None).unwrap();
        let mut keys = Vec::new();
        let mut range = KeyRange::default();
        loop {
            let page = s.scan("messages", &range, 10, None).unwrap();
            keys.extend(
                page.rows
                    .into_iter()
                    .map(|r| String::from_utf8(r.row_key).unwrap()),
            );
            match page.next_after {
                Some(a) => range.after = Some(a),
                None => break,
            }
        }
        let expected: Vec<_> = (0..25).map(|i| format!("k{i:02}")).collect();
        assert_eq!(keys, expected);
        let middle = KeyRange {
            after: Some(b"k04".to_vec()),
            before: Some(b"k07".to_vec()),
        };
        let page = s.scan("messages", &middle, 10, None).unwrap();
        let keys: Vec<_> = page.rows.iter().map(|r| r.row_key.clone()).collect();
        assert_eq!(keys, vec![b"k05".to_vec(), b"k06".to_vec()]);
        assert_eq!(page.next_after, None);
    }

    #[test]
    fn bad_table_names_are_refused() {
        assert!(sql_table("a\"; DROP").is_err());
        assert_eq!(sql_table("messages").unwrap(), "\"t_messages\"");
        assert_eq!(sql_table("Messages").unwrap(), "\"t_^messages\"");
        assert_eq!(logical_table("t_^messages").as_deref(), Some("Messages"));
    }
}
