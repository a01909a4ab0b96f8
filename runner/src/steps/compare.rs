//! `compare`: an ordered merge-join of blue and green, table by table.
//!
//! Both stores are read *as of* a version both have passed (by default the
//! lower of their watermarks), so keys that one side simply has not reached
//! yet are not reported. A key that still differs is read again after
//! `recheck_after` before it is counted. Equality is decided by a `check`
//! plugin when the step names one, else cell by cell on values. The gate
//! fails the step when more keys differ than allowed; a JSON report with
//! sample keys is written to the state folder either way.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{StepContext, StepError};
use crate::model::Row;
use crate::plugin::bindings::types;
use crate::plugin::check::{Pair, Verdict};
use crate::plugin::error::describe;
use crate::plugin::instance::Instance;
use crate::store::Store;
use crate::workflow::steps::CompareStep;
use crate::workflow::values::Point;

/// Keys kept for the recheck; beyond this, differences count at once.
const RECHECK_LIMIT: usize = 100_000;

/// Example differences kept for the report, by default.
pub const DEFAULT_EXAMPLES: usize = 100;

/// Examples quoted in the gate's error (the report has them all).
const EXAMPLES_IN_ERROR: usize = 10;

/// How a key came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Category {
    Mismatched,
    OnlyBlue,
    OnlyGreen,
}

/// A key that differed, as the report shows it: key and reason bounded
/// and on one line (they come from stores and plugins).
#[derive(Debug, Clone, Serialize)]
struct Difference {
    table: String,
    key: String,
    category: Category,
    reason: String,
}

/// A key to read again before it counts.
struct Suspect {
    table: String,
    key: Vec<u8>,
}

/// How many examples the report keeps, and how long each text may be.
#[derive(Clone, Copy)]
struct Caps {
    examples: usize,
    text: usize,
}

/// The report written to `compare-ID.json`.
#[derive(Debug, Default, Serialize)]
struct Report {
    as_of: Option<u64>,
    keys: u64,
    matching: u64,
    ignored: u64,
    mismatched: u64,
    only_blue: u64,
    only_green: u64,
    settled_on_recheck: u64,
    /// The first differences found, at most `examples` of them.
    examples: Vec<Difference>,
}

/// Runs the comparison and its gate.
pub fn run(ctx: &StepContext, id: &str, c: &CompareStep) -> Result<String, StepError> {
    let mut blue = ctx.store(c.blue.get_ref())?;
    let mut green = ctx.store(c.green.get_ref())?;
    let mut checker = match &c.check {
        Some(name) => Some(ctx.plugins.check(&ctx.workflow, name.get_ref())?.instance()),
        None => None,
    };
    let batch = c.batch_size.unwrap_or(1000);
    let caps = Caps {
        examples: c.examples.unwrap_or(DEFAULT_EXAMPLES),
        text: c
            .example_text
            .map_or(crate::text::TEXT_LIMIT, |s| s.0 as usize),
    };
    let recheck_after = c.recheck_after.map_or(Duration::from_secs(1), |s| s.0);
    let mut as_of = resolve(&c.as_of, &mut *blue, &mut *green)?;
    let mut report = Report {
        as_of,
        ..Report::default()
    };
    let (blue_tables, green_tables) = (blue.tables()?, green.tables()?);
    for table in &c.tables {
        if !blue_tables.contains(table) && !green_tables.contains(table) {
            return Err(StepError::Other(format!(
                "table `{table}` exists in neither `{}` nor `{}`; check `tables` (blue has {}, green has {})",
                c.blue.get_ref(),
                c.green.get_ref(),
                list(&blue_tables),
                list(&green_tables)
            )));
        }
    }
    let mut suspects: Vec<Suspect> = Vec::new();
    for table in &c.tables {
        let mut join = MergeJoin::new(table, batch, as_of);
        loop {
            if ctx.cancel.is_cancelled() {
                return Err(StepError::Interrupted);
            }
            let pairs = join.next_pairs(&mut *blue, &mut *green)?;
            if pairs.is_empty() {
                break;
            }
            report.keys += pairs.len() as u64;
            for (pair, verdict) in pairs.iter().zip(judge(&mut checker, &pairs)?) {
                match verdict {
                    Verdict::Equal => report.matching += 1,
                    Verdict::Ignore => report.ignored += 1,
                    Verdict::Different(reason) => {
                        if !recheck_after.is_zero() && suspects.len() < RECHECK_LIMIT {
                            // Only the key is kept: the recheck judges again.
                            suspects.push(Suspect {
                                table: pair.table.clone(),
                                key: pair.row_key.clone(),
                            });
                        } else {
                            count(&mut report, pair, &reason, caps);
                        }
                    }
                }
            }
        }
    }
    // Re-read what differed: a lagging side may have caught up since.
    if !suspects.is_empty() {
        tracing::info!(
            keys = suspects.len(),
            "re-reading differing keys in {}",
            humantime::format_duration(recheck_after)
        );
        std::thread::sleep(recheck_after);
        as_of = resolve(&c.as_of, &mut *blue, &mut *green)?;
        report.as_of = as_of;
        let mut by_table: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        for s in suspects.drain(..) {
            by_table.entry(s.table).or_default().push(s.key);
        }
        for (table, keys) in by_table {
            for chunk in keys.chunks(batch) {
                let keys: Vec<Vec<u8>> = chunk.to_vec();
                let b = blue.get(&table, &keys, as_of)?;
                let g = green.get(&table, &keys, as_of)?;
                let pairs: Vec<Pair> = keys
                    .into_iter()
                    .zip(b.into_iter().zip(g))
                    .map(|(row_key, (blue, green))| Pair {
                        table: table.clone(),
                        row_key,
                        blue,
                        green,
                    })
                    .collect();
                for (pair, verdict) in pairs.iter().zip(judge(&mut checker, &pairs)?) {
                    match verdict {
                        Verdict::Equal => {
                            report.matching += 1;
                            report.settled_on_recheck += 1;
                        }
                        Verdict::Ignore => report.ignored += 1,
                        Verdict::Different(reason) => count(&mut report, pair, &reason, caps),
                    }
                }
            }
        }
    }

    let differing = report.mismatched + report.only_blue + report.only_green;
    let path = ctx.workflow.state_dir.join(format!("compare-{id}.json"));
    ctx.own(std::slice::from_ref(&path))?;
    let _ = std::fs::write(
        &path,
        serde_json::to_vec_pretty(&report).unwrap_or_default(),
    );
    {
        let mut state = ctx.lock_state();
        let st = state.step_mut(id, "compare");
        for (k, v) in [
            ("keys", report.keys),
            ("matching", report.matching),
            ("mismatched", report.mismatched),
            ("only_blue", report.only_blue),
            ("only_green", report.only_green),
            ("ignored", report.ignored),
        ] {
            st.metrics.insert(k.into(), v);
        }
    }
    let summary = format!(
        "{} keys as of {}: {} matching, {} mismatched, {} only in blue, {} only in green, {} ignored",
        report.keys,
        as_of.map_or("latest".to_string(), |v| crate::report::version_time(
            v as i64
        )),
        report.matching,
        report.mismatched,
        report.only_blue,
        report.only_green,
        report.ignored
    );
    // With only a ratio given, the ratio is the gate; otherwise both hold.
    let max = c.max_mismatches.unwrap_or(0);
    let count_exceeded =
        (c.max_mismatches.is_some() || c.max_mismatch_ratio.is_none()) && differing > max;
    let ratio_exceeded = c
        .max_mismatch_ratio
        .is_some_and(|r| report.keys > 0 && differing as f64 / report.keys as f64 > r);
    if count_exceeded || ratio_exceeded {
        let examples: Vec<String> = report
            .examples
            .iter()
            .take(EXAMPLES_IN_ERROR)
            .map(|d| format!("{} `{}` ({:?}): {}", d.table, d.key, d.category, d.reason))
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
    Ok(summary)
}

fn list(tables: &[String]) -> String {
    if tables.is_empty() {
        "none".into()
    } else {
        tables
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The version to compare at.
fn resolve(
    point: &Option<Point>,
    blue: &mut dyn Store,
    green: &mut dyn Store,
) -> Result<Option<u64>, StepError> {
    Ok(match point {
        None | Some(Point::Watermark(_)) => {
            let margin = match point {
                Some(Point::Watermark(m)) => m.as_millis() as i64,
                _ => 0,
            };
            match (blue.watermark()?, green.watermark()?) {
                (Some(b), Some(g)) => Some(b.min(g).saturating_sub(margin).max(0) as u64),
                _ => {
                    tracing::warn!(
                        "`{}` or `{}` records no watermark; comparing the latest state, so lag may show up as differences until the recheck",
                        blue.name(),
                        green.name()
                    );
                    None
                }
            }
        }
        Some(Point::Latest) => None,
        Some(Point::At(v)) => Some((*v).max(0) as u64),
        Some(other) => {
            return Err(StepError::Other(format!(
                "`as_of = \"{other}\"` is not a comparison point"
            )));
        }
    })
}

/// Verdicts for a batch: the check plugin's, or equal values cell by cell.
fn judge(
    checker: &mut Option<Instance<crate::plugin::bindings::check::Check>>,
    pairs: &[Pair],
) -> Result<Vec<Verdict>, StepError> {
    match checker {
        Some(instance) => Ok(instance
            .check(pairs)?
            .into_iter()
            .map(|v| {
                v.unwrap_or_else(|e: types::PluginError| {
                    Verdict::Different(format!("the check refused the key: {}", describe(&e)))
                })
            })
            .collect()),
        None => Ok(pairs.iter().map(builtin_verdict).collect()),
    }
}

/// Equal when both rows hold the same cells with the same values (versions
/// may differ: a copy can legitimately hold a value at another version).
fn builtin_verdict(pair: &Pair) -> Verdict {
    let cells = |r: &Option<Row>| -> Vec<(String, Vec<u8>, Vec<u8>)> {
        r.iter()
            .flat_map(|r| r.cells.iter())
            .map(|c| (c.family.clone(), c.qualifier.clone(), c.value.clone()))
            .collect()
    };
    match (&pair.blue, &pair.green) {
        (Some(_), None) => Verdict::Different("row missing in green".into()),
        (None, Some(_)) => Verdict::Different("row missing in blue".into()),
        _ if cells(&pair.blue) == cells(&pair.green) => Verdict::Equal,
        _ => Verdict::Different("cells differ".into()),
    }
}

/// Counts a difference (the counts are exact) and keeps it as an example
/// while there is room for one.
fn count(report: &mut Report, pair: &Pair, reason: &str, caps: Caps) {
    let category = match (&pair.blue, &pair.green) {
        (Some(_), None) => Category::OnlyBlue,
        (None, Some(_)) => Category::OnlyGreen,
        _ => Category::Mismatched,
    };
    match category {
        Category::Mismatched => report.mismatched += 1,
        Category::OnlyBlue => report.only_blue += 1,
        Category::OnlyGreen => report.only_green += 1,
    }
    if report.examples.len() < caps.examples {
        report.examples.push(Difference {
            table: pair.table.clone(),
            key: crate::text::shown_bytes(&pair.row_key, caps.text),
            category,
            reason: crate::text::one_line(&crate::text::bounded(reason, caps.text)),
        });
    }
}

/// Pages through both sides of one table in key order and pairs them up.
struct MergeJoin<'t> {
    table: &'t str,
    batch: usize,
    as_of: Option<u64>,
    blue: Side,
    green: Side,
}

#[derive(Default)]
struct Side {
    rows: std::collections::VecDeque<Row>,
    after: Option<Vec<u8>>,
    done: bool,
}

impl Side {
    /// Makes sure a row is buffered unless the side is exhausted.
    fn fill(
        &mut self,
        store: &mut dyn Store,
        table: &str,
        batch: usize,
        as_of: Option<u64>,
    ) -> Result<(), StepError> {
        while self.rows.is_empty() && !self.done {
            let range = crate::store::KeyRange {
                after: self.after.clone(),
                before: None,
            };
            let page = store.scan(table, &range, batch, as_of)?;
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
    fn new(table: &'t str, batch: usize, as_of: Option<u64>) -> Self {
        MergeJoin {
            table,
            batch,
            as_of,
            blue: Side::default(),
            green: Side::default(),
        }
    }

    /// Up to `batch` pairs; empty when both sides are exhausted.
    fn next_pairs(
        &mut self,
        blue: &mut dyn Store,
        green: &mut dyn Store,
    ) -> Result<Vec<Pair>, StepError> {
        let mut pairs = Vec::with_capacity(self.batch);
        while pairs.len() < self.batch {
            self.blue.fill(blue, self.table, self.batch, self.as_of)?;
            self.green.fill(green, self.table, self.batch, self.as_of)?;
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
