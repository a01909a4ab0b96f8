//! `compare`: an ordered merge-join of blue and green, table by table.
//!
//! Both stores are read *as of* a version both have passed (by default the
//! lower of their watermarks), so keys that one side simply has not reached
//! yet are not reported. Equality is decided by a `check` plugin when the
//! step names one, else cell by cell on values.
//!
//! A key that differs is read again before it counts, once the side that
//! was behind has reached where the other stood at the first read (up to
//! `recheck_wait`). That tells lag from damage: a store may hide a row at
//! the compare point because of a delete it applied *after* that point
//! (HBase applies newer delete markers to reads as of an older time), and
//! the side behind may simply not have applied that delete yet. A key both
//! sides have deleted by the recheck "changed after the compare point"; a
//! key whose side behind never caught up is "lagging", with the side named;
//! neither is a mismatch. The gate fails the step when more keys truly
//! differ than allowed; a JSON report with sample keys is written to the
//! state folder either way.

pub mod config;
pub mod differences;
pub mod hashed;
pub mod newer;
pub mod pairs;
pub mod parallel;
pub mod progress;
pub mod report;
pub mod sampled;
pub mod verdicts;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{StepContext, StepError};
use crate::cancel::Cancel;
use crate::document::values::AsOf;
use crate::plugin::check::Verdict;
use crate::plugin::contract::Check;
use crate::plugin::instance::Instance;
use crate::steps::touched::Touched;
use crate::store::{KeyRange, Store};
use config::CompareStep;
use differences::DifferenceLog;
use hashed::HashedJoin;
use pairs::{KeyList, MergeJoin, Pairs, pairs_of};
use progress::{Pace, Progress, SavedSuspect, Saving};
pub use report::{Caps, Category, Counts, Difference, Report};
use report::{count, difference, summary};
use verdicts::{Tallied, category, holds_more, judge, tally};

/// Keys kept for the recheck; beyond this, differences count at once.
const RECHECK_LIMIT: usize = 100_000;

/// Example differences kept for the report, by default.
pub const DEFAULT_EXAMPLES: usize = 100;

/// How long the recheck waits for the side behind, by default.
pub const DEFAULT_RECHECK_WAIT: Duration = Duration::from_secs(60);

/// How often a compare saves its progress.
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// Examples quoted in the gate's error (the report has them all).
const EXAMPLES_IN_ERROR: usize = 10;

/// A key to read again before it counts.
struct Suspect {
    table: String,
    key: Vec<u8>,
    /// How it differed at the first read.
    first: Category,
}

/// What to compare and how.
#[derive(Clone)]
pub struct Options {
    /// The tables, in order.
    pub tables: Vec<String>,
    /// The compare point (`None`: the lower watermark).
    pub as_of: Option<AsOf>,
    /// Keys per read.
    pub batch: usize,
    /// Examples in the report.
    pub caps: Caps,
    /// Pause before the recheck; zero counts differences at once.
    pub recheck_after: Duration,
    /// Longest wait for the side behind before the recheck.
    pub recheck_wait: Duration,
    /// Where to save progress, to resume after a kill (none: not saved).
    pub saving: Option<Saving>,
    /// At most this many keys a second (none: as fast as it goes).
    pub rate: Option<u64>,
    /// Only these keys, with the highest version written to each (a
    /// `touched` compare); none: every key.
    pub touched: Option<Touched>,
    /// Compare by digests of key ranges (a `hashed` compare).
    pub hashed: Option<Hashing>,
    /// Compare a sample: keys per table, and keys per drawn range.
    pub sampled: Option<(u64, usize)>,
    /// Where to list every differing key (none: the examples only).
    pub differences: Option<std::path::PathBuf>,
    /// The key range of a table to compare, where not all of it (one of
    /// the ranges of a `full` compare split to run in parallel).
    pub bounds: BTreeMap<String, KeyRange>,
    /// Where blue and green stood at the first read, when the caller read
    /// it (for all the ranges of a split compare); none: read at the start.
    pub first: Option<(Option<i64>, Option<i64>)>,
}

/// How a `hashed` compare splits the keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Hashing {
    /// Blue's keys read at a time; the first ranges whose digests are asked.
    pub segment: usize,
    /// Ranges this small are paired up row by row when their digests differ.
    pub leaf: usize,
    /// Cells left out of digests (`family`, `qualifier`): those a check
    /// plugin counts as legitimately different.
    pub ignore: Vec<(String, Vec<u8>)>,
}

/// Runs the comparison and its gate.
fn run(ctx: &StepContext, id: &str, c: &CompareStep) -> Result<String, StepError> {
    let mut blue = ctx.store(c.blue.get_ref())?;
    let mut green = ctx.store(c.green.get_ref())?;
    let mut checker = match &c.check {
        Some(name) => Some(
            ctx.plugins
                .get::<Check>(&ctx.setup, name.get_ref())?
                .instance(),
        ),
        None => None,
    };
    let progress_path = ctx
        .setup
        .state_dir
        .join(format!("compare-{id}.progress.json"));
    let differences = ctx
        .setup
        .state_dir
        .join(format!("compare-{id}.differences.ndjson"));
    ctx.own(&[progress_path.clone(), differences.clone()])?;
    // A touched compare reads the replay's log from where its last pass
    // stopped, and the keys that pass left for this one.
    let touched = match &c.touched_by {
        None => None,
        Some(replay) => Some(TouchedPass::start(ctx, id, replay)?),
    };
    let options = Options {
        tables: c.tables.clone(),
        as_of: Some(c.as_of),
        batch: c.batch_size.unwrap_or(super::DEFAULT_BATCH_SIZE),
        caps: Caps {
            examples: c.examples.unwrap_or(DEFAULT_EXAMPLES),
            text: c
                .example_text
                .map_or(crate::text::TEXT_LIMIT, |s| s.0 as usize),
        },
        recheck_after: c.recheck_after.map_or(Duration::from_secs(1), |s| s.0),
        recheck_wait: c.recheck_wait.map_or(DEFAULT_RECHECK_WAIT, |s| s.0),
        saving: Some(Saving {
            path: progress_path.clone(),
            every: SAVE_EVERY,
            asked: format!(
                "blue {}, green {}, tables {:?}, as of {:?}, check {:?}, touched by {:?}, hashed {:?}, sampled {:?}, list differences {}",
                c.blue.get_ref(),
                c.green.get_ref(),
                c.tables,
                c.as_of,
                c.check.as_ref().map(|n| n.get_ref()),
                c.touched_by,
                c.hashed,
                c.sampled,
                c.list_differences
            ),
        }),
        rate: c.rate,
        touched: touched.as_ref().map(|t| t.keys.clone()),
        hashed: c.hashed.clone(),
        sampled: c.sampled,
        differences: c.list_differences.then_some(differences),
        bounds: BTreeMap::new(),
        first: None,
    };
    let (report, leftovers) = match c.parallel {
        Some(parts) if parts > 1 => {
            let files = parallel::SplitFiles::new(&ctx.setup.state_dir, id, parts);
            ctx.own(&files.all())?;
            // The first range uses what is open; the others open their own.
            let mut opened = Some((blue, green, checker));
            let open = || -> Result<parallel::Opened, StepError> {
                if let Some(first) = opened.take() {
                    return Ok(first);
                }
                Ok((
                    ctx.store(c.blue.get_ref())?,
                    ctx.store(c.green.get_ref())?,
                    match &c.check {
                        Some(name) => Some(
                            ctx.plugins
                                .get::<Check>(&ctx.setup, name.get_ref())?
                                .instance(),
                        ),
                        None => None,
                    },
                ))
            };
            let report = parallel::compare_split(open, &options, &files, &ctx.cancel)?;
            (report, files.all())
        }
        _ => (
            compare(
                &mut *blue,
                &mut *green,
                checker.as_mut(),
                &options,
                &ctx.cancel,
            )?,
            Vec::new(),
        ),
    };

    let differing = report.differing();
    let path = ctx.setup.state_dir.join(format!("compare-{id}.json"));
    let markdown = ctx.setup.state_dir.join(format!("compare-{id}.md"));
    ctx.own(&[path.clone(), markdown.clone()])?;
    let _ = std::fs::write(
        &path,
        serde_json::to_vec_pretty(&report).unwrap_or_default(),
    );
    let _ = std::fs::write(
        &markdown,
        report::markdown(&report, id, c.blue.get_ref(), c.green.get_ref()),
    );
    // Finished, whatever the gate says: a run after this compares afresh
    // (with any number of ranges).
    let stale = parallel::SplitFiles::left_by_any(&ctx.setup.state_dir, id);
    for file in std::iter::once(&progress_path)
        .chain(&leftovers)
        .chain(&stale)
    {
        let _ = std::fs::remove_file(file);
    }
    {
        let mut state = ctx.lock_state();
        let st = state.step_mut(id, "compare");
        let t = &report.total;
        for (k, v) in [
            ("keys", t.keys),
            ("matching", t.matching),
            ("mismatched", t.mismatched),
            ("only_blue", t.only_blue),
            ("only_green", t.only_green),
            ("ignored", t.ignored),
            ("changed_after_compare_point", t.changed_after_compare_point),
            ("lagging", t.lagging),
        ] {
            st.metrics.insert(k.into(), v);
        }
    }
    let summary = summary(&report);
    if report.total.lagging > 0 {
        tracing::warn!(
            "{} keys could not be judged: the side behind did not reach where the other stood within {}",
            report.total.lagging,
            humantime::format_duration(options.recheck_wait)
        );
    }
    // With only a ratio given, the ratio is the gate; otherwise both hold.
    let max = c.max_mismatches.unwrap_or(0);
    let count_exceeded =
        (c.max_mismatches.is_some() || c.max_mismatch_ratio.is_none()) && differing > max;
    let ratio_exceeded = c
        .max_mismatch_ratio
        .is_some_and(|r| report.total.keys > 0 && differing as f64 / report.total.keys as f64 > r);
    if count_exceeded || ratio_exceeded {
        let examples: Vec<String> = report
            .examples
            .iter()
            .filter(|d| d.category != Category::Lagging)
            .take(EXAMPLES_IN_ERROR)
            .map(|d| {
                format!(
                    "{} `{}` ({}): {}",
                    d.table,
                    d.key,
                    d.category.words(),
                    d.reason
                )
            })
            .collect();
        return Err(StepError::Gate(format!(
            "{summary}; {differing} differing keys exceed the gate (max_mismatches = {max}{}); examples:\n  {}\nfull report ({} examples): {}",
            c.max_mismatch_ratio
                .map_or(String::new(), |r| format!(", max_mismatch_ratio = {r}")),
            examples.join("\n  "),
            report.examples.len(),
            path.display()
        )));
    }
    // Only a pass that passed moves on: a failed one is compared again.
    if let Some(pass) = &touched {
        pass.finish(report.as_of)?;
    }
    Ok(summary)
}

/// One pass of a `touched` compare: the keys written since the last pass
/// stopped (`compare-ID.touched-from` holds the byte of the replay's log),
/// with the keys the last pass found written again after its compare point
/// (`compare-ID.touched-carry.ndjson`): those are compared again now.
struct TouchedPass {
    keys: Touched,
    end: u64,
    mark: std::path::PathBuf,
    carry: std::path::PathBuf,
}

impl TouchedPass {
    fn start(ctx: &StepContext, id: &str, replay: &str) -> Result<TouchedPass, StepError> {
        let dir = &ctx.setup.state_dir;
        let mark = dir.join(format!("compare-{id}.touched-from"));
        let carry = dir.join(format!("compare-{id}.touched-carry.ndjson"));
        ctx.own(&[mark.clone(), carry.clone()])?;
        let from: u64 = std::fs::read_to_string(&mark)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        let log = super::touched::path(dir, replay);
        let length = std::fs::metadata(&log).map_or(0, |m| m.len());
        if length < from {
            return Err(StepError::Local(format!(
                "{} holds {length} bytes, fewer than the {from} the last pass read: it was replaced or cut, so the keys written since cannot be known; compare in `full` mode, or remove {} to read the log from its start",
                log.display(),
                mark.display()
            )));
        }
        let max = super::touched::MAX_TOUCHED;
        let (mut keys, _) = super::touched::read(&carry, 0, max).map_err(StepError::Local)?;
        let (new, end) = super::touched::read(&log, from, max).map_err(StepError::Local)?;
        for (table, written) in new {
            let known = keys.entry(table).or_default();
            for (key, version) in written {
                let v = known.entry(key).or_insert(version);
                *v = (*v).max(version);
            }
        }
        Ok(TouchedPass {
            keys,
            end,
            mark,
            carry,
        })
    }

    /// Keeps the keys written after `as_of` for the next pass, and moves the
    /// start of the next pass to where this one stopped reading.
    fn finish(&self, as_of: Option<u64>) -> Result<(), StepError> {
        let newer = self.keys.iter().flat_map(|(table, written)| {
            written
                .iter()
                .filter(|(_, v)| as_of.is_some_and(|point| **v > point))
                .map(move |(key, v)| (table.as_str(), key.as_slice(), *v))
        });
        super::touched::write_keys(&self.carry, newer)
            .and_then(|()| std::fs::write(&self.mark, self.end.to_string()))
            .map_err(|e| {
                StepError::Local(format!(
                    "cannot save where the touched compare stopped ({}): {e}",
                    self.mark.display()
                ))
            })
    }
}

/// Compares `tables` of blue and green: the merge-join at the compare
/// point, then the recheck of what differed.
pub fn compare(
    blue: &mut dyn Store,
    green: &mut dyn Store,
    mut checker: Option<&mut Instance<Check>>,
    options: &Options,
    cancel: &Cancel,
) -> Result<Report, StepError> {
    let (blue_tables, green_tables) = (blue.tables()?, green.tables()?);
    for table in &options.tables {
        if !blue_tables.contains(table) && !green_tables.contains(table) {
            return Err(StepError::Missing(format!(
                "table `{table}` exists in neither `{}` nor `{}`; check `tables` (blue has {}, green has {})",
                blue.name(),
                green.name(),
                list(&blue_tables),
                list(&green_tables)
            )));
        }
    }
    // Where each side stood at the first read: the recheck waits until
    // both have reached the further one. A resumed compare keeps the
    // positions (and so the compare point) of its first run.
    let saved = options.saving.as_ref().and_then(Progress::load);
    let resumed = saved.is_some();
    let Progress {
        first,
        mut report,
        mut done,
        after: mut resume_after,
        suspects: saved_suspects,
        differences: differences_at,
        ..
    } = match saved {
        Some(p) => {
            tracing::info!(
                tables_done = p.done.len(),
                keys = p.report.total.keys,
                "resuming the compare where its saved progress stands"
            );
            p
        }
        None => Progress {
            first: match options.first {
                Some(first) => first,
                None => (blue.watermark()?, green.watermark()?),
            },
            ..Progress::default()
        },
    };
    let as_of = resolve(&options.as_of, first, blue.name(), green.name());
    report.as_of = as_of;
    report.mode = if options.hashed.is_some() {
        "hashed"
    } else if options.touched.is_some() {
        "touched"
    } else if options.sampled.is_some() {
        "sampled"
    } else {
        "full"
    }
    .to_string();
    // Every differing key listed, from where a resumed compare's list
    // stood when its progress was saved.
    let mut log = match &options.differences {
        Some(path) => {
            // Beside the report: its name says where.
            report.differences_file = path.file_name().map(|n| n.to_string_lossy().into_owned());
            Some(DifferenceLog::open(
                path,
                if resumed { differences_at } else { 0 },
            )?)
        }
        None => None,
    };
    let mut suspects: Vec<Suspect> = saved_suspects
        .into_iter()
        .filter_map(|s| {
            Some(Suspect {
                key: hex::decode(&s.key).ok()?,
                table: s.table,
                first: s.first,
            })
        })
        .collect();
    let save = |report: &Report,
                done: &[String],
                after: Option<&[u8]>,
                suspects: &[Suspect],
                log: &mut Option<DifferenceLog>| {
        let Some(saving) = &options.saving else {
            return Ok(());
        };
        let differences = match log {
            Some(log) => log.flush()?,
            None => 0,
        };
        Progress {
            differences,
            asked: saving.asked.clone(),
            first,
            report: report.clone(),
            done: done.to_vec(),
            after: after.map(hex::encode),
            suspects: suspects
                .iter()
                .map(|s| SavedSuspect {
                    table: s.table.clone(),
                    key: hex::encode(&s.key),
                    first: s.first,
                })
                .collect(),
        }
        .save(&saving.path)
        .map_err(|e| {
            StepError::Local(format!(
                "cannot save the compare's progress to {}: {e}",
                saving.path.display()
            ))
        })
    };
    let caps = options.caps;
    let recheck = !options.recheck_after.is_zero();
    let mut pace = Pace::new(options.rate);
    let mut saved_at = Instant::now();
    let every = options.saving.as_ref().map_or(Duration::MAX, |s| s.every);
    // A hashed compare saves at the end of each table only: the ranges it
    // counted equal lie past the last key it paired; a sample has no order.
    let mid_table = options.hashed.is_none() && options.sampled.is_none();
    // Ranges a sample drew, kept in the report's finding from table to
    // table, so a resumed sample counts those of the tables it finished.
    let mut sampled_ranges = report.sample.as_ref().map_or(0, |s| s.ranges);
    for table in &options.tables {
        if done.contains(table) {
            continue;
        }
        let touched = options.touched.as_ref().map(|t| t.get(table.as_str()));
        let mut join = match (touched, &options.hashed) {
            (None, Some(h)) => Pairs::Hashed(HashedJoin::new(
                table,
                options.batch,
                as_of,
                (h.segment, h.leaf),
                &h.ignore,
            )),
            (None, None) => match options.sampled {
                Some((size, range)) => {
                    Pairs::Sampled(sampled::SampledJoin::new(table, as_of, size, range))
                }
                // What either side wrote above the point is invisible to
                // reads as of it: the join gathers those keys as it reads,
                // to count and list them rather than pass them in silence.
                None => Pairs::Join(
                    MergeJoin::within(
                        table,
                        options.batch,
                        as_of,
                        options.bounds.get(table).cloned().unwrap_or_default(),
                    )
                    .gathering_newer(),
                ),
            },
            (Some(keys), _) => Pairs::Keys(KeyList::new(
                table,
                options.batch,
                as_of,
                keys.map(|k| k.keys().cloned().collect())
                    .unwrap_or_default(),
            )),
        };
        if let Some(after) = resume_after.take().and_then(|a| hex::decode(a).ok()) {
            join.start_after(after);
        }
        let mut last: Option<Vec<u8>> = None;
        loop {
            if cancel.is_cancelled() {
                if mid_table {
                    save(&report, &done, last.as_deref(), &suspects, &mut log)?;
                }
                return Err(StepError::Interrupted);
            }
            let pairs = join.next_pairs(blue, green)?;
            // Known up to the last key paired (all of them at the end), so a
            // compare resumed after that key counts none twice.
            let upto = pairs.last().map(|p| p.row_key.as_slice());
            for (key, b, g) in join.take_newer(upto) {
                newer::note(&mut report, table, (&key, b, g), (caps.examples, caps.text));
            }
            // Keys of ranges whose digests agreed: matching, unpaired.
            let equal = join.take_equal();
            report.add(table, equal, |c| &mut c.keys);
            report.add(table, equal, |c| &mut c.matching);
            if pairs.is_empty() {
                break;
            }
            report.add(table, pairs.len() as u64, |c| &mut c.keys);
            report.paired += pairs.len() as u64;
            // A sample asks of its own keys only whether they were written
            // above the point (the other modes ask of the whole table).
            if let (Pairs::Sampled(_), Some(point)) = (&join, as_of) {
                newer::count_newer_among(
                    blue,
                    green,
                    table,
                    pairs.iter().map(|p| p.row_key.clone()).collect(),
                    point,
                    (caps.examples, caps.text),
                    &mut report,
                )?;
            }
            if let (Some(Some(written)), Some(point)) = (touched, as_of) {
                let newer = pairs
                    .iter()
                    .filter(|p| written.get(&p.row_key).is_some_and(|v| *v > point))
                    .count();
                report.add(table, newer as u64, |c| &mut c.newer_than_compare_point);
            }
            for (pair, verdict) in pairs.iter().zip(judge(&mut checker, &pairs)?) {
                let Tallied::Differs(reason) = tally(&mut report, table, verdict) else {
                    continue;
                };
                if recheck && suspects.len() < RECHECK_LIMIT {
                    // Only the key is kept: the recheck judges again.
                    suspects.push(Suspect {
                        table: pair.table.clone(),
                        key: pair.row_key.clone(),
                        first: category(pair),
                    });
                } else {
                    counted(&mut report, pair, &reason, caps, &mut log)?;
                }
            }
            last = pairs.last().map(|p| p.row_key.clone());
            if mid_table && saved_at.elapsed() >= every {
                save(&report, &done, last.as_deref(), &suspects, &mut log)?;
                saved_at = Instant::now();
            }
            let wait = pace.after(pairs.len() as u64 + equal);
            // A long wait starts with the progress saved: a kill during it
            // loses nothing.
            if mid_table && wait >= every {
                save(&report, &done, last.as_deref(), &suspects, &mut log)?;
                saved_at = Instant::now();
            }
            if !wait.is_zero() && paused(cancel, wait) {
                if mid_table {
                    save(&report, &done, last.as_deref(), &suspects, &mut log)?;
                }
                return Err(StepError::Interrupted);
            }
        }
        if let (Pairs::Sampled(s), Some(asked)) = (&join, options.sampled) {
            sampled_ranges += s.ranges;
            report.sample = Some(sampled::SampleFinding::of(&report, asked, sampled_ranges));
        }
        // A hashed compare reads only the ranges that differ: the keys
        // written above the point are asked of the whole table (a join
        // gathered them as it read; a sample asks of its keys, a touched
        // compare knows them from the replay's log).
        if let (Pairs::Hashed(_), Some(point)) = (&join, as_of) {
            newer::count_newer(
                blue,
                green,
                table,
                point,
                (options.batch, caps.examples, caps.text),
                &mut report,
                cancel,
            )?;
        }
        done.push(table.clone());
        save(&report, &done, None, &suspects, &mut log)?;
    }
    if resumed {
        tracing::info!("the resumed compare finished its first pass");
    }
    if !suspects.is_empty() {
        recheck_suspects(
            (blue, green),
            &mut checker,
            options,
            first,
            suspects,
            &mut report,
            &mut log,
            cancel,
        )?;
    }
    if let Some(log) = &mut log {
        log.flush()?;
    }
    // The recheck may have changed the counts.
    if let Some(asked) = options.sampled {
        report.sample = Some(sampled::SampleFinding::of(&report, asked, sampled_ranges));
    }
    Ok(report)
}

/// Reads the differing keys again, once the side behind reached where the
/// other stood at the first read (or `recheck_wait` passed), and sorts
/// each into matching, changed after the compare point, lagging, or a
/// true difference.
#[expect(
    clippy::too_many_arguments,
    reason = "both stores, the check, the first positions, the suspects and the list of differences are the recheck's whole input"
)]
fn recheck_suspects(
    (blue, green): (&mut dyn Store, &mut dyn Store),
    checker: &mut Option<&mut Instance<Check>>,
    options: &Options,
    first: (Option<i64>, Option<i64>),
    suspects: Vec<Suspect>,
    report: &mut Report,
    log: &mut Option<DifferenceLog>,
    cancel: &Cancel,
) -> Result<(), StepError> {
    tracing::info!(
        keys = suspects.len(),
        "re-reading differing keys in {}",
        humantime::format_duration(options.recheck_after)
    );
    std::thread::sleep(options.recheck_after);
    let target = match first {
        (Some(b), Some(g)) => Some(b.max(g)),
        _ => None,
    };
    let waited = Instant::now();
    let now = loop {
        let now = (blue.watermark()?, green.watermark()?);
        let reached = match (target, now) {
            (Some(t), (Some(b), Some(g))) => b >= t && g >= t,
            // Without watermarks there is nothing to wait for.
            _ => true,
        };
        if reached || waited.elapsed() >= options.recheck_wait {
            break now;
        }
        if cancel.is_cancelled() {
            return Err(StepError::Interrupted);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // The side still behind where the other stood, if one is.
    let behind = match (target, now) {
        (Some(t), (Some(b), Some(g))) if b.min(g) < t => Some(if b < g {
            (blue.name().to_string(), b, green.name().to_string(), t)
        } else {
            (green.name().to_string(), g, blue.name().to_string(), t)
        }),
        _ => None,
    };
    let as_of = resolve(&options.as_of, now, blue.name(), green.name());
    report.as_of = as_of;
    let mut by_table: BTreeMap<String, Vec<(Vec<u8>, Category)>> = BTreeMap::new();
    for s in suspects {
        by_table.entry(s.table).or_default().push((s.key, s.first));
    }
    for (table, keys) in by_table {
        for chunk in keys.chunks(options.batch) {
            if cancel.is_cancelled() {
                return Err(StepError::Interrupted);
            }
            let (keys, firsts): (Vec<Vec<u8>>, Vec<Category>) = chunk.iter().cloned().unzip();
            let pairs = pairs_of(blue, green, &table, keys.clone(), as_of)?;
            // Where both stand now: stores differ in how a delete after
            // the read point shows as of it (HBase hides the row, a store
            // keeping every version shows it), so "deleted since" is asked
            // of the latest state.
            let now_pairs = pairs_of(blue, green, &table, keys, None)?;
            let verdicts = judge(checker, &pairs)?;
            for (((pair, verdict), first), now) in
                pairs.iter().zip(verdicts).zip(firsts).zip(&now_pairs)
            {
                // A key one side had at the compare point and both have
                // deleted since: a delete after the compare point.
                let gone_now = now.blue.is_none() && now.green.is_none();
                let one_sided = matches!(first, Category::OnlyBlue | Category::OnlyGreen);
                if gone_now
                    && (one_sided
                        || (pair.blue.is_none()
                            && pair.green.is_none()
                            && first != Category::Mismatched
                            && !matches!(verdict, Verdict::Different(_))))
                {
                    report.add(&table, 1, |c| &mut c.changed_after_compare_point);
                    continue;
                }
                match tally(report, &table, verdict) {
                    Tallied::Matching => report.add(&table, 1, |c| &mut c.settled_on_recheck),
                    Tallied::Ignored => {}
                    // Only what a later delete explains is lag: the side
                    // behind holds the row (or cells) the side ahead no
                    // longer shows. Anything else is damage however far
                    // behind a side is.
                    Tallied::Differs(reason) => match &behind {
                        Some((late, at, ahead, target))
                            if holds_more(
                                if *late == blue.name() {
                                    &pair.blue
                                } else {
                                    &pair.green
                                },
                                if *late == blue.name() {
                                    &pair.green
                                } else {
                                    &pair.blue
                                },
                            ) =>
                        {
                            report.add(&table, 1, |c| &mut c.lagging);
                            if report.lagging_examples.len() < options.caps.examples {
                                let why = format!(
                                    "{reason}; not judged: `{late}` is at {}, behind where `{ahead}` stood ({}), and may not have applied a later delete",
                                    crate::report::version_time(*at),
                                    crate::report::version_time(*target)
                                );
                                report.lagging_examples.push(difference(
                                    pair,
                                    Category::Lagging,
                                    &why,
                                    options.caps,
                                ));
                            }
                        }
                        _ => counted(report, pair, &reason, options.caps, log)?,
                    },
                }
            }
        }
    }
    Ok(())
}

/// Counts a true difference, and lists it when every one is listed.
fn counted(
    report: &mut Report,
    pair: &crate::plugin::check::Pair,
    reason: &str,
    caps: Caps,
    log: &mut Option<DifferenceLog>,
) -> Result<(), StepError> {
    count(report, pair, reason, caps);
    match log {
        Some(log) => log.add(pair, category(pair)),
        None => Ok(()),
    }
}

/// Sleeps `wait` unless cancelled first; says whether it was.
fn paused(cancel: &Cancel, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if cancel.is_cancelled() {
            return true;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
    }
    cancel.is_cancelled()
}

fn list(tables: &[String]) -> String {
    if tables.is_empty() {
        "none".into()
    } else {
        crate::text::quoted(&tables.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

/// The version to compare at, from the two sides' watermarks.
fn resolve(
    point: &Option<AsOf>,
    (blue, green): (Option<i64>, Option<i64>),
    blue_name: &str,
    green_name: &str,
) -> Option<u64> {
    match point.unwrap_or(AsOf::Watermark(Duration::ZERO)) {
        AsOf::Watermark(margin) => match (blue, green) {
            (Some(b), Some(g)) => {
                Some(b.min(g).saturating_sub(margin.as_millis() as i64).max(0) as u64)
            }
            _ => {
                tracing::warn!(
                    "`{blue_name}` or `{green_name}` records no watermark; comparing the latest state, so lag may show up as differences until the recheck"
                );
                None
            }
        },
        AsOf::Latest => None,
        AsOf::At(v) => Some(v.max(0) as u64),
    }
}
