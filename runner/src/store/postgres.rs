//! A PostgreSQL store, through the `postgres` client (tokio-postgres).
//!
//! Each logical table is a table of the workflow's schema holding one row
//! per stored entry: a cell's value or a delete marker (of a cell, a
//! family or the row) at one version, keyed by row key, family,
//! qualifier, kind and version. That is HBase's own model, so the store
//! reads and writes exactly as the SQLite and HBase stores do:
//!
//! - **Idempotent.** Writing a mutation inserts its entries; an entry
//!   already there is left alone, and a different value at the same cell
//!   and version (two events at one version) is replaced by the later one
//!   in log order, as HBase does. Writing the same batch twice changes
//!   nothing, so a batch retried after a lost acknowledgement is safe.
//! - **Deletes are versioned tombstones.** A delete is an entry too: it
//!   hides what was written at or before its version, so an older event
//!   replayed after a delete cannot bring the row back.
//! - **As of a version.** Every version is kept, so a read can be made as
//!   of any version (what `compare` does to align two stores).
//! - **One statement per table and batch.** A batch is deduplicated (one
//!   entry per cell, kind and version: PostgreSQL refuses a statement that
//!   would change a row twice) and sent as arrays, unnested into one
//!   `INSERT … ON CONFLICT DO UPDATE`, with the watermark, in one
//!   transaction.
//!
//! A table the workflow lists under `latest` is kept instead as one row
//! per key with typed columns, guarded by version (see `latest`).
//!
//! The store's own tables, `switchyard_meta` (the watermark) and
//! `switchyard_tables` (the tables it made, their layouts and columns),
//! live in the same schema. A call that fails transiently (a lost
//! connection, a server restarting) is retried on a new connection with
//! backoff until `retry_for`.

pub mod config;
pub mod connect;
pub mod errors;
pub mod latest;
pub mod names;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use postgres::Client;

use super::cells::{self, Entry, EntryKind};
use super::{KeyRange, NewerPage, Page, Store, StoreError};
use crate::fault::Fault;
use crate::model::{Mutations, Row, RowRef};
use connect::Target;
use latest::{Latest, LatestLayout};
use names::{META_TABLE, TABLES_TABLE, quoted};

/// The first wait before trying again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The most data one statement carries (a larger batch is written with
/// several, in its one transaction).
const MAX_STATEMENT_BYTES: usize = 16 << 20;
/// The layouts of the tables this store makes, as the registry names them.
const ENTRIES: &str = "entries";
const LATEST: &str = "latest";

/// A PostgreSQL store.
pub struct PostgresStore {
    name: String,
    target: Target,
    schema: String,
    retry_for: Duration,
    client: Option<Client>,
    /// Tables kept in the `latest` layout, and their columns.
    latest: BTreeMap<String, LatestLayout>,
    /// Tables known to exist, so neither is asked twice.
    known_tables: HashSet<String>,
}

/// Why a call failed: PostgreSQL said so (perhaps for a while), or what
/// was asked cannot be stored.
enum Failure {
    Db(postgres::Error),
    Refused(String),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Db(e)
    }
}

/// What names one stored entry: table, row key, family, qualifier, kind
/// and version.
type EntryId<'a> = (&'a str, &'a [u8], &'a str, &'a [u8], EntryKind, u64);

/// The entries of one table in a batch, as the columns of one statement.
#[derive(Default)]
struct Columns<'a> {
    row_key: Vec<&'a [u8]>,
    family: Vec<&'a str>,
    qualifier: Vec<&'a [u8]>,
    kind: Vec<i16>,
    version: Vec<i64>,
    value: Vec<&'a [u8]>,
}

impl PostgresStore {
    /// Connects to `target` and makes the schema and the store's own
    /// tables if they are missing.
    pub fn open(
        name: &str,
        target: Target,
        schema: &str,
        latest: BTreeMap<String, LatestLayout>,
        retry_for: Duration,
    ) -> Result<Self, StoreError> {
        names::check_schema(schema).map_err(|e| StoreError::new(name, Fault::Refused, e))?;
        let mut store = PostgresStore {
            name: name.to_string(),
            target,
            schema: schema.to_string(),
            retry_for,
            client: None,
            latest,
            known_tables: HashSet::new(),
        };
        let schema_sql = format!("\"{schema}\"");
        let meta = quoted(schema, META_TABLE);
        let tables = quoted(schema, TABLES_TABLE);
        store.call("cannot prepare the schema", |client| {
            // Creating a schema needs a right on the database that a role
            // given only its schema lacks: asked only when it is missing.
            let missing = client
                .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])?
                .is_none();
            if missing {
                client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema_sql}"))?;
            }
            client.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {meta} (key text PRIMARY KEY, value bigint NOT NULL);
                 CREATE TABLE IF NOT EXISTS {tables} (name text PRIMARY KEY, layout text NOT NULL, columns text NOT NULL);"
            ))?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Runs `f` on a connection, connecting first if needed; a transient
    /// failure is tried again on a new connection, with backoff, until
    /// `retry_for` has passed. `f` must be safe to run again (every write
    /// is one transaction, and idempotent).
    fn call<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&mut Client) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let error = match self.client.as_mut() {
                Some(client) => match f(client) {
                    Ok(t) => return Ok(t),
                    Err(Failure::Db(e)) => errors::store_error(&self.name, what, &e),
                    Err(Failure::Refused(why)) => {
                        return Err(StoreError::new(&self.name, Fault::Refused, why));
                    }
                },
                None => match self.target.connect_once() {
                    Ok(client) => {
                        self.client = Some(client);
                        continue;
                    }
                    Err(e) => e,
                },
            };
            if error.fault != Fault::Transient {
                return Err(error);
            }
            // The connection may be broken: the next try makes a new one.
            self.client = None;
            if started.elapsed() + backoff > self.retry_for {
                return Err(StoreError::new(
                    &self.name,
                    Fault::Transient,
                    format!(
                        "{} (still failing after {}; `retry_for` sets how long to keep trying)",
                        error.message,
                        humantime::format_duration(self.retry_for)
                    ),
                ));
            }
            tracing::warn!(
                store = %self.name,
                retry_in_ms = backoff.as_millis() as u64,
                "{}; trying again",
                error.message
            );
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The quoted name of logical table `table`.
    fn sql_table(&self, table: &str) -> Result<String, StoreError> {
        names::check_table(table).map_err(|e| StoreError::new(&self.name, Fault::Refused, e))?;
        Ok(quoted(&self.schema, table))
    }

    /// The layout `table` is to have: its `latest` columns, or `None`
    /// for every entry.
    fn layout_of(&self, table: &str) -> Option<&LatestLayout> {
        self.latest.get(table)
    }

    /// The registry's words for the layout `table` is to have.
    fn registered_as(&self, table: &str) -> (&'static str, String) {
        match self.layout_of(table) {
            Some(l) => (LATEST, l.signature()),
            None => (ENTRIES, String::new()),
        }
    }

    /// Makes `table` if it is missing, and records it; a table made with
    /// another layout or other columns is refused.
    fn create_table(&mut self, table: &str) -> Result<(), StoreError> {
        if self.known_tables.contains(table) {
            return Ok(());
        }
        let sql = self.sql_table(table)?;
        let registry = quoted(&self.schema, TABLES_TABLE);
        let (layout, columns) = self.registered_as(table);
        let create = match self.layout_of(table) {
            Some(l) => l.create(&sql),
            None => format!(
                "CREATE TABLE IF NOT EXISTS {sql} (
                    row_key bytea NOT NULL,
                    family text NOT NULL,
                    qualifier bytea NOT NULL,
                    kind smallint NOT NULL,
                    version bigint NOT NULL,
                    value bytea NOT NULL,
                    PRIMARY KEY (row_key, family, qualifier, kind, version)
                 )"
            ),
        };
        self.call(&format!("cannot create table `{table}`"), |client| {
            let mut tx = client.transaction()?;
            tx.batch_execute(&create)?;
            tx.execute(
                &format!(
                    "INSERT INTO {registry} (name, layout, columns) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING"
                ),
                &[&table, &layout, &columns],
            )?;
            tx.commit()?;
            Ok(())
        })?;
        if !self.table_exists(table)? {
            return Err(StoreError::new(
                &self.name,
                Fault::Refused,
                format!("table `{table}` was made but is not in `{TABLES_TABLE}`"),
            ));
        }
        Ok(())
    }

    /// Whether `table` was made by this store, with the layout the
    /// workflow gives it; a positive answer is remembered.
    fn table_exists(&mut self, table: &str) -> Result<bool, StoreError> {
        if self.known_tables.contains(table) {
            return Ok(true);
        }
        self.sql_table(table)?;
        let registry = quoted(&self.schema, TABLES_TABLE);
        let found = self.call("cannot list tables", |client| {
            Ok(client.query_opt(
                &format!("SELECT layout, columns FROM {registry} WHERE name = $1"),
                &[&table],
            )?)
        })?;
        let Some(found) = found else {
            return Ok(false);
        };
        let (layout, columns): (String, String) = (found.get(0), found.get(1));
        let (want_layout, want_columns) = self.registered_as(table);
        if layout != want_layout || columns != want_columns {
            let shown = |layout: &str, columns: &str| {
                if columns.is_empty() {
                    format!("layout `{layout}`")
                } else {
                    format!("layout `{layout}` with columns {columns}")
                }
            };
            return Err(StoreError::new(
                &self.name,
                Fault::Refused,
                format!(
                    "table `{table}` was made with {}, but the workflow gives it {}; use another table or schema, or drop it",
                    shown(&layout, &columns),
                    shown(want_layout, &want_columns)
                ),
            ));
        }
        self.known_tables.insert(table.to_string());
        Ok(true)
    }

    /// The visible rows of the entries of keys in `first..=last` (or of
    /// exactly `keys`), versions ≤ `as_of`, in key order.
    fn rows(
        &mut self,
        table: &str,
        which: Which<'_>,
        as_of: Option<u64>,
    ) -> Result<Vec<Row>, StoreError> {
        let sql = self.sql_table(table)?;
        let as_of = as_of.map_or(i64::MAX, |v| v.min(i64::MAX as u64) as i64);
        let select = "SELECT row_key, family, qualifier, kind, version, value FROM";
        let found = self.call("cannot read", |client| {
            Ok(match which {
                Which::Between(first, last) => client.query(
                    &format!(
                        "{select} {sql} WHERE row_key >= $1 AND row_key <= $2 AND version <= $3 ORDER BY row_key"
                    ),
                    &[&first, &last, &as_of],
                )?,
                Which::Keys(keys) => client.query(
                    &format!(
                        "{select} {sql} WHERE row_key = ANY($1) AND version <= $2 ORDER BY row_key"
                    ),
                    &[&keys, &as_of],
                )?,
            })
        })?;
        let mut out = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        let mut entries: Vec<Entry> = Vec::new();
        for r in found {
            let row_key: Vec<u8> = r.get(0);
            if key.as_deref() != Some(row_key.as_slice()) {
                if let Some(done) = key.take() {
                    out.extend(cells::visible_row(done, &entries));
                }
                entries.clear();
                key = Some(row_key);
            }
            let kind: i16 = r.get(3);
            let version: i64 = r.get(4);
            entries.push(Entry {
                family: r.get(1),
                qualifier: r.get(2),
                version: version as u64,
                kind: EntryKind::from_code(i64::from(kind)).ok_or_else(|| {
                    StoreError::new(
                        &self.name,
                        Fault::Refused,
                        format!("table `{table}` holds an entry of unknown kind {kind}; it was not written by this runner"),
                    )
                })?,
                value: r.get(5),
            });
        }
        if let Some(done) = key {
            out.extend(cells::visible_row(done, &entries));
        }
        Ok(out)
    }

    /// The `latest` rows of `table` (made with `layout`) in `which`, as of
    /// `as_of`: a row newer than that cannot be read as it was then, and
    /// is refused, named.
    fn latest_rows(
        &mut self,
        table: &str,
        which: LatestWhich<'_>,
        as_of: Option<u64>,
    ) -> Result<Vec<(Vec<u8>, Latest)>, StoreError> {
        let sql = self.sql_table(table)?;
        let Some(layout) = self.layout_of(table).cloned() else {
            return Ok(Vec::new());
        };
        let select = layout.select();
        let found = self.call("cannot read", |client| {
            let rows = match which {
                LatestWhich::After(start, before, limit) => client.query(
                    &format!(
                        "SELECT {select} FROM {sql}
                         WHERE row_key > $1 AND ($2::bytea IS NULL OR row_key < $2)
                         ORDER BY row_key LIMIT $3"
                    ),
                    &[&start, &before, &limit],
                )?,
                LatestWhich::Keys(keys) => client.query(
                    &format!("SELECT {select} FROM {sql} WHERE row_key = ANY($1) ORDER BY row_key"),
                    &[&keys],
                )?,
            };
            rows.iter()
                .map(|r| layout.read(r).map_err(Failure::Refused))
                .collect::<Result<Vec<_>, _>>()
        })?;
        if let Some(as_of) = as_of
            && let Some((key, row)) = found.iter().find(|(_, r)| r.version as u64 > as_of)
        {
            return Err(StoreError::new(
                &self.name,
                Fault::Refused,
                format!(
                    "table `{table}` keeps only the latest row of each key (`latest` layout): row {} is at version {}, after the read point {as_of}, and cannot be read as it was then",
                    crate::text::foreign_bytes(key),
                    row.version
                ),
            ));
        }
        Ok(found)
    }
}

/// Where a new statement starts among entries of these sizes, so that
/// none carries more than `max` bytes (an entry larger than that goes
/// alone).
fn statement_starts(sizes: &[usize], max: usize) -> Vec<usize> {
    let mut starts = vec![0];
    let mut bytes = 0usize;
    for (i, size) in sizes.iter().enumerate() {
        if bytes > 0 && bytes + size > max {
            starts.push(i);
            bytes = 0;
        }
        bytes += size;
    }
    starts
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // The client closes its connection by blocking on a runtime of its
        // own, which tokio refuses inside another runtime's thread (a
        // read-api drops its store there): such a drop goes to a thread of
        // its own.
        if let Some(client) = self.client.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            let _ = std::thread::Builder::new()
                .name("postgres-close".into())
                .spawn(move || drop(client));
        }
    }
}

/// Which rows a read is for.
#[derive(Clone, Copy)]
enum Which<'a> {
    Between(&'a [u8], &'a [u8]),
    Keys(&'a [Vec<u8>]),
}

/// Which `latest` rows a read is for: after a key (before another), at
/// most so many; or given keys.
#[derive(Clone, Copy)]
enum LatestWhich<'a> {
    After(&'a [u8], Option<&'a [u8]>, i64),
    Keys(&'a [Vec<u8>]),
}

impl Store for PostgresStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(
        &mut self,
        mutations: Mutations<'_>,
        watermark: Option<i64>,
    ) -> Result<(), StoreError> {
        let name = self.name.clone();
        let refused = |message: String| StoreError::new(&name, Fault::Refused, message);
        let rows: Vec<RowRef<'_>> = mutations.rows().collect();
        let mut tables: Vec<&str> = Vec::new();
        for m in &rows {
            if i64::try_from(m.version).is_err() {
                return Err(refused(format!(
                    "version {} of row {} is above the largest PostgreSQL bigint",
                    m.version,
                    crate::text::foreign_bytes(m.row_key)
                )));
            }
            if !tables.contains(&m.table) {
                tables.push(m.table);
            }
        }
        for table in &tables {
            self.create_table(table)?;
        }
        // Tables with every entry: one entry per table, key, cell, kind
        // and version, the later in log order winning.
        let mut index: HashMap<EntryId<'_>, usize> = HashMap::new();
        let mut entries: Vec<(EntryId<'_>, &[u8])> = Vec::new();
        for m in rows.iter().filter(|m| self.layout_of(m.table).is_none()) {
            for cell in m.cells() {
                let (kind, family, qualifier, value) = cells::part_of(cell);
                if family.contains('\0') {
                    return Err(refused(format!(
                        "a family name with a NUL character in row {}; PostgreSQL text cannot hold it",
                        crate::text::foreign_bytes(m.row_key)
                    )));
                }
                let id = (m.table, m.row_key, family, qualifier, kind, m.version);
                match index.get(&id) {
                    Some(&i) => entries[i].1 = value,
                    None => {
                        index.insert(id, entries.len());
                        entries.push((id, value));
                    }
                }
            }
        }
        let mut statements: Vec<(String, Columns<'_>)> = Vec::new();
        let mut latest: Vec<(String, LatestLayout, Vec<RowRef<'_>>)> = Vec::new();
        for table in &tables {
            let sql = self.sql_table(table)?;
            if let Some(layout) = self.layout_of(table) {
                let of_table: Vec<RowRef<'_>> =
                    rows.iter().filter(|m| m.table == *table).copied().collect();
                latest.push((sql, layout.clone(), of_table));
                continue;
            }
            let insert = format!(
                "INSERT INTO {sql} AS stored (row_key, family, qualifier, kind, version, value)
                 SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::int2[], $5::int8[], $6::bytea[])
                 ON CONFLICT (row_key, family, qualifier, kind, version)
                 DO UPDATE SET value = excluded.value WHERE stored.value IS DISTINCT FROM excluded.value"
            );
            // Each entry repeats its row key: a statement is cut at
            // MAX_STATEMENT_BYTES, so the message the client builds stays
            // bounded whatever a plugin's rows look like.
            let of_table: Vec<_> = entries.iter().filter(|e| e.0.0 == *table).collect();
            let sizes: Vec<usize> = of_table
                .iter()
                .map(|((_, k, f, q, _, _), v)| k.len() + f.len() + q.len() + v.len() + 32)
                .collect();
            let starts = statement_starts(&sizes, MAX_STATEMENT_BYTES);
            let mut columns = Columns::default();
            for (i, ((_, row_key, family, qualifier, kind, version), value)) in
                of_table.into_iter().enumerate()
            {
                if i > 0 && starts.contains(&i) {
                    statements.push((insert.clone(), std::mem::take(&mut columns)));
                }
                columns.row_key.push(row_key);
                columns.family.push(family);
                columns.qualifier.push(qualifier);
                columns.kind.push(*kind as i16);
                columns.version.push(*version as i64);
                columns.value.push(value);
            }
            statements.push((insert, columns));
        }
        let meta = quoted(&self.schema, META_TABLE);
        self.call("cannot write", |client| {
            let mut tx = client.transaction()?;
            for (sql, c) in &statements {
                tx.execute(
                    sql.as_str(),
                    &[
                        &c.row_key,
                        &c.family,
                        &c.qualifier,
                        &c.kind,
                        &c.version,
                        &c.value,
                    ],
                )?;
            }
            for (sql, layout, of_table) in &latest {
                write_latest(&mut tx, sql, layout, of_table)?;
            }
            if let Some(w) = watermark {
                // The watermark never goes back.
                tx.execute(
                    &format!(
                        "INSERT INTO {meta} AS m (key, value) VALUES ('watermark', $1)
                         ON CONFLICT (key) DO UPDATE SET value = GREATEST(m.value, excluded.value)"
                    ),
                    &[&w],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
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
        let sql = self.sql_table(table)?;
        // The empty key sorts first; a row key is never empty.
        let start: &[u8] = range.after.as_deref().unwrap_or(&[]);
        let before = range.before.as_deref();
        let limit_sql = limit.min(i64::MAX as usize) as i64;
        if self.layout_of(table).is_some() {
            let found =
                self.latest_rows(table, LatestWhich::After(start, before, limit_sql), as_of)?;
            let next_after = (found.len() == limit)
                .then(|| found.last().map(|(k, _)| k.clone()))
                .flatten();
            let rows = found
                .into_iter()
                .filter_map(|(key, row)| row.visible(key))
                .collect();
            return Ok(Page { rows, next_after });
        }
        let keys: Vec<Vec<u8>> = self
            .call("cannot scan", |client| {
                Ok(client.query(
                    &format!(
                        "SELECT DISTINCT row_key FROM {sql}
                         WHERE row_key > $1 AND ($2::bytea IS NULL OR row_key < $2)
                         ORDER BY row_key LIMIT $3"
                    ),
                    &[&start, &before, &limit_sql],
                )?)
            })?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
            return Ok(Page::default());
        };
        let rows = self.rows(table, Which::Between(first, last), as_of)?;
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
        let sql = self.sql_table(table)?;
        let start: &[u8] = range.after.as_deref().unwrap_or(&[]);
        let before = range.before.as_deref();
        let point = i64::try_from(point).unwrap_or(i64::MAX);
        let limit_sql = limit.min(i64::MAX as usize) as i64;
        // Both layouts keep a version per row, deletes included. Both
        // bounds are plain comparisons, so the key index ends the range.
        let end = if before.is_some() {
            "row_key < $2"
        } else {
            "$2::bytea IS NULL"
        };
        let keys: Vec<(Vec<u8>, u64)> = self
            .call("cannot read newer writes", |client| {
                Ok(client.query(
                    &format!(
                        "SELECT row_key, MAX(version) FROM {sql}
                         WHERE row_key > $1 AND {end}
                         GROUP BY row_key HAVING MAX(version) > $3
                         ORDER BY row_key LIMIT $4"
                    ),
                    &[&start, &before, &point, &limit_sql],
                )?)
            })?
            .into_iter()
            .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, i64>(1).max(0) as u64))
            .collect();
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
        let found: HashMap<Vec<u8>, Row> = if self.layout_of(table).is_some() {
            self.latest_rows(table, LatestWhich::Keys(keys), as_of)?
                .into_iter()
                .filter_map(|(key, row)| row.visible(key.clone()).map(|r| (key, r)))
                .collect()
        } else {
            self.rows(table, Which::Keys(keys), as_of)?
                .into_iter()
                .map(|r| (r.row_key.clone(), r))
                .collect()
        };
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    fn tables(&mut self) -> Result<Vec<String>, StoreError> {
        let registry = quoted(&self.schema, TABLES_TABLE);
        let rows = self.call("cannot list tables", |client| {
            Ok(client.query(&format!("SELECT name FROM {registry} ORDER BY name"), &[])?)
        })?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    fn watermark(&mut self) -> Result<Option<i64>, StoreError> {
        let meta = quoted(&self.schema, META_TABLE);
        let row = self.call("cannot read the watermark", |client| {
            Ok(client.query_opt(
                &format!("SELECT value FROM {meta} WHERE key = 'watermark'"),
                &[],
            )?)
        })?;
        Ok(row.map(|r| r.get(0)))
    }
}

/// Applies the mutations of one `latest` table, in log order, to its rows
/// as they are (read and locked), and writes back those that changed,
/// with the version guard in the statement too.
fn write_latest(
    tx: &mut postgres::Transaction<'_>,
    sql: &str,
    layout: &LatestLayout,
    mutations: &[RowRef<'_>],
) -> Result<(), Failure> {
    let mut keys: Vec<&[u8]> = mutations.iter().map(|m| m.row_key).collect();
    keys.sort_unstable();
    keys.dedup();
    // Every key gets a row to lock, so two writers of one new key wait for
    // each other instead of both starting from nothing (a placeholder,
    // version -1 and no cells, is older than any event and shows nothing).
    tx.execute(
        &format!(
            "INSERT INTO {sql} (row_key, version, deleted, cells)
             SELECT k, -1, false, '{{}}'::jsonb FROM unnest($1::bytea[]) AS k
             ON CONFLICT (row_key) DO NOTHING"
        ),
        &[&keys],
    )?;
    let found = tx.query(
        &format!(
            "SELECT {} FROM {sql} WHERE row_key = ANY($1) ORDER BY row_key FOR UPDATE",
            layout.select()
        ),
        &[&keys],
    )?;
    let mut rows: HashMap<Vec<u8>, Option<Latest>> = HashMap::with_capacity(keys.len());
    for r in &found {
        let (key, row) = layout.read(r).map_err(Failure::Refused)?;
        rows.insert(key, Some(row));
    }
    let mut changed: Vec<&[u8]> = Vec::new();
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for m in mutations {
        let row = rows.entry(m.row_key.to_vec()).or_insert(None);
        if Latest::apply(row, m.version as i64, m.cells()) && seen.insert(m.row_key) {
            changed.push(m.row_key);
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    let written: Vec<(&[u8], &Latest)> = changed
        .iter()
        .filter_map(|k| rows.get(*k).and_then(|r| r.as_ref()).map(|r| (*k, r)))
        .collect();
    let params = layout.params(&written).map_err(Failure::Refused)?;
    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
        params.iter().map(|p| p.as_ref()).collect();
    tx.execute(&layout.upsert(sql), &refs)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_cut_into_statements_of_bounded_size() {
        assert_eq!(statement_starts(&[10, 10, 10, 10], 25), vec![0, 2]);
        assert_eq!(statement_starts(&[30, 5, 30], 25), vec![0, 1, 2]);
        assert_eq!(statement_starts(&[1; 1000], MAX_STATEMENT_BYTES), vec![0]);
    }
}
