//! `kind = "hbase"`: the settings of an HBase store, how they are read
//! and checked, and how the store opens.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::HbaseStore;
use crate::document::values::{Period, whole};
use crate::document::{Home, Kind};
use crate::store::fed_by::FedBy;
use crate::store::{Store, StoreConfig, StoreError};

/// The kind, for the registration list.
pub const KIND: Kind<dyn StoreConfig> = Kind {
    name: "hbase",
    read: |table| {
        let at = table.at();
        let hbase: HbaseConfig = table.read()?;
        check(&hbase).map_err(|message| at.error(message))?;
        Ok(Box::new(hbase))
    },
};

/// `kind = "hbase"`: tables of an HBase cluster, through its Thrift1 server
/// (binary protocol, buffered transport: HBase's defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HbaseConfig {
    /// `host:port` of the Thrift1 server.
    pub thrift: String,
    /// The tables and their column families, `{ messages = ["d", "m"] }`.
    /// A missing table is created with these families; an existing one
    /// must have them.
    #[serde(default)]
    pub tables: BTreeMap<String, Vec<String>>,
    /// Versions each family keeps in the tables the runner creates, so
    /// as-of reads see history (default 1000).
    #[serde(default, deserialize_with = "whole")]
    pub max_versions: Option<u32>,
    /// Connections, and so Thrift calls in flight (default 4).
    #[serde(default, deserialize_with = "whole")]
    pub pool: Option<usize>,
    /// Limit of connecting and of waiting for one reply (default 10s).
    #[serde(default)]
    pub timeout: Option<Period>,
    /// How long to keep retrying a call that failed transiently (refused
    /// or broken connection, `IOError` with `canRetry`), with backoff
    /// (default 60s).
    #[serde(default)]
    pub retry_for: Option<Period>,
    /// Rows per `mutateRowsTs` call (default 1000).
    #[serde(default, deserialize_with = "whole")]
    pub batch_rows: Option<usize>,
    /// The consumer that writes this store, when it is not the runner.
    #[serde(default)]
    pub fed_by: Option<FedBy>,
}

impl StoreConfig for HbaseConfig {
    fn describe(&self, _home: &Home) -> String {
        format!("hbase {}", self.thrift)
    }

    fn fed_by(&self) -> Option<&FedBy> {
        self.fed_by.as_ref()
    }

    fn declared_tables(&self) -> Option<Vec<String>> {
        if self.tables.is_empty() {
            None
        } else {
            Some(self.tables.keys().cloned().collect())
        }
    }

    fn probe(&self, _home: &Home, name: &str) -> Result<String, StoreError> {
        HbaseStore::probe(name, self)
    }

    fn open(&self, _home: &Home, name: &str) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(HbaseStore::open(name, self)?))
    }
}

/// Checks the values of a `kind = "hbase"` store.
fn check(s: &HbaseConfig) -> Result<(), String> {
    let port = s
        .thrift
        .rsplit_once(':')
        .map(|(host, port)| (host, port.parse::<u16>()));
    if !matches!(port, Some((host, Ok(_))) if !host.is_empty()) {
        return Err(format!(
            "`thrift` = `{}` is not `host:port`; give the Thrift1 server's address, like `127.0.0.1:9090`",
            s.thrift
        ));
    }
    for (name, value) in [("pool", s.pool), ("batch_rows", s.batch_rows)] {
        if value == Some(0) {
            return Err(format!("`{name}` must be at least 1"));
        }
    }
    if let Some(v) = s.max_versions
        && !(1..=i32::MAX as u32).contains(&v)
    {
        return Err(format!(
            "`max_versions` = {v} must be between 1 and {}",
            i32::MAX
        ));
    }
    if s.timeout.is_some_and(|t| t.0.is_zero()) {
        return Err("`timeout` must be longer than 0s".into());
    }
    for (table, families) in &s.tables {
        super::check_table_name(table).map_err(|e| format!("`tables`: {e}"))?;
        if families.is_empty() {
            return Err(format!(
                "`tables`: table `{table}` lists no column family; name at least one, like `{table} = [\"d\"]`"
            ));
        }
        let mut seen = HashSet::new();
        for family in families {
            super::check_family_name(family)
                .map_err(|e| format!("`tables`: table `{table}`: {e}"))?;
            if !seen.insert(family) {
                return Err(format!(
                    "`tables`: table `{table}` lists family `{family}` twice"
                ));
            }
        }
    }
    Ok(())
}
