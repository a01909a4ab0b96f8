//! Logging from a plugin into the runner's log.
//!
//! Inside the runner the lines go to the host's `tracing` output tagged with
//! the plugin's name; in native unit tests they go to stderr.

/// Severity of a log line.
///
/// ```
/// switchyard_sdk::log::write(switchyard_sdk::log::Level::Info, "hello");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Detailed.
    Debug,
    /// Normal.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something is wrong.
    Error,
}

/// Writes one line to the runner's log.
///
/// ```
/// switchyard_sdk::log::write(switchyard_sdk::log::Level::Debug, "batch done");
/// ```
pub fn write(level: Level, message: &str) {
    #[cfg(target_family = "wasm")]
    {
        use crate::wasm::host;
        let level = match level {
            Level::Trace => host::Level::Trace,
            Level::Debug => host::Level::Debug,
            Level::Info => host::Level::Info,
            Level::Warn => host::Level::Warn,
            Level::Error => host::Level::Error,
        };
        host::log(level, message);
    }
    #[cfg(not(target_family = "wasm"))]
    eprintln!("[{level:?}] {message}");
}

/// Logs at info level.
///
/// ```
/// switchyard_sdk::log::info("started");
/// ```
pub fn info(message: &str) {
    write(Level::Info, message)
}

/// Logs at warn level.
///
/// ```
/// switchyard_sdk::log::warn("odd input");
/// ```
pub fn warn(message: &str) {
    write(Level::Warn, message)
}
