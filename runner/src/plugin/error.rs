//! Host-side plugin errors: a plugin that cannot be loaded, and a plugin
//! that was stopped by the sandbox. What a plugin itself reports (bad input)
//! is not here: that is the contract's `plugin-error`, handled by the steps
//! according to the workflow's error policy.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::bindings::types;
use super::limits::show_size;

/// What a failing call was working on, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Starting the instance (`init`).
    Init,
    /// One event.
    Event {
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
    /// A batch whose failing event could not be singled out.
    Events {
        /// Partition of the first event.
        partition: i32,
        /// Offset of the first event.
        first: i64,
        /// Number of events.
        count: usize,
    },
    /// A row key under comparison.
    Key {
        /// Table.
        table: String,
        /// Row key, printable.
        key: String,
    },
    /// A batch of keys under comparison.
    Keys {
        /// How many.
        count: usize,
    },
    /// A request being routed, or the answers to it compared.
    Request {
        /// Method and path.
        what: String,
    },
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Init => write!(f, "while starting"),
            Input::Event { partition, offset } => {
                write!(f, "on event partition {partition} offset {offset}")
            }
            Input::Events {
                partition,
                first,
                count,
            } => write!(
                f,
                "on a batch of {count} events from partition {partition} offset {first}"
            ),
            Input::Key { table, key } => write!(f, "on key `{key}` of table `{table}`"),
            Input::Keys { count } => write!(f, "on a batch of {count} keys"),
            Input::Request { what } => write!(f, "on request `{what}`"),
        }
    }
}

/// The sandbox stopped a plugin. The plugin is bad, not its input: these
/// always fail the step, whatever the error policy says.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginFailure {
    /// Ran past its per-call deadline (an endless loop, or far too slow).
    #[error(
        "plugin `{plugin}` exceeded its time limit of {} {at}; raise `timeout` in [plugin.{plugin}] if the work is legitimate",
        humantime::format_duration(*.timeout)
    )]
    Deadline {
        /// Plugin name.
        plugin: String,
        /// The limit.
        timeout: Duration,
        /// Where.
        at: Input,
    },
    /// Tried to grow its memory past the limit.
    #[error(
        "plugin `{plugin}` exceeded its memory limit of {} {at}; raise `memory_limit` in [plugin.{plugin}] if the work is legitimate",
        show_size(*.limit)
    )]
    Memory {
        /// Plugin name.
        plugin: String,
        /// The limit in bytes.
        limit: u64,
        /// Where.
        at: Input,
    },
    /// Asked for a capability the workflow does not grant.
    #[error(
        "plugin `{plugin}` tried to use {} {at}, which the workflow does not grant{hint}",
        capability_words(.capability)
    )]
    Denied {
        /// Plugin name.
        plugin: String,
        /// `clock`, `environment`, `filesystem` or `network`.
        capability: &'static str,
        /// How to grant it, if it can be granted.
        hint: &'static str,
        /// Where.
        at: Input,
    },
    /// Passed more data to the host in one call than its output allows
    /// (wasmtime's hostcall fuel, set from `max_output`).
    #[error(
        "plugin `{plugin}` passed more than {} to the host in one call {at}; raise `max_output` in [plugin.{plugin}] if that is legitimate, or lower the step's `batch_size`",
        show_size(*.limit)
    )]
    Output {
        /// Plugin name.
        plugin: String,
        /// The limit in bytes.
        limit: u64,
        /// Where.
        at: Input,
    },
    /// Recursed deeper than the stack allows.
    #[error(
        "plugin `{plugin}` overflowed its stack {at} (too deep a recursion); make the plugin iterate instead of recursing{}",
        output_suffix(.output)
    )]
    StackOverflow {
        /// Plugin name.
        plugin: String,
        /// The end of what the plugin printed.
        output: String,
        /// Where.
        at: Input,
    },
    /// Stopped because the runner is stopping (Ctrl-C, SIGTERM): neither
    /// the plugin's fault nor its input's.
    #[error("plugin `{plugin}` was stopped {at} because the runner is stopping")]
    Interrupted {
        /// Plugin name.
        plugin: String,
        /// Where.
        at: Input,
    },
    /// Trapped: a panic, an out-of-bounds access, an unreachable.
    #[error("plugin `{plugin}` trapped {at}: {trap}{}", output_suffix(.output))]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The trap, as wasmtime names it.
        trap: String,
        /// The end of what the plugin printed (a panic message).
        output: String,
        /// Where.
        at: Input,
    },
    /// Refused the workflow's configuration at start.
    #[error("plugin `{plugin}` refused its configuration: {}", describe(.error))]
    Config {
        /// Plugin name.
        plugin: String,
        /// What the plugin said.
        error: types::PluginError,
    },
    /// Answered in a way the contract does not allow.
    #[error("plugin `{plugin}` broke the plugin contract {at}: {what}")]
    Contract {
        /// Plugin name.
        plugin: String,
        /// What was wrong.
        what: String,
        /// Where.
        at: Input,
    },
}

impl PluginFailure {
    /// The same failure, said of another input.
    pub fn at(mut self, input: Input) -> Self {
        match &mut self {
            PluginFailure::Deadline { at, .. }
            | PluginFailure::Memory { at, .. }
            | PluginFailure::Denied { at, .. }
            | PluginFailure::Trap { at, .. }
            | PluginFailure::Output { at, .. }
            | PluginFailure::StackOverflow { at, .. }
            | PluginFailure::Interrupted { at, .. }
            | PluginFailure::Contract { at, .. } => *at = input,
            PluginFailure::Config { .. } => {}
        }
        self
    }
}

/// A capability as a sentence names it.
fn capability_words(capability: &str) -> String {
    match capability {
        "random" => "random numbers".to_string(),
        other => format!("the {other}"),
    }
}

fn output_suffix(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!("; it printed: {output}")
    }
}

/// What a plugin said, bounded and on one line (see [`crate::text`]): the
/// form in which the host keeps it.
pub fn bounded(e: types::PluginError) -> types::PluginError {
    use crate::text::foreign;
    use types::PluginError as E;
    match e {
        E::Malformed(m) => E::Malformed(foreign(&m)),
        E::Unsupported(m) => E::Unsupported(foreign(&m)),
        E::Config(m) => E::Config(foreign(&m)),
        E::Other(m) => E::Other(foreign(&m)),
    }
}

/// The text of a plugin-reported error.
pub fn message(e: &types::PluginError) -> &str {
    use types::PluginError as E;
    match e {
        E::Malformed(m) | E::Unsupported(m) | E::Config(m) | E::Other(m) => m,
    }
}

/// A plugin-reported error, in words.
pub fn describe(e: &types::PluginError) -> String {
    match e {
        types::PluginError::Malformed(m) => format!("malformed input: {m}"),
        types::PluginError::Unsupported(m) => format!("unsupported input: {m}"),
        types::PluginError::Config(m) => format!("bad configuration: {m}"),
        types::PluginError::Other(m) => m.clone(),
    }
}

/// A plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The `.wasm` file could not be read.
    #[error("plugin `{plugin}`: cannot read `{}`: {source}", .path.display())]
    Read {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file's hash differs from the pinned one.
    #[error(
        "plugin `{plugin}`: `{}` has sha256 {actual}, but the workflow pins {expected}; rebuild the plugin or update `sha256`",
        .path.display()
    )]
    Sha256 {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// The workflow has no plugin of that name.
    #[error("plugin `{plugin}`: no such plugin in the workflow")]
    Unknown {
        /// Plugin name.
        plugin: String,
    },
    /// Building the plugin crate failed.
    #[error("plugin `{plugin}`: {message}")]
    Build {
        /// Plugin name.
        plugin: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// The bytes are not a component wasmtime accepts.
    #[error("plugin `{plugin}`: `{}` is not a valid WebAssembly component: {message}", .path.display())]
    Invalid {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The component does not export the interface the step needs.
    #[error(
        "plugin `{plugin}` is not a {kind} plugin: it exports {exports}; expected `{expected}` (build it with `#[switchyard_sdk::{kind}]`)"
    )]
    WrongWorld {
        /// Plugin name.
        plugin: String,
        /// `transform`, `check` or `route`.
        kind: &'static str,
        /// What it does export.
        exports: String,
        /// The interface needed.
        expected: String,
    },
    /// The component imports something the sandbox does not provide.
    #[error("plugin `{plugin}` cannot be linked: {message}")]
    Link {
        /// Plugin name.
        plugin: String,
        /// wasmtime's explanation.
        message: String,
    },
}
