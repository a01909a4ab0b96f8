//! `runner rows` reads every kind of store the same way: the same
//! mutations written to SQLite, HBase (the emulator, over Thrift) and
//! PostgreSQL print the same rows, visible cells only, versions shown, as
//! of any version, by key or key range; and each finds the same keys
//! written after a version (what a compare counts as newer than its
//! point).

use std::process::Command;

use switchyard_runner::model::{Cell, RowMutation};
use switchyard_runner::store::KeyRange;
use switchyard_runner::workflow::{self, LoadOptions};
use switchyard_tests::cli::runner_bin;
use switchyard_tests::hbase::HbaseEmulator;
use switchyard_tests::postgres::TestDatabase;

fn put(key: &[u8], version: u64, qualifier: &str, value: &[u8]) -> RowMutation {
    RowMutation {
        table: "messages".into(),
        row_key: key.to_vec().into(),
        version,
        cells: vec![Cell::put(
            "d",
            qualifier.as_bytes().to_vec(),
            value.to_vec(),
        )],
    }
}

fn mutations() -> Vec<RowMutation> {
    let mut deleted = put(b"b", 4, "text", b"");
    deleted.cells = vec![Cell::DeleteRow];
    vec![
        put(b"a", 1, "text", b"one"),
        put(b"a", 3, "text", b"two"),
        put(b"a", 3, "writer", b"rmu"),
        put(b"b", 2, "text", b"gone"),
        deleted,
        put(b"c", 5, "text", b"kept"),
        put(b"d", 9, "text", b"later"),
        put(&[0xff, 0x00], 2, "text", &[0x00, 0x01]),
    ]
}

fn rows(file: &std::path::Path, store: &str, args: &[&str]) -> String {
    let out = Command::new(runner_bin())
        .args(["rows", file.to_str().unwrap(), store, "messages"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{store} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_store_kind_prints_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let hbase = HbaseEmulator::start();
    let db = TestDatabase::new();
    let file = dir.path().join("w.toml");
    std::fs::write(
        &file,
        format!(
            r#"[workflow]
name = "look"

[store.lite]
kind = "sqlite"
path = "lite.sqlite"
tables = ["messages"]

[store.hbase]
kind = "hbase"
thrift = "{thrift}"
tables = {{ messages = ["d", "m"] }}

[store.pg]
kind = "postgres"
url = "{url}"
schema = "look"
tables = ["messages"]
"#,
            thrift = hbase.addr(),
            url = db.url()
        ),
    )
    .unwrap();
    let w = workflow::load(&file, &LoadOptions::default()).unwrap();
    for store in ["lite", "hbase", "pg"] {
        w.open_store(store)
            .unwrap()
            .apply(&mutations(), Some(10))
            .unwrap();
    }

    let latest = rows(&file, "lite", &[]);
    assert_eq!(
        latest,
        "messages  a
  d:text    @3 (1970-01-01T00:00:00Z)  two
  d:writer  @3 (1970-01-01T00:00:00Z)  rmu
messages  c
  d:text  @5 (1970-01-01T00:00:00Z)  kept
messages  d
  d:text  @9 (1970-01-01T00:00:00Z)  later
messages  hex:ff00
  d:text  @2 (1970-01-01T00:00:00Z)  hex:0001
"
    );
    let older = rows(&file, "lite", &["--as-of", "2"]);
    assert!(
        older.contains("d:text  @1 (1970-01-01T00:00:00Z)  one"),
        "{older}"
    );
    assert!(
        older.contains("d:text  @2 (1970-01-01T00:00:00Z)  gone"),
        "{older}"
    );
    let by_key = rows(
        &file,
        "lite",
        &["--key", "hex:ff00", "--key", "a", "--json"],
    );
    assert!(by_key.contains(r#""key_hex":"ff00""#), "{by_key}");
    let range = rows(&file, "lite", &["--from", "b", "--to", "d"]);
    assert!(
        range.starts_with("messages  c\n") && !range.contains("messages  d"),
        "{range}"
    );

    // HBase's own rule: a delete hides the versions below it even from a
    // read as of an earlier version; the other kinds show the row as it was.
    let hbase_older = rows(&file, "hbase", &["--as-of", "2"]);
    assert_eq!(rows(&file, "pg", &["--as-of", "2"]), older);
    assert_eq!(
        hbase_older,
        older.replace(
            "messages  b\n  d:text  @2 (1970-01-01T00:00:00Z)  gone\n",
            ""
        )
    );
    for store in ["hbase", "pg"] {
        for args in [
            &[][..],
            &["--as-of", "2", "--key", "a"],
            &["--key", "hex:ff00", "--key", "a", "--json"],
            &["--from", "b", "--to", "d"],
            &["--limit", "1"],
        ] {
            assert_eq!(
                rows(&file, store, args),
                rows(&file, "lite", args),
                "{store} {args:?}"
            );
        }
    }

    // What a compare as of version 2 counts as written after it: the same
    // keys on every kind, a delete included where the store keeps it in a
    // row (HBase shows none), paged in key order.
    for (store, expected) in [
        ("lite", vec![("a", 3), ("b", 4), ("c", 5), ("d", 9)]),
        ("pg", vec![("a", 3), ("b", 4), ("c", 5), ("d", 9)]),
        ("hbase", vec![("a", 3), ("c", 5), ("d", 9)]),
    ] {
        let mut s = w.open_store(store).unwrap();
        let mut found = Vec::new();
        let mut range = KeyRange::default();
        loop {
            let page = s.newer("messages", &range, 2, 2).unwrap();
            found.extend(page.keys);
            match page.next_after {
                Some(after) => range.after = Some(after),
                None => break,
            }
        }
        let expected: Vec<(Vec<u8>, u64)> = expected
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect();
        assert_eq!(found, expected, "{store}");
    }
}
