//! The linker that decides which WASI imports do something.
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

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use super::bindings::{host, v0_1};
use super::sandbox::{CapabilityDenied, Grants, HostState, WASI_VERSION};

/// A linker for plugins with these grants: WASI and the `host` interface,
/// with what is not granted replaced by functions that trap.
pub fn linker(engine: &Engine, grants: &Grants) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    // Plugins built against the previous contract import its `host`.
    v0_1::host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
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
