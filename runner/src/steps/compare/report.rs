//! What a comparison found: the counts, the first differences as examples
//! (keys and reasons bounded and on one line: they come from stores and
//! plugins), the JSON report written beside the state, and the summary
//! line.

use serde::Serialize;

use crate::plugin::check::Pair;

/// How a key came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Both sides have the row; it differs.
    Mismatched,
    /// Only blue has the row.
    OnlyBlue,
    /// Only green has the row.
    OnlyGreen,
    /// It differed, and the side behind never reached where the other was.
    Lagging,
}

impl Category {
    pub fn words(self) -> &'static str {
        match self {
            Category::Mismatched => "differs",
            Category::OnlyBlue => "only in blue",
            Category::OnlyGreen => "only in green",
            Category::Lagging => "lagging",
        }
    }
}

/// A key that differed, as the report shows it: key and reason bounded
/// and on one line (they come from stores and plugins).
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// Its table.
    pub table: String,
    /// Its row key, shown.
    pub key: String,
    /// How it differed.
    pub category: Category,
    /// Which side has what.
    pub reason: String,
}

/// How many examples the report keeps, and how long each text may be.
#[derive(Clone, Copy)]
pub struct Caps {
    /// Examples kept.
    pub examples: usize,
    /// Longest text of one.
    pub text: usize,
}

/// The report written to `compare-ID.json`.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The compare point (after the recheck, the recheck's).
    pub as_of: Option<u64>,
    /// Keys seen.
    pub keys: u64,
    /// Keys equal (at once or on the recheck).
    pub matching: u64,
    /// Keys the check plugin said to ignore.
    pub ignored: u64,
    /// Keys both sides have, with different rows.
    pub mismatched: u64,
    /// Keys only blue has.
    pub only_blue: u64,
    /// Keys only green has.
    pub only_green: u64,
    /// Keys that differed at first and agreed on the recheck.
    pub settled_on_recheck: u64,
    /// Keys one side had at the compare point and both had deleted by the
    /// recheck: a delete after the compare point, applied by one side
    /// before the other.
    pub changed_after_compare_point: u64,
    /// Keys where the side still behind where the other stood holds a
    /// row or cells the other no longer shows (a delete it may not have
    /// applied yet): not judged.
    pub lagging: u64,
    /// The first differences found, at most `examples` of them.
    pub examples: Vec<Difference>,
    /// The first lagging keys, at most `examples` of them.
    pub lagging_examples: Vec<Difference>,
}

impl Report {
    /// Keys that truly differ (what the gate counts).
    pub fn differing(&self) -> u64 {
        self.mismatched + self.only_blue + self.only_green
    }
}

/// The step's summary line.
pub fn summary(report: &Report) -> String {
    let mut line = format!(
        "{} keys as of {}: {} matching, {} mismatched, {} only in blue, {} only in green, {} ignored",
        report.keys,
        report
            .as_of
            .map_or("latest".to_string(), |v| crate::report::version_time(
                v as i64
            )),
        report.matching,
        report.mismatched,
        report.only_blue,
        report.only_green,
        report.ignored
    );
    if report.changed_after_compare_point > 0 {
        line.push_str(&format!(
            ", {} changed after the compare point",
            report.changed_after_compare_point
        ));
    }
    if report.lagging > 0 {
        line.push_str(&format!(", {} lagging (not judged)", report.lagging));
    }
    line
}

/// Counts a difference (the counts are exact) and keeps it as an example
/// while there is room for one.
pub fn count(report: &mut Report, pair: &Pair, reason: &str, caps: Caps) {
    let category = super::verdicts::category(pair);
    match category {
        Category::Mismatched => report.mismatched += 1,
        Category::OnlyBlue => report.only_blue += 1,
        Category::OnlyGreen => report.only_green += 1,
        Category::Lagging => report.lagging += 1,
    }
    keep(report, pair, category, reason, caps);
}

/// Keeps an example while there is room for one.
pub fn keep(report: &mut Report, pair: &Pair, category: Category, reason: &str, caps: Caps) {
    if report.examples.len() < caps.examples {
        report.examples.push(Difference {
            table: pair.table.clone(),
            key: crate::text::shown_bytes(&pair.row_key, caps.text),
            category,
            reason: crate::text::one_line(&crate::text::bounded(reason, caps.text)),
        });
    }
}
