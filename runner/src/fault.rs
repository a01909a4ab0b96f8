//! What kind of failure a store or source met, so that whoever holds the
//! error can tell what trying again may fix from what it will not. Each
//! store and source decides this where it understands its own errors
//! (HBase's `canRetry`, librdkafka's fatal flag, SQLite's result codes).

use std::fmt;

/// The class of a store's or source's failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Trying again may succeed: a lost or refused connection, a timeout,
    /// a server that is busy or restarting (what is left once the store's
    /// or source's own retries gave up).
    Transient,
    /// The other side refused what was asked, and will again: a missing
    /// table or topic, a denied permission, a value it cannot hold, a
    /// server that speaks another protocol.
    Refused,
    /// Reading or writing local files failed: a folder that cannot be
    /// made, a full or read-only disk, a file that is not what it should be.
    Io,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Transient => "transient",
            Fault::Refused => "refused",
            Fault::Io => "I/O",
        })
    }
}
