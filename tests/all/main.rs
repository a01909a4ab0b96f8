//! Switchyard's integration tests: one binary, a module per area.

mod cli;
mod faults;
mod hbase_emulator;
mod hbase_store;
mod hbase_upgrade;
mod hbase_workflow;
mod hostile;
mod kafka_source;
mod plugins;
mod quickstart;
mod replay;
mod sandbox;
mod steps;
