//! The null store (`kind = "null"`): discards writes. For measuring a
//! source and transform alone, or a dry run of a replay that checks every
//! event goes through the transform without writing anywhere.
//!
//! Every `apply` is acknowledged at once; nothing is kept but the last
//! watermark, in memory, so scans and gets find nothing and a compare
//! against it sees every row as missing.

use serde::Deserialize;

use super::{KeyRange, Page, Store, StoreConfig, StoreError};
use crate::document::{Home, Kind};
use crate::model::{Mutations, Row};

/// The kind, for the registration list.
pub const KIND: Kind<dyn StoreConfig> = Kind {
    name: "null",
    read: |table| Ok(Box::new(table.read::<NullConfig>()?)),
};

/// `kind = "null"`: discards writes, for measuring a source and transform
/// alone, or a dry run. Every batch is acknowledged at once; scans and gets
/// find nothing; the watermark is remembered in memory only.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullConfig {
    /// The tables plugins may write (needed by a replay into this store).
    #[serde(default)]
    pub tables: Option<Vec<String>>,
}

impl StoreConfig for NullConfig {
    fn describe(&self, _home: &Home) -> String {
        "null: writes are discarded".into()
    }

    fn declared_tables(&self) -> Option<Vec<String>> {
        self.tables.clone()
    }

    fn probe(&self, _home: &Home, _name: &str) -> Result<String, StoreError> {
        Ok("discards writes".into())
    }

    fn open(&self, _home: &Home, name: &str) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(NullStore::open(name)))
    }
}

/// A store that holds nothing.
#[derive(Debug, Default)]
pub struct NullStore {
    name: String,
    watermark: Option<i64>,
}

impl NullStore {
    /// A new, empty store named `name`.
    pub fn open(name: &str) -> Self {
        NullStore {
            name: name.to_string(),
            watermark: None,
        }
    }
}

impl Store for NullStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(
        &mut self,
        _mutations: Mutations<'_>,
        watermark: Option<i64>,
    ) -> Result<(), StoreError> {
        // Like every store's, the watermark never goes back.
        self.watermark = self.watermark.max(watermark);
        Ok(())
    }

    fn scan(
        &mut self,
        _table: &str,
        _range: &KeyRange,
        _limit: usize,
        _as_of: Option<u64>,
    ) -> Result<Page, StoreError> {
        Ok(Page::default())
    }

    fn get(
        &mut self,
        _table: &str,
        keys: &[Vec<u8>],
        _as_of: Option<u64>,
    ) -> Result<Vec<Option<Row>>, StoreError> {
        Ok(vec![None; keys.len()])
    }

    fn tables(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    fn watermark(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(self.watermark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, RowMutation};

    #[test]
    fn acknowledges_everything_and_holds_nothing_but_the_watermark() {
        let mut store = NullStore::open("dry");
        let m = RowMutation {
            table: "messages".into(),
            row_key: b"k".to_vec().into(),
            version: 5,
            cells: vec![Cell::put("d", &b"text"[..], &b"hi"[..])],
        };
        assert_eq!(store.watermark().unwrap(), None);
        store.apply(std::slice::from_ref(&m), Some(5)).unwrap();
        store.apply(&[m], None).unwrap();
        assert_eq!(store.watermark().unwrap(), Some(5));
        let page = store
            .scan("messages", &KeyRange::default(), 10, None)
            .unwrap();
        assert!(page.rows.is_empty() && page.next_after.is_none());
        assert_eq!(
            store.get("messages", &[b"k".to_vec()], None).unwrap(),
            vec![None]
        );
        assert!(store.tables().unwrap().is_empty());
    }
}
