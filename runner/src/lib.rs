//! Switchyard runner library.
pub mod model;
pub mod plugin;
pub mod source;
pub mod store;
pub mod workflow;
