//! Loads each plugin of a workflow once per world, on first use, and hands
//! out clones (which share the compiled component) to the steps that need
//! it. Any world is served by the one accessor [`PluginRegistry::get`]: a
//! new world needs no new cache here.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::cancel::Cancel;
use crate::plugin::instance::{Plugin, World};
use crate::plugin::{LoadError, PluginEngine};
use crate::setup::Setup;

/// The plugins of one workflow run.
pub struct PluginRegistry {
    stop: Cancel,
    engine: OnceLock<PluginEngine>,
    /// Loaded plugins by world and name; each value is a `Plugin<W>`.
    loaded: Mutex<HashMap<(TypeId, String), Box<dyn Any + Send>>>,
}

impl PluginRegistry {
    /// An empty registry; the wasmtime engine starts on first load. Plugin
    /// calls in progress stop when `stop` is set.
    pub fn new(stop: Cancel) -> Self {
        PluginRegistry {
            stop,
            engine: OnceLock::new(),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    fn engine(&self, plugin: &str) -> Result<PluginEngine, LoadError> {
        if let Some(e) = self.engine.get() {
            return Ok(e.clone());
        }
        let engine = PluginEngine::stopped_by(self.stop.clone()).map_err(|e| LoadError::Link {
            plugin: plugin.to_string(),
            message: format!("cannot start the WebAssembly engine: {e}"),
        })?;
        Ok(self.engine.get_or_init(|| engine).clone())
    }

    /// The plugin `name` of world `W`, loaded on first use.
    pub fn get<W: World>(&self, workflow: &Setup, name: &str) -> Result<Plugin<W>, LoadError> {
        let key = (TypeId::of::<W>(), name.to_string());
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = loaded.get(&key).and_then(|p| p.downcast_ref::<Plugin<W>>()) {
            return Ok(p.clone());
        }
        let plugin = Plugin::<W>::load(&self.engine(name)?, spec(workflow, name)?)?;
        loaded.insert(key, Box::new(plugin.clone()));
        Ok(plugin)
    }
}

fn spec<'w>(workflow: &'w Setup, name: &str) -> Result<&'w crate::plugin::PluginSpec, LoadError> {
    workflow.plugin(name).ok_or_else(|| LoadError::Unknown {
        plugin: name.to_string(),
    })
}
