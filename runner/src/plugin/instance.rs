//! Loading a plugin once and running it in per-task instances.
//!
//! A [`Plugin`] holds the compiled, pre-linked component and is shared by
//! every task; each task takes an [`Instance`] with its own store, memory
//! limit and deadline. An instance that was stopped by the sandbox is thrown
//! away and a fresh one is made for the next call, so one bad call never
//! leaves a half-broken instance behind.

use std::sync::Arc;

use std::marker::PhantomData;

use wasmtime::component::{Component, InstancePre};
use wasmtime::{Store, UpdateDeadline};

use super::PluginSpec;
use super::bindings::types;
use super::contract::{ExportIndices, Exports};
use super::deadline::Stopped;
use super::engine::PluginEngine;
use super::error::{Input, LoadError, PluginFailure};
use super::limits::{Limits, MemoryLimitHit};
use super::linker;
use super::load::{component_bytes, describe_invalid, sha256_hex};
use super::log::LogBudget;
use super::sandbox::{CapabilityDenied, Grants, HostState};

pub use super::contract::World;

struct Shared<W: World> {
    name: Arc<str>,
    /// The lines a second its instances may log, together.
    log_budget: Arc<LogBudget>,
    engine: PluginEngine,
    pre: InstancePre<HostState>,
    indices: ExportIndices,
    world: PhantomData<fn() -> W>,
    limits: Limits,
    grants: Grants,
    config: Vec<types::ConfigEntry>,
    sha256: String,
}

/// A loaded plugin of world `W`, cheap to clone and share between tasks.
pub struct Plugin<W: World> {
    shared: Arc<Shared<W>>,
}

impl<W: World> Clone for Plugin<W> {
    fn clone(&self) -> Self {
        Plugin {
            shared: self.shared.clone(),
        }
    }
}

impl<W: World> Plugin<W> {
    /// Reads (or builds), verifies, compiles and links the plugin.
    pub fn load(engine: &PluginEngine, spec: &PluginSpec) -> Result<Self, LoadError> {
        let (bytes, path) = component_bytes(&spec.name, &spec.source, spec.sha256.as_deref())?;
        let compile = || {
            Component::new(engine.engine(), &bytes).map_err(|e| LoadError::Invalid {
                plugin: spec.name.clone(),
                path: path.clone(),
                message: describe_invalid(&bytes, &e),
            })
        };
        let component = match engine.cache() {
            Some(cache) => cache.component(engine.engine(), &sha256_hex(&bytes), compile)?,
            None => compile()?,
        };
        let Some(indices) = ExportIndices::find::<W>(&component) else {
            let exports: Vec<String> = component
                .component_type()
                .exports(engine.engine())
                .map(|(name, _)| name.to_string())
                .collect();
            return Err(LoadError::WrongWorld {
                plugin: spec.name.clone(),
                kind: W::KIND,
                exports: if exports.is_empty() {
                    "nothing".into()
                } else {
                    crate::text::quoted(&exports.iter().map(String::as_str).collect::<Vec<_>>())
                },
                expected: W::interface(),
            });
        };
        let link_error = |e: wasmtime::Error| LoadError::Link {
            plugin: spec.name.clone(),
            message: error_chain(&e),
        };
        let linker = linker::linker(engine.engine(), &spec.grants).map_err(link_error)?;
        let pre = linker.instantiate_pre(&component).map_err(link_error)?;
        tracing::debug!(plugin = %spec.name, path = %path.display(), "plugin loaded");
        Ok(Plugin {
            shared: Arc::new(Shared {
                name: spec.name.as_str().into(),
                log_budget: Arc::default(),
                engine: engine.clone(),
                pre,
                indices,
                world: PhantomData,
                limits: spec.limits,
                grants: spec.grants.clone(),
                config: spec
                    .config
                    .iter()
                    .map(|(key, value)| types::ConfigEntry {
                        key: key.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                sha256: super::load::sha256_hex(&bytes),
            }),
        })
    }

    /// The plugin's name in the workflow.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// The sha256 of the component that was loaded (for pinning).
    pub fn sha256(&self) -> &str {
        &self.shared.sha256
    }

    /// A new instance for one task; it starts on first use.
    pub fn instance(&self) -> Instance<W> {
        Instance {
            plugin: self.clone(),
            running: None,
        }
    }
}

/// One task's instance of a plugin.
pub struct Instance<W: World> {
    plugin: Plugin<W>,
    running: Option<(Store<HostState>, Exports)>,
}

impl<W: World> Instance<W> {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.plugin.name()
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        self.plugin.limits()
    }

    /// Runs `f` against the live instance (starting one if needed) under the
    /// plugin's deadline, and turns whatever the sandbox stopped into a
    /// [`PluginFailure`] about `at`.
    pub fn call<R>(
        &mut self,
        at: &Input,
        f: impl FnOnce(&Exports, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginFailure> {
        let timeout = self.plugin.shared.limits.timeout;
        self.call_within(at, timeout, f)
    }

    /// Like [`Instance::call`], with a deadline `timeout` from now (at most
    /// the plugin's own).
    pub fn call_within<R>(
        &mut self,
        at: &Input,
        timeout: std::time::Duration,
        f: impl FnOnce(&Exports, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginFailure> {
        if self.running.is_none() {
            self.running = Some(self.start()?);
        }
        let Some((store, exports)) = self.running.as_mut() else {
            unreachable!("instance was just started");
        };
        store.data().output.clear();
        store
            .data_mut()
            .clock
            .start(timeout.min(self.plugin.shared.limits.timeout));
        store.set_epoch_deadline(1);
        let result = f(exports, store);
        store.data_mut().log.end_call();
        match result {
            Ok(r) => Ok(r),
            Err(e) => {
                let output = store.data().output.text();
                // A trapped instance may be inconsistent: never reuse it.
                self.running = None;
                Err(classify(&self.plugin.shared, e, output, at.clone()))
            }
        }
    }

    fn start(&self) -> Result<(Store<HostState>, Exports), PluginFailure> {
        let shared = &self.plugin.shared;
        let fail = |e: wasmtime::Error, output: String| classify(shared, e, output, Input::Init);
        let state = HostState::new(
            shared.name.clone(),
            shared.log_budget.clone(),
            &shared.grants,
            &shared.limits,
            shared.engine.stop().clone(),
        )
        .map_err(|e| fail(e, String::new()))?;
        let mut store = Store::new(shared.engine.engine(), state);
        store.limiter(|s| s.limiter());
        // What the guest may hand the host in one call (lifted lists and
        // strings) is bounded by the plugin's output budget.
        let fuel = usize::try_from(shared.limits.output.bytes_per_batch).unwrap_or(usize::MAX);
        store.set_hostcall_fuel(fuel);
        // Every epoch tick, a running call looks at its wall-clock deadline
        // and at the stop signal.
        store.epoch_deadline_callback(|store| {
            store.data().clock.check()?;
            Ok(UpdateDeadline::Continue(1))
        });
        store.data_mut().clock.start(shared.limits.timeout);
        store.set_epoch_deadline(1);
        let exports = shared
            .pre
            .instantiate(&mut store)
            .and_then(|instance| shared.indices.exports(&instance, &mut store))
            .and_then(|exports| W::typecheck(&exports, &store).map(|()| exports))
            .map_err(|e| fail(e, store.data().output.text()))?;
        let init = exports.init(&mut store, &shared.config);
        store.data_mut().log.end_call();
        match init {
            Ok(Ok(())) => Ok((store, exports)),
            Ok(Err(error)) => Err(PluginFailure::Config {
                plugin: shared.name.to_string(),
                error: super::error::bounded(error),
            }),
            Err(e) => Err(fail(e, store.data().output.text())),
        }
    }
}

/// Whether a trap's backtrace (wasmtime keeps its 20 innermost frames) is
/// runaway recursion: every frame one of at most two functions.
fn recursion(frames: &[wasmtime::FrameInfo]) -> bool {
    let mut functions: Vec<u32> = frames.iter().map(|f| f.func_index()).collect();
    functions.sort_unstable();
    functions.dedup();
    frames.len() >= 20 && functions.len() <= 2
}

/// Names what stopped a plugin.
fn classify<W: World>(
    shared: &Shared<W>,
    e: wasmtime::Error,
    output: String,
    at: Input,
) -> PluginFailure {
    let plugin = shared.name.to_string();
    match e.downcast_ref::<Stopped>() {
        Some(Stopped::Deadline) => {
            return PluginFailure::Deadline {
                plugin,
                timeout: shared.limits.timeout,
                at,
            };
        }
        Some(Stopped::Interrupted) => return PluginFailure::Interrupted { plugin, at },
        None => {}
    }
    if let Some(hit) = e.downcast_ref::<MemoryLimitHit>() {
        return PluginFailure::Memory {
            plugin,
            limit: hit.limit,
            at,
        };
    }
    if let Some(denied) = e.downcast_ref::<CapabilityDenied>() {
        let hint = match denied.capability {
            "clock" => "; grant it with `clock = true` in the plugin's section",
            "environment" => "; pass variables with `env = [\"NAME\"]` in the plugin's section",
            "filesystem" => "; grant folders with `read_dirs = [\"path\"]` in the plugin's section",
            "random" => {
                "; versions and keys must come from the event, so that a replay gives the same rows (grant it with `random = true` if the plugin's output does not depend on it)"
            }
            _ => "; plugins have no network access",
        };
        return PluginFailure::Denied {
            plugin,
            capability: denied.capability,
            hint,
            at,
        };
    }
    // wasmtime's error for it is private; its words are what is left.
    if error_chain(&e).contains("fuel allocated for hostcalls has been exhausted") {
        return PluginFailure::Output {
            plugin,
            limit: shared.limits.output.bytes_per_batch,
            at,
        };
    }
    // Rust keeps a guest's locals on a stack in linear memory: overflowing
    // it reads out of bounds, not past wasmtime's stack limit. A trap under
    // a full backtrace of one or two functions is recursion either way.
    let trap = e.downcast_ref::<wasmtime::Trap>();
    let deep = matches!(trap, Some(wasmtime::Trap::MemoryOutOfBounds))
        && e.downcast_ref::<wasmtime::WasmBacktrace>()
            .is_some_and(|bt| recursion(bt.frames()));
    if deep || matches!(trap, Some(wasmtime::Trap::StackOverflow)) {
        return PluginFailure::StackOverflow {
            plugin,
            output: panic_message(&output),
            at,
        };
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => PluginFailure::Deadline {
            plugin,
            timeout: shared.limits.timeout,
            at,
        },
        Some(trap) => PluginFailure::Trap {
            plugin,
            trap: trap.to_string(),
            output: panic_message(&output),
            at,
        },
        // A host call that failed (a limit of wasmtime-wasi, say): its own
        // words, without the backtrace wrapped around them.
        None => PluginFailure::Trap {
            plugin,
            trap: crate::text::foreign(&e.root_cause().to_string()),
            output: panic_message(&output),
            at,
        },
    }
}

/// The useful part of what a plugin printed before it trapped: the last
/// panic message if there is one, else the last line; bounded and on one
/// line like anything else a plugin says.
fn panic_message(output: &str) -> String {
    let said = match output.rfind("panicked at ") {
        Some(i) => output[i..].replace('\n', " ").trim().to_string(),
        None => output.lines().last().unwrap_or("").trim().to_string(),
    };
    crate::text::foreign(&said)
}

/// An error and its causes on one line.
fn error_chain(e: &wasmtime::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panic_message_is_kept_from_the_output() {
        let out = "noise\npanicked at src/lib.rs:3:5:\nboom\n";
        assert_eq!(panic_message(out), "panicked at src/lib.rs:3:5: boom");
        assert_eq!(panic_message("a\nb"), "b");
    }
}
