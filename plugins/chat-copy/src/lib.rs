//! The chat read model's initial migration program: maps a `messages`
//! row of the old store to the new store's row, for the `copy` step.
//!
//! Every `d` cell is kept with its own version (one mutation per version,
//! so the log replayed after the copy overlaps idempotently, cell by
//! cell); who wrote the row (`m:writer`) becomes the `writer` setting
//! (default `copy`), at the version the old store had it; the table
//! becomes the `table` setting (default the same name). Other tables are
//! refused: this program knows only messages.

use std::collections::BTreeMap;

use switchyard_sdk::{Cell, Config, PluginError, RowMutation, SourceRow};

/// The new store's rows for one old row.
#[switchyard_sdk::row_map]
pub fn to_new_rows(source: &SourceRow, config: &Config) -> Result<Vec<RowMutation>, PluginError> {
    if source.table != "messages" {
        return Err(PluginError::Unsupported(format!(
            "table `{}`: only `messages` rows are mapped",
            source.table
        )));
    }
    let table = config.get_or("table", "messages");
    let writer = config.get_or("writer", "copy");
    let mut by_version: BTreeMap<u64, RowMutation> = BTreeMap::new();
    for c in &source.row.cells {
        let cell = match (c.family.as_str(), c.qualifier.as_slice()) {
            ("d", _) => Cell::put("d", &c.qualifier, &c.value),
            ("m", b"writer") => Cell::put("m", "writer", writer),
            // Anything else the old store held is the old updater's own.
            _ => continue,
        };
        by_version
            .entry(c.version)
            .or_insert_with(|| RowMutation::new(table, source.row.row_key.clone(), c.version))
            .cells
            .push(cell);
    }
    Ok(by_version.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::{Row, StoredCell};

    fn cell(f: &str, q: &str, v: &str, version: u64) -> StoredCell {
        StoredCell {
            family: f.into(),
            qualifier: q.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
            version,
        }
    }

    #[test]
    fn cells_keep_their_versions_and_the_writer_is_the_copy() {
        let source = SourceRow {
            table: "messages".into(),
            row: Row {
                row_key: b"room-1/0001".to_vec(),
                cells: vec![
                    cell("d", "room", "room-1", 5),
                    cell("d", "text", "edited", 9),
                    cell("m", "writer", "rmu", 9),
                    cell("x", "old", "junk", 5),
                ],
            },
        };
        let rows = to_new_rows(&source, &Config::from_pairs([("table", "chat")])).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].version, rows[0].cells.len()), (5, 1));
        assert_eq!(rows[1].version, 9);
        assert!(rows[1].cells.contains(&Cell::put("m", "writer", "copy")));
        assert!(rows.iter().all(|r| r.table == "chat"));
        let other = SourceRow {
            table: "rooms".into(),
            ..source
        };
        assert!(to_new_rows(&other, &Config::default()).is_err());
    }
}
