//! Switchyard's integration tests: one binary, a module per area.

mod cli;
mod quickstart;
mod replay;
mod sandbox;
