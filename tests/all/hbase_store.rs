//! The runner's `hbase` store against the HBase Thrift1 emulator: tables
//! and families, writes and reads with versions, idempotence, errors,
//! the watermark, retries while HBase is unreachable, and the generic
//! `restore` step between two HBase stores.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hbase_thrift::hbase::{ColumnDescriptor, THbaseSyncClient};
use switchyard_runner::document::values::Period;
use switchyard_runner::model::{Cell, Row, RowMutation};
use switchyard_runner::store::hbase::HbaseConfig;
use switchyard_runner::store::hbase::HbaseStore;
use switchyard_runner::store::sqlite::SqliteStore;
use switchyard_runner::store::sqlite::SqliteSync;
use switchyard_runner::store::{KeyRange, Store};
use switchyard_tests::cli::Test;
use switchyard_tests::hbase::HbaseEmulator;

fn config(hbase: &HbaseEmulator, tables: &[(&str, &[&str])]) -> HbaseConfig {
    HbaseConfig {
        thrift: hbase.addr(),
        tables: tables
            .iter()
            .map(|(t, fs)| (t.to_string(), fs.iter().map(|f| f.to_string()).collect()))
            .collect(),
        max_versions: None,
        pool: None,
        timeout: None,
        retry_for: None,
        batch_rows: None,
        fed_by: None,
    }
}

fn open(hbase: &HbaseEmulator) -> HbaseStore {
    HbaseStore::open("h", &config(hbase, &[("messages", &["d", "m"])])).unwrap()
}

fn put(key: &str, version: u64, cells: &[(&str, &str, &str)]) -> RowMutation {
    RowMutation {
        table: "messages".into(),
        row_key: key.as_bytes().to_vec().into(),
        version,
        cells: cells
            .iter()
            .map(|(f, q, v)| Cell::put(f, q.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
    }
}

fn deleting(key: &str, version: u64, cells: Vec<Cell>) -> RowMutation {
    RowMutation {
        table: "messages".into(),
        row_key: key.as_bytes().to_vec().into(),
        version,
        cells,
    }
}

/// Every visible row of `messages`, page by page.
fn scan_all(store: &mut dyn Store, page: usize, as_of: Option<u64>) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut range = KeyRange::default();
    loop {
        let p = store.scan("messages", &range, page, as_of).unwrap();
        rows.extend(p.rows);
        match p.next_after {
            Some(after) => range.after = Some(after),
            None => return rows,
        }
    }
}

fn text(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .cells
                .iter()
                .map(|c| {
                    format!(
                        "{}:{}={}@{}",
                        c.family,
                        String::from_utf8_lossy(&c.qualifier),
                        String::from_utf8_lossy(&c.value),
                        c.version
                    )
                })
                .collect();
            format!(
                "{} {}",
                String::from_utf8_lossy(&r.row_key),
                cells.join(" ")
            )
        })
        .collect()
}

/// A batch with versions, several families and every kind of delete.
fn chat_batch() -> Vec<RowMutation> {
    vec![
        put("a", 1, &[("d", "text", "one"), ("m", "writer", "rmu")]),
        put("a", 5, &[("d", "text", "five")]),
        put("b", 2, &[("d", "text", "two"), ("d", "user", "u")]),
        deleting(
            "b",
            3,
            vec![Cell::DeleteCell {
                family: "d".into(),
                qualifier: b"user"[..].into(),
            }],
        ),
        put("c", 2, &[("d", "text", "gone"), ("m", "writer", "rmu")]),
        deleting("c", 4, vec![Cell::DeleteFamily { family: "m".into() }]),
        put("d", 1, &[("d", "text", "deleted later")]),
        deleting("d", 6, vec![Cell::DeleteRow]),
    ]
}

#[test]
fn opening_creates_missing_tables_and_refuses_missing_families() {
    let hbase = HbaseEmulator::start();
    let mut store = open(&hbase);
    assert_eq!(store.tables().unwrap(), vec!["messages".to_string()]);
    let families = hbase
        .client()
        .get_column_descriptors(b"messages".to_vec())
        .unwrap();
    let versions: Vec<(String, i32)> = families
        .into_iter()
        .map(|(k, d)| (String::from_utf8(k).unwrap(), d.max_versions.unwrap()))
        .collect();
    assert_eq!(
        versions,
        [("d:".to_string(), 1000), ("m:".to_string(), 1000)]
    );
    // Opening again finds the table; a family it lacks is an error.
    open(&hbase);
    let err = HbaseStore::open("h", &config(&hbase, &[("messages", &["d", "m", "extra"])]))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "store `h`: table `messages` has no column family `extra` (it has `d`, `m`); add it in HBase (`alter 'messages', 'extra'`) or remove it from `tables`"
    );
}

#[test]
fn writes_read_back_as_the_sqlite_store_reads_them_with_versions_and_as_of() {
    let hbase = HbaseEmulator::start();
    let mut store = open(&hbase);
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite =
        SqliteStore::open("s", &dir.path().join("s.sqlite"), SqliteSync::Normal).unwrap();
    let batch = chat_batch();
    store.apply(&batch, Some(6)).unwrap();
    sqlite.apply(&batch, Some(6)).unwrap();

    let latest = scan_all(&mut store, 2, None);
    assert_eq!(
        text(&latest),
        [
            "a d:text=five@5 m:writer=rmu@1",
            "b d:text=two@2",
            "c d:text=gone@2",
        ]
    );
    assert_eq!(
        latest,
        scan_all(&mut sqlite, 2, None),
        "same rows as SQLite"
    );
    // As of 4 (inclusive): `a` as it was at 1; `d` was deleted at 6, and
    // HBase's newer marker masks it even as of 4 (SQLite still shows it).
    let as_of = scan_all(&mut store, 10, Some(4));
    assert_eq!(
        text(&as_of),
        [
            "a d:text=one@1 m:writer=rmu@1",
            "b d:text=two@2",
            "c d:text=gone@2",
        ]
    );
    let sqlite_as_of = scan_all(&mut sqlite, 10, Some(4));
    assert_eq!(
        text(&sqlite_as_of).last().unwrap(),
        "d d:text=deleted later@1"
    );
    assert_eq!(as_of[..], sqlite_as_of[..3]);
    // `as_of` is inclusive: as of 5 sees the put at 5.
    let got = store
        .get(
            "messages",
            &[b"a".to_vec(), b"zz".to_vec(), b"a".to_vec()],
            Some(5),
        )
        .unwrap();
    assert_eq!(got[0].as_ref().unwrap().cells[0].value, b"five");
    assert!(got[1].is_none());
    assert_eq!(got[2], got[0]);
    assert_eq!(
        store.get("messages", &[b"a".to_vec()], Some(4)).unwrap(),
        sqlite.get("messages", &[b"a".to_vec()], Some(4)).unwrap()
    );
    // Key ranges exclude both ends.
    let middle = KeyRange {
        after: Some(b"a".to_vec()),
        before: Some(b"c".to_vec()),
    };
    let page = store.scan("messages", &middle, 10, None).unwrap();
    assert_eq!(text(&page.rows), ["b d:text=two@2"]);
    assert_eq!(page.next_after, None);
    // A table the store does not have reads as empty.
    assert!(
        store
            .scan("nosuch", &KeyRange::default(), 10, None)
            .unwrap()
            .rows
            .is_empty()
    );
    assert_eq!(
        store.get("nosuch", &[b"a".to_vec()], None).unwrap(),
        vec![None]
    );
}

#[test]
fn applying_again_or_in_another_order_leaves_the_same_cells() {
    let once = HbaseEmulator::start();
    open(&once).apply(&chat_batch(), None).unwrap();
    let twice = HbaseEmulator::start();
    let mut store = open(&twice);
    store.apply(&chat_batch(), None).unwrap();
    store.apply(&chat_batch(), None).unwrap();
    let reversed = HbaseEmulator::start();
    let mut store = open(&reversed);
    let mut batch = chat_batch();
    batch.reverse();
    for m in batch {
        store.apply(&[m], None).unwrap();
    }
    let dump = once.dump("messages");
    assert!(
        dump.contains("messages\td\td:\t6\tdelete-family\n"),
        "{dump}"
    );
    assert_eq!(twice.dump("messages"), dump);
    assert_eq!(reversed.dump("messages"), dump);
}

#[test]
fn a_table_keeping_one_version_is_refused_at_open_and_by_the_preflight() {
    let hbase = HbaseEmulator::start();
    let mut c = hbase.client();
    let family = |name: &str, versions: i32| ColumnDescriptor {
        name: Some(format!("{name}:").into_bytes()),
        max_versions: Some(versions),
        compression: Some("NONE".into()),
        bloom_filter_type: Some("NONE".into()),
        ..ColumnDescriptor::default()
    };
    c.create_table(
        b"messages".to_vec(),
        vec![family("d", 1000), family("m", 1)],
    )
    .unwrap();
    let cfg = config(&hbase, &[("messages", &["d", "m"])]);
    let expected = "store `h`: family `m` of table `messages` keeps 1 version, too few for reads as of a time (restore, compare): keep more in HBase (`alter 'messages', {NAME => 'm', VERSIONS => 1000}`)";
    let err = HbaseStore::open("h", &cfg).err().unwrap();
    assert_eq!(err.to_string(), expected);
    assert_eq!(
        HbaseStore::probe("h", &cfg).unwrap_err().to_string(),
        expected
    );
    // The preflight writes nothing: a missing table is only announced.
    let other = HbaseEmulator::start();
    let probe = HbaseStore::probe("g", &config(&other, &[("messages", &["d"])])).unwrap();
    assert!(probe.ends_with("; will create `messages`"), "{probe}");
    assert!(other.table_names().is_empty());
}

#[test]
fn a_missing_family_or_table_fails_at_once_naming_store_table_and_family() {
    let hbase = HbaseEmulator::start();
    let mut store = open(&hbase);
    let err = store
        .apply(&[put("a", 1, &[("x", "q", "v")])], None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "store `h`: table `messages` has no column family `x` (it has `d`, `m`); row \"a\" at version 1"
    );
    let mut other = put("a", 1, &[("d", "q", "v")]);
    other.table = "other".into();
    let err = store.apply(&[other], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "store `h`: table `other` is not among the store's `tables` (`messages`); list it there"
    );
    // The table changes behind the store's back: HBase's own error comes
    // back at once, although it says canRetry (RetriesExhaustedWithDetails).
    let mut c = hbase.client();
    let mut recreate = |families: &[&str]| {
        c.disable_table(b"messages".to_vec()).unwrap();
        c.delete_table(b"messages".to_vec()).unwrap();
        let families = families
            .iter()
            .map(|name| ColumnDescriptor {
                name: Some(format!("{name}:").into_bytes()),
                max_versions: Some(3),
                compression: Some("NONE".into()),
                bloom_filter_type: Some("NONE".into()),
                ..ColumnDescriptor::default()
            })
            .collect();
        c.create_table(b"messages".to_vec(), families).unwrap();
    };
    recreate(&["d"]);
    let started = Instant::now();
    let err = store
        .apply(&[put("a", 1, &[("m", "writer", "v")])], None)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("store `h`: cannot write 1 row(s) of table `messages`: org.apache.hadoop.hbase.client.RetriesExhaustedWithDetailsException: Failed 1 action: org.apache.hadoop.hbase.regionserver.NoSuchColumnFamilyException: Column family m does not exist"),
        "{err}"
    );
    assert!(!err.contains("still failing"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "not retried");
    // A family added behind the store's back is found when first written.
    recreate(&["d", "extra"]);
    store
        .apply(&[put("a", 1, &[("extra", "q", "v")])], None)
        .unwrap();
    assert_eq!(hbase.dump("messages"), "messages\ta\textra:q\t1\tput v\n");
}

#[test]
fn the_watermark_is_kept_in_hbase_and_never_goes_back() {
    let hbase = HbaseEmulator::start();
    let mut store = open(&hbase);
    assert_eq!(store.watermark().unwrap(), None);
    assert!(hbase.table_names().iter().all(|t| t != "switchyard_meta"));
    store
        .apply(&[put("a", 1, &[("d", "t", "x")])], Some(100))
        .unwrap();
    store
        .apply(&[put("a", 2, &[("d", "t", "y")])], Some(50))
        .unwrap();
    assert_eq!(store.watermark().unwrap(), Some(100));
    drop(store);
    assert_eq!(open(&hbase).watermark().unwrap(), Some(100));
    // Per store: another store on the same cluster has its own.
    let mut other =
        HbaseStore::open("other", &config(&hbase, &[("messages", &["d", "m"])])).unwrap();
    assert_eq!(other.watermark().unwrap(), None);
    assert_eq!(other.tables().unwrap(), vec!["messages".to_string()]);
    assert!(
        hbase
            .dump("switchyard_meta")
            .contains("\twatermark\tm:h\t100\tput 100\n")
    );
}

fn many(rows: usize, versions: u64) -> Vec<RowMutation> {
    (0..rows)
        .flat_map(|i| {
            (1..=versions).map(move |v| {
                put(
                    &format!("row-{i:05}"),
                    1_000 + (i as u64 % 50) * 10 + v,
                    &[
                        ("d", "text", &format!("text {i} v{v}")),
                        ("m", "writer", "rmu"),
                    ],
                )
            })
        })
        .collect()
}

#[test]
fn an_apply_while_hbase_is_unreachable_completes_when_it_is_back() {
    let reference = HbaseEmulator::start();
    open(&reference).apply(&many(300, 2), Some(7)).unwrap();

    let hbase = HbaseEmulator::start();
    let mut cfg = config(&hbase, &[("messages", &["d", "m"])]);
    cfg.pool = Some(3);
    cfg.batch_rows = Some(20);
    cfg.timeout = Some(Period(Duration::from_secs(2)));
    cfg.retry_for = Some(Period(Duration::from_secs(30)));
    let mut store = HbaseStore::open("h", &cfg).unwrap();
    store.apply(&many(10, 1), None).unwrap();
    let started = Instant::now();
    hbase.pause(Duration::from_secs(3));
    store.apply(&many(300, 2), Some(7)).unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "the apply waited for HBase"
    );
    assert_eq!(hbase.dump("messages"), reference.dump("messages"));
    assert_eq!(store.watermark().unwrap(), Some(7));
    // Reads retry too.
    hbase.pause(Duration::from_secs(1));
    assert_eq!(scan_all(&mut store, 100, None).len(), 300);
}

#[test]
fn restore_copies_an_hbase_blue_into_an_hbase_green_with_cell_timestamps() {
    let blue = HbaseEmulator::start();
    let green = HbaseEmulator::start();
    let t0 = 1_000_000;
    let mut batch = chat_batch();
    batch.extend(many(40, 2));
    batch.push(put(
        "e",
        t0 + 1,
        &[("d", "text", "after the restore point")],
    ));
    open(&blue).apply(&batch, Some(t0 as i64 + 1)).unwrap();
    let test = Test::new()
        .workflow(&format!(
            r#"[workflow]
name = "hbase-restore"

[store.blue]
kind = "hbase"
thrift = "{blue}"
tables = {{ messages = ["d", "m"] }}

[store.green]
kind = "hbase"
thrift = "{green}"
tables = {{ messages = ["d", "m"] }}
pool = 2
batch_rows = 7

[[step]]
id = "restore"
kind = "restore"
from = "blue"
into = "green"
as_of = "{t0}"
batch_size = 9
"#,
            blue = blue.addr(),
            green = green.addr(),
        ))
        .args(&["exec", "workflow.toml", "--no-progress"]);
    let run = test.run().success();
    assert!(
        run.stdout()
            .contains("copied 43 rows of messages from `blue` into `green`"),
        "{}",
        run.stdout()
    );
    // The workflow's store names: the watermark is kept per store name.
    let tables = [("messages", &["d", "m"][..])];
    let mut blue_store = HbaseStore::open("blue", &config(&blue, &tables)).unwrap();
    let mut green_store = HbaseStore::open("green", &config(&green, &tables)).unwrap();
    // Every cell visible in blue as of T0, with its timestamp.
    let expected = scan_all(&mut blue_store, 1000, Some(t0));
    assert_eq!(scan_all(&mut green_store, 1000, None), expected);
    assert!(text(&expected).contains(&"a d:text=five@5 m:writer=rmu@1".to_string()));
    assert_eq!(green_store.watermark().unwrap(), Some(t0 as i64));
    // What a copy through reads cannot carry over: older versions and
    // delete markers. Blue keeps `a`'s text at 1 and 5; green only at 5.
    let mut c = green.client();
    let versions = c
        .get_ver(
            b"messages".to_vec(),
            b"a".to_vec(),
            b"d:text".to_vec(),
            10,
            BTreeMap::new(),
        )
        .unwrap();
    assert_eq!(versions.len(), 1);
    assert!(!green.dump("messages").contains("delete-"));
}
