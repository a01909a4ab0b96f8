//! What a failed Thrift call means: whether trying again can help, and
//! the server's words for it.
//!
//! HBase's Thrift1 server answers a failed call with an `IOError` whose
//! message is the Java stack trace and whose `canRetry` is false only for
//! a `DoNotRetryIOException`. A batch write that fails for a missing
//! family comes back as `RetriesExhaustedWithDetailsException`, which is
//! not one, so the causes that never go away are also recognised by name.

use hbase_thrift::hbase::{AlreadyExists, IOError, IllegalArgument};

use crate::fault::Fault;

/// A failed call, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The server's (or the connection's) words, one line.
    pub message: String,
    /// Trying again on a new connection may succeed.
    pub transient: bool,
    /// The connection is still in step and can be reused.
    pub connection_ok: bool,
    /// The server said the table does not exist.
    pub table_not_found: bool,
}

impl Failure {
    /// Its class: transient, or refused by the server.
    pub fn fault(&self) -> Fault {
        if self.transient {
            Fault::Transient
        } else {
            Fault::Refused
        }
    }
}

/// Exceptions HBase raises for what retrying cannot fix.
const PERMANENT: &[&str] = &[
    "DoNotRetryIOException",
    "TableNotFoundException",
    "NoSuchColumnFamilyException",
    "TableNotEnabledException",
    "TableNotDisabledException",
    "NamespaceNotFoundException",
    "FailedSanityCheckException",
    "IllegalArgumentException",
    "AccessDeniedException",
];

/// Understands a failed call.
pub fn understand(e: &thrift::Error) -> Failure {
    let failure = |message: String, transient, connection_ok| Failure {
        table_not_found: message.contains("TableNotFoundException"),
        message,
        transient,
        connection_ok,
    };
    match e {
        // Refused, reset, closed, timed out: the server or the network.
        thrift::Error::Transport(t) => {
            failure(format!("connection failed: {}", t.message), true, false)
        }
        thrift::Error::Protocol(p) => failure(
            format!(
                "protocol error: {} (is it a Thrift1 server speaking the binary protocol over buffered transport?)",
                p.message
            ),
            false,
            false,
        ),
        thrift::Error::Application(a) => failure(
            format!("the server could not run the call: {}", a.message),
            false,
            true,
        ),
        thrift::Error::User(user) => {
            if let Some(io) = user.downcast_ref::<IOError>() {
                let message = first_line(io.message.as_deref(), "IOError");
                let permanent = PERMANENT.iter().any(|p| message.contains(p));
                failure(message, io.can_retry.unwrap_or(false) && !permanent, true)
            } else if let Some(ia) = user.downcast_ref::<IllegalArgument>() {
                failure(
                    format!("IllegalArgument: {}", first_line(ia.message.as_deref(), "")),
                    false,
                    true,
                )
            } else if let Some(ae) = user.downcast_ref::<AlreadyExists>() {
                failure(
                    format!("AlreadyExists: {}", first_line(ae.message.as_deref(), "")),
                    false,
                    true,
                )
            } else {
                failure(user.to_string(), false, true)
            }
        }
    }
}

/// Whether the call failed because the table exists already.
pub fn already_exists(e: &thrift::Error) -> bool {
    matches!(e, thrift::Error::User(user) if user.is::<AlreadyExists>())
}

/// The first non-empty line of a message (HBase sends whole stack traces).
fn first_line(message: Option<&str>, otherwise: &str) -> String {
    message
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(otherwise)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(message: &str, can_retry: bool) -> thrift::Error {
        IOError::new(message.to_string(), can_retry).into()
    }

    #[test]
    fn connection_trouble_and_retryable_io_errors_are_transient() {
        let refused: thrift::Error =
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        assert!(understand(&refused).transient);
        assert!(!understand(&refused).connection_ok);
        let busy = io(
            "org.apache.hadoop.hbase.RegionTooBusyException: too busy\n\tat x.y(Z.java:1)",
            true,
        );
        let f = understand(&busy);
        assert!(f.transient && f.connection_ok);
        assert_eq!(f.fault(), Fault::Transient);
        assert_eq!(
            f.message,
            "org.apache.hadoop.hbase.RegionTooBusyException: too busy"
        );
    }

    #[test]
    fn missing_tables_and_families_are_not_retried_whatever_can_retry_says() {
        let batch = io(
            "org.apache.hadoop.hbase.client.RetriesExhaustedWithDetailsException: Failed 1 action: org.apache.hadoop.hbase.regionserver.NoSuchColumnFamilyException: Column family x does not exist",
            true,
        );
        assert!(!understand(&batch).transient);
        let table = io(
            "org.apache.hadoop.hbase.TableNotFoundException: nope",
            false,
        );
        assert!(understand(&table).table_not_found);
        let illegal: thrift::Error = IllegalArgument::new("bad".to_string()).into();
        assert_eq!(understand(&illegal).message, "IllegalArgument: bad");
        let exists: thrift::Error = AlreadyExists::new("in use".to_string()).into();
        assert!(already_exists(&exists));
    }
}
