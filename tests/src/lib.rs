//! Support code for Switchyard's integration tests: building the test
//! plugins and the runner once, a fluent helper for CLI tests, reading
//! a SQLite store back for comparisons, a Tansu broker (Kafka protocol),
//! an HBase Thrift1 emulator, HTTP read-api stand-ins and a client for
//! the router, and databases of their own on the machine's PostgreSQL.

pub mod bounded;
pub mod broker;
pub mod cli;
pub mod cpu;
pub mod dynalite;
pub mod hbase;
pub mod http;
pub mod plugins;
pub mod postgres;
pub mod site;
pub mod stores;
