//! The store-neutral data the runner moves around: events from sources,
//! row mutations into stores, rows read back.
//!
//! These are the plugin contract's own types (generated from `sdk/wit/`), so
//! an event travels from source to plugin and a mutation from plugin to
//! store without being copied into another shape on the way.

pub use crate::plugin::bindings::types::{
    Cell, CellRef, Event, Header, Put, Row, RowMutation, StoredCell,
};
