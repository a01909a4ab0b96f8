//! The plugin sandbox: the store data every plugin instance runs with, and
//! the linker that decides which WASI imports do something.
//!
//! Rust's standard library on wasm32-wasip2 imports the WASI interfaces it
//! may need, so they are all linked, but the workflow grants nothing by
//! default: no preopened directories, no environment, no network, no clock,
//! no random numbers. Using one without a grant traps with
//! [`CapabilityDenied`], which names the capability, instead of quietly
//! handing the plugin something it could come to depend on. (The seed of
//! hash maps is not denied but fixed, so a plugin that uses a `HashMap`
//! still gives the same answer every time.) The host calls that could wait
//! past a call's deadline are replaced (see `hostcalls`).

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use super::bindings::host;
use super::deadline::CallClock;
use super::limits::{Limits, MemoryLimiter};
use super::log::PluginLog;
use super::output::OutputTail;
use crate::cancel::Cancel;

/// The WASI release whose interfaces wasmtime-wasi links; the denials below
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
            log: PluginLog::new(plugin),
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

/// A linker for plugins with these grants: WASI and the `host` interface,
/// with what is not granted replaced by functions that trap.
pub fn linker(engine: &Engine, grants: &Grants) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    linker.allow_shadowing(true);
    super::hostcalls::add_to_linker(&mut linker)?;
    if !grants.random {
        deny(
            &mut linker,
            "wasi:random/random",
            &["get-random-bytes", "get-random-u64"],
            "random",
        )?;
        deny(
            &mut linker,
            "wasi:random/insecure",
            &["get-insecure-random-bytes", "get-insecure-random-u64"],
            "random",
        )?;
    }
    if !grants.clock {
        deny(
            &mut linker,
            "wasi:clocks/wall-clock",
            &["now", "resolution"],
            "clock",
        )?;
        deny(
            &mut linker,
            "wasi:clocks/monotonic-clock",
            &[
                "now",
                "resolution",
                "subscribe-instant",
                "subscribe-duration",
            ],
            "clock",
        )?;
    }
    if !grants.environment && grants.env.is_empty() {
        deny(
            &mut linker,
            "wasi:cli/environment",
            &["get-environment"],
            "environment",
        )?;
    }
    if grants.read_dirs.is_empty() {
        deny(
            &mut linker,
            "wasi:filesystem/preopens",
            &["get-directories"],
            "filesystem",
        )?;
    }
    // Plugins never get a network: no sockets, no name lookups.
    deny(
        &mut linker,
        "wasi:sockets/instance-network",
        &["instance-network"],
        "network",
    )?;
    deny(
        &mut linker,
        "wasi:sockets/ip-name-lookup",
        &["resolve-addresses"],
        "network",
    )?;
    deny(
        &mut linker,
        "wasi:sockets/tcp-create-socket",
        &["create-tcp-socket"],
        "network",
    )?;
    deny(
        &mut linker,
        "wasi:sockets/udp-create-socket",
        &["create-udp-socket"],
        "network",
    )?;
    linker.allow_shadowing(false);
    Ok(linker)
}

fn deny(
    linker: &mut Linker<HostState>,
    interface: &str,
    functions: &[&str],
    capability: &'static str,
) -> wasmtime::Result<()> {
    let mut instance = linker.instance(&format!("{interface}@{WASI_VERSION}"))?;
    for name in functions {
        instance.func_new(name, move |_store, _ty, _params, _results| {
            Err(CapabilityDenied { capability }.into())
        })?;
    }
    Ok(())
}
