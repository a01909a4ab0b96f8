//! The wasmtime host for plugins.
//!
//! - `bindings`: the contract, generated from `sdk/wit/` (and the previous
//!   one from `sdk/wit-0.1/`); `contract`: which version a plugin follows
//!   and where its functions are.
//! - `engine`: the one shared engine and its deadline clock; `cache`:
//!   compiled plugins kept on disk.
//! - `load`: a plugin's bytes, from a `.wasm` or by building its crate; sha256 pins.
//! - `sandbox`: what an instance runs with; its grants.
//! - `linker`: which imports do something; denials by name.
//! - `hostcalls`: WASI calls replaced so that none outlasts a deadline.
//! - `limits`, `deadline`: memory, time and output limits; the per-call
//!   deadline and the stop signal.
//! - `output`, `log`: what a plugin prints (kept for trap reports) and logs.
//! - `instance`: a loaded plugin and its per-task instances; error naming.
//! - `transform`, `check`, `route`, `response_check`, `row_map`: one
//!   typed wrapper per world; `unpack` reads the transform world's packed mutation
//!   batches into `rows`.
//! - `error`: load errors and what the sandbox stopped.

pub mod bindings;
pub mod cache;
pub mod check;
pub mod contract;
pub mod deadline;
pub mod engine;
pub mod error;
pub mod hostcalls;
pub mod instance;
pub mod limits;
pub mod linker;
pub mod load;
pub mod log;
pub mod output;
pub mod response_check;
pub mod route;
pub mod row_batch;
pub mod row_map;
pub mod rows;
pub mod sandbox;
pub mod transform;
pub mod unpack;

pub use check::CheckPlugin;
pub use engine::PluginEngine;
pub use error::{Input, LoadError, PluginFailure};
pub use limits::{Limits, OutputLimits};
pub use load::PluginSource;
pub use response_check::ResponseCheckPlugin;
pub use route::RoutePlugin;
pub use row_map::RowMapPlugin;
pub use sandbox::Grants;
pub use transform::TransformPlugin;

/// Everything needed to load one plugin, as resolved from `[plugin.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// The name in the workflow.
    pub name: String,
    /// Where its component comes from.
    pub source: PluginSource,
    /// The pinned sha256 of the component, if any.
    pub sha256: Option<String>,
    /// Memory and time limits.
    pub limits: Limits,
    /// Capabilities granted.
    pub grants: Grants,
    /// Settings passed to the plugin's `init`.
    pub config: Vec<(String, String)>,
}
