//! The verdicts: whether a pair of rows is equal, by the check plugin or
//! cell by cell; how a difference is classed; and what a verdict adds to
//! the report, written once for the first pass and the recheck.

use super::report::{Category, Report};
use crate::model::Row;
use crate::plugin::bindings::types;
use crate::plugin::check::{Pair, Verdict};
use crate::plugin::contract::Check;
use crate::plugin::error::describe;
use crate::plugin::instance::Instance;
use crate::steps::StepError;

/// A verdict, counted.
pub enum Tallied {
    /// Equal: counted as matching.
    Matching,
    /// The check said to ignore it: counted as ignored.
    Ignored,
    /// Different, for this reason: not counted yet (a difference may still
    /// settle on the recheck, or be lag).
    Differs(String),
}

/// Counts a matching or ignored key of `table` in `report`; a difference
/// is left to the caller.
pub fn tally(report: &mut Report, table: &str, verdict: Verdict) -> Tallied {
    match verdict {
        Verdict::Equal => {
            report.add(table, 1, |c| &mut c.matching);
            Tallied::Matching
        }
        Verdict::Ignore => {
            report.add(table, 1, |c| &mut c.ignored);
            Tallied::Ignored
        }
        Verdict::Different(reason) => Tallied::Differs(reason),
    }
}

/// Verdicts for a batch: the check plugin's, or equal values cell by cell.
pub fn judge(
    checker: &mut Option<&mut Instance<Check>>,
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
        (Some(_), None) => Verdict::Different("blue has the row, green does not".into()),
        (None, Some(_)) => Verdict::Different("green has the row, blue does not".into()),
        _ if cells(&pair.blue) == cells(&pair.green) => Verdict::Equal,
        _ => Verdict::Different("both have the row; their cells differ".into()),
    }
}

/// Whether `behind` holds everything `ahead` shows and more: `ahead` lacks
/// the row, or each of its cells is in `behind` with the same value while
/// `behind` has more. What a delete that only `ahead` applied leaves.
pub fn holds_more(behind: &Option<Row>, ahead: &Option<Row>) -> bool {
    match (behind, ahead) {
        (Some(_), None) => true,
        (Some(b), Some(a)) => {
            let has = |c: &crate::model::StoredCell| {
                b.cells.iter().any(|x| {
                    x.family == c.family && x.qualifier == c.qualifier && x.value == c.value
                })
            };
            b.cells.len() > a.cells.len() && a.cells.iter().all(has)
        }
        _ => false,
    }
}

/// How a pair differs, by which side has the row.
pub fn category(pair: &Pair) -> Category {
    match (&pair.blue, &pair.green) {
        (Some(_), None) => Category::OnlyBlue,
        (None, Some(_)) => Category::OnlyGreen,
        _ => Category::Mismatched,
    }
}
