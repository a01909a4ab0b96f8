//! A table as sorted text, every row and every stored version and delete
//! marker with its timestamp, so two stores can be compared byte for byte.

use std::cmp::Reverse;
use std::fmt::Write;

use super::errors::show;
use super::table::Table;

/// Where a line goes: family, qualifier (none for a family marker),
/// newest first, markers before puts.
type Order<'a> = (&'a [u8], Option<&'a [u8]>, Reverse<i64>, u8);

/// One line per stored cell, tab-separated: row, column, timestamp, and
/// `put VALUE`, `delete-column` or `delete-family` (column `family:`).
/// Rows in key order; within a row by family, family markers first, then
/// by qualifier, newest first, a marker before a put of the same
/// timestamp. Bytes outside printable ASCII are written `\xHH`.
pub fn table(name: &str, table: &Table) -> String {
    let mut out = String::new();
    for (key, row) in &table.rows {
        let mut lines: Vec<(Order<'_>, String)> = Vec::new();
        for (family, markers) in &row.family_markers {
            for ts in markers {
                lines.push((
                    (family, None, Reverse(*ts), 0),
                    format!("{}:\t{ts}\tdelete-family", show(family)),
                ));
            }
        }
        for ((family, qualifier), markers) in &row.column_markers {
            for ts in markers {
                lines.push((
                    (family, Some(qualifier), Reverse(*ts), 0),
                    format!("{}:{}\t{ts}\tdelete-column", show(family), show(qualifier)),
                ));
            }
        }
        for ((family, qualifier), versions) in &row.puts {
            for (Reverse(ts), value) in versions {
                lines.push((
                    (family, Some(qualifier), Reverse(*ts), 1),
                    format!(
                        "{}:{}\t{ts}\tput {}",
                        show(family),
                        show(qualifier),
                        show(value)
                    ),
                ));
            }
        }
        lines.sort();
        for (_, line) in lines {
            let _ = writeln!(out, "{name}\t{}\t{line}", show(key));
        }
    }
    out
}
