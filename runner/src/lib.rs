//! Switchyard runner library.
pub mod model;
pub mod plugin;
