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
//! The store's own tables, `switchyard_meta` (the watermark) and
//! `switchyard_tables` (the tables it made), live in the same schema. A
//! call that fails transiently (a lost connection, a server restarting)
//! is retried on a new connection with backoff until `retry_for`.

pub mod config;
pub mod connect;
pub mod errors;
pub mod names;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use postgres::Client;

use super::cells::{self, Entry, EntryKind};
use super::{KeyRange, Page, Store, StoreError};
use crate::fault::Fault;
use crate::model::{CellRef, Mutations, Row};
use connect::Target;
use names::{META_TABLE, TABLES_TABLE, quoted};

/// The first wait before trying again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The layout of the tables this store makes, as the registry names it.
const LAYOUT: &str = "cells";

/// A PostgreSQL store.
pub struct PostgresStore {
    name: String,
    target: Target,
    schema: String,
    retry_for: Duration,
    client: Option<Client>,
    /// Tables known to exist, so neither is asked twice.
    known_tables: HashSet<String>,
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
        retry_for: Duration,
    ) -> Result<Self, StoreError> {
        names::check_schema(schema).map_err(|e| StoreError::new(name, Fault::Refused, e))?;
        let mut store = PostgresStore {
            name: name.to_string(),
            target,
            schema: schema.to_string(),
            retry_for,
            client: None,
            known_tables: HashSet::new(),
        };
        let schema_sql = format!("\"{schema}\"");
        let meta = quoted(schema, META_TABLE);
        let tables = quoted(schema, TABLES_TABLE);
        store.call("cannot prepare the schema", |client| {
            client.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema_sql};
                 CREATE TABLE IF NOT EXISTS {meta} (key text PRIMARY KEY, value bigint NOT NULL);
                 CREATE TABLE IF NOT EXISTS {tables} (name text PRIMARY KEY, layout text NOT NULL);"
            ))
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
        mut f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let error = match self.client.as_mut() {
                Some(client) => match f(client) {
                    Ok(t) => return Ok(t),
                    Err(e) => errors::store_error(&self.name, what, &e),
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

    /// Makes `table` if it is missing, and records it.
    fn create_table(&mut self, table: &str) -> Result<(), StoreError> {
        if self.known_tables.contains(table) {
            return Ok(());
        }
        let sql = self.sql_table(table)?;
        let registry = quoted(&self.schema, TABLES_TABLE);
        self.call(&format!("cannot create table `{table}`"), |client| {
            let mut tx = client.transaction()?;
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {sql} (
                    row_key bytea NOT NULL,
                    family text NOT NULL,
                    qualifier bytea NOT NULL,
                    kind smallint NOT NULL,
                    version bigint NOT NULL,
                    value bytea NOT NULL,
                    PRIMARY KEY (row_key, family, qualifier, kind, version)
                 )"
            ))?;
            tx.execute(
                &format!(
                    "INSERT INTO {registry} (name, layout) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING"
                ),
                &[&table, &LAYOUT],
            )?;
            tx.commit()
        })?;
        self.known_tables.insert(table.to_string());
        Ok(())
    }

    /// Whether `table` was made by this store; a positive answer is
    /// remembered.
    fn table_exists(&mut self, table: &str) -> Result<bool, StoreError> {
        if self.known_tables.contains(table) {
            return Ok(true);
        }
        self.sql_table(table)?;
        let registry = quoted(&self.schema, TABLES_TABLE);
        let found = self.call("cannot list tables", |client| {
            client.query_opt(
                &format!("SELECT layout FROM {registry} WHERE name = $1"),
                &[&table],
            )
        })?;
        match found.map(|r| r.get::<_, String>(0)) {
            None => Ok(false),
            Some(layout) if layout == LAYOUT => {
                self.known_tables.insert(table.to_string());
                Ok(true)
            }
            Some(other) => Err(StoreError::new(
                &self.name,
                Fault::Refused,
                format!("table `{table}` has layout `{other}`, which this runner does not read"),
            )),
        }
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
        let found = self.call("cannot read", |client| match which {
            Which::Between(first, last) => client.query(
                &format!(
                    "{select} {sql} WHERE row_key >= $1 AND row_key <= $2 AND version <= $3 ORDER BY row_key"
                ),
                &[&first, &last, &as_of],
            ),
            Which::Keys(keys) => client.query(
                &format!(
                    "{select} {sql} WHERE row_key = ANY($1) AND version <= $2 ORDER BY row_key"
                ),
                &[&keys, &as_of],
            ),
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
}

/// Which rows a read is for.
#[derive(Clone, Copy)]
enum Which<'a> {
    Between(&'a [u8], &'a [u8]),
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
        let refused = |message: String| StoreError::new(&self.name, Fault::Refused, message);
        // One entry per table, key, cell, kind and version: the later in
        // log order wins.
        let mut index: HashMap<EntryId<'_>, usize> = HashMap::new();
        let mut entries: Vec<(EntryId<'_>, &[u8])> = Vec::new();
        let mut tables: Vec<&str> = Vec::new();
        for m in mutations.rows() {
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
            for cell in m.cells() {
                let (kind, family, qualifier, value): (EntryKind, &str, &[u8], &[u8]) = match cell {
                    CellRef::Put {
                        family,
                        qualifier,
                        value,
                    } => (EntryKind::Put, family, qualifier, value),
                    CellRef::DeleteCell { family, qualifier } => {
                        (EntryKind::DeleteCell, family, qualifier, &[])
                    }
                    CellRef::DeleteFamily { family } => (EntryKind::DeleteFamily, family, &[], &[]),
                    CellRef::DeleteRow => (EntryKind::DeleteRow, "", &[], &[]),
                };
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
        for table in &tables {
            self.create_table(table)?;
        }
        let mut statements: Vec<(String, Columns<'_>)> = Vec::new();
        for table in &tables {
            let sql = self.sql_table(table)?;
            let mut columns = Columns::default();
            for ((_, row_key, family, qualifier, kind, version), value) in
                entries.iter().filter(|e| e.0.0 == *table)
            {
                columns.row_key.push(row_key);
                columns.family.push(family);
                columns.qualifier.push(qualifier);
                columns.kind.push(*kind as i16);
                columns.version.push(*version as i64);
                columns.value.push(value);
            }
            statements.push((
                format!(
                    "INSERT INTO {sql} AS stored (row_key, family, qualifier, kind, version, value)
                     SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::int2[], $5::int8[], $6::bytea[])
                     ON CONFLICT (row_key, family, qualifier, kind, version)
                     DO UPDATE SET value = excluded.value WHERE stored.value IS DISTINCT FROM excluded.value"
                ),
                columns,
            ));
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
            tx.commit()
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
        let keys: Vec<Vec<u8>> = self
            .call("cannot scan", |client| {
                client.query(
                    &format!(
                        "SELECT DISTINCT row_key FROM {sql}
                         WHERE row_key > $1 AND ($2::bytea IS NULL OR row_key < $2)
                         ORDER BY row_key LIMIT $3"
                    ),
                    &[&start, &before, &limit_sql],
                )
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

    fn get(
        &mut self,
        table: &str,
        keys: &[Vec<u8>],
        as_of: Option<u64>,
    ) -> Result<Vec<Option<Row>>, StoreError> {
        if !self.table_exists(table)? {
            return Ok(vec![None; keys.len()]);
        }
        let found: HashMap<Vec<u8>, Row> = self
            .rows(table, Which::Keys(keys), as_of)?
            .into_iter()
            .map(|r| (r.row_key.clone(), r))
            .collect();
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    fn tables(&mut self) -> Result<Vec<String>, StoreError> {
        let registry = quoted(&self.schema, TABLES_TABLE);
        let rows = self.call("cannot list tables", |client| {
            client.query(&format!("SELECT name FROM {registry} ORDER BY name"), &[])
        })?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    fn watermark(&mut self) -> Result<Option<i64>, StoreError> {
        let meta = quoted(&self.schema, META_TABLE);
        let row = self.call("cannot read the watermark", |client| {
            client.query_opt(
                &format!("SELECT value FROM {meta} WHERE key = 'watermark'"),
                &[],
            )
        })?;
        Ok(row.map(|r| r.get(0)))
    }
}
