//! Stores: where rows live. Every store applies versioned mutations
//! idempotently (writing the same mutation twice changes nothing), scans a
//! table in key order, reads given keys, and reads *as of* a version so
//! that two stores lagging the log by different amounts can be compared.
//!
//! - `cells`: the visibility rules shared by stores that keep cell history.
//! - `digest`: digests of key ranges, for a `hashed` compare.
//! - `sqlite`: the embedded default.
//! - `hbase`: HBase through its Thrift1 server.
//! - `postgres`: PostgreSQL, one row per cell version.
//! - `null`: discards writes, for measuring a source and transform alone,
//!   or a dry run.
//! - `fed_by`: any of them written by a service's own consumer, positioned
//!   by that consumer's group.
//!
//! Each kind keeps its settings beside its implementation and implements
//! [`StoreConfig`]; a new kind is one file and one line in [`KINDS`].

pub mod cells;
pub mod digest;
pub mod fed_by;
pub mod hbase;
pub mod null;
pub mod postgres;
pub mod sqlite;

use std::any::Any;
use std::path::PathBuf;

use crate::document::{Home, Kind, Sections};
use crate::fault::Fault;
use crate::model::{Mutations, Row, RowMutation};
use crate::source::Sources;
use crate::source::kafka::config::kafka;
use fed_by::FedBy;

/// A store failed.
#[derive(Debug, thiserror::Error)]
#[error("store `{store}`: {message}")]
pub struct StoreError {
    /// The store's name in the workflow.
    pub store: String,
    /// Whether trying again may help.
    pub fault: Fault,
    /// What went wrong.
    pub message: String,
}

impl StoreError {
    /// A failure of the store `store`.
    pub fn new(store: &str, fault: Fault, message: impl Into<String>) -> Self {
        StoreError {
            store: store.to_string(),
            fault,
            message: message.into(),
        }
    }
}

/// One page of a scan.
#[derive(Debug, Default)]
pub struct Page {
    /// Visible rows, in key order.
    pub rows: Vec<Row>,
    /// Where the next page starts (after this key); `None` when done.
    pub next_after: Option<Vec<u8>>,
}

/// Keys written above a version, each with its highest version, in key
/// order.
pub type NewerKeys = Vec<(Vec<u8>, u64)>;

/// One page of the keys written above a version ([`Store::newer`]).
#[derive(Debug, Default)]
pub struct NewerPage {
    /// Keys with their highest version, in key order.
    pub keys: NewerKeys,
    /// Where the next page starts (after this key); `None` when done.
    pub next_after: Option<Vec<u8>>,
}

/// The first key after `key` in byte order: `key` and a zero byte. A range
/// ending before it ends with `key` included.
pub fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
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
    /// its source positions. Stores read them borrowed
    /// ([`Mutations::rows`]), whether owned or as a transform returned them.
    fn write(&mut self, mutations: Mutations<'_>, watermark: Option<i64>)
    -> Result<(), StoreError>;

    /// [`Store::write`] of owned mutations.
    fn apply(
        &mut self,
        mutations: &[RowMutation],
        watermark: Option<i64>,
    ) -> Result<(), StoreError> {
        self.write(Mutations::Owned(mutations), watermark)
    }

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

    /// The keys of `table` in `range` written at a version above `point`,
    /// each with its highest version, up to `limit` keys a page. By default
    /// read through a scan of the latest state, which shows no deletes; a
    /// store that keeps its versions in rows finds deletes too.
    fn newer(
        &mut self,
        table: &str,
        range: &KeyRange,
        point: u64,
        limit: usize,
    ) -> Result<NewerPage, StoreError> {
        let page = self.scan(table, range, limit, None)?;
        let keys = page
            .rows
            .into_iter()
            .filter_map(|row| {
                let top = row.cells.iter().map(|c| c.version).max()?;
                (top > point).then_some((row.row_key, top))
            })
            .collect();
        Ok(NewerPage {
            keys,
            next_after: page.next_after,
        })
    }

    /// A page of rows as of `point`, as [`Store::scan`] reads it, and the
    /// keys of the same stretch of keys written above `point` (as
    /// [`Store::newer`] finds them), so a compare learns both in one pass.
    /// By default the two are asked one after the other; a store that can
    /// only see newer writes by reading the latest state reads it once.
    fn scan_newer(
        &mut self,
        table: &str,
        range: &KeyRange,
        limit: usize,
        point: u64,
    ) -> Result<(Page, NewerKeys), StoreError> {
        let page = self.scan(table, range, limit, Some(point))?;
        let mut stretch = KeyRange {
            after: range.after.clone(),
            before: match &page.next_after {
                Some(last) => Some(successor(last)),
                None => range.before.clone(),
            },
        };
        let mut newer = Vec::new();
        loop {
            let found = self.newer(table, &stretch, point, limit.max(1))?;
            newer.extend(found.keys);
            match found.next_after {
                Some(after) => stretch.after = Some(after),
                None => return Ok((page, newer)),
            }
        }
    }

    /// The digest of the visible rows of `table` in `range` as of `as_of`,
    /// `ignore`d cells left out. By default read through [`Store::scan`];
    /// a store that can hash close to its data may do it there.
    fn digest(
        &mut self,
        table: &str,
        range: &KeyRange,
        as_of: Option<u64>,
        ignore: &digest::Ignored,
    ) -> Result<digest::Digest, StoreError> {
        let mut d = digest::DigestBuilder::new(ignore);
        let mut range = range.clone();
        loop {
            let page = self.scan(table, &range, 1000, as_of)?;
            for row in &page.rows {
                d.add(row);
            }
            match page.next_after {
                Some(after) => range.after = Some(after),
                None => return Ok(d.finish()),
            }
        }
    }
}

/// One kind of store as a workflow configures it: how its `[store.NAME]`
/// table is described, probed and opened. Each kind keeps its config type
/// beside its implementation and registers it in [`KINDS`] (its name and
/// reader).
pub trait StoreConfig: std::fmt::Debug + Send + Sync + Any {
    /// Its words in the plan: `sqlite /data/green.db`.
    fn describe(&self, home: &Home) -> String;

    /// The files it may create on this machine (a SQLite database and its
    /// journals), which the state folder lists as the runner's own.
    fn files(&self, _home: &Home) -> Vec<PathBuf> {
        Vec::new()
    }

    /// Where its position comes from when its writer is not the runner
    /// (see [`FedBy`]).
    fn fed_by(&self) -> Option<&FedBy> {
        None
    }

    /// The tables the workflow declares for it, if it declares any.
    fn declared_tables(&self) -> Option<Vec<String>>;

    /// Checks, writing nothing, that it can be reached and has the shape
    /// the workflow declares (or will be given it); says what was found.
    fn probe(&self, home: &Home, name: &str) -> Result<String, StoreError>;

    /// Opens it.
    fn open(&self, home: &Home, name: &str) -> Result<Box<dyn Store>, StoreError>;
}

/// Every kind of store.
pub const KINDS: &[Kind<dyn StoreConfig>] = &[
    sqlite::KIND,
    hbase::config::KIND,
    postgres::config::KIND,
    null::KIND,
];

/// The `[store.NAME]` sections of a workflow, in file order.
pub type Stores = Sections<dyn StoreConfig>;

impl Sections<dyn StoreConfig> {
    /// Checks, writing nothing, that the store `name` can be reached.
    pub fn probe(&self, home: &Home, name: &str) -> Result<String, StoreError> {
        self.named(name)?.probe(home, name)
    }

    /// Opens the store `name`; one written by a service's consumer is
    /// positioned by that consumer's group on a source of `sources`.
    pub fn open(
        &self,
        home: &Home,
        name: &str,
        sources: &Sources,
    ) -> Result<Box<dyn Store>, StoreError> {
        let config = self.named(name)?;
        let store = config.open(home, name)?;
        let Some(fed) = config.fed_by() else {
            return Ok(store);
        };
        match sources.get(fed.source.get_ref()).and_then(kafka) {
            Some(kafka) => Ok(Box::new(fed_by::FedStore::new(
                store,
                fed.source.get_ref(),
                kafka,
                &fed.group,
            ))),
            None => Err(StoreError::new(
                name,
                Fault::Refused,
                format!(
                    "`fed_by` names `{}`, which is not a kafka source",
                    fed.source.get_ref()
                ),
            )),
        }
    }

    fn named(&self, name: &str) -> Result<&dyn StoreConfig, StoreError> {
        self.get(name)
            .ok_or_else(|| StoreError::new(name, Fault::Refused, "no such store in the workflow"))
    }
}
