//! Compares a blue message row with its green row.
//!
//! Versions are not compared (a restored store may hold the same value at
//! another version), and neither is any cell named in the `ignore` setting
//! (comma-separated `family:qualifier`, default `m:writer`): the updater that
//! wrote a row legitimately differs between the old and the new store.

use switchyard_sdk::{Config, Pair, PluginError, Row, StoredCell, Verdict};

/// Equal when both rows hold the same values outside the ignored cells.
#[switchyard_sdk::check]
pub fn compare_rows(pair: &Pair, config: &Config) -> Result<Verdict, PluginError> {
    let ignored = ignored_cells(config);
    let visible = |row: &Option<Row>| -> Vec<StoredCell> {
        row.iter()
            .flat_map(|r| r.cells.iter())
            .filter(|c| {
                !ignored
                    .iter()
                    .any(|(f, q)| c.family == *f && c.qualifier == q.as_bytes())
            })
            .cloned()
            .collect()
    };
    let (blue, green) = (visible(&pair.blue), visible(&pair.green));
    if blue.is_empty() && green.is_empty() {
        return Ok(Verdict::Equal);
    }
    if blue.is_empty() || green.is_empty() {
        let (has, lacks) = if blue.is_empty() {
            ("green", "blue")
        } else {
            ("blue", "green")
        };
        return Ok(Verdict::Different(format!(
            "{has} has the row, {lacks} does not"
        )));
    }
    for b in &blue {
        match green
            .iter()
            .find(|g| g.family == b.family && g.qualifier == b.qualifier)
        {
            None => {
                return Ok(Verdict::Different(format!(
                    "blue has `{}`, green does not",
                    name(b)
                )));
            }
            Some(g) if g.value != b.value => {
                return Ok(Verdict::Different(format!(
                    "`{}` differs between blue and green",
                    name(b)
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = green.iter().find(|g| {
        !blue
            .iter()
            .any(|b| b.family == g.family && b.qualifier == g.qualifier)
    }) {
        return Ok(Verdict::Different(format!(
            "green has `{}`, blue does not",
            name(extra)
        )));
    }
    Ok(Verdict::Equal)
}

fn ignored_cells(config: &Config) -> Vec<(String, String)> {
    config
        .get_or("ignore", "m:writer")
        .split(',')
        .filter_map(|c| c.trim().split_once(':'))
        .map(|(f, q)| (f.to_string(), q.to_string()))
        .collect()
}

fn name(c: &StoredCell) -> String {
    format!("{}:{}", c.family, String::from_utf8_lossy(&c.qualifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[(&str, &str, &str, u64)]) -> Option<Row> {
        Some(Row {
            row_key: b"k".to_vec(),
            cells: cells
                .iter()
                .map(|(f, q, v, ver)| StoredCell {
                    family: f.to_string(),
                    qualifier: q.as_bytes().to_vec(),
                    value: v.as_bytes().to_vec(),
                    version: *ver,
                })
                .collect(),
        })
    }

    fn pair(blue: Option<Row>, green: Option<Row>) -> Pair {
        Pair {
            table: "messages".into(),
            row_key: b"k".to_vec(),
            blue,
            green,
        }
    }

    #[test]
    fn the_writer_and_versions_may_differ() {
        let p = pair(
            row(&[("d", "text", "hi", 1), ("m", "writer", "rmu", 1)]),
            row(&[("d", "text", "hi", 7), ("m", "writer", "rmu2", 7)]),
        );
        assert_eq!(
            compare_rows(&p, &Config::default()).unwrap(),
            Verdict::Equal
        );
    }

    #[test]
    fn a_different_text_is_reported() {
        let p = pair(
            row(&[("d", "text", "hi", 1)]),
            row(&[("d", "text", "ho", 1)]),
        );
        assert_eq!(
            compare_rows(&p, &Config::default()).unwrap(),
            Verdict::Different("`d:text` differs between blue and green".into())
        );
    }

    #[test]
    fn a_missing_row_is_reported_with_its_side() {
        let p = pair(row(&[("d", "text", "hi", 1)]), None);
        assert_eq!(
            compare_rows(&p, &Config::default()).unwrap(),
            Verdict::Different("blue has the row, green does not".into())
        );
    }

    #[test]
    fn ignored_cells_are_configurable() {
        let p = pair(row(&[("d", "text", "a", 1)]), row(&[("d", "text", "b", 1)]));
        let config = Config::from_pairs([("ignore", "d:text")]);
        assert_eq!(compare_rows(&p, &config).unwrap(), Verdict::Equal);
    }
}
