//! The store-neutral data the runner moves around: events from sources,
//! row mutations into stores, rows read back.
//!
//! Events and rows are the plugin contract's own types (generated from
//! `sdk/wit/`), since they are handed to plugins as they are; mutations
//! are what a transform's packed answer unpacks into (`plugin::rows`). The
//! rooms above the plugin host take them from here.

pub use crate::plugin::bindings::types::{Event, Header, Row, StoredCell};
pub use crate::plugin::row_batch::{CellRef, Mutations, RowBatch, RowRef};
pub use crate::plugin::rows::{Cell, RowMutation};
