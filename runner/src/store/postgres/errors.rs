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
        // A TLS set-up the server does not speak, or a certificate it
        // cannot show, fails the same way again.
        let tls = std::iter::successors(std::error::Error::source(e), |s| s.source())
            .any(|s| s.is::<openssl::ssl::Error>() || s.is::<openssl::error::ErrorStack>());
        if tls || e.to_string().contains("TLS") {
            return Fault::Refused;
        }
        // No answer from the server: the connection (an I/O error, a
        // timeout) failed.
        return Fault::Transient;
    };
    let transient = [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::LOCK_NOT_AVAILABLE,
    ];
    // Class 08: connection exceptions.
    if transient.contains(code) || code.code().starts_with("08") {
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
