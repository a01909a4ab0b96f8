//! The exceptions the emulator answers with, worded as HBase 2.x words
//! them (class name first, as in the first line of the stack trace that
//! HBase's Thrift1 handler sends) and with HBase's `canRetry`: false for
//! `DoNotRetryIOException`s, true for every other `IOException`.

use hbase_thrift::hbase::{AlreadyExists, IOError, IllegalArgument};
use thrift::{ApplicationError, ApplicationErrorKind};

/// An `IOError`.
pub fn io(message: impl Into<String>, can_retry: bool) -> thrift::Error {
    IOError::new(message.into(), can_retry).into()
}

/// An `IllegalArgument`.
pub fn illegal(message: impl Into<String>) -> thrift::Error {
    IllegalArgument::new(message.into()).into()
}

/// An `AlreadyExists`.
pub fn already_exists(message: impl Into<String>) -> thrift::Error {
    AlreadyExists::new(message.into()).into()
}

/// The table does not exist.
pub fn table_not_found(table: &[u8]) -> thrift::Error {
    io(
        format!(
            "org.apache.hadoop.hbase.TableNotFoundException: {}",
            show(table)
        ),
        false,
    )
}

/// The table is disabled.
pub fn table_disabled(table: &[u8]) -> thrift::Error {
    io(
        format!(
            "org.apache.hadoop.hbase.TableNotEnabledException: {} is disabled.",
            show(table)
        ),
        false,
    )
}

/// The text of a `NoSuchColumnFamilyException`.
pub fn no_such_family_text(table: &[u8], family: &[u8]) -> String {
    format!(
        "org.apache.hadoop.hbase.regionserver.NoSuchColumnFamilyException: Column family {} does not exist in region {t},,0 in table '{t}'",
        show(family),
        t = show(table),
    )
}

/// A family of a single-row call does not exist.
pub fn no_such_family(table: &[u8], family: &[u8]) -> thrift::Error {
    io(no_such_family_text(table, family), false)
}

/// Some actions of a batch failed (the others were applied). HBase's
/// client reports these as `RetriesExhaustedWithDetailsException`, which
/// is not a `DoNotRetryIOException`, so `canRetry` is true even when the
/// cause (a missing family) will never go away.
pub fn batch_failed(failed: usize, cause: &str) -> thrift::Error {
    let s = if failed == 1 { "" } else { "s" };
    io(
        format!(
            "org.apache.hadoop.hbase.client.RetriesExhaustedWithDetailsException: Failed {failed} action{s}: {cause}: {failed} time{s}, servers with issues: 127.0.0.1,16020,0"
        ),
        true,
    )
}

/// A method the emulator does not implement.
pub fn not_implemented(method: &str) -> thrift::Error {
    thrift::Error::Application(ApplicationError::new(
        ApplicationErrorKind::Unknown,
        format!("`{method}` is not implemented by the HBase emulator"),
    ))
}

/// Bytes as HBase's `Bytes.toStringBinary` shows them: printable ASCII as
/// is, everything else as `\xHH`.
pub fn show(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}
