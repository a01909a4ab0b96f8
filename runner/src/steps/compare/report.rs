//! What a comparison found: the counts over all and table by table, the
//! first differences as examples with their cells side by side (keys,
//! values and reasons bounded and on one line: they come from stores and
//! plugins), the JSON and Markdown reports written beside the state, and
//! the summary line.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::model::Row;
use crate::plugin::check::Pair;

/// How a key came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// One cell that is not the same on both sides, values shown as text when
/// they are UTF-8 and as `hex:…` otherwise (bounded: they come from
/// stores).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellDifference {
    /// `family:qualifier`.
    pub cell: String,
    /// Blue's value and version, if blue has the cell.
    pub blue: Option<ShownCell>,
    /// Green's value and version, if green has the cell.
    pub green: Option<ShownCell>,
}

/// A cell's value and version as the report shows them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShownCell {
    /// The value, shown.
    pub value: String,
    /// Its version.
    pub version: u64,
}

/// A key that differed, as the report shows it: key and reason bounded
/// and on one line (they come from stores and plugins), and the cells that
/// differ.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Difference {
    /// Its table.
    pub table: String,
    /// Its row key, shown.
    pub key: String,
    /// How it differed.
    pub category: Category,
    /// Which side has what.
    pub reason: String,
    /// Cell by cell, what is not the same (values and versions; a check
    /// plugin may have judged some of these legitimate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<CellDifference>,
}

/// A key written at a version above the compare point, with the highest
/// version each side wrote it at since (none: that side did not).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewerKey {
    /// Its table.
    pub table: String,
    /// Its row key, shown.
    pub key: String,
    /// Blue's highest version above the point.
    pub blue: Option<u64>,
    /// Green's highest version above the point.
    pub green: Option<u64>,
}

/// How many examples the report keeps, and how long each text may be.
#[derive(Clone, Copy)]
pub struct Caps {
    /// Examples kept.
    pub examples: usize,
    /// Longest text of one.
    pub text: usize,
}

/// What a comparison counted, over every table or for one.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Counts {
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
    /// Keys written at versions above the compare point (known for the
    /// keys a replay touched): compared as of the point, their newer
    /// writes left to the next pass.
    #[serde(default)]
    pub newer_than_compare_point: u64,
}

impl Counts {
    /// Adds `other`'s counts to these.
    fn add(&mut self, other: &Counts) {
        for (mine, theirs) in [
            (&mut self.keys, other.keys),
            (&mut self.matching, other.matching),
            (&mut self.ignored, other.ignored),
            (&mut self.mismatched, other.mismatched),
            (&mut self.only_blue, other.only_blue),
            (&mut self.only_green, other.only_green),
            (&mut self.settled_on_recheck, other.settled_on_recheck),
            (
                &mut self.changed_after_compare_point,
                other.changed_after_compare_point,
            ),
            (&mut self.lagging, other.lagging),
            (
                &mut self.newer_than_compare_point,
                other.newer_than_compare_point,
            ),
        ] {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// Keys that truly differ (what the gate counts).
    pub fn differing(&self) -> u64 {
        self.mismatched + self.only_blue + self.only_green
    }
}

/// The report written to `compare-ID.json` (and as Markdown beside it).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Which keys were compared: `full` (every key) or `touched` (the keys
    /// a replay wrote since the last pass).
    #[serde(default)]
    pub mode: String,
    /// The compare point (after the recheck, the recheck's).
    pub as_of: Option<u64>,
    /// Over every table.
    #[serde(flatten)]
    pub total: Counts,
    /// Keys whose rows were read and judged pair by pair (in a `hashed`
    /// compare, those of the ranges whose digests differed; else every key).
    #[serde(default)]
    pub paired: u64,
    /// Table by table.
    pub tables: BTreeMap<String, Counts>,
    /// The first differences found, at most `examples` of them.
    pub examples: Vec<Difference>,
    /// The first lagging keys, at most `examples` of them.
    pub lagging_examples: Vec<Difference>,
    /// The first keys written above the compare point, at most `examples`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub newer_examples: Vec<NewerKey>,
    /// The sample, in a `sampled` compare: its size and what it shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<super::sampled::SampleFinding>,
    /// Every differing key, when asked for (`list_differences`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differences_file: Option<String>,
    /// Keys compared in each key range, when a `full` compare was split to
    /// run in parallel (`parallel`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<u64>,
}

impl Report {
    /// Keys that truly differ (what the gate counts).
    pub fn differing(&self) -> u64 {
        self.total.differing()
    }

    /// Adds the report of another key range of the same compare: counts
    /// summed, examples kept in table and key order up to `examples`.
    pub fn merge(&mut self, other: Report, tables: &[String], examples: usize) {
        self.ranges.push(other.total.keys);
        self.paired += other.paired;
        self.as_of = self.as_of.max(other.as_of);
        self.total.add(&other.total);
        for (table, counts) in &other.tables {
            self.tables.entry(table.clone()).or_default().add(counts);
        }
        // Examples in table order, then in the order their keys show.
        let place = |t: &str| tables.iter().position(|n| n == t);
        for (mine, theirs) in [
            (&mut self.examples, other.examples),
            (&mut self.lagging_examples, other.lagging_examples),
        ] {
            mine.extend(theirs);
            mine.sort_by_cached_key(|d| (place(&d.table), d.key.clone()));
            mine.truncate(examples);
        }
        self.newer_examples.extend(other.newer_examples);
        self.newer_examples
            .sort_by_cached_key(|n| (place(&n.table), n.key.clone()));
        self.newer_examples.truncate(examples);
    }

    /// Adds to one count of `table` and of the total.
    pub fn add(&mut self, table: &str, n: u64, count: fn(&mut Counts) -> &mut u64) {
        for c in [
            count(&mut self.total),
            count(self.tables.entry(table.to_string()).or_default()),
        ] {
            *c = c.saturating_add(n);
        }
    }
}

/// The step's summary line.
pub fn summary(report: &Report) -> String {
    let t = &report.total;
    let mut line = format!(
        "{} keys as of {}: {} matching, {} mismatched, {} only in blue, {} only in green, {} ignored",
        t.keys,
        point(report.as_of),
        t.matching,
        t.mismatched,
        t.only_blue,
        t.only_green,
        t.ignored
    );
    if t.changed_after_compare_point > 0 {
        line.push_str(&format!(
            ", {} changed after the compare point",
            t.changed_after_compare_point
        ));
    }
    if t.lagging > 0 {
        line.push_str(&format!(", {} lagging (not judged)", t.lagging));
    }
    if t.newer_than_compare_point > 0 {
        line.push_str(&format!(
            ", {} written after the compare point",
            t.newer_than_compare_point
        ));
    }
    line
}

fn point(as_of: Option<u64>) -> String {
    as_of.map_or("latest".to_string(), |v| {
        crate::report::version_time(v as i64)
    })
}

/// Counts a difference (the counts are exact) and keeps it as an example
/// while there is room for one.
pub fn count(report: &mut Report, pair: &Pair, reason: &str, caps: Caps) {
    let category = super::verdicts::category(pair);
    report.add(
        &pair.table,
        1,
        match category {
            Category::Mismatched => |c| &mut c.mismatched,
            Category::OnlyBlue => |c| &mut c.only_blue,
            Category::OnlyGreen => |c| &mut c.only_green,
            Category::Lagging => |c| &mut c.lagging,
        },
    );
    if report.examples.len() < caps.examples {
        let example = difference(pair, category, reason, caps);
        report.examples.push(example);
    }
}

/// A pair as an example of `category`.
pub fn difference(pair: &Pair, category: Category, reason: &str, caps: Caps) -> Difference {
    Difference {
        table: pair.table.clone(),
        key: shown(&pair.row_key, caps.text),
        category,
        reason: crate::text::one_line(&crate::text::bounded(reason, caps.text)),
        cells: cell_differences(&pair.blue, &pair.green, caps.text),
    }
}

/// The cells that are not the same on both sides, in order.
fn cell_differences(blue: &Option<Row>, green: &Option<Row>, limit: usize) -> Vec<CellDifference> {
    let cells = |row: &Option<Row>| -> BTreeMap<(String, Vec<u8>), ShownCell> {
        row.iter()
            .flat_map(|r| r.cells.iter())
            .map(|c| {
                (
                    (c.family.clone(), c.qualifier.clone()),
                    ShownCell {
                        value: shown(&c.value, limit),
                        version: c.version,
                    },
                )
            })
            .collect()
    };
    let (mut b, mut g) = (cells(blue), cells(green));
    let names: std::collections::BTreeSet<(String, Vec<u8>)> =
        b.keys().chain(g.keys()).cloned().collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (bv, gv) = (b.remove(&name), g.remove(&name));
            let same = matches!((&bv, &gv), (Some(x), Some(y)) if x.value == y.value);
            (!same).then(|| CellDifference {
                cell: format!("{}:{}", name.0, shown(&name.1, limit)),
                blue: bv,
                green: gv,
            })
        })
        .collect()
}

/// Bytes from a store as report text, in the form `runner rows --key`
/// takes back (as they are, or `hex:…`); bounded (a cut one ends `…`).
fn shown(bytes: &[u8], limit: usize) -> String {
    crate::text::bounded(&crate::text::text_or_hex(bytes), limit)
}

/// The report as Markdown, for people: the counts table by table, then the
/// examples cell by cell.
pub fn markdown(report: &Report, id: &str, blue: &str, green: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Compare `{id}`: `{blue}` (blue) and `{green}` (green)\n"
    );
    let _ = writeln!(
        out,
        "As of {}; {}.\n",
        point(report.as_of),
        match report.mode.as_str() {
            "touched" => "the keys the replay wrote since the last pass",
            "sampled" => "a random sample of keys",
            "hashed" => "every key, by digests of key ranges",
            _ => "every key",
        }
    );
    let _ = writeln!(
        out,
        "| table | keys | matching | mismatched | only in blue | only in green | ignored | changed after the compare point | lagging | newer than the compare point |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let row = |out: &mut String, name: &str, c: &Counts| {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.keys,
            c.matching,
            c.mismatched,
            c.only_blue,
            c.only_green,
            c.ignored,
            c.changed_after_compare_point,
            c.lagging,
            c.newer_than_compare_point
        );
    };
    for (table, counts) in &report.tables {
        row(&mut out, &format!("`{}`", cell_text(table)), counts);
    }
    row(&mut out, "**all**", &report.total);
    for (title, examples) in [
        ("Differences", &report.examples),
        ("Lagging (not judged)", &report.lagging_examples),
    ] {
        if examples.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n## {title} (the first {})\n", examples.len());
        for d in examples {
            let _ = writeln!(
                out,
                "### `{}` `{}`: {}\n\n{}\n",
                code_text(&d.table),
                code_text(&d.key),
                d.category.words(),
                d.reason
            );
            if d.cells.is_empty() {
                continue;
            }
            let _ = writeln!(out, "| cell | blue | green |\n|---|---|---|");
            let side = |c: &Option<ShownCell>| {
                c.as_ref().map_or("—".to_string(), |c| {
                    format!("`{}` @{}", cell_text(&c.value), c.version)
                })
            };
            for c in &d.cells {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    cell_text(&c.cell),
                    side(&c.blue),
                    side(&c.green)
                );
            }
            out.push('\n');
        }
    }
    if !report.newer_examples.is_empty() {
        let _ = writeln!(
            out,
            "\n## Written after the compare point (the first {}; judged by a later pass)\n\n| table | key | blue | green |\n|---|---|---|---|",
            report.newer_examples.len()
        );
        let at = |v: Option<u64>| v.map_or("—".to_string(), |v| point(Some(v)));
        for n in &report.newer_examples {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {} |",
                cell_text(&n.table),
                cell_text(&n.key),
                at(n.blue),
                at(n.green)
            );
        }
    }
    if let Some(sample) = &report.sample {
        let _ = writeln!(out, "\n## The sample\n\n{}", sample.words);
    }
    if let Some(file) = &report.differences_file {
        let _ = writeln!(out, "\nEvery differing key: `{}`", code_text(file));
    }
    out
}

/// Text safe inside a Markdown code span outside a table.
fn code_text(text: &str) -> String {
    crate::text::one_line(text).replace('`', "'")
}

/// Text safe inside a Markdown table cell and code span.
fn cell_text(text: &str) -> String {
    crate::text::one_line(text)
        .replace('|', "\\|")
        .replace('`', "'")
}
