//! The `sampled` compare: a stated number of keys per table, read in short
//! ranges after random points of the key space, for a quick estimate of
//! how much differs without reading every row. The report says what the
//! sample shows: how many keys were compared and, at 95% confidence, the
//! largest share of keys that may differ (a Wilson score bound). What it
//! cannot show is that no key differs; a `full` or `hashed` compare does.
//!
//! A point is the keys' common prefix followed by random bytes, each drawn
//! from those the table's keys were seen to have at that place (the first
//! between the first and the last key's), learnt from its first keys and
//! from keys found after rough draws; so decimal, hex, binary and
//! structured keys are all drawn across their whole space rather than
//! mostly at the gaps between digits. The draw is fair to keys
//! spread evenly over that space (hashes, UUIDs, numbers) and favours keys
//! after wide gaps otherwise; the report says so. It is seeded by the table
//! and the compare point, so a resumed compare draws the same sample.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::pairs::MergeJoin;
use super::report::Report;
use crate::plugin::check::Pair;
use crate::steps::StepError;
use crate::store::{KeyRange, Store};

/// Bytes after the common prefix the search for the last key reads.
const POINT_BYTES: usize = 8;

/// Keys read from the table's start to learn the bytes its keys use.
const PILOT: usize = 256;

/// Keys found after rough points to learn the bytes of each place.
const BOOTSTRAP: usize = 64;

/// The most bytes after the prefix a point sets.
const MAX_DRAWN: usize = 64;

/// Longest common prefix followed when the first and last key agree on
/// their next bytes too.
const MAX_PREFIX: usize = 64;

/// Pairs of random short ranges of one table, until `size` keys.
pub struct SampledJoin<'t> {
    table: &'t str,
    as_of: Option<u64>,
    size: u64,
    range_keys: usize,
    random: SplitMix,
    /// Where points are drawn, once known (`None` inside: no keys).
    space: Option<Option<KeySpace>>,
    seen: BTreeSet<Vec<u8>>,
    /// Draws left before giving up on finding new keys (a small table).
    draws_left: u64,
    /// Draws in a row that found no new key.
    misses: u32,
    /// Whether the table's start was read (the first range).
    started: bool,
    /// Every key was seen: the table is smaller than a range.
    done: bool,
    /// Ranges drawn.
    pub ranges: u64,
}

impl<'t> SampledJoin<'t> {
    /// A sample of `size` keys of `table` in ranges of `range_keys`.
    pub fn new(table: &'t str, as_of: Option<u64>, size: u64, range_keys: usize) -> Self {
        let ranges_wanted = size.div_ceil(range_keys as u64);
        SampledJoin {
            table,
            as_of,
            size,
            range_keys,
            random: SplitMix(seed(table, as_of)),
            space: None,
            seen: BTreeSet::new(),
            draws_left: ranges_wanted.saturating_mul(4).saturating_add(16),
            misses: 0,
            started: false,
            done: false,
            ranges: 0,
        }
    }

    /// The pairs of the next drawn range (keys not drawn before); empty
    /// when the sample is whole or no new keys turn up. The first range is
    /// the table's start, so the first key can be drawn (points are read
    /// after) and a table smaller than a range is read whole at once. A
    /// call makes at most [`MAX_MISSES`] fruitless draws, so the caller's
    /// pace and stop signal are never far off.
    pub fn next_pairs(
        &mut self,
        blue: &mut dyn Store,
        green: &mut dyn Store,
    ) -> Result<Vec<Pair>, StepError> {
        if self.space.is_none() {
            self.space = Some(key_space(blue, green, self.table, self.as_of)?);
        }
        let Some(Some(space)) = &self.space else {
            return Ok(Vec::new());
        };
        let space = space.clone();
        while !self.done
            && (self.seen.len() as u64) < self.size
            && self.draws_left > 0
            && self.misses < MAX_MISSES
        {
            self.draws_left -= 1;
            self.ranges += 1;
            let after = if self.started {
                Some(space.draw(&mut self.random))
            } else {
                self.started = true;
                None
            };
            let range = KeyRange {
                after: after.clone(),
                before: None,
            };
            let mut join = MergeJoin::within(self.table, self.range_keys, self.as_of, range);
            let read = join.next_pairs(blue, green)?;
            self.done = after.is_none() && read.len() < self.range_keys;
            let left = self.size - self.seen.len() as u64;
            let pairs: Vec<Pair> = read
                .into_iter()
                .filter(|p| self.seen.insert(p.row_key.clone()))
                .take(left as usize)
                .collect();
            if !pairs.is_empty() {
                self.misses = 0;
                return Ok(pairs);
            }
            self.misses += 1;
        }
        Ok(Vec::new())
    }
}

/// Draws in a row that find no new key before a sample ends its table.
const MAX_MISSES: u32 = 64;

/// Keys drawn per part to find where a table splits into parts.
const SPLIT_PILOT: usize = 64;

/// Keys that cut `table` into `parts` ranges of about as many keys each
/// (fewer when it has too few keys), found from keys drawn as a sample
/// draws them, so no more than a few reads per part.
pub fn split_keys(
    blue: &mut dyn Store,
    green: &mut dyn Store,
    table: &str,
    as_of: Option<u64>,
    parts: usize,
) -> Result<Vec<Vec<u8>>, StepError> {
    let Some(space) = key_space(blue, green, table, as_of)? else {
        return Ok(Vec::new());
    };
    let mut random = SplitMix(seed(table, as_of) ^ 0x5eed);
    let mut pilot = BTreeSet::new();
    for _ in 0..SPLIT_PILOT * parts {
        let point = space.draw(&mut random);
        if let Some(key) = first_after(blue, table, Some(&point), as_of)? {
            pilot.insert(key);
        }
    }
    let pilot: Vec<Vec<u8>> = pilot.into_iter().collect();
    let mut splits: Vec<Vec<u8>> = (1..parts)
        .filter_map(|i| pilot.get(i * pilot.len() / parts).cloned())
        .collect();
    splits.dedup();
    Ok(splits)
}

/// The draw's seed: the same for the same table and compare point.
fn seed(table: &str, as_of: Option<u64>) -> u64 {
    table
        .bytes()
        .chain(as_of.unwrap_or(0).to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
}

/// Where a sample's points are drawn.
#[derive(Clone)]
struct KeySpace {
    /// What every key starts with.
    prefix: Vec<u8>,
    /// For each byte after it, the bytes it is drawn from: those keys were
    /// seen to have there (the first within the first and the last key's).
    bytes: Vec<Vec<u8>>,
}

impl KeySpace {
    fn draw(&self, random: &mut SplitMix) -> Vec<u8> {
        let mut point = self.prefix.clone();
        for from in &self.bytes {
            point.push(from[random.below(from.len() as u64) as usize]);
        }
        point
    }

    /// Notes the bytes of `key` after the prefix.
    fn learn(seen: &mut Vec<[bool; 256]>, prefix: usize, key: &[u8]) {
        for (at, b) in key.iter().skip(prefix).take(MAX_DRAWN).enumerate() {
            if seen.len() <= at {
                seen.push([false; 256]);
            }
            seen[at][*b as usize] = true;
        }
    }
}

/// The key space of `table`: its keys' common prefix, and the bytes seen at
/// each place after it, learnt from the table's first keys and from keys
/// found after points drawn over all the bytes seen. Places are learnt one
/// by one, so keys with a structure (`room-0042#000000012345`: digits, a
/// `#`, leading zeros) are drawn across their whole space, not mostly at
/// the first key after a gap.
fn key_space(
    blue: &mut dyn Store,
    green: &mut dyn Store,
    table: &str,
    as_of: Option<u64>,
) -> Result<Option<KeySpace>, StepError> {
    let Some((mut prefix, low, high)) = span(blue, green, table, as_of)? else {
        return Ok(None);
    };
    // The span's window starts with the bytes the first and the last key
    // still share (`room-0` of `room-0000#…` and `room-0999#…`): they join
    // the prefix, and the first byte they differ in leads the draw.
    let (low, high) = (low.to_be_bytes(), high.to_be_bytes());
    let shared = low.iter().zip(&high).take_while(|(a, b)| a == b).count();
    let at = shared.min(POINT_BYTES - 1);
    prefix.extend_from_slice(&low[..at]);
    let (first, last) = (low[at], high[at]);
    let mut seen: Vec<[bool; 256]> = vec![[false; 256]];
    seen[0][first as usize] = true;
    seen[0][last as usize] = true;
    let range = KeyRange {
        after: Some(prefix.clone()),
        before: None,
    };
    for row in blue.scan(table, &range, PILOT, as_of)?.rows {
        KeySpace::learn(&mut seen, prefix.len(), &row.row_key);
    }
    let space = |seen: &[[bool; 256]], any_byte: bool| {
        let all: Vec<u8> = (0..=255u8)
            .filter(|b| seen.iter().any(|s| s[*b as usize]))
            .collect();
        let bytes = seen
            .iter()
            .enumerate()
            .map(|(at, s)| {
                let here = (0..=255u8).filter(|b| s[*b as usize]);
                match at {
                    // The first byte lies within the first and the last key's.
                    0 => all
                        .iter()
                        .copied()
                        .filter(|b| (first..=last).contains(b))
                        .collect(),
                    _ if any_byte => all.clone(),
                    _ => here.collect(),
                }
            })
            .collect();
        KeySpace {
            prefix: prefix.clone(),
            bytes,
        }
    };
    // Keys found after points drawn over every byte seen anywhere teach
    // what each place holds across the table, not only at its start.
    let rough = space(&seen, true);
    let mut random = SplitMix(seed(table, as_of) ^ 0xb007);
    for _ in 0..BOOTSTRAP {
        let point = rough.draw(&mut random);
        if let Some(key) = first_after(blue, table, Some(&point), as_of)? {
            KeySpace::learn(&mut seen, prefix.len(), &key);
        }
    }
    Ok(Some(space(&seen, false)))
}

/// The common prefix of the table's keys and the span of the next
/// [`POINT_BYTES`] after it, found with single-key reads of both sides: the
/// first key, then a binary search for the last. `None`: no keys.
fn span(
    blue: &mut dyn Store,
    green: &mut dyn Store,
    table: &str,
    as_of: Option<u64>,
) -> Result<Option<(Vec<u8>, u64, u64)>, StepError> {
    let firsts = [
        first_after(blue, table, None, as_of)?,
        first_after(green, table, None, as_of)?,
    ];
    let Some(first) = firsts.into_iter().flatten().min() else {
        return Ok(None);
    };
    let mut prefix = Vec::new();
    loop {
        let low = number_after(&first, prefix.len());
        // Whether a key lies after `prefix` + `x`: true at `low - 1`,
        // false past the last key.
        let mut after = |x: u64| -> Result<bool, StepError> {
            let mut point = prefix.clone();
            point.extend_from_slice(&x.to_be_bytes());
            Ok(first_after(blue, table, Some(&point), as_of)?.is_some()
                || first_after(green, table, Some(&point), as_of)?.is_some())
        };
        let high = if after(u64::MAX)? {
            u64::MAX
        } else {
            // The last `x` with a key after it.
            let (mut yes, mut no) = (low.saturating_sub(1), u64::MAX);
            while no - yes > 1 {
                let mid = yes + (no - yes) / 2;
                if after(mid)? {
                    yes = mid;
                } else {
                    no = mid;
                }
            }
            yes.max(low)
        };
        if high > low || prefix.len() + POINT_BYTES > MAX_PREFIX {
            return Ok(Some((prefix, low, high)));
        }
        // Every key shares these bytes too: look past them.
        prefix.extend_from_slice(&low.to_be_bytes());
    }
}

/// The first key of `table` after `after` (from the start when `None`).
fn first_after(
    store: &mut dyn Store,
    table: &str,
    after: Option<&[u8]>,
    as_of: Option<u64>,
) -> Result<Option<Vec<u8>>, StepError> {
    let range = KeyRange {
        after: after.map(<[u8]>::to_vec),
        before: None,
    };
    let page = store.scan(table, &range, 1, as_of)?;
    // A key with nothing visible at the point still marks the key space.
    Ok(page
        .rows
        .into_iter()
        .next()
        .map(|r| r.row_key)
        .or(page.next_after))
}

/// The [`POINT_BYTES`] of `key` from `at`, zero-padded, as a number.
fn number_after(key: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; POINT_BYTES];
    for (i, b) in key.iter().skip(at).take(POINT_BYTES).enumerate() {
        bytes[i] = *b;
    }
    u64::from_be_bytes(bytes)
}

/// A small, seeded generator (SplitMix64): the sample needs to be fair and
/// repeatable, not secret.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` = 0 stands for 2^64).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return self.next();
        }
        // Rejection keeps it uniform whatever `n` is.
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// What a sample shows, for the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleFinding {
    /// Keys asked for, per table.
    pub asked: u64,
    /// Keys compared, over every table.
    pub keys: u64,
    /// Random ranges drawn.
    pub ranges: u64,
    /// Keys that truly differ among them.
    pub differing: u64,
    /// At 95% confidence, at most this share of keys differ.
    pub upper_bound: f64,
    /// The same in words.
    pub words: String,
}

impl SampleFinding {
    /// The finding of what `report` counted so far, in `ranges` ranges of
    /// up to `range_keys` keys, `asked` keys a table.
    pub fn of(report: &Report, (asked, range_keys): (u64, usize), ranges: u64) -> Self {
        let (keys, differing) = (report.total.keys, report.differing());
        let upper_bound = wilson_upper(differing, keys);
        let words = if keys == 0 {
            "No keys were sampled: the tables are empty on both sides.".to_string()
        } else {
            format!(
                "{keys} keys compared ({asked} asked for per table) in {ranges} ranges of up to {range_keys} keys after random points of the key space; {differing} differ ({:.4}%). With 95% confidence at most {:.4}% of the keys differ, if the drawn ranges stand for the tables and damage does not cluster by key (keys in one range are neighbours; `sample_range = 1` draws each on its own). Keys after wide gaps of the key space are likelier to be drawn. A sample cannot show that no key differs; a `full` or `hashed` compare can.",
                100.0 * differing as f64 / keys as f64,
                100.0 * upper_bound
            )
        };
        SampleFinding {
            asked,
            keys,
            ranges,
            differing,
            upper_bound,
            words,
        }
    }
}

/// The upper end of the Wilson score interval at 95% for `hits` in `n`.
fn wilson_upper(hits: u64, n: u64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let (n, p, z) = (n as f64, hits as f64 / n as f64, 1.96f64);
    let centre = p + z * z / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre + spread) / (1.0 + z * z / n)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_difference_in_a_large_sample_bounds_the_share_near_the_rule_of_three() {
        let bound = wilson_upper(0, 10_000);
        assert!(bound > 0.0003 && bound < 0.0004, "{bound}");
        assert!(wilson_upper(5, 100) > 0.05);
        assert_eq!(wilson_upper(0, 0), 1.0);
    }

    /// Two SQLite stores in `dir` with the same rows of `keys` in table `t`.
    fn pair_of(
        dir: &tempfile::TempDir,
        keys: &[Vec<u8>],
    ) -> (
        crate::store::sqlite::SqliteStore,
        crate::store::sqlite::SqliteStore,
    ) {
        use crate::model::{Cell, RowMutation};
        use crate::store::sqlite::{SqliteStore, SqliteSync};
        let open = |name: &str| {
            let path = dir.path().join(format!("{name}.sqlite"));
            SqliteStore::open(name, &path, SqliteSync::Normal).unwrap()
        };
        let rows: Vec<RowMutation> = keys
            .iter()
            .map(|k| RowMutation {
                table: "t".into(),
                row_key: k.clone().into(),
                version: 1,
                cells: vec![Cell::put("d", &b"x"[..], b"y".to_vec())],
            })
            .collect();
        let (mut blue, mut green) = (open("blue"), open("green"));
        blue.apply(&rows, Some(5)).unwrap();
        green.apply(&rows, Some(5)).unwrap();
        (blue, green)
    }

    /// Every key a sample reads, and the ranges it drew.
    fn sampled(
        stores: &mut (
            crate::store::sqlite::SqliteStore,
            crate::store::sqlite::SqliteStore,
        ),
        size: u64,
        range: usize,
    ) -> (Vec<Vec<u8>>, u64) {
        let mut sample = SampledJoin::new("t", Some(5), size, range);
        let mut keys = Vec::new();
        loop {
            let pairs = sample.next_pairs(&mut stores.0, &mut stores.1).unwrap();
            if pairs.is_empty() {
                return (keys, sample.ranges);
            }
            keys.extend(pairs.into_iter().map(|p| p.row_key));
        }
    }

    /// A table of one key, or of two neighbouring fixed-width keys, is read
    /// whole (points are read after, so the first key needs the table's
    /// start); a table far smaller than the sample ends after a bounded
    /// number of fruitless draws.
    #[test]
    fn small_tables_are_read_whole_and_end_soon() {
        for keys in [
            vec![b"k1".to_vec()],
            vec![1u64.to_be_bytes().to_vec(), 2u64.to_be_bytes().to_vec()],
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut stores = pair_of(&dir, &keys);
            let (read, ranges) = sampled(&mut stores, 1000, 10);
            assert_eq!(read, keys);
            assert_eq!(ranges, 1);
        }
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<Vec<u8>> = (0..50)
            .map(|i| format!("key-{i:03}").into_bytes())
            .collect();
        let mut stores = pair_of(&dir, &keys);
        let (read, ranges) = sampled(&mut stores, 1_000_000, 1);
        assert!(read.len() > 25, "{} keys", read.len());
        assert!(ranges < 2000, "{ranges} ranges drawn for 50 keys");
    }

    /// Keys that share a prefix reaching into the drawn bytes
    /// (`room-0` of `room-0000#…` … `room-0099#…`) are still drawn across
    /// their whole space, and a table splits into even parts.
    #[test]
    fn keys_with_a_long_shared_prefix_are_drawn_across_their_space() {
        use crate::model::{Cell, RowMutation};
        use crate::store::sqlite::{SqliteStore, SqliteSync};
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            let path = dir.path().join(format!("{name}.sqlite"));
            SqliteStore::open(name, &path, SqliteSync::Normal).unwrap()
        };
        let (mut blue, mut green) = (open("blue"), open("green"));
        let rows: Vec<RowMutation> = (0..2000u64)
            .map(|i| RowMutation {
                table: "t".into(),
                row_key: format!("room-{:04}#{i:012}", i % 100).into_bytes().into(),
                version: 1,
                cells: vec![Cell::put("d", &b"x"[..], b"y".to_vec())],
            })
            .collect();
        blue.apply(&rows, Some(5)).unwrap();
        green.apply(&rows, Some(5)).unwrap();
        let mut sample = SampledJoin::new("t", Some(5), 500, 10);
        let mut keys = 0;
        loop {
            let pairs = sample.next_pairs(&mut blue, &mut green).unwrap();
            if pairs.is_empty() {
                break;
            }
            keys += pairs.len();
        }
        assert_eq!(keys, 500, "in {} ranges", sample.ranges);
        assert!(sample.ranges < 100, "{} ranges drawn", sample.ranges);
        let splits = split_keys(&mut blue, &mut green, "t", Some(5), 4).unwrap();
        assert_eq!(splits.len(), 3);
        let mut sorted: Vec<Vec<u8>> = rows.iter().map(|r| r.row_key.to_vec()).collect();
        sorted.sort();
        for (i, split) in splits.iter().enumerate() {
            let at = sorted.partition_point(|k| k <= split);
            let even = (i + 1) * 500;
            assert!(at.abs_diff(even) < 200, "split {i} after {at} keys");
        }
    }

    #[test]
    fn draws_are_uniform_and_in_range() {
        let mut r = SplitMix(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[r.below(10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(
            number_after(b"user-01", 5),
            u64::from_be_bytes(*b"01\0\0\0\0\0\0")
        );
    }
}
