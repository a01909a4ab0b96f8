//! Support code for Switchyard's integration tests: building the test
//! plugins and the runner once, a fluent helper for CLI tests, and reading
//! a SQLite store back for comparisons.

pub mod cli;
pub mod plugins;
pub mod stores;
