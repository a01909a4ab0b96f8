//! Loads each plugin of a workflow once, on first use, and hands out
//! clones (which share the compiled component) to the steps that need it.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::cancel::Cancel;
use crate::plugin::instance::{Plugin, World};
use crate::plugin::{CheckPlugin, LoadError, PluginEngine, TransformPlugin};
use crate::workflow::Workflow;

/// The plugins of one workflow run.
pub struct PluginRegistry {
    stop: Cancel,
    engine: OnceLock<PluginEngine>,
    transforms: Mutex<HashMap<String, TransformPlugin>>,
    checks: Mutex<HashMap<String, CheckPlugin>>,
}

impl PluginRegistry {
    /// An empty registry; the wasmtime engine starts on first load. Plugin
    /// calls in progress stop when `stop` is set.
    pub fn new(stop: Cancel) -> Self {
        PluginRegistry {
            stop,
            engine: OnceLock::new(),
            transforms: Mutex::new(HashMap::new()),
            checks: Mutex::new(HashMap::new()),
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

    /// The transform plugin `name`.
    pub fn transform(&self, workflow: &Workflow, name: &str) -> Result<TransformPlugin, LoadError> {
        self.cached(&self.transforms, workflow, name)
    }

    /// The check plugin `name`.
    pub fn check(&self, workflow: &Workflow, name: &str) -> Result<CheckPlugin, LoadError> {
        self.cached(&self.checks, workflow, name)
    }

    fn cached<W: World>(
        &self,
        cache: &Mutex<HashMap<String, Plugin<W>>>,
        workflow: &Workflow,
        name: &str,
    ) -> Result<Plugin<W>, LoadError> {
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(name) {
            return Ok(p.clone());
        }
        let plugin = Plugin::<W>::load(&self.engine(name)?, spec(workflow, name)?)?;
        cache.insert(name.to_string(), plugin.clone());
        Ok(plugin)
    }
}

fn spec<'w>(
    workflow: &'w Workflow,
    name: &str,
) -> Result<&'w crate::plugin::PluginSpec, LoadError> {
    workflow.plugin(name).ok_or_else(|| LoadError::Build {
        plugin: name.to_string(),
        message: "no such plugin in the workflow".into(),
    })
}
