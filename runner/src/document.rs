//! The workflow file as a document: TOML read with spans, `${vars}`
//! expanded in place (on the spanned document, so positions stay true),
//! typed values, and errors that name file, line and column. Sources,
//! stores and steps read their own tables with these; `workflow` puts the
//! whole file together.
//!
//! - `error`: the error of a workflow file and where it points.
//! - `vars`: `[vars]`, `--var` and `${…}`; `quoting` quotes them for `sh`;
//!   `code` knows which arguments programs read as code.
//! - `values`: durations, sizes, points in time, numbers and flags as text.
//! - `read`: named tables, `kind`, one value as a type; paths.
//! - `kind`: a table handed to the reader of its kind; where a workflow lives.
//! - `layers`: the workflow and the templates it extends, one range of
//!   offsets each; `merge`: how a workflow overrides its template.

pub mod code;
pub mod error;
pub mod kind;
pub mod layers;
pub mod merge;
pub mod quoting;
pub mod read;
pub mod values;
pub mod vars;

pub use error::{Errors, Location, WorkflowError};
pub use kind::{At, Home, Kind, Sections, Table};

/// Letters, digits, `-` and `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
