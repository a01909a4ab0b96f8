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

/// Where both sides stood, and the ranges, as saved.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    /// What was asked: ranges saved for anything else are not used.
    asked: String,
    /// Where blue and green stood at the first read: every range takes
    /// its compare point from them, as one compare would.
    first: (Option<i64>, Option<i64>),
    /// Per table, the keys it splits at (hex, in order).
    splits: BTreeMap<String, Vec<String>>,
}

impl Saved {
    /// Whether it can be used: asked the same, every table cut in order.
    fn usable(&self, asked: &str, tables: &[String]) -> bool {
        self.asked == asked
            && tables.iter().all(|t| self.splits.contains_key(t))
            && self.splits.values().all(|keys| {
                let keys: Option<Vec<Vec<u8>>> = keys.iter().map(|k| hex::decode(k).ok()).collect();
                keys.is_some_and(|k| k.windows(2).all(|w| w[0] < w[1]))
            })
    }
}

/// The ranges each table is compared in, and where both sides stood.
pub struct Split {
    /// Where blue and green stood at the first read.
    pub first: (Option<i64>, Option<i64>),
    /// Per table, its ranges in key order (as many as it has keys for).
    pub ranges: BTreeMap<String, Vec<KeyRange>>,
}

impl Split {
    /// The saved split for the same question, or a new one: where both
    /// sides stand now, and `parts` ranges per table cut at keys drawn from
    /// blue at the compare point that makes.
    pub fn load_or_make(
        path: &Path,
        asked: &str,
        (blue, green): (&mut dyn Store, &mut dyn Store),
        tables: &[String],
        as_of: &Option<AsOf>,
        parts: usize,
    ) -> Result<Split, StepError> {
        let saved = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Saved>(&b).ok())
            .filter(|s| s.usable(asked, tables));
        let saved = match saved {
            Some(saved) => saved,
            None => {
                let first = (blue.watermark()?, green.watermark()?);
                let point = resolve(as_of, first, blue.name(), green.name());
                let mut splits = BTreeMap::new();
                for table in tables {
                    let keys = super::sampled::split_keys(blue, green, table, point, parts)?;
                    splits.insert(table.clone(), keys.iter().map(hex::encode).collect());
                }
                let saved = Saved {
                    asked: asked.to_string(),
                    first,
                    splits,
                };
                write_whole(path, &serde_json::to_vec(&saved).unwrap_or_default()).map_err(
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
            first: saved.first,
            ranges,
        })
    }
}

/// Writes `bytes` to `path` through a new file renamed into place, so a
/// kill leaves the old file or the new one, and a link planted at `path`
/// is replaced, not written through.
pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    let temporary = PathBuf::from(name);
    let _ = std::fs::remove_file(&temporary);
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
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

    /// The files any split run of compare `id` left in `state`, whatever
    /// its number of ranges (a run after `parallel` changed removes them).
    pub fn left_by_any(state: &Path, id: &str) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(state) else {
            return Vec::new();
        };
        let start = format!("compare-{id}.");
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| {
                let Some(rest) = name.strip_prefix(&start) else {
                    return false;
                };
                let numbered = |kind: &str, end: &str| {
                    rest.strip_prefix(kind)
                        .and_then(|r| r.strip_suffix(end))
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                };
                rest == "ranges.json"
                    || rest == "ranges.json.tmp"
                    || rest == "differences.ndjson.tmp"
                    || numbered("progress-", ".json")
                    || numbered("differences-", ".ndjson")
            })
            .map(|name| state.join(name))
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
        &base.as_of,
        parts,
    )?;
    let mut first = Some((blue, green, checker));
    let mut workers = Vec::new();
    let mut used = Vec::new();
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
        used.push(i);
        // `rate` over all ranges: the first `rate % parts` take one more.
        let rate = base.rate.map(|r| {
            let share = r / parts as u64 + u64::from((i as u64) < r % parts as u64);
            share.max(1)
        });
        let options = Options {
            tables: base
                .tables
                .iter()
                .filter(|t| bounds.contains_key(*t))
                .cloned()
                .collect(),
            first: Some(split.first),
            saving: base.saving.as_ref().map(|s| Saving {
                path: files.progress[i].clone(),
                every: s.every,
                asked: format!("{asked}, range {i}: {bounds:?}, from {:?}", split.first),
            }),
            rate,
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
        // One list, range after range: those this run compared only.
        let mut all = Vec::new();
        for i in used {
            all.extend(std::fs::read(&files.listed[i]).unwrap_or_default());
        }
        write_whole(path, &all).map_err(|e| {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A run after `parallel` changed finds the files of every earlier
    /// split run of its step, and nothing else.
    #[test]
    fn the_files_of_any_earlier_split_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "compare-c.ranges.json",
            "compare-c.progress-0.json",
            "compare-c.progress-12.json",
            "compare-c.differences-3.ndjson",
            "compare-c.differences.ndjson.tmp",
            // Not a split's: kept.
            "compare-c.json",
            "compare-c.progress.json",
            "compare-c.progress-x.json",
            "compare-c.differences.ndjson",
            "compare-other.progress-0.json",
        ];
        for name in names {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let mut found: Vec<String> = SplitFiles::left_by_any(dir.path(), "c")
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(found, {
            let mut expected = names[..5].to_vec();
            expected.sort();
            expected
        });
    }
}
