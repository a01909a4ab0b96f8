//! The `hashed` compare, as HBase's SyncTable and data-diff do it: blue is
//! read a segment of keys at a time; green is asked for the digest of the
//! same key range. Equal digests count the whole range as matching without
//! pairing a row; a range that differs is split into parts by blue's keys
//! and each part's digest asked again, down to ranges of `leaf` keys,
//! whose rows are paired up and judged as in a full compare. Ranges tile
//! the key space, so rows only green has are found as well.

use std::collections::VecDeque;

use super::pairs::MergeJoin;
use crate::model::Row;
use crate::plugin::check::Pair;
use crate::steps::StepError;
use crate::store::digest::{self, Ignored};
use crate::store::{KeyRange, Store, successor};

/// Parts a differing range is split into.
const FAN_OUT: usize = 8;

/// Pairs of the ranges whose digests differ, and a count of the keys in
/// ranges that did not.
pub struct HashedJoin<'t> {
    table: &'t str,
    batch: usize,
    as_of: Option<u64>,
    segment: usize,
    leaf: usize,
    ignore: &'t Ignored,
    /// Blue's keys are read after this one next.
    cursor: Option<Vec<u8>>,
    done: bool,
    /// Ranges to pair up row by row.
    differing: VecDeque<KeyRange>,
    current: Option<MergeJoin<'t>>,
    /// Keys in equal ranges since the last [`HashedJoin::take_equal`].
    equal: u64,
    /// Ranges whose digests were asked, and those that differed.
    pub ranges: (u64, u64),
}

impl<'t> HashedJoin<'t> {
    /// A hashed compare of `table`, `segment` keys at a time, pairing
    /// ranges of at most `leaf` keys.
    pub fn new(
        table: &'t str,
        batch: usize,
        as_of: Option<u64>,
        (segment, leaf): (usize, usize),
        ignore: &'t Ignored,
    ) -> Self {
        HashedJoin {
            table,
            batch,
            as_of,
            segment,
            leaf,
            ignore,
            cursor: None,
            done: false,
            differing: VecDeque::new(),
            current: None,
            equal: 0,
            ranges: (0, 0),
        }
    }

    /// Goes on after `key`.
    pub fn start_after(&mut self, key: Vec<u8>) {
        self.cursor = Some(key);
    }

    /// Keys found in equal ranges since the last call.
    pub fn take_equal(&mut self) -> u64 {
        std::mem::take(&mut self.equal)
    }

    /// Up to a batch of pairs from differing ranges; empty at the end (the
    /// equal ranges met on the way are in [`HashedJoin::take_equal`]).
    pub fn next_pairs(
        &mut self,
        blue: &mut dyn Store,
        green: &mut dyn Store,
    ) -> Result<Vec<Pair>, StepError> {
        loop {
            if let Some(join) = &mut self.current {
                let pairs = join.next_pairs(blue, green)?;
                if !pairs.is_empty() {
                    return Ok(pairs);
                }
                self.current = None;
            }
            if let Some(range) = self.differing.pop_front() {
                self.current = Some(MergeJoin::within(self.table, self.batch, self.as_of, range));
                continue;
            }
            if self.done {
                return Ok(Vec::new());
            }
            // The next segment of blue's keys, and the range it covers: up
            // to and with its last key, or to the end.
            let range = KeyRange {
                after: self.cursor.clone(),
                before: None,
            };
            let page = blue.scan(self.table, &range, self.segment, self.as_of)?;
            let covered = KeyRange {
                after: self.cursor.clone(),
                before: page.next_after.as_deref().map(successor),
            };
            match page.next_after {
                Some(last) => self.cursor = Some(last),
                None => self.done = true,
            }
            self.descend(&page.rows, covered, green)?;
        }
    }

    /// Compares the digest of `rows` (blue's rows of `range`) with green's
    /// of the same range, splitting a range that differs.
    fn descend(
        &mut self,
        rows: &[Row],
        range: KeyRange,
        green: &mut dyn Store,
    ) -> Result<(), StepError> {
        self.ranges.0 += 1;
        let theirs = green.digest(self.table, &range, self.as_of, self.ignore)?;
        if theirs == digest::of_rows(rows, self.ignore) {
            self.equal += rows.len() as u64;
            return Ok(());
        }
        self.ranges.1 += 1;
        if rows.len() <= self.leaf {
            self.differing.push_back(range);
            return Ok(());
        }
        let part = rows.len().div_ceil(FAN_OUT);
        let mut after = range.after.clone();
        let chunks: Vec<&[Row]> = rows.chunks(part).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = &chunk[chunk.len() - 1].row_key;
            let before = if i + 1 == chunks.len() {
                range.before.clone()
            } else {
                Some(successor(last))
            };
            self.descend(
                chunk,
                KeyRange {
                    after: after.clone(),
                    before,
                },
                green,
            )?;
            after = Some(last.clone());
        }
        Ok(())
    }
}
