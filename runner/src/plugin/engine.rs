//! The one wasmtime engine every plugin runs on, and its deadline clock.

use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often the epoch advances; a call's deadline is counted in these.
const TICK: Duration = Duration::from_millis(10);

/// The shared engine: compiled code and configuration live here; every task
/// gets its own `Store` from it.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
}

impl PluginEngine {
    /// Creates the engine and starts the thread that advances its epoch,
    /// which is what interrupts a plugin that runs past its deadline.
    pub fn new() -> wasmtime::Result<Self> {
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
        Ok(PluginEngine { engine })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Epoch ticks that cover `timeout` (at least one whole tick more, as
    /// the current tick may be about to end).
    pub fn ticks(timeout: Duration) -> u64 {
        (timeout.as_millis() / TICK.as_millis()) as u64 + 1
    }
}
