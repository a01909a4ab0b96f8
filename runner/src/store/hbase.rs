//! The HBase store: tables of an HBase cluster through its Thrift1 server
//! (`Hbase.thrift`, the `hbase-thrift` crate's generated client).
//!
//! - A mutation's version is its cells' HBase timestamp. Writing the same
//!   mutation again writes the same cells at the same timestamps, so
//!   replay is idempotent; deletes are HBase delete markers at the version
//!   (`Delete.addColumns`, `addFamily`, whole rows), which hide what was
//!   written at or before it, also when that arrives later.
//! - Opening the store creates the tables of `tables` that are missing,
//!   with `max_versions` versions per family so as-of reads see history,
//!   and checks that existing ones have the families listed.
//! - `apply` sends one `mutateRowsTs` per table and version (Thrift1 has
//!   one timestamp per call), split every `batch_rows` rows, over up to
//!   `pool` connections at once, and returns when every call was
//!   acknowledged. Then it records the watermark in the `switchyard_meta`
//!   table (row `watermark`, column `m:STORE`, at the watermark as
//!   timestamp, so the highest one written is the one read back).
//!   Unlike SQLite, an apply is not atomic across rows: one that fails
//!   may have written part of its batch. The batch is applied again when
//!   the replay resumes, which converges, since writes are idempotent.
//! - A call that fails transiently (connection refused or broken, a
//!   timeout, an `IOError` with `canRetry`) is retried on a new connection
//!   until `retry_for` runs out; anything else fails at once, with the
//!   server's words.
//! - `scan` and `get` read as of a version with Thrift1's exclusive
//!   timestamp bound (`as_of + 1`).
//!
//! One difference to the SQLite store: HBase's as-of reads still see
//! delete markers newer than the read point (without KEEP_DELETED_CELLS,
//! which Thrift1 cannot set, a marker masks older puts whatever the read's
//! time range). So an as-of read of a row deleted later shows it deleted
//! where SQLite shows it as it was. Blue and green both behave so, and the
//! compare step's re-read after a delay covers the lag between them.

pub mod config;
/// Public so the benchmarks' raw baseline sends the very calls the store
/// sends.
pub mod convert;
mod errors;
/// Public so the benchmarks' raw baseline uses the store's own pool.
pub mod pool;
mod tables;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hbase_thrift::hbase::{Mutation, THbaseSyncClient, TScan};

use super::{KeyRange, Page, Store, StoreError};
use crate::fault::Fault;
use crate::model::{CellRef, Mutations, Row, RowRef};
pub use config::HbaseConfig;
use convert::Call;
use errors::Failure;
use pool::Pool;
pub use tables::{check_family_name, check_table_name};

/// The table where stores keep their watermark.
pub const META_TABLE: &str = "switchyard_meta";
const META_FAMILY: &str = "m";
const WATERMARK_ROW: &[u8] = b"watermark";

/// Defaults of the settings.
const DEFAULT_MAX_VERSIONS: u32 = 1000;
const DEFAULT_POOL: usize = 4;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(60);
const DEFAULT_BATCH_ROWS: usize = 1000;

/// An HBase store.
pub struct HbaseStore {
    name: String,
    pool: Pool,
    /// The tables of `tables`, in order.
    configured: Vec<String>,
    batch_rows: usize,
    /// Families of the tables known to exist.
    families: HashMap<String, BTreeSet<String>>,
    meta_ready: bool,
}

impl HbaseStore {
    /// Connects, creates the missing tables and checks the others.
    pub fn open(name: &str, cfg: &HbaseConfig) -> Result<Self, StoreError> {
        let mut store = HbaseStore {
            name: name.to_string(),
            pool: Pool::new(
                name,
                &cfg.thrift,
                cfg.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0),
                cfg.retry_for.map_or(DEFAULT_RETRY_FOR, |t| t.0),
                cfg.pool.unwrap_or(DEFAULT_POOL),
            ),
            configured: cfg.tables.keys().cloned().collect(),
            batch_rows: cfg.batch_rows.unwrap_or(DEFAULT_BATCH_ROWS).max(1),
            families: HashMap::new(),
            meta_ready: false,
        };
        let max_versions = cfg.max_versions.unwrap_or(DEFAULT_MAX_VERSIONS);
        let max_versions = i32::try_from(max_versions).unwrap_or(i32::MAX);
        for (table, wanted) in &cfg.tables {
            let versions = store.ensure_table(table, wanted, max_versions)?;
            let existing: BTreeSet<String> = versions.keys().cloned().collect();
            if let Some(why) = shape_error(table, wanted, &versions) {
                return Err(store.refused(why));
            }
            store.families.insert(table.clone(), existing);
        }
        Ok(store)
    }

    /// Checks, writing nothing, that the Thrift server answers (within a
    /// few seconds, without the retries of a working store) and that each
    /// table of `tables` either exists with its families and enough
    /// versions, or is missing and will be created.
    pub fn probe(name: &str, cfg: &HbaseConfig) -> Result<String, StoreError> {
        let timeout = cfg
            .timeout
            .map_or(DEFAULT_TIMEOUT, |t| t.0)
            .min(PROBE_TIMEOUT);
        let pool = Pool::new(name, &cfg.thrift, timeout, Duration::ZERO, 1);
        let mut missing = Vec::new();
        for (table, wanted) in &cfg.tables {
            match tables::versions(&pool, table).map_err(|f| {
                StoreError::new(
                    name,
                    f.fault(),
                    format!("cannot describe table `{table}`: {}", f.message),
                )
            })? {
                Some(versions) => {
                    if let Some(why) = shape_error(table, wanted, &versions) {
                        return Err(StoreError::new(name, Fault::Refused, why));
                    }
                }
                None => missing.push(format!("`{table}`")),
            }
        }
        Ok(format!(
            "HBase Thrift at {}{}",
            cfg.thrift,
            if missing.is_empty() {
                String::new()
            } else {
                format!("; will create {}", missing.join(", "))
            }
        ))
    }

    /// HBase cannot do what was asked, and will not on a retry.
    fn refused(&self, message: String) -> StoreError {
        StoreError::new(&self.name, Fault::Refused, message)
    }

    /// A call failed at `what`, after the pool's retries.
    fn failed(&self, what: &str, failure: Failure) -> StoreError {
        StoreError::new(
            &self.name,
            failure.fault(),
            format!("{what}: {}", failure.message),
        )
    }

    /// The families of `table` and their versions, creating it with
    /// `families` when missing.
    fn ensure_table(
        &self,
        table: &str,
        families: &[String],
        max_versions: i32,
    ) -> Result<BTreeMap<String, i32>, StoreError> {
        let fail = |f| self.failed(&format!("cannot prepare table `{table}`"), f);
        if let Some(existing) = tables::versions(&self.pool, table).map_err(fail)? {
            return Ok(existing);
        }
        tables::create(&self.pool, table, families, max_versions).map_err(fail)?;
        tracing::info!(store = %self.name, table, "created HBase table");
        tables::versions(&self.pool, table)
            .map_err(fail)?
            .ok_or_else(|| {
                self.refused(format!(
                    "table `{table}` vanished right after it was created"
                ))
            })
    }

    /// The families of `table`, `None` when it does not exist.
    fn families_of(&mut self, table: &str) -> Result<Option<&BTreeSet<String>>, StoreError> {
        if !self.families.contains_key(table) {
            match tables::families(&self.pool, table) {
                Ok(Some(found)) => {
                    self.families.insert(table.to_string(), found);
                }
                Ok(None) => return Ok(None),
                Err(f) => return Err(self.failed(&format!("cannot describe table `{table}`"), f)),
            }
        }
        Ok(self.families.get(table))
    }

    /// Refuses mutations of tables or families HBase does not have, before
    /// anything is written. A family missing from what the store knows is
    /// looked up again once, in case the table was altered meanwhile.
    fn check_families<'a>(
        &mut self,
        rows: impl Iterator<Item = RowRef<'a>>,
    ) -> Result<(), StoreError> {
        for m in rows {
            // What `tables()` lists is what may be written: the two agree.
            if !self.configured.iter().any(|t| t == m.table) {
                return Err(self.refused(format!(
                    "table `{}` is not among the store's `tables` ({}); list it there",
                    m.table,
                    self.configured
                        .iter()
                        .map(|t| format!("`{t}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let mut refreshed = false;
            loop {
                let Some(families) = self.families_of(m.table)? else {
                    return Err(self.refused(format!(
                        "table `{}` does not exist in HBase; list it in the store's `tables` so the runner creates it",
                        m.table
                    )));
                };
                let Some(family) = unknown_family(&m, families) else {
                    break;
                };
                if !refreshed {
                    self.families.remove(m.table);
                    refreshed = true;
                    continue;
                }
                let message = format!(
                    "table `{}` has no column family `{family}` (it has {}); row {:?} at version {}",
                    m.table,
                    listed(families),
                    String::from_utf8_lossy(m.row_key),
                    m.version
                );
                return Err(self.refused(message));
            }
        }
        Ok(())
    }

    /// Sends the calls of an apply, over up to `pool` connections at once.
    fn send(&self, calls: &[Call]) -> Result<(), StoreError> {
        let lanes = self.pool.size().min(calls.len());
        if lanes <= 1 {
            return calls.iter().try_for_each(|c| self.send_one(c));
        }
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let lane = || -> Result<(), StoreError> {
            while !failed.load(Ordering::Relaxed) {
                let Some(call) = calls.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                if let Err(e) = self.send_one(call) {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
            Ok(())
        };
        std::thread::scope(|s| {
            let running: Vec<_> = (0..lanes).map(|_| s.spawn(lane)).collect();
            running
                .into_iter()
                .map(|r| r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<Result<Vec<()>, StoreError>>()
        })?;
        Ok(())
    }

    fn send_one(&self, call: &Call) -> Result<(), StoreError> {
        let table = call.table().as_bytes();
        let result = match call {
            Call::Rows {
                timestamp, batches, ..
            } => self.pool.call("mutateRowsTs", |c| {
                c.mutate_rows_ts(table.to_vec(), batches.clone(), *timestamp, BTreeMap::new())
            }),
            Call::DeleteRow { row, timestamp, .. } => self.pool.call("deleteAllRowTs", |c| {
                c.delete_all_row_ts(table.to_vec(), row.clone(), *timestamp, BTreeMap::new())
            }),
        };
        result.map_err(|f| {
            self.failed(
                &format!(
                    "cannot write {} row(s) of table `{}`",
                    call.rows(),
                    call.table()
                ),
                f,
            )
        })
    }

    fn write_watermark(&mut self, watermark: i64) -> Result<(), StoreError> {
        if !self.meta_ready {
            self.ensure_table(META_TABLE, &[META_FAMILY.to_string()], 1)?;
            self.meta_ready = true;
        }
        let put = Mutation::new(
            false,
            self.watermark_column(),
            watermark.to_string().into_bytes(),
            true,
        );
        self.pool
            .call("mutateRowTs", |c| {
                c.mutate_row_ts(
                    META_TABLE.into(),
                    WATERMARK_ROW.to_vec(),
                    vec![put.clone()],
                    watermark.max(0),
                    BTreeMap::new(),
                )
            })
            .map_err(|f| self.failed("cannot record the watermark", f))
    }

    fn watermark_column(&self) -> Vec<u8> {
        convert::column(META_FAMILY, Some(self.name.as_bytes()))
    }
}

/// How long the preflight waits for the Thrift server.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an existing table cannot serve as the workflow declares it: a
/// family missing, or too few versions kept for as-of reads.
fn shape_error(table: &str, wanted: &[String], versions: &BTreeMap<String, i32>) -> Option<String> {
    let existing: BTreeSet<String> = versions.keys().cloned().collect();
    if let Some(missing) = wanted.iter().find(|f| !existing.contains(*f)) {
        return Some(format!(
            "table `{table}` has no column family `{missing}` (it has {}); add it in HBase (`alter '{table}', '{missing}'`) or remove it from `tables`",
            listed(&existing)
        ));
    }
    tables::too_few_versions(table, versions)
}

/// The first family `m` writes that is not in `families`.
fn unknown_family<'m>(m: &RowRef<'m>, families: &BTreeSet<String>) -> Option<&'m str> {
    m.cells().find_map(|c| match c {
        CellRef::Put { family, .. }
        | CellRef::DeleteCell { family, .. }
        | CellRef::DeleteFamily { family } => (!families.contains(family)).then_some(family),
        CellRef::DeleteRow => None,
    })
}

/// Thrift1's exclusive timestamp bound for reading as of `as_of`
/// (inclusive); `None` reads everything.
fn read_bound(as_of: Option<u64>) -> Option<i64> {
    as_of
        .and_then(|v| i64::try_from(v).ok())
        .and_then(|v| v.checked_add(1))
}

/// `a`, `b` as "`a`, `b`".
fn listed(families: &BTreeSet<String>) -> String {
    let names: Vec<String> = families.iter().map(|f| format!("`{f}`")).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

impl Store for HbaseStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(
        &mut self,
        mutations: Mutations<'_>,
        watermark: Option<i64>,
    ) -> Result<(), StoreError> {
        let rows = mutations.rows();
        self.check_families(rows.clone())?;
        let calls = convert::calls(rows, self.batch_rows).map_err(|m| self.refused(m))?;
        self.send(&calls)?;
        match watermark {
            Some(w) => self.write_watermark(w),
            None => Ok(()),
        }
    }

    fn scan(
        &mut self,
        table: &str,
        range: &KeyRange,
        limit: usize,
        as_of: Option<u64>,
    ) -> Result<Page, StoreError> {
        if limit == 0 || self.families_of(table)?.is_none() {
            return Ok(Page::default());
        }
        // The first key after `after` is `after` followed by a zero byte.
        let start = range.after.as_ref().map(|a| {
            let mut k = a.clone();
            k.push(0);
            k
        });
        let want = i32::try_from(limit).unwrap_or(i32::MAX);
        let scan = TScan::new(
            start,
            range.before.clone(),
            read_bound(as_of),
            None,
            want,
            None,
            None,
            None,
            None,
            None,
        );
        let results = self
            .pool
            .call("scan", |c| {
                let id = c.scanner_open_with_scan(table.into(), scan.clone(), BTreeMap::new())?;
                let mut rows = Vec::new();
                let mut read = Ok(());
                while rows.len() < limit {
                    let left = i32::try_from(limit - rows.len()).unwrap_or(i32::MAX);
                    match c.scanner_get_list(id, left) {
                        Ok(got) if got.is_empty() => break,
                        Ok(got) => rows.extend(got),
                        Err(e) => {
                            read = Err(e);
                            break;
                        }
                    }
                }
                let closed = c.scanner_close(id);
                read?;
                closed?;
                Ok(rows)
            })
            .map_err(|f| self.failed(&format!("cannot scan table `{table}`"), f))?;
        let rows = results
            .into_iter()
            .map(convert::row)
            .collect::<Result<Vec<Row>, String>>()
            .map_err(|m| self.refused(format!("table `{table}`: {m}")))?;
        let next_after = (rows.len() >= limit)
            .then(|| rows.last().map(|r| r.row_key.clone()))
            .flatten();
        Ok(Page { rows, next_after })
    }

    /// One read of the latest state: a row whose newest cell is at or
    /// below `point` reads the same as of `point` (HBase applies later
    /// deletes to reads as of earlier times too), so only the rows written
    /// above it are read again as of it.
    fn scan_newer(
        &mut self,
        table: &str,
        range: &KeyRange,
        limit: usize,
        point: u64,
    ) -> Result<(Page, super::NewerKeys), StoreError> {
        let mut page = self.scan(table, range, limit, None)?;
        let newer: super::NewerKeys = page
            .rows
            .iter()
            .filter_map(|row| {
                let top = row.cells.iter().map(|c| c.version).max()?;
                (top > point).then(|| (row.row_key.clone(), top))
            })
            .collect();
        if !newer.is_empty() {
            let keys: Vec<Vec<u8>> = newer.iter().map(|(k, _)| k.clone()).collect();
            let rewritten: BTreeSet<&[u8]> = newer.iter().map(|(k, _)| k.as_slice()).collect();
            let mut then: HashMap<Vec<u8>, Row> = keys
                .iter()
                .cloned()
                .zip(self.get(table, &keys, Some(point))?)
                .filter_map(|(k, row)| Some((k, row?)))
                .collect();
            page.rows = std::mem::take(&mut page.rows)
                .into_iter()
                .filter_map(|row| {
                    if rewritten.contains(row.row_key.as_slice()) {
                        then.remove(&row.row_key)
                    } else {
                        Some(row)
                    }
                })
                .collect();
        }
        Ok((page, newer))
    }

    fn get(
        &mut self,
        table: &str,
        keys: &[Vec<u8>],
        as_of: Option<u64>,
    ) -> Result<Vec<Option<Row>>, StoreError> {
        if keys.is_empty() || self.families_of(table)?.is_none() {
            return Ok(vec![None; keys.len()]);
        }
        let bound = read_bound(as_of);
        let mut found: HashMap<Vec<u8>, Row> = HashMap::new();
        for chunk in keys.chunks(self.batch_rows) {
            let results = self
                .pool
                .call("getRows", |c| match bound {
                    Some(ts) => c.get_rows_ts(table.into(), chunk.to_vec(), ts, BTreeMap::new()),
                    None => c.get_rows(table.into(), chunk.to_vec(), BTreeMap::new()),
                })
                .map_err(|f| self.failed(&format!("cannot read table `{table}`"), f))?;
            for result in results {
                let row = convert::row(result)
                    .map_err(|m| self.refused(format!("table `{table}`: {m}")))?;
                found.insert(row.row_key.clone(), row);
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    fn tables(&mut self) -> Result<Vec<String>, StoreError> {
        let names = self
            .pool
            .call("getTableNames", |c| c.get_table_names())
            .map_err(|f| self.failed("cannot list tables", f))?;
        Ok(self
            .configured
            .iter()
            .filter(|t| names.iter().any(|n| n == t.as_bytes()))
            .cloned()
            .collect())
    }

    fn watermark(&mut self) -> Result<Option<i64>, StoreError> {
        let column = self.watermark_column();
        let result = self.pool.call("getRowWithColumns", |c| {
            c.get_row_with_columns(
                META_TABLE.into(),
                WATERMARK_ROW.to_vec(),
                vec![column.clone()],
                BTreeMap::new(),
            )
        });
        let rows = match result {
            Ok(rows) => rows,
            Err(f) if f.table_not_found => return Ok(None),
            Err(f) => return Err(self.failed("cannot read the watermark", f)),
        };
        let Some(cell) = rows
            .into_iter()
            .find_map(|r| r.columns.and_then(|mut c| c.remove(&column)))
        else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(cell.value.as_deref().unwrap_or_default()).into_owned();
        text.parse().map(Some).map_err(|_| {
            self.refused(format!(
                "the watermark `{text}` in `{META_TABLE}` is not a number"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_bound_is_one_past_as_of() {
        assert_eq!(read_bound(None), None);
        assert_eq!(read_bound(Some(5)), Some(6));
        assert_eq!(read_bound(Some(i64::MAX as u64)), None);
        assert_eq!(read_bound(Some(u64::MAX)), None);
    }
}
