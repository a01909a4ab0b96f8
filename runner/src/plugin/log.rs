//! The `host.log` import: a plugin's lines in the runner's log.
//!
//! A plugin is somebody else's code, so its lines are marked as its own
//! (`plugin `NAME` says: …`), kept on one line with control characters
//! escaped (a plugin cannot forge a line of the runner's, nor colour the
//! terminal), cut to [`TEXT_LIMIT`](crate::text::TEXT_LIMIT) bytes, and
//! limited to [`LINES_PER_CALL`] per call; what is dropped is counted and
//! said once when the call ends.

use std::sync::Arc;

use super::bindings::host::Level;

/// The most lines one plugin call may log.
pub const LINES_PER_CALL: u32 = 100;

/// The log of one instance.
#[derive(Debug)]
pub struct PluginLog {
    plugin: Arc<str>,
    lines: u32,
    dropped: u64,
}

impl PluginLog {
    /// The log of `plugin`.
    pub fn new(plugin: Arc<str>) -> Self {
        PluginLog {
            plugin,
            lines: 0,
            dropped: 0,
        }
    }

    /// Writes one line, or counts it as dropped past the limit.
    pub fn write(&mut self, level: Level, message: &str) {
        if self.lines >= LINES_PER_CALL {
            self.dropped += 1;
            return;
        }
        self.lines += 1;
        let line = crate::text::foreign(message);
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!("plugin `{plugin}` says: {line}"),
            Level::Debug => tracing::debug!("plugin `{plugin}` says: {line}"),
            Level::Info => tracing::info!("plugin `{plugin}` says: {line}"),
            Level::Warn => tracing::warn!("plugin `{plugin}` says: {line}"),
            Level::Error => tracing::error!("plugin `{plugin}` says: {line}"),
        }
    }

    /// Ends a call: says how many lines were dropped, and starts counting anew.
    pub fn end_call(&mut self) {
        if self.dropped > 0 {
            tracing::warn!(
                "plugin `{}` logged {} more lines in one call than the {LINES_PER_CALL} allowed; they were dropped",
                self.plugin,
                self.dropped
            );
        }
        self.lines = 0;
        self.dropped = 0;
    }
}
