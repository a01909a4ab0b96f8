//! A `full` compare split into key ranges compared at once (`parallel`),
//! as Vitess VDiff and HBase's SyncTable spread a table over workers: each
//! range is an ordinary compare of its own (its own connections, check
//! plugin instance, saved progress and list of differences), all at one
//! compare point; their reports are merged into one.
//!
//! Where each table splits, and the compare point, are saved on the first
//! run (`compare-ID.ranges.json`), so a compare killed midway resumes each
//! range from its own progress with the same ranges and point.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::progress::Saving;
use super::report::Report;
use super::{Options, compare, resolve};
use crate::cancel::Cancel;
use crate::document::values::AsOf;
use crate::plugin::contract::Check;
use crate::plugin::instance::Instance;
use crate::steps::StepError;
use crate::store::{KeyRange, Store};

/// The most ranges a compare is split into.
pub const MAX_PARALLEL: usize = 16;

/// The ranges and the compare point, as saved.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    /// What was asked: ranges saved for anything else are not used.
    asked: String,
    point: Option<u64>,
    /// Per table, the keys it splits at (hex).
    splits: BTreeMap<String, Vec<String>>,
}

/// The ranges each table is compared in, and the compare point.
pub struct Split {
    /// The compare point all ranges share (`None`: the latest state).
    pub point: Option<u64>,
    /// Per table, its ranges in key order (as many as it has keys for).
    pub ranges: BTreeMap<String, Vec<KeyRange>>,
}

impl Split {
    /// The saved split for the same question, or a new one: the point from
    /// `point` (given both sides' watermarks), and `parts` ranges per table
    /// cut at keys drawn from blue.
    pub fn load_or_make(
        path: &Path,
        asked: &str,
        (blue, green): (&mut dyn Store, &mut dyn Store),
        tables: &[String],
        point: impl FnOnce(&mut dyn Store, &mut dyn Store) -> Result<Option<u64>, StepError>,
        parts: usize,
    ) -> Result<Split, StepError> {
        let saved = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Saved>(&b).ok())
            .filter(|s| s.asked == asked);
        let saved = match saved {
            Some(saved) => saved,
            None => {
                let point = point(blue, green)?;
                let mut splits = BTreeMap::new();
                for table in tables {
                    let keys = super::sampled::split_keys(blue, green, table, point, parts)?;
                    splits.insert(table.clone(), keys.iter().map(hex::encode).collect());
                }
                let saved = Saved {
                    asked: asked.to_string(),
                    point,
                    splits,
                };
                std::fs::write(path, serde_json::to_vec(&saved).unwrap_or_default()).map_err(
                    |e| {
                        StepError::Local(format!(
                            "cannot save where the compare splits ({}): {e}",
                            path.display()
                        ))
                    },
                )?;
                saved
            }
        };
        let mut ranges = BTreeMap::new();
        for (table, splits) in saved.splits {
            let keys: Vec<Vec<u8>> = splits.iter().filter_map(|k| hex::decode(k).ok()).collect();
            // Range i holds the keys after split i - 1, up to and with split i.
            let mut cuts = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            for key in keys {
                cuts.push(KeyRange {
                    after: after.take(),
                    before: Some(crate::store::successor(&key)),
                });
                after = Some(key);
            }
            cuts.push(KeyRange {
                after,
                before: None,
            });
            ranges.insert(table, cuts);
        }
        Ok(Split {
            point: saved.point,
            ranges,
        })
    }
}

/// One range's compare: its stores, check and options.
struct Worker {
    blue: Box<dyn Store>,
    green: Box<dyn Store>,
    checker: Option<Instance<Check>>,
    options: Options,
}

/// A range's own blue, green and check plugin instance.
pub type Opened = (Box<dyn Store>, Box<dyn Store>, Option<Instance<Check>>);

/// The files a split compare keeps in the state folder while it runs.
pub struct SplitFiles {
    /// Where the tables split, and the compare point.
    ranges: PathBuf,
    /// Each range's saved progress.
    progress: Vec<PathBuf>,
    /// Each range's list of differences.
    listed: Vec<PathBuf>,
}

impl SplitFiles {
    /// Those of compare `id` in `parts` ranges, in `state`.
    pub fn new(state: &Path, id: &str, parts: usize) -> Self {
        SplitFiles {
            ranges: state.join(format!("compare-{id}.ranges.json")),
            progress: (0..parts)
                .map(|i| state.join(format!("compare-{id}.progress-{i}.json")))
                .collect(),
            listed: (0..parts)
                .map(|i| state.join(format!("compare-{id}.differences-{i}.ndjson")))
                .collect(),
        }
    }

    /// Every one of them (to list as the runner's, and to remove at the end).
    pub fn all(&self) -> Vec<PathBuf> {
        std::iter::once(&self.ranges)
            .chain(&self.progress)
            .chain(&self.listed)
            .cloned()
            .collect()
    }
}

/// A `full` compare of `base` in as many key ranges as `files` has, each
/// on stores and a check from `open`, at once: the merged report.
pub fn compare_split(
    mut open: impl FnMut() -> Result<Opened, StepError>,
    base: &Options,
    files: &SplitFiles,
    cancel: &Cancel,
) -> Result<Report, StepError> {
    let parts = files.progress.len();
    let asked = format!(
        "{}, in {parts} ranges",
        base.saving.as_ref().map_or("", |s| s.asked.as_str())
    );
    let (mut blue, mut green, checker) = open()?;
    let split = Split::load_or_make(
        &files.ranges,
        &asked,
        (&mut *blue, &mut *green),
        &base.tables,
        |b, g| {
            Ok(resolve(
                &base.as_of,
                (b.watermark()?, g.watermark()?),
                b.name(),
                g.name(),
            ))
        },
        parts,
    )?;
    let at = Some(split.point.map_or(AsOf::Latest, |v| AsOf::At(v as i64)));
    let mut first = Some((blue, green, checker));
    let mut workers = Vec::new();
    for i in 0..parts {
        let bounds: BTreeMap<String, KeyRange> = split
            .ranges
            .iter()
            .filter_map(|(table, ranges)| Some((table.clone(), ranges.get(i)?.clone())))
            .collect();
        if bounds.is_empty() {
            continue;
        }
        let (blue, green, checker) = match first.take() {
            Some(opened) => opened,
            None => open()?,
        };
        let options = Options {
            tables: base
                .tables
                .iter()
                .filter(|t| bounds.contains_key(*t))
                .cloned()
                .collect(),
            as_of: at,
            saving: base.saving.as_ref().map(|s| Saving {
                path: files.progress[i].clone(),
                every: s.every,
                asked: format!("{asked}, range {i}: {bounds:?}"),
            }),
            // The load stays what `rate` says, over all ranges.
            rate: base.rate.map(|r| (r / parts as u64).max(1)),
            differences: base.differences.as_ref().map(|_| files.listed[i].clone()),
            bounds,
            ..base.clone()
        };
        workers.push(Worker {
            blue,
            green,
            checker,
            options,
        });
    }
    let mut report = compare_all(workers, &base.tables, base.caps.examples, cancel)?;
    report.mode = "full".into();
    if let Some(path) = &base.differences {
        // One list, range after range (so in key order within a table).
        let mut all = Vec::new();
        for listed in &files.listed {
            all.extend(std::fs::read(listed).unwrap_or_default());
        }
        std::fs::write(path, all).map_err(|e| {
            StepError::Local(format!(
                "cannot write the list of differences {}: {e}",
                path.display()
            ))
        })?;
        report.differences_file = path.file_name().map(|n| n.to_string_lossy().into_owned());
    }
    Ok(report)
}

/// Runs the workers at once and merges their reports (the first error, if
/// any range failed, once all have stopped: each keeps its progress).
fn compare_all(
    workers: Vec<Worker>,
    tables: &[String],
    examples: usize,
    cancel: &Cancel,
) -> Result<Report, StepError> {
    let results: Vec<Result<Report, StepError>> = std::thread::scope(|scope| {
        let running: Vec<_> = workers
            .into_iter()
            .map(|mut w| {
                scope.spawn(move || {
                    compare(
                        &mut *w.blue,
                        &mut *w.green,
                        w.checker.as_mut(),
                        &w.options,
                        cancel,
                    )
                })
            })
            .collect();
        running
            .into_iter()
            .map(|r| {
                r.join().unwrap_or_else(|_| {
                    Err(StepError::Local(
                        "a range of the compare stopped unexpectedly".into(),
                    ))
                })
            })
            .collect()
    });
    let mut merged = Report::default();
    for result in results {
        merged.merge(result?, tables, examples);
    }
    Ok(merged)
}
