//! Support code for Switchyard's integration tests: building the test
//! plugins once, sample events, and a fluent helper for CLI tests.

pub mod cli;
pub mod plugins;
