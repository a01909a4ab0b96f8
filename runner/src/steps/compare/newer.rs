//! Writes above the compare point: a compare reads both sides as of the
//! point, so a row written later (by a replay still running, by a partition
//! ahead of the others, or at a wrong, future version) is invisible to it.
//! Such keys are counted and listed as "newer than the compare point", side
//! by side, instead of passing in silence; the next pass judges them.
//!
//! A full compare's merge-join gathers them in the reads it makes anyway
//! ([`crate::store::Store::scan_newer`]); here are the pass over a whole
//! table that a hashed compare needs, the check of a sample's keys, and
//! how one such key is noted.

use std::collections::VecDeque;

use super::pairs::pairs_of;
use super::report::{NewerKey, Report};
use crate::cancel::Cancel;
use crate::model::Row;
use crate::steps::StepError;
use crate::store::{KeyRange, Store};

/// One side's newer keys, read page by page.
struct Side {
    buffered: VecDeque<(Vec<u8>, u64)>,
    range: KeyRange,
    done: bool,
}

impl Side {
    fn new() -> Self {
        Side {
            buffered: VecDeque::new(),
            range: KeyRange::default(),
            done: false,
        }
    }

    /// The next key and its version, without taking it.
    fn peek(
        &mut self,
        store: &mut dyn Store,
        table: &str,
        point: u64,
        batch: usize,
    ) -> Result<Option<&(Vec<u8>, u64)>, StepError> {
        // A page may hold no newer key and still not be the last.
        while self.buffered.is_empty() && !self.done {
            let page = store.newer(table, &self.range, point, batch)?;
            self.done = page.next_after.is_none();
            self.range.after = page.next_after;
            self.buffered.extend(page.keys);
        }
        Ok(self.buffered.front())
    }
}

/// Counts the keys of `table` that blue or green wrote above `point` (a
/// key both wrote counts once) and keeps the first as examples.
pub fn count_newer(
    blue: &mut dyn Store,
    green: &mut dyn Store,
    table: &str,
    point: u64,
    (batch, examples, text): (usize, usize, usize),
    report: &mut Report,
    cancel: &Cancel,
) -> Result<(), StepError> {
    let (mut b, mut g) = (Side::new(), Side::new());
    loop {
        if cancel.is_cancelled() {
            return Err(StepError::Interrupted);
        }
        let next_blue = b.peek(blue, table, point, batch)?.cloned();
        let next_green = g.peek(green, table, point, batch)?.cloned();
        let (key, in_blue, in_green) = match (next_blue, next_green) {
            (None, None) => break,
            (Some((k, v)), None) => (k, Some(v), None),
            (None, Some((k, v))) => (k, None, Some(v)),
            (Some((kb, vb)), Some((kg, vg))) => match kb.cmp(&kg) {
                std::cmp::Ordering::Less => (kb, Some(vb), None),
                std::cmp::Ordering::Greater => (kg, None, Some(vg)),
                std::cmp::Ordering::Equal => (kb, Some(vb), Some(vg)),
            },
        };
        if in_blue.is_some() {
            b.buffered.pop_front();
        }
        if in_green.is_some() {
            g.buffered.pop_front();
        }
        note(report, table, (&key, in_blue, in_green), (examples, text));
    }
    Ok(())
}

/// Counts one key written above the compare point, and lists it while
/// there is room.
pub fn note(
    report: &mut Report,
    table: &str,
    (key, blue, green): (&[u8], Option<u64>, Option<u64>),
    (examples, text): (usize, usize),
) {
    report.add(table, 1, |c| &mut c.newer_than_compare_point);
    if report.newer_examples.len() < examples {
        report.newer_examples.push(NewerKey {
            table: table.to_string(),
            key: crate::text::bounded(&crate::text::text_or_hex(key), text),
            blue,
            green,
        });
    }
}

/// The same for the given keys only (a sample), read as they stand now:
/// a key counts when either side's latest row holds a cell above `point`.
pub fn count_newer_among(
    blue: &mut dyn Store,
    green: &mut dyn Store,
    table: &str,
    keys: Vec<Vec<u8>>,
    point: u64,
    (examples, text): (usize, usize),
    report: &mut Report,
) -> Result<(), StepError> {
    let above = |row: &Option<Row>| {
        row.iter()
            .flat_map(|r| r.cells.iter().map(|c| c.version))
            .max()
            .filter(|v| *v > point)
    };
    for pair in pairs_of(blue, green, table, keys, None)? {
        let (in_blue, in_green) = (above(&pair.blue), above(&pair.green));
        if in_blue.is_some() || in_green.is_some() {
            let key = pair.row_key.as_slice();
            note(report, table, (key, in_blue, in_green), (examples, text));
        }
    }
    Ok(())
}
