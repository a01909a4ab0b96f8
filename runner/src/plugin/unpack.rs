//! Unpacking a `mutation-batch`: the transform world returns a batch's
//! row mutations packed into one byte buffer plus index records (one
//! allocation crosses the boundary instead of one per cell). Every index is
//! checked here; a plugin that points outside its buffer breaks the
//! contract and is reported as such, never trusted.

use super::bindings::transform::exports::switchyard::plugin::transformer::{
    CellOp, MutationBatch, Span,
};
use super::transform::Outcome;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::model::{Cell, RowMutation};

/// One outcome per event of a batch of `events`, or what was wrong.
pub fn unpack(batch: MutationBatch, events: usize) -> Result<Vec<Outcome>, String> {
    let MutationBatch {
        bytes,
        rows,
        cells,
        refused,
    } = batch;
    // Keys, qualifiers and values become slices of this one buffer.
    let bytes = Bytes::from(bytes);
    let mut outcomes: Vec<Outcome> = (0..events).map(|_| Ok(Vec::new())).collect();
    let mut names = Names::default();
    let mut last_event = 0;
    // The packer writes every key, qualifier and value once; a plugin that
    // points many cells at the same bytes could make the host copy far more
    // than it returned, so the total is held to what was returned.
    let mut referenced: u64 = 0;
    let mut refer = |span: &Span| -> Result<(), String> {
        referenced += u64::from(span.len);
        if referenced > bytes.len() as u64 {
            return Err(format!(
                "its rows refer to more bytes than the {} it returned (spans may not overlap)",
                bytes.len()
            ));
        }
        Ok(())
    };
    for row in &rows {
        let event = row.event as usize;
        if event >= events || event < last_event {
            return Err(format!(
                "a row names event {event} of a batch of {events} (rows must follow event order)"
            ));
        }
        last_event = event;
        let first = row.first_cell as usize;
        let packed = cells
            .get(first..first.saturating_add(row.cell_count as usize))
            .ok_or_else(|| {
                format!(
                    "a row's cells {first}+{} lie outside the {} cells returned",
                    row.cell_count,
                    cells.len()
                )
            })?;
        let table = names.get(&bytes, &row.table, "a table name")?;
        let row_key = slice(&bytes, &row.row_key, "a row key")?;
        refer(&row.row_key)?;
        if row_key.is_empty() {
            return Err(format!("event {event} has a row with an empty row key"));
        }
        if i64::try_from(row.version).is_err() {
            return Err(format!(
                "event {event} has a row at version {}, above the largest version stores accept (2^63 - 1)",
                row.version
            ));
        }
        let mut out = Vec::with_capacity(packed.len());
        for c in packed {
            out.push(match c.op {
                CellOp::Put => {
                    refer(&c.qualifier)?;
                    refer(&c.value)?;
                    Cell::Put {
                        family: names.get(&bytes, &c.family, "a family")?,
                        qualifier: slice(&bytes, &c.qualifier, "a qualifier")?,
                        value: slice(&bytes, &c.value, "a value")?,
                    }
                }
                CellOp::DeleteCell => {
                    refer(&c.qualifier)?;
                    Cell::DeleteCell {
                        family: names.get(&bytes, &c.family, "a family")?,
                        qualifier: slice(&bytes, &c.qualifier, "a qualifier")?,
                    }
                }
                CellOp::DeleteFamily => Cell::DeleteFamily {
                    family: names.get(&bytes, &c.family, "a family")?,
                },
                CellOp::DeleteRow => Cell::DeleteRow,
            });
        }
        if let Ok(list) = &mut outcomes[event] {
            list.push(RowMutation {
                table,
                row_key,
                cells: out,
                version: row.version,
            });
        }
    }
    for r in refused {
        let event = r.event as usize;
        let slot = outcomes
            .get_mut(event)
            .ok_or_else(|| format!("a refusal names event {event} of a batch of {events}"))?;
        if !matches!(slot, Ok(rows) if rows.is_empty()) {
            return Err(format!("event {event} is both refused and given rows"));
        }
        *slot = Err(r.error);
    }
    Ok(outcomes)
}

/// The bytes a span points at, as a shared slice of the batch buffer.
fn slice(bytes: &Bytes, span: &Span, what: &str) -> Result<Bytes, String> {
    let (start, len) = (span.start as usize, span.len as usize);
    let end = start.saturating_add(len);
    if end > bytes.len() {
        return Err(format!(
            "{what} at {start}+{len} lies outside the {} bytes returned",
            bytes.len()
        ));
    }
    Ok(bytes.slice(start..end))
}

/// Table and family names of a batch, each checked and allocated once.
#[derive(Default)]
struct Names {
    known: HashMap<(u32, u32), Arc<str>>,
}

impl Names {
    fn get(&mut self, bytes: &Bytes, span: &Span, what: &str) -> Result<Arc<str>, String> {
        if let Some(name) = self.known.get(&(span.start, span.len)) {
            return Ok(name.clone());
        }
        if span.len > u32::from(u16::MAX) {
            return Err(format!("{what} of {} bytes is longer than 65535", span.len));
        }
        let raw = slice(bytes, span, what)?;
        let name: Arc<str> = std::str::from_utf8(&raw)
            .map_err(|_| format!("{what} is not UTF-8"))?
            .into();
        self.known.insert((span.start, span.len), name.clone());
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::transform::exports::switchyard::plugin::transformer::{
        PackedCell, PackedRow, Refusal,
    };
    use crate::plugin::bindings::types::PluginError;

    fn span(start: u32, len: u32) -> Span {
        Span { start, len }
    }

    fn batch() -> MutationBatch {
        // bytes: "t" "k1" "d" "q" "v"
        MutationBatch {
            bytes: b"tk1dqv".to_vec(),
            rows: vec![PackedRow {
                event: 1,
                table: span(0, 1),
                row_key: span(1, 2),
                version: 9,
                first_cell: 0,
                cell_count: 2,
            }],
            cells: vec![
                PackedCell {
                    op: CellOp::Put,
                    family: span(3, 1),
                    qualifier: span(4, 1),
                    value: span(5, 1),
                },
                PackedCell {
                    op: CellOp::DeleteRow,
                    family: span(0, 0),
                    qualifier: span(0, 0),
                    value: span(0, 0),
                },
            ],
            refused: vec![Refusal {
                event: 2,
                error: PluginError::Malformed("x".into()),
            }],
        }
    }

    #[test]
    fn rows_and_refusals_land_on_their_events() {
        let out = unpack(batch(), 3).unwrap();
        assert_eq!(out[0], Ok(vec![]));
        let rows = out[1].as_ref().unwrap();
        assert_eq!(&*rows[0].table, "t");
        assert_eq!(&rows[0].row_key[..], b"k1");
        assert_eq!(rows[0].version, 9);
        assert_eq!(rows[0].cells[1], Cell::DeleteRow);
        assert_eq!(out[2], Err(PluginError::Malformed("x".into())));
    }

    #[test]
    fn indexes_outside_the_batch_are_contract_errors() {
        let mut b = batch();
        b.rows[0].row_key = span(4, 10);
        assert!(unpack(b, 3).unwrap_err().contains("outside the 6 bytes"));
        let mut b = batch();
        b.rows[0].cell_count = 5;
        assert!(unpack(b, 3).unwrap_err().contains("outside the 2 cells"));
        let mut b = batch();
        b.cells[0].value = span(0, 6);
        assert!(
            unpack(b, 3)
                .unwrap_err()
                .contains("refer to more bytes than the 6")
        );
        let mut b = batch();
        b.rows[0].version = u64::MAX;
        assert!(
            unpack(b, 3)
                .unwrap_err()
                .contains("above the largest version")
        );
        let mut b = batch();
        b.refused[0].event = 1;
        assert!(
            unpack(b, 3)
                .unwrap_err()
                .contains("both refused and given rows")
        );
        assert!(
            unpack(batch(), 1)
                .unwrap_err()
                .contains("names event 1 of a batch of 1")
        );
    }
}
