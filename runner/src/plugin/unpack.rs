//! Unpacking a `mutation-batch`: the transform world returns a batch's
//! row mutations packed into one byte buffer plus index records (one
//! allocation crosses the boundary instead of one per cell). Every index is
//! checked here; a plugin that points outside its buffer breaks the
//! contract and is reported as such, never trusted.

use super::bindings::transform::exports::switchyard::plugin::transformer::{
    CellOp, MutationBatch, Span,
};
use super::transform::Outcome;
use crate::model::{Cell, CellRef, Put, RowMutation};

/// One outcome per event of a batch of `events`, or what was wrong.
pub fn unpack(batch: MutationBatch, events: usize) -> Result<Vec<Outcome>, String> {
    let MutationBatch {
        bytes,
        rows,
        cells,
        refused,
    } = batch;
    let mut outcomes: Vec<Outcome> = (0..events).map(|_| Ok(Vec::new())).collect();
    let bytes_of = |span: &Span, what: &str| -> Result<&[u8], String> {
        let (start, len) = (span.start as usize, span.len as usize);
        bytes.get(start..start.saturating_add(len)).ok_or_else(|| {
            format!(
                "{what} at {start}+{len} lies outside the {} bytes returned",
                bytes.len()
            )
        })
    };
    let text_of = |span: &Span, what: &str| -> Result<String, String> {
        String::from_utf8(bytes_of(span, what)?.to_vec())
            .map_err(|_| format!("{what} is not UTF-8"))
    };
    let mut last_event = 0;
    // Consecutive rows usually share their table; reuse the name.
    let mut table: Option<(u32, u32, String)> = None;
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
        let name = match &table {
            Some((s, l, name)) if (*s, *l) == (row.table.start, row.table.len) => name.clone(),
            _ => {
                let name = text_of(&row.table, "a table name")?;
                table = Some((row.table.start, row.table.len, name.clone()));
                name
            }
        };
        let mut out = Vec::with_capacity(packed.len());
        for c in packed {
            out.push(match c.op {
                CellOp::Put => Cell::Put(Put {
                    family: text_of(&c.family, "a family")?,
                    qualifier: bytes_of(&c.qualifier, "a qualifier")?.to_vec(),
                    value: bytes_of(&c.value, "a value")?.to_vec(),
                }),
                CellOp::DeleteCell => Cell::DeleteCell(CellRef {
                    family: text_of(&c.family, "a family")?,
                    qualifier: bytes_of(&c.qualifier, "a qualifier")?.to_vec(),
                }),
                CellOp::DeleteFamily => Cell::DeleteFamily(text_of(&c.family, "a family")?),
                CellOp::DeleteRow => Cell::DeleteRow,
            });
        }
        let row_key = bytes_of(&row.row_key, "a row key")?;
        if row_key.is_empty() {
            return Err(format!("event {event} has a row with an empty row key"));
        }
        if let Ok(list) = &mut outcomes[event] {
            list.push(RowMutation {
                table: name,
                row_key: row_key.to_vec(),
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
        *slot = Err(r.error);
    }
    Ok(outcomes)
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
        assert_eq!(rows[0].table, "t");
        assert_eq!(rows[0].row_key, b"k1");
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
        assert!(
            unpack(batch(), 1)
                .unwrap_err()
                .contains("names event 1 of a batch of 1")
        );
    }
}
