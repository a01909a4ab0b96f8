//! Switchyard's integration tests: one binary, a module per area.

mod cli;
mod plugins;
mod quickstart;
mod replay;
mod sandbox;
mod steps;
