//! What a PostgreSQL failure means for the runner: whether trying again
//! may help (a lost connection, a server starting or shutting down, a
//! deadlock or a serialization failure) or not (a missing table, a wrong
//! password, a value it cannot hold).

use postgres::error::SqlState;

use crate::fault::Fault;
use crate::store::StoreError;

/// Whether `e` may pass.
pub fn fault_of(e: &postgres::Error) -> Fault {
    if e.is_closed() {
        return Fault::Transient;
    }
    let Some(code) = e.code() else {
        // No answer from the server: only a connection that failed (an
        // I/O error, a timeout) may do better next time. A TLS set-up or
        // a password the server refuses, or a message the client could
        // not make (too large), fails the same way again.
        let sources = || std::iter::successors(std::error::Error::source(e), |s| s.source());
        let tls = sources()
            .any(|s| s.is::<openssl::ssl::Error>() || s.is::<openssl::error::ErrorStack>());
        let io = sources().any(|s| s.is::<std::io::Error>());
        let timeout = e.to_string().starts_with("timeout");
        return if !tls && (io || timeout) {
            Fault::Transient
        } else {
            Fault::Refused
        };
    };
    let transient = [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::LOCK_NOT_AVAILABLE,
        // A replica that is read-only while it fails over.
        SqlState::READ_ONLY_SQL_TRANSACTION,
    ];
    // Class 08: connection exceptions; class 53: resources (disk, memory,
    // connections) the server may have again.
    if transient.contains(code) || code.code().starts_with("08") || code.code().starts_with("53") {
        Fault::Transient
    } else {
        Fault::Refused
    }
}

/// A store error for `e`, failing at `what`.
pub fn store_error(store: &str, what: &str, e: &postgres::Error) -> StoreError {
    StoreError::new(store, fault_of(e), format!("{what}: {}", describe(e)))
}

/// The server's own message when there is one (`e`'s `Display` is only
/// "db error"), on one line.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => crate::text::foreign(&format!("{} ({})", db.message(), db.code().code())),
        None => crate::text::foreign(&e.to_string()),
    }
}
