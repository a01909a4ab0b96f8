//! Switchyard's integration tests: one binary, a module per area.

mod background;
mod cli;
mod compare;
mod dynalite;
mod faults;
mod hbase_emulator;
mod hbase_store;
mod hbase_to_postgres;
mod hbase_upgrade;
mod hbase_workflow;
mod hostile;
mod kafka_source;
mod plugins;
mod postgres_store;
mod postgres_workflow;
mod preflight;
mod quickstart;
mod replay;
mod router;
mod rows;
mod sandbox;
mod services;
mod signals;
mod steps;
