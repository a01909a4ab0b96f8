//! The `host.log` import: a plugin's lines in the runner's log.
//!
//! A plugin is somebody else's code, so its lines are marked as its own
//! (`plugin `NAME` says: …`), kept on one line with control characters
//! escaped (a plugin cannot forge a line of the runner's, nor colour the
//! terminal), cut to [`TEXT_LIMIT`](crate::text::TEXT_LIMIT) bytes, and
//! limited to [`LINES_PER_CALL`] per call; what is dropped is counted and
//! said once when the call ends. A plugin called once per request (a
//! route plugin) could still log a hundred lines per request, so all the
//! instances of one plugin also share [`LINES_PER_SECOND`]; the first line
//! refused in a second says so.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::bindings::host::Level;

/// The most lines one plugin call may log.
pub const LINES_PER_CALL: u32 = 100;
/// The most lines one plugin may log in a second, over all its instances.
pub const LINES_PER_SECOND: u32 = 1000;

/// The lines one plugin may still log this second, shared by its
/// instances.
#[derive(Debug)]
pub struct LogBudget {
    started: Instant,
    /// The second (since `started`) counted, and the lines in it.
    window: Mutex<(u64, u32)>,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget {
            started: Instant::now(),
            window: Mutex::new((0, 0)),
        }
    }
}

impl LogBudget {
    /// Whether `plugin` may log one more line now.
    fn take(&self, plugin: &str) -> bool {
        self.take_at(self.started.elapsed().as_secs(), plugin)
    }

    fn take_at(&self, second: u64, plugin: &str) -> bool {
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if window.0 != second {
            *window = (second, 0);
        }
        window.1 = window.1.saturating_add(1);
        if window.1 == LINES_PER_SECOND + 1 {
            tracing::warn!(
                "plugin `{plugin}` logged more than {LINES_PER_SECOND} lines in one second; the rest of that second's lines are dropped"
            );
        }
        window.1 <= LINES_PER_SECOND
    }
}

/// The log of one instance.
#[derive(Debug)]
pub struct PluginLog {
    plugin: Arc<str>,
    budget: Arc<LogBudget>,
    lines: u32,
    dropped: u64,
}

impl PluginLog {
    /// The log of an instance of `plugin`, whose instances share `budget`.
    pub fn new(plugin: Arc<str>, budget: Arc<LogBudget>) -> Self {
        PluginLog {
            plugin,
            budget,
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
        if !self.budget.take(&self.plugin) {
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_logs_at_most_its_lines_a_second_over_all_calls() {
        let budget = LogBudget::default();
        let taken = (0..3 * LINES_PER_SECOND)
            .filter(|_| budget.take_at(7, "p"))
            .count();
        assert_eq!(taken, LINES_PER_SECOND as usize);
        assert!(budget.take_at(8, "p"), "a new second, a new budget");
    }
}
