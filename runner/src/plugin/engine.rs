//! The one wasmtime engine every plugin runs on, and its epoch ticker.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Config, Engine};

use super::cache::CompiledCache;
use crate::cancel::Cancel;

/// How often the epoch advances: how often a running call looks at its
/// deadline and at the stop signal.
const TICK: Duration = Duration::from_millis(10);

/// The shared engine: compiled code and configuration live here; every task
/// gets its own `Store` from it.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    stop: Cancel,
    cache: Option<Arc<CompiledCache>>,
}

impl PluginEngine {
    /// Creates the engine and starts the thread that advances its epoch,
    /// which is what interrupts a plugin that runs past its deadline.
    pub fn new() -> wasmtime::Result<Self> {
        Self::stopped_by(Cancel::default())
    }

    /// Like [`PluginEngine::new`]; calls in progress stop when `stop` is set
    /// (Ctrl-C, SIGTERM).
    pub fn stopped_by(stop: Cancel) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                // Stops by itself once the last engine handle is gone.
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })?;
        Ok(PluginEngine {
            engine,
            stop,
            cache: CompiledCache::default_folder().map(Arc::new),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Where compiled plugins are kept, unless that is turned off.
    pub fn cache(&self) -> Option<&CompiledCache> {
        self.cache.as_deref()
    }

    /// The signal that stops calls in progress.
    pub fn stop(&self) -> &Cancel {
        &self.stop
    }
}
