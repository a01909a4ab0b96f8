//! The plugin sandbox: the store data every plugin instance runs with (its
//! grants, limits, deadline clock, output and log), and the named error of
//! a capability that was not granted. Which imports do something is the
//! linker's business (see `linker`).

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use super::bindings::{host, v0_1};
use super::deadline::CallClock;
use super::limits::{Limits, MemoryLimiter};
use super::log::{LogBudget, PluginLog};
use super::output::OutputTail;
use crate::cancel::Cancel;

/// The WASI release whose interfaces wasmtime-wasi links; the linker's denials
/// replace functions under these exact names.
pub const WASI_VERSION: &str = "0.2.12";

/// The most random bytes a plugin granted `random` may ask for at once.
const RANDOM_BYTES_PER_CALL: u64 = 1 << 20;

/// What a workflow grants one plugin (`[plugin.NAME]` `clock`, `random`,
/// `env`, `read_dirs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// The wall and monotonic clocks.
    pub clock: bool,
    /// Random numbers (which make a transform give different rows for the
    /// same event, so replays would no longer agree).
    pub random: bool,
    /// Environment variables passed in, by name and value.
    pub env: Vec<(String, String)>,
    /// The environment is granted even if none of the listed variables is
    /// set where the runner runs (the plugin then sees them missing).
    pub environment: bool,
    /// Host directories visible read-only, with the path the plugin sees.
    pub read_dirs: Vec<(PathBuf, String)>,
}

/// A host-enforced denial: the plugin asked for something it was not granted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{capability} access is not granted")]
pub struct CapabilityDenied {
    /// `clock`, `random`, `environment`, `filesystem` or `network`.
    pub capability: &'static str,
}

/// The data of one plugin instance's store.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    /// What the plugin printed, for trap reports.
    pub output: OutputTail,
    /// The deadline of the call in progress.
    pub clock: CallClock,
    /// The plugin's lines in the runner's log.
    pub log: PluginLog,
}

impl HostState {
    /// Builds the sandbox of one instance; its calls stop when `stop` is set.
    pub fn new(
        plugin: Arc<str>,
        log_budget: Arc<LogBudget>,
        grants: &Grants,
        limits: &Limits,
        stop: Cancel,
    ) -> wasmtime::Result<Self> {
        let output = OutputTail::default();
        let mut wasi = WasiCtx::builder();
        wasi.stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .max_random_size(RANDOM_BYTES_PER_CALL);
        if !grants.random {
            wasi.insecure_random_seed(0);
        }
        for (k, v) in &grants.env {
            wasi.env(k, v);
        }
        for (host, guest) in &grants.read_dirs {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)?;
        }
        Ok(HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            output,
            clock: CallClock::new(stop),
            log: PluginLog::new(plugin, log_budget),
        })
    }

    /// The limiter to attach with `Store::limiter`.
    pub fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }

    /// The instance's resources (pollables, streams, descriptors).
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl host::Host for HostState {
    fn log(&mut self, level: host::Level, message: String) {
        self.log.write(level, &message);
    }
}

impl v0_1::host::Host for HostState {
    fn log(&mut self, level: v0_1::host::Level, message: String) {
        use v0_1::host::Level as Old;
        let level = match level {
            Old::Trace => host::Level::Trace,
            Old::Debug => host::Level::Debug,
            Old::Info => host::Level::Info,
            Old::Warn => host::Level::Warn,
            Old::Error => host::Level::Error,
        };
        self.log.write(level, &message);
    }
}
