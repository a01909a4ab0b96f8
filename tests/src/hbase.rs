//! An HBase Thrift1 emulator, in process, for tests and for trying the
//! HBase workflows by hand (`cargo run -p switchyard-tests --bin
//! hbase-emulator -- --port 9090`).
//!
//! It is the server side of the `hbase-thrift` crate's generated code
//! (`HbaseSyncProcessor`) over its own TCP accept loop, holding tables in
//! memory with HBase 2.x semantics where the runner relies on them:
//!
//! - tables with column families and their `maxVersions`; every cell keeps
//!   its versions by timestamp, pruned to `maxVersions` on write;
//! - puts and deletes at a timestamp (`Delete.addColumns`, `addFamily`,
//!   whole rows), delete markers that mask puts at or before their
//!   timestamp, also puts written later, until a major compaction;
//! - reads whose `timestamp` is an exclusive upper bound, where a marker
//!   newer than the bound still masks older puts (HBase without
//!   KEEP_DELETED_CELLS); scanners over key ranges;
//! - the exceptions HBase answers with (`IOError` with `canRetry`,
//!   `IllegalArgument`, `AlreadyExists`), never a dropped connection.
//!
//! Modules: `server` (listener, connections, pause), `handler` (the
//! Thrift1 calls), `admin`, `mutate`, `read`, `scanner` (what each call
//! does), `state` and `table` (the data), `errors` (HBase's wording),
//! `dump` (tables as text), `client` (a Thrift1 client for tests).

pub mod client;
pub mod dump;
pub mod errors;
pub mod table;

mod admin;
mod handler;
mod mutate;
mod read;
mod scanner;
mod server;
mod state;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use client::{Client, connect};
use handler::Handler;
use server::Server;
use state::State;

/// A running emulator; stops when dropped.
pub struct HbaseEmulator {
    server: Arc<Server>,
    state: Arc<Mutex<State>>,
}

impl HbaseEmulator {
    /// Starts on a free port of 127.0.0.1.
    pub fn start() -> Self {
        Self::start_on(0).expect("the HBase emulator listens on a free port")
    }

    /// Starts on `127.0.0.1:port`.
    pub fn start_on(port: u16) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let server = Server::start(port, Handler::new(Arc::clone(&state)))?;
        Ok(HbaseEmulator { server, state })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.server.addr().to_string()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// Makes the emulator unreachable for `pause` (connections refused,
    /// open ones shut down), then listens on the same port again with all
    /// its data. Returns at once, when it is unreachable.
    pub fn pause(&self, pause: Duration) {
        self.server.pause(pause);
    }

    /// Stops it (dropping it does too).
    pub fn stop(&self) {
        self.server.stop();
    }

    /// A new client connection.
    pub fn client(&self) -> Client {
        connect(&self.addr()).expect("the HBase emulator accepts a connection")
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The names of its tables.
    pub fn table_names(&self) -> Vec<String> {
        self.state()
            .tables
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    /// A table as sorted text (see [`dump::table`]); empty when absent.
    pub fn dump(&self, table: &str) -> String {
        self.state()
            .tables
            .get(table.as_bytes())
            .map_or_else(String::new, |t| dump::table(table, t))
    }

    /// Every table except `except` as sorted text, table by table.
    pub fn dump_all(&self, except: &[&str]) -> String {
        let names: Vec<String> = self
            .table_names()
            .into_iter()
            .filter(|n| !except.contains(&n.as_str()))
            .collect();
        names.iter().map(|n| self.dump(n)).collect()
    }
}

impl Drop for HbaseEmulator {
    fn drop(&mut self) {
        self.stop();
    }
}
