//! `kind = "compare"`: a comparison's settings, and how they are checked
//! and described.

use std::fmt::Write;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::document::values::{AsOf, Period, Point, Size, fraction, whole};
use crate::document::{Kind, WorkflowError};
use crate::plugin::contract::Check;
use crate::setup::Setup;
use crate::steps::checking::Checking;
use crate::steps::uses::Uses;
use crate::steps::{StepConfig, StepContext, StepError, StepFile};

/// The largest `sample`, in keys per table.
const MAX_SAMPLE: u64 = 1_000_000;

/// The kind, for the registration list.
pub const KIND: Kind<dyn StepFile> = Kind {
    name: "compare",
    read: |table| Ok(Box::new(table.read::<CompareFile>()?)),
};

/// `kind = "compare"` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompareFile {
    /// The old store.
    blue: Spanned<String>,
    /// The new store.
    green: Spanned<String>,
    /// Tables to compare.
    tables: Vec<String>,
    /// A `[plugin.NAME]` of the check world that decides equality.
    #[serde(default)]
    check: Option<Spanned<String>>,
    /// Compare as of this version (default `watermark`: what both stores
    /// have passed, so lag is not reported as mismatch).
    #[serde(default)]
    as_of: Option<Point>,
    /// Re-read a mismatching key after this delay before counting it
    /// (default 1s; 0 counts at once).
    #[serde(default)]
    recheck_after: Option<Period>,
    /// Before the recheck, wait at most this long for the side that was
    /// behind to reach where the other stood (default 1m); a key that
    /// still differs while it has not is "lagging", not a mismatch.
    #[serde(default)]
    recheck_wait: Option<Period>,
    /// The gate: most mismatching keys allowed (default 0).
    #[serde(default, deserialize_with = "whole")]
    max_mismatches: Option<u64>,
    /// The gate as a fraction of keys compared, if set.
    #[serde(default, deserialize_with = "fraction")]
    max_mismatch_ratio: Option<f64>,
    /// Example differences kept for the report (default 100); the counts
    /// stay exact.
    #[serde(default, deserialize_with = "whole")]
    examples: Option<usize>,
    /// The longest text kept of one difference (default 1KiB).
    #[serde(default)]
    example_text: Option<Size>,
    /// Keys per read batch (default 1000).
    #[serde(default, deserialize_with = "whole")]
    batch_size: Option<usize>,
    /// At most this many keys compared a second, to bound the load on a
    /// live store (default: as fast as it goes).
    #[serde(default, deserialize_with = "whole")]
    rate: Option<u64>,
    /// Which keys: `full` (every key, the default), `hashed` (every key,
    /// by digests of ranges), `sampled` (a random sample) or `touched` (the
    /// keys the replay `touched_by` wrote since this step's last pass).
    #[serde(default)]
    mode: Mode,
    /// The replay (with `record_touched = true`) whose keys a `touched`
    /// compare reads.
    #[serde(default)]
    touched_by: Option<Spanned<String>>,
    /// A `hashed` compare: blue's keys read at a time (default 10000).
    #[serde(default, deserialize_with = "whole")]
    segment: Option<usize>,
    /// A `hashed` compare: ranges this small are paired row by row when
    /// their digests differ (default 100).
    #[serde(default, deserialize_with = "whole")]
    leaf: Option<usize>,
    /// A `hashed` compare: cells left out of digests, `family:qualifier`
    /// (those the check plugin counts as legitimately different).
    #[serde(default)]
    hash_ignore: Vec<Spanned<String>>,
    /// A `sampled` compare: keys compared per table (default 10000).
    #[serde(default, deserialize_with = "whole")]
    sample: Option<u64>,
    /// A `sampled` compare: keys read after each random point (default 10).
    #[serde(default, deserialize_with = "whole")]
    sample_range: Option<usize>,
    /// Writes every differing key to `compare-ID.differences.ndjson`
    /// (default false: the report keeps the first `examples`).
    #[serde(default)]
    list_differences: bool,
    /// A `full` compare: key ranges compared at once, each on its own
    /// connections (default 1).
    #[serde(default, deserialize_with = "whole")]
    parallel: Option<usize>,
}

/// Which keys a compare reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every key of both sides.
    #[default]
    Full,
    /// The keys a replay wrote since the last pass.
    Touched,
    /// Digests of key ranges; only ranges that differ are read row by row.
    Hashed,
    /// A stated number of keys, in short ranges after random points.
    Sampled,
}

/// `kind = "compare"`: blue and green compared as of a point, with a gate.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareStep {
    /// The old store.
    pub blue: Spanned<String>,
    /// The new store.
    pub green: Spanned<String>,
    /// Tables to compare.
    pub tables: Vec<String>,
    /// A `[plugin.NAME]` of the check world that decides equality.
    pub check: Option<Spanned<String>>,
    /// Compare as of this version (default `watermark`: what both stores
    /// have passed, so lag is not reported as mismatch).
    pub as_of: AsOf,
    /// Re-read a mismatching key after this delay before counting it
    /// (default 1s; 0 counts at once).
    pub recheck_after: Option<Period>,
    /// Before the recheck, wait at most this long for the side that was
    /// behind to reach where the other stood (default 1m); a key that
    /// still differs while it has not is "lagging", not a mismatch.
    pub recheck_wait: Option<Period>,
    /// The gate: most mismatching keys allowed (default 0).
    pub max_mismatches: Option<u64>,
    /// The gate as a fraction of keys compared, if set.
    pub max_mismatch_ratio: Option<f64>,
    /// Example differences kept for the report (default 100); the counts
    /// stay exact.
    pub examples: Option<usize>,
    /// The longest text kept of one difference (default 1KiB).
    pub example_text: Option<Size>,
    /// Keys per read batch (default 1000).
    pub batch_size: Option<usize>,
    /// At most this many keys compared a second.
    pub rate: Option<u64>,
    /// With `mode = "touched"`: the replay whose written keys are compared.
    pub touched_by: Option<String>,
    /// With `mode = "hashed"`: how keys are split and what digests leave out.
    pub hashed: Option<super::Hashing>,
    /// With `mode = "sampled"`: keys per table, and keys per drawn range.
    pub sampled: Option<(u64, usize)>,
    /// Every differing key to a file.
    pub list_differences: bool,
    /// With `mode = "full"`: key ranges compared at once.
    pub parallel: Option<usize>,
}

impl StepFile for CompareFile {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        c.store(&self.blue)?;
        c.store(&self.green)?;
        if self.blue.get_ref() == self.green.get_ref() {
            return Err(c.at(self.green.span(), "`blue` and `green` are the same store"));
        }
        if self.tables.is_empty() {
            return Err(c.step("`tables` is empty; name the tables to compare"));
        }
        if let Some(check) = &self.check {
            c.plugin(check)?;
            c.world::<Check>(check)?;
        }
        if let Some(r) = self.max_mismatch_ratio
            && !(0.0..=1.0).contains(&r)
        {
            return Err(c.step(format!("`max_mismatch_ratio` = {r} is not between 0 and 1")));
        }
        let as_of = match &self.as_of {
            None => AsOf::Watermark(Duration::ZERO),
            Some(point) => AsOf::from_point(point)
                .ok_or_else(|| c.step("`as_of` must be `watermark - …`, `latest` or a time"))?,
        };
        c.positive(self.batch_size, "batch_size")?;
        let hashed = match self.mode {
            Mode::Hashed => {
                let mut ignore = Vec::new();
                for cell in &self.hash_ignore {
                    match cell.get_ref().split_once(':') {
                        Some((f, q)) if !f.is_empty() => {
                            ignore.push((f.to_string(), q.as_bytes().to_vec()))
                        }
                        _ => {
                            return Err(c.at(
                                cell.span(),
                                "write a cell to leave out of digests as `family:qualifier`",
                            ));
                        }
                    }
                }
                c.positive(self.segment, "segment")?;
                c.positive(self.leaf, "leaf")?;
                Some(super::Hashing {
                    segment: self.segment.unwrap_or(10_000),
                    leaf: self.leaf.unwrap_or(100),
                    ignore,
                })
            }
            _ if self.segment.is_some() || self.leaf.is_some() || !self.hash_ignore.is_empty() => {
                return Err(
                    c.step("`segment`, `leaf` and `hash_ignore` are for `mode = \"hashed\"`")
                );
            }
            _ => None,
        };
        let sampled = match self.mode {
            Mode::Sampled => {
                c.positive(self.sample_range, "sample_range")?;
                if self.sample == Some(0) {
                    return Err(c.step("`sample` must be at least 1 key"));
                }
                let size = self.sample.unwrap_or(10_000);
                if size > MAX_SAMPLE {
                    return Err(c.step(format!(
                        "`sample` may be at most {MAX_SAMPLE} keys a table (the keys drawn are held to draw each once); compare in `hashed` or `full` mode to read more"
                    )));
                }
                Some((size, self.sample_range.unwrap_or(10)))
            }
            _ if self.sample.is_some() || self.sample_range.is_some() => {
                return Err(c.step("`sample` and `sample_range` are for `mode = \"sampled\"`"));
            }
            _ => None,
        };
        let touched_by = match (self.mode, &self.touched_by) {
            (Mode::Full | Mode::Hashed | Mode::Sampled, None) => None,
            (Mode::Full | Mode::Hashed | Mode::Sampled, Some(by)) => {
                return Err(c.at(
                    by.span(),
                    "`touched_by` is for `mode = \"touched\"`: a full compare reads every key",
                ));
            }
            (Mode::Touched, None) => {
                return Err(c.step(
                    "`mode = \"touched\"` needs `touched_by`: the replay (with `record_touched = true`) whose written keys it compares",
                ));
            }
            (Mode::Touched, Some(by)) => {
                match c.earlier.iter().find(|s| s.id.get_ref() == by.get_ref()) {
                    None => {
                        return Err(c.at(
                            by.span(),
                            format!(
                                "`touched_by`: no step `{}` comes before this one",
                                by.get_ref()
                            ),
                        ));
                    }
                    Some(s) if !s.config.records_touched() => {
                        return Err(c.at(
                            by.span(),
                            format!(
                                "`touched_by`: step `{}` records no touched keys; give it `record_touched = true` (a replay)",
                                by.get_ref()
                            ),
                        ));
                    }
                    Some(_) => Some(by.get_ref().clone()),
                }
            }
        };
        match self.parallel {
            Some(0) => return Err(c.step("`parallel` must be at least 1")),
            Some(n) if n > super::parallel::MAX_PARALLEL => {
                return Err(c.step(format!(
                    "`parallel` may be at most {}: each range holds its own connections to both stores",
                    super::parallel::MAX_PARALLEL
                )));
            }
            Some(n) if n > 1 && self.mode != Mode::Full => {
                return Err(c.step(
                    "`parallel` is for `mode = \"full\"`: the other modes read one range at a time",
                ));
            }
            _ => {}
        }
        if self.rate == Some(0) {
            return Err(c.step("`rate` must be at least 1 key a second"));
        }
        if self.examples.is_some_and(|n| n > 100_000) {
            return Err(
                c.step("`examples` may be at most 100000; the counts stay exact whatever it is")
            );
        }
        Ok(Box::new(CompareStep {
            as_of,
            blue: self.blue,
            green: self.green,
            tables: self.tables,
            check: self.check,
            recheck_after: self.recheck_after,
            recheck_wait: self.recheck_wait,
            max_mismatches: self.max_mismatches,
            max_mismatch_ratio: self.max_mismatch_ratio,
            examples: self.examples,
            example_text: self.example_text,
            batch_size: self.batch_size,
            rate: self.rate,
            touched_by,
            hashed,
            sampled,
            list_differences: self.list_differences,
            parallel: self.parallel,
        }))
    }
}

impl StepConfig for CompareStep {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self, setup: &Setup) -> String {
        let which = match (&self.touched_by, &self.hashed) {
            (Some(by), _) => format!("the keys replay `{by}` wrote since the last pass, in tables"),
            (None, Some(h)) => format!(
                "by digests of ranges of {} keys (down to {}), tables",
                h.segment, h.leaf
            ),
            (None, None) => match self.sampled {
                Some((size, range)) => format!(
                    "a sample of {size} keys (in ranges of {range} after random points) of tables"
                ),
                None => "tables".to_string(),
            },
        };
        let mut t = format!(
            "compare {which} {} of {} (blue) and {} (green) as of {}",
            self.tables.join(", "),
            setup.store_text(self.blue.get_ref()),
            setup.store_text(self.green.get_ref()),
            self.as_of
        );
        if let Some(check) = &self.check {
            let _ = write!(t, " with plugin `{}`", check.get_ref());
        }
        let _ = write!(
            t,
            "; fail if more than {} keys differ",
            self.max_mismatches.unwrap_or(0)
        );
        if let Some(r) = self.max_mismatch_ratio {
            let _ = write!(t, " or more than {:.3}% of keys", r * 100.0);
        }
        if let Some(parts) = self.parallel.filter(|n| *n > 1) {
            let _ = write!(t, "; in {parts} key ranges at once");
        }
        if let Some(rate) = self.rate {
            let _ = write!(t, "; at most {rate} keys a second");
        }
        t
    }

    fn uses<'s>(&'s self, uses: &mut Uses<'s>) {
        uses.store(self.blue.get_ref());
        uses.store(self.green.get_ref());
        if let Some(check) = &self.check {
            uses.check(check.get_ref());
        }
    }

    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError> {
        super::run(ctx, id, self)
    }

    fn reads(&self) -> Vec<&str> {
        vec![self.blue.get_ref().as_str(), self.green.get_ref().as_str()]
    }
}
