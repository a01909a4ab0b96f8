//! The pair producers: pages through both sides of a table in key order
//! as of the compare point and pairs their rows up (a merge-join), or
//! reads a list of keys of both sides (the keys a replay touched, and the
//! recheck's).

use std::collections::VecDeque;

use crate::model::Row;
use crate::plugin::check::Pair;
use crate::steps::StepError;
use crate::store::{KeyRange, Store};

/// Pages through both sides of one table in key order and pairs them up.
pub struct MergeJoin<'t> {
    table: &'t str,
    batch: usize,
    as_of: Option<u64>,
    /// Also gather the keys written above the compare point.
    newer: bool,
    blue: Side,
    green: Side,
}

/// A key written above the compare point, with each side's newest version
/// above it (none: that side did not write it since).
pub type Newer = (Vec<u8>, Option<u64>, Option<u64>);

#[derive(Default)]
struct Side {
    rows: VecDeque<Row>,
    /// Keys written above the compare point, of the stretch read so far.
    newer: VecDeque<(Vec<u8>, u64)>,
    after: Option<Vec<u8>>,
    /// Where the range ends (not included), if it ends.
    before: Option<Vec<u8>>,
    done: bool,
}

impl Side {
    /// Makes sure a row is buffered unless the side is exhausted.
    fn fill(
        &mut self,
        store: &mut dyn Store,
        table: &str,
        batch: usize,
        (as_of, newer): (Option<u64>, bool),
    ) -> Result<(), StepError> {
        while self.rows.is_empty() && !self.done {
            let range = crate::store::KeyRange {
                after: self.after.clone(),
                before: self.before.clone(),
            };
            let page = match as_of {
                Some(point) if newer => {
                    let (page, written) = store.scan_newer(table, &range, batch, point)?;
                    self.newer.extend(written);
                    page
                }
                _ => store.scan(table, &range, batch, as_of)?,
            };
            self.rows.extend(page.rows);
            match page.next_after {
                Some(a) => self.after = Some(a),
                None => self.done = true,
            }
        }
        Ok(())
    }
}

impl<'t> MergeJoin<'t> {
    /// The keys of `range` (all of them with the default range).
    pub fn within(table: &'t str, batch: usize, as_of: Option<u64>, range: KeyRange) -> Self {
        let side = || Side {
            after: range.after.clone(),
            before: range.before.clone(),
            ..Side::default()
        };
        MergeJoin {
            table,
            batch,
            as_of,
            newer: false,
            blue: side(),
            green: side(),
        }
    }

    /// Also gathers the keys either side wrote above the compare point, in
    /// the same reads ([`Store::scan_newer`]); see [`MergeJoin::take_newer`].
    pub fn gathering_newer(mut self) -> Self {
        self.newer = true;
        self
    }

    /// The keys written above the compare point up to and with `upto` (the
    /// last key paired: both sides have read past it), or all when `None`
    /// (after the last pair), each once with both sides' versions.
    pub fn take_newer(&mut self, upto: Option<&[u8]>) -> Vec<Newer> {
        let mut taken = Vec::new();
        let ready = |side: &Side| {
            side.newer
                .front()
                .filter(|(k, _)| upto.is_none_or(|u| k.as_slice() <= u))
                .map(|(k, _)| k.clone())
        };
        loop {
            let (b, g) = (ready(&self.blue), ready(&self.green));
            let key = match (&b, &g) {
                (None, None) => break,
                (Some(b), Some(g)) => b.min(g).clone(),
                (Some(k), None) | (None, Some(k)) => k.clone(),
            };
            let version = |side: &mut Side| {
                (side.newer.front().map(|(k, _)| k) == Some(&key))
                    .then(|| side.newer.pop_front().map(|(_, v)| v))
                    .flatten()
            };
            let (blue, green) = (version(&mut self.blue), version(&mut self.green));
            taken.push((key, blue, green));
        }
        taken
    }

    /// Goes on after `key` (a compare resumed from its saved progress).
    pub fn start_after(&mut self, key: Vec<u8>) {
        self.blue.after = Some(key.clone());
        self.green.after = Some(key);
    }

    /// Up to `batch` pairs; empty when both sides are exhausted.
    pub fn next_pairs(
        &mut self,
        blue: &mut dyn Store,
        green: &mut dyn Store,
    ) -> Result<Vec<Pair>, StepError> {
        let mut pairs = Vec::with_capacity(self.batch);
        while pairs.len() < self.batch {
            let read = (self.as_of, self.newer);
            self.blue.fill(blue, self.table, self.batch, read)?;
            self.green.fill(green, self.table, self.batch, read)?;
            let order = match (self.blue.rows.front(), self.green.rows.front()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(b), Some(g)) => b.row_key.cmp(&g.row_key),
            };
            let (b, g) = match order {
                std::cmp::Ordering::Less => (self.blue.rows.pop_front(), None),
                std::cmp::Ordering::Greater => (None, self.green.rows.pop_front()),
                std::cmp::Ordering::Equal => {
                    (self.blue.rows.pop_front(), self.green.rows.pop_front())
                }
            };
            let row_key = b
                .as_ref()
                .or(g.as_ref())
                .map(|r| r.row_key.clone())
                .unwrap_or_default();
            pairs.push(Pair {
                table: self.table.to_string(),
                row_key,
                blue: b,
                green: g,
            });
        }
        Ok(pairs)
    }
}

/// The rows of `keys` of both sides, as of `as_of`, paired up.
pub fn pairs_of(
    blue: &mut dyn Store,
    green: &mut dyn Store,
    table: &str,
    keys: Vec<Vec<u8>>,
    as_of: Option<u64>,
) -> Result<Vec<Pair>, StepError> {
    let b = blue.get(table, &keys, as_of)?;
    let g = green.get(table, &keys, as_of)?;
    Ok(keys
        .into_iter()
        .zip(b.into_iter().zip(g))
        .map(|(row_key, (blue, green))| Pair {
            table: table.to_string(),
            row_key,
            blue,
            green,
        })
        .collect())
}

/// Pairs of given keys, in their order, a batch at a time.
pub struct KeyList<'t> {
    table: &'t str,
    batch: usize,
    as_of: Option<u64>,
    keys: Vec<Vec<u8>>,
    at: usize,
}

impl<'t> KeyList<'t> {
    /// `keys` (sorted) of `table`.
    pub fn new(table: &'t str, batch: usize, as_of: Option<u64>, keys: Vec<Vec<u8>>) -> Self {
        KeyList {
            table,
            batch,
            as_of,
            keys,
            at: 0,
        }
    }

    /// Goes on after `key` (a compare resumed from its saved progress).
    pub fn start_after(&mut self, key: &[u8]) {
        self.at = self.keys.partition_point(|k| k.as_slice() <= key);
    }

    /// Up to `batch` pairs; empty when every key was read.
    pub fn next_pairs(
        &mut self,
        blue: &mut dyn Store,
        green: &mut dyn Store,
    ) -> Result<Vec<Pair>, StepError> {
        let end = (self.at + self.batch).min(self.keys.len());
        if self.at >= end {
            return Ok(Vec::new());
        }
        let keys = self.keys[self.at..end].to_vec();
        self.at = end;
        pairs_of(blue, green, self.table, keys, self.as_of)
    }
}

/// Where a table's pairs come from.
pub enum Pairs<'t> {
    /// Every key of both sides.
    Join(MergeJoin<'t>),
    /// The listed keys only.
    Keys(KeyList<'t>),
    /// The keys of ranges whose digests differ.
    Hashed(super::hashed::HashedJoin<'t>),
    /// Short ranges after random points.
    Sampled(super::sampled::SampledJoin<'t>),
}

impl Pairs<'_> {
    /// The keys written above the compare point that are known up to
    /// `upto` (see [`MergeJoin::take_newer`]); a merge-join gathering them
    /// only.
    pub fn take_newer(&mut self, upto: Option<&[u8]>) -> Vec<Newer> {
        match self {
            Pairs::Join(j) => j.take_newer(upto),
            _ => Vec::new(),
        }
    }

    /// Keys counted as matching without being paired (equal digests) since
    /// the last call.
    pub fn take_equal(&mut self) -> u64 {
        match self {
            Pairs::Hashed(h) => h.take_equal(),
            _ => 0,
        }
    }

    /// Goes on after `key`.
    pub fn start_after(&mut self, key: Vec<u8>) {
        match self {
            Pairs::Join(j) => j.start_after(key),
            Pairs::Keys(k) => k.start_after(&key),
            Pairs::Hashed(h) => h.start_after(key),
            // Saved at table ends only: a sample starts its table again.
            Pairs::Sampled(_) => {}
        }
    }

    /// Up to a batch of pairs; empty at the end.
    pub fn next_pairs(
        &mut self,
        blue: &mut dyn Store,
        green: &mut dyn Store,
    ) -> Result<Vec<Pair>, StepError> {
        match self {
            Pairs::Join(j) => j.next_pairs(blue, green),
            Pairs::Keys(k) => k.next_pairs(blue, green),
            Pairs::Hashed(h) => h.next_pairs(blue, green),
            Pairs::Sampled(s) => s.next_pairs(blue, green),
        }
    }
}
