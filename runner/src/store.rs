//! Stores: where rows live. Every store applies versioned mutations
//! idempotently (writing the same mutation twice changes nothing), scans a
//! table in key order, reads given keys, and reads *as of* a version so
//! that two stores lagging the log by different amounts can be compared.
//!
//! - `cells`: the visibility rules shared by stores that keep cell history.
//! - `sqlite`: the embedded default.
//! - `hbase`: HBase through its Thrift1 server.
//! - `null`: discards writes, for measuring a source and transform alone,
//!   or a dry run.
//! - `fed_by`: any of them written by a service's own consumer, positioned
//!   by that consumer's group.

pub mod cells;
pub mod fed_by;
pub mod hbase;
pub mod null;
pub mod sqlite;

use crate::model::{Row, RowMutation};
use crate::workflow::Workflow;
use crate::workflow::schema::{SourceConfig, StoreConfig};

/// A store failed.
#[derive(Debug, thiserror::Error)]
#[error("store `{store}`: {message}")]
pub struct StoreError {
    /// The store's name in the workflow.
    pub store: String,
    /// What went wrong.
    pub message: String,
}

/// One page of a scan.
#[derive(Debug, Default)]
pub struct Page {
    /// Visible rows, in key order.
    pub rows: Vec<Row>,
    /// Where the next page starts (after this key); `None` when done.
    pub next_after: Option<Vec<u8>>,
}

/// Row keys strictly between `after` and `before` (either end open when `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    /// Keys after this one.
    pub after: Option<Vec<u8>>,
    /// Keys before this one.
    pub before: Option<Vec<u8>>,
}

/// What every store does.
pub trait Store: Send {
    /// The store's name in the workflow.
    fn name(&self) -> &str;

    /// Applies mutations idempotently and atomically, and records
    /// `watermark` (the event time every partition has reached) with them.
    /// When this returns, the mutations are durable: the caller may commit
    /// its source positions.
    fn apply(
        &mut self,
        mutations: &[RowMutation],
        watermark: Option<i64>,
    ) -> Result<(), StoreError>;

    /// Up to `limit` row keys' worth of rows in `range`, in key order, as
    /// of `as_of` (every version when `None`). Page on by moving
    /// `range.after` to the page's `next_after`.
    fn scan(
        &mut self,
        table: &str,
        range: &KeyRange,
        limit: usize,
        as_of: Option<u64>,
    ) -> Result<Page, StoreError>;

    /// The rows of the given keys, `None` where absent.
    fn get(
        &mut self,
        table: &str,
        keys: &[Vec<u8>],
        as_of: Option<u64>,
    ) -> Result<Vec<Option<Row>>, StoreError>;

    /// The tables the store holds.
    fn tables(&mut self) -> Result<Vec<String>, StoreError>;

    /// The watermark recorded by the last `apply`, if any.
    fn watermark(&mut self) -> Result<Option<i64>, StoreError>;
}

/// Checks, writing nothing, that the store `name` of a workflow can be
/// reached and has the shape the workflow declares (or will be given it);
/// says what was found.
pub fn probe(workflow: &Workflow, name: &str) -> Result<String, StoreError> {
    match workflow.store(name) {
        Some(StoreConfig::Sqlite(cfg)) => Ok(format!(
            "SQLite file {}",
            workflow.path(&cfg.path).display()
        )),
        Some(StoreConfig::Hbase(cfg)) => hbase::HbaseStore::probe(name, cfg),
        Some(StoreConfig::Null(_)) => Ok("discards writes".into()),
        None => Err(StoreError {
            store: name.to_string(),
            message: "no such store in the workflow".into(),
        }),
    }
}

/// Opens the store `name` of a workflow.
pub fn open(workflow: &Workflow, name: &str) -> Result<Box<dyn Store>, StoreError> {
    let store = open_kind(workflow, name)?;
    let Some(fed) = workflow.store(name).and_then(StoreConfig::fed_by) else {
        return Ok(store);
    };
    match workflow.source(fed.source.get_ref()) {
        Some(SourceConfig::Kafka(kafka)) => Ok(Box::new(fed_by::FedBy::new(
            store,
            fed.source.get_ref(),
            kafka,
            &fed.group,
        ))),
        _ => Err(StoreError {
            store: name.to_string(),
            message: format!(
                "`fed_by` names `{}`, which is not a kafka source",
                fed.source.get_ref()
            ),
        }),
    }
}

fn open_kind(workflow: &Workflow, name: &str) -> Result<Box<dyn Store>, StoreError> {
    match workflow.store(name) {
        Some(StoreConfig::Sqlite(cfg)) => Ok(Box::new(sqlite::SqliteStore::open(
            name,
            &workflow.path(&cfg.path),
            cfg.sync,
        )?)),
        Some(StoreConfig::Hbase(cfg)) => Ok(Box::new(hbase::HbaseStore::open(name, cfg)?)),
        Some(StoreConfig::Null(_)) => Ok(Box::new(null::NullStore::open(name))),
        None => Err(StoreError {
            store: name.to_string(),
            message: "no such store in the workflow".into(),
        }),
    }
}
