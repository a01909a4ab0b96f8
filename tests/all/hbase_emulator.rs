//! The HBase Thrift1 emulator, through the real `hbase-thrift` client over
//! TCP: what the runner's HBase store relies on behaves as in HBase 2.x.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hbase_thrift::hbase::{
    AlreadyExists, BatchMutation, ColumnDescriptor, IOError, IllegalArgument, Mutation,
    THbaseSyncClient, TScan,
};
use switchyard_tests::hbase::{Client, HbaseEmulator, connect};

/// A family as HBase's IDL defaults it (the generated `Default` does not:
/// it leaves compression and bloom filter empty, which HBase refuses).
fn family(name: &str, max_versions: i32) -> ColumnDescriptor {
    ColumnDescriptor {
        name: Some(format!("{name}:").into_bytes()),
        max_versions: Some(max_versions),
        compression: Some("NONE".into()),
        bloom_filter_type: Some("NONE".into()),
        time_to_live: Some(i32::MAX),
        ..ColumnDescriptor::default()
    }
}

/// An emulator with table `t`, families `d` and `m`.
fn with_table(max_versions: i32) -> (HbaseEmulator, Client) {
    let hbase = HbaseEmulator::start();
    let mut c = hbase.client();
    c.create_table(
        b"t".to_vec(),
        vec![family("d", max_versions), family("m", max_versions)],
    )
    .unwrap();
    (hbase, c)
}

fn put(column: &str, value: &str) -> Mutation {
    Mutation::new(
        false,
        column.as_bytes().to_vec(),
        value.as_bytes().to_vec(),
        true,
    )
}

fn delete(column: &str) -> Mutation {
    Mutation::new(true, column.as_bytes().to_vec(), None, true)
}

fn write(c: &mut Client, row: &str, ts: i64, mutations: Vec<Mutation>) {
    c.mutate_row_ts(
        b"t".to_vec(),
        row.as_bytes().to_vec(),
        mutations,
        ts,
        BTreeMap::new(),
    )
    .unwrap();
}

/// `column=value@ts` of a row as of `before` (exclusive; `None`: latest).
fn read(c: &mut Client, row: &str, before: Option<i64>) -> Vec<String> {
    let (t, r) = (b"t".to_vec(), row.as_bytes().to_vec());
    let results = match before {
        Some(ts) => c.get_row_ts(t, r, ts, BTreeMap::new()),
        None => c.get_row(t, r, BTreeMap::new()),
    }
    .unwrap();
    results
        .into_iter()
        .flat_map(|r| r.columns.unwrap_or_default())
        .map(|(name, cell)| {
            format!(
                "{}={}@{}",
                String::from_utf8_lossy(&name),
                String::from_utf8_lossy(&cell.value.unwrap_or_default()),
                cell.timestamp.unwrap_or_default()
            )
        })
        .collect()
}

/// The `IOError` a call failed with: message and `canRetry`.
fn io_error<T: std::fmt::Debug>(result: thrift::Result<T>) -> (String, bool) {
    match result {
        Err(thrift::Error::User(e)) => {
            let io = e.downcast_ref::<IOError>().expect("an IOError");
            (io.message.clone().unwrap(), io.can_retry.unwrap())
        }
        other => panic!("expected an IOError, got {other:?}"),
    }
}

fn is_user_error<E: std::error::Error + 'static, T: std::fmt::Debug>(
    result: thrift::Result<T>,
) -> bool {
    match result {
        Err(thrift::Error::User(e)) => e.is::<E>(),
        other => panic!("expected an exception, got {other:?}"),
    }
}

#[test]
fn tables_are_created_described_disabled_and_deleted_as_in_hbase() {
    let (_hbase, mut c) = with_table(5);
    assert!(is_user_error::<AlreadyExists, _>(
        c.create_table(b"t".to_vec(), vec![family("d", 1)])
    ));
    assert!(is_user_error::<IllegalArgument, _>(
        c.create_table(b"bad name".to_vec(), vec![family("d", 1)])
    ));
    assert!(is_user_error::<IllegalArgument, _>(
        c.create_table(b"u".to_vec(), vec![family("d", 0)])
    ));
    let generated_default = ColumnDescriptor {
        name: Some(b"d:".to_vec()),
        ..ColumnDescriptor::default()
    };
    assert!(is_user_error::<IllegalArgument, _>(
        c.create_table(b"u".to_vec(), vec![generated_default])
    ));
    assert_eq!(c.get_table_names().unwrap(), vec![b"t".to_vec()]);
    let families = c.get_column_descriptors(b"t".to_vec()).unwrap();
    assert_eq!(
        families.keys().collect::<Vec<_>>(),
        vec![&b"d:".to_vec(), &b"m:".to_vec()]
    );
    assert_eq!(families[&b"d:".to_vec()].max_versions, Some(5));

    let (message, can_retry) = io_error(c.delete_table(b"t".to_vec()));
    assert_eq!(
        message,
        "org.apache.hadoop.hbase.TableNotDisabledException: t"
    );
    assert!(!can_retry);
    c.disable_table(b"t".to_vec()).unwrap();
    assert!(!c.is_table_enabled(b"t".to_vec()).unwrap());
    let (message, _) = io_error(c.get_row(b"t".to_vec(), b"r".to_vec(), BTreeMap::new()));
    assert_eq!(
        message,
        "org.apache.hadoop.hbase.TableNotEnabledException: t is disabled."
    );
    c.delete_table(b"t".to_vec()).unwrap();
    let (message, can_retry) = io_error(c.get_row(b"t".to_vec(), b"r".to_vec(), BTreeMap::new()));
    assert_eq!(message, "org.apache.hadoop.hbase.TableNotFoundException: t");
    assert!(!can_retry);
    assert!(c.get_table_names().unwrap().is_empty());
}

#[test]
fn cells_keep_versions_and_as_of_reads_exclude_their_bound() {
    let (_hbase, mut c) = with_table(10);
    for ts in [10, 30, 20] {
        write(&mut c, "r", ts, vec![put("d:text", &format!("v{ts}"))]);
    }
    assert_eq!(read(&mut c, "r", None), ["d:text=v30@30"]);
    // `timestamp` is an exclusive bound: HBase reads with setTimeRange(0, ts).
    assert_eq!(read(&mut c, "r", Some(30)), ["d:text=v20@20"]);
    assert_eq!(read(&mut c, "r", Some(31)), ["d:text=v30@30"]);
    assert!(read(&mut c, "r", Some(10)).is_empty());
    let versions = c
        .get_ver_ts(
            b"t".to_vec(),
            b"r".to_vec(),
            b"d:text".to_vec(),
            31,
            2,
            BTreeMap::new(),
        )
        .unwrap();
    let stamps: Vec<i64> = versions.iter().map(|v| v.timestamp.unwrap()).collect();
    assert_eq!(stamps, vec![30, 20]);
    // The same cell and timestamp written again: the later write wins.
    write(&mut c, "r", 20, vec![put("d:text", "again")]);
    assert_eq!(read(&mut c, "r", Some(30)), ["d:text=again@20"]);
    // Without a timestamp, the server's clock.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    c.mutate_row(
        b"t".to_vec(),
        b"now".to_vec(),
        vec![put("d:x", "y")],
        BTreeMap::new(),
    )
    .unwrap();
    let cells = c
        .get(
            b"t".to_vec(),
            b"now".to_vec(),
            b"d:x".to_vec(),
            BTreeMap::new(),
        )
        .unwrap();
    assert!(cells[0].timestamp.unwrap() >= before);
}

#[test]
fn each_delete_kind_hides_what_is_at_or_before_its_timestamp() {
    let (hbase, mut c) = with_table(10);
    let full = || {
        vec![
            put("d:a", "1"),
            put("d:b", "1"),
            put("m:w", "1"),
            put("m:v", "1"),
        ]
    };
    for row in ["column", "family", "row", "batch"] {
        write(&mut c, row, 10, full());
        write(&mut c, row, 20, vec![put("d:a", "2")]);
    }
    // deleteAllTs of one column: every version at or before 20.
    c.delete_all_ts(
        b"t".to_vec(),
        b"column".to_vec(),
        b"d:a".to_vec(),
        20,
        BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(
        read(&mut c, "column", None),
        ["d:b=1@10", "m:v=1@10", "m:w=1@10"]
    );
    // A delete of `m` alone is Delete.addFamily.
    write(&mut c, "family", 15, vec![delete("m")]);
    assert_eq!(read(&mut c, "family", None), ["d:a=2@20", "d:b=1@10"]);
    // deleteAllRowTs: every family, at or before 15.
    c.delete_all_row_ts(b"t".to_vec(), b"row".to_vec(), 15, BTreeMap::new())
        .unwrap();
    assert_eq!(read(&mut c, "row", None), ["d:a=2@20"]);
    // In a mutateRowsTs batch the puts go first, then the deletes: a put
    // and a delete of the same column at the same timestamp leave nothing.
    c.mutate_rows_ts(
        b"t".to_vec(),
        vec![BatchMutation::new(
            b"batch".to_vec(),
            vec![delete("d:b"), put("d:b", "3"), delete("m:w")],
        )],
        30,
        BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(read(&mut c, "batch", None), ["d:a=2@20", "m:v=1@10"]);
    let dump = hbase.dump("t");
    assert!(dump.contains("t\trow\tm:\t15\tdelete-family\n"), "{dump}");
    assert!(
        dump.contains("t\tbatch\td:b\t30\tdelete-column\n"),
        "{dump}"
    );
}

#[test]
fn a_delete_marker_newer_than_the_read_point_still_masks_older_puts() {
    // HBase without KEEP_DELETED_CELLS (which Thrift1 cannot set) tracks
    // every delete marker "within or after" a read's time range, so an
    // as-of read before a delete already shows the row deleted.
    let (_hbase, mut c) = with_table(10);
    write(&mut c, "r", 10, vec![put("d:text", "hello")]);
    assert_eq!(read(&mut c, "r", Some(15)), ["d:text=hello@10"]);
    c.delete_all_row_ts(b"t".to_vec(), b"r".to_vec(), 20, BTreeMap::new())
        .unwrap();
    assert!(read(&mut c, "r", Some(15)).is_empty());
    // Puts written later at or before the marker stay masked, until a
    // major compaction drops the marker.
    write(&mut c, "r", 20, vec![put("d:text", "late")]);
    write(&mut c, "r", 5, vec![put("d:text", "older")]);
    assert!(read(&mut c, "r", None).is_empty());
    write(&mut c, "r", 25, vec![put("d:text", "after")]);
    assert_eq!(read(&mut c, "r", None), ["d:text=after@25"]);
    assert!(read(&mut c, "r", Some(25)).is_empty());
    c.major_compact(b"t".to_vec()).unwrap();
    write(&mut c, "r", 5, vec![put("d:text", "older")]);
    assert_eq!(read(&mut c, "r", Some(25)), ["d:text=older@5"]);
}

#[test]
fn families_keep_at_most_max_versions_per_column() {
    let (_hbase, mut c) = with_table(2);
    for ts in [1, 2, 3, 4] {
        write(&mut c, "r", ts, vec![put("d:a", &ts.to_string())]);
    }
    let versions = c
        .get_ver(
            b"t".to_vec(),
            b"r".to_vec(),
            b"d:a".to_vec(),
            10,
            BTreeMap::new(),
        )
        .unwrap();
    let stamps: Vec<i64> = versions.iter().map(|v| v.timestamp.unwrap()).collect();
    assert_eq!(stamps, vec![4, 3], "older versions are pruned");
    assert!(read(&mut c, "r", Some(3)).is_empty());
    // A write older than every kept version is pruned at once.
    write(&mut c, "r", 0, vec![put("d:a", "0")]);
    assert!(read(&mut c, "r", Some(3)).is_empty());
}

fn keys(results: &[hbase_thrift::hbase::TRowResult]) -> Vec<String> {
    results
        .iter()
        .map(|r| String::from_utf8_lossy(r.row.as_deref().unwrap()).into_owned())
        .collect()
}

fn scan(start: &str, stop: &str) -> TScan {
    TScan::new(
        start.as_bytes().to_vec(),
        stop.as_bytes().to_vec(),
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    )
}

#[test]
fn scanners_walk_key_ranges_in_order() {
    let (_hbase, mut c) = with_table(10);
    for i in (0..20).rev() {
        write(&mut c, &format!("k{i:02}"), 10 + i, vec![put("d:a", "x")]);
    }
    write(&mut c, "k03", 100, vec![put("m:w", "y")]);
    c.delete_all_row_ts(b"t".to_vec(), b"k07".to_vec(), 50, BTreeMap::new())
        .unwrap();
    let t = || b"t".to_vec();
    // Start inclusive, stop exclusive; a deleted row is skipped.
    let id = c
        .scanner_open_with_scan(t(), scan("k05", "k10"), BTreeMap::new())
        .unwrap();
    assert_eq!(
        keys(&c.scanner_get_list(id, 3).unwrap()),
        ["k05", "k06", "k08"]
    );
    assert_eq!(keys(&c.scanner_get_list(id, 3).unwrap()), ["k09"]);
    assert!(c.scanner_get_list(id, 3).unwrap().is_empty());
    c.scanner_close(id).unwrap();
    assert!(is_user_error::<IllegalArgument, _>(c.scanner_get(id)));
    assert!(is_user_error::<IllegalArgument, _>(c.scanner_close(id)));

    // A timestamp bound (exclusive), columns and sorted columns.
    let mut as_of = scan("", "k05");
    as_of.timestamp = Some(13);
    as_of.columns = Some(vec![b"d".to_vec()]);
    as_of.sort_columns = Some(true);
    let id = c
        .scanner_open_with_scan(t(), as_of, BTreeMap::new())
        .unwrap();
    let rows = c.scanner_get_list(id, 100).unwrap();
    assert_eq!(keys(&rows), ["k00", "k01", "k02"]);
    assert!(rows[0].columns.is_none());
    let sorted = rows[0].sorted_columns.as_ref().unwrap();
    assert_eq!(sorted[0].column_name.as_deref(), Some(&b"d:a"[..]));

    let id = c
        .scanner_open_with_stop_ts(
            t(),
            b"k02".to_vec(),
            b"k04".to_vec(),
            vec![b"m:w".to_vec()],
            101,
            BTreeMap::new(),
        )
        .unwrap();
    let rows = c.scanner_get_list(id, 10).unwrap();
    assert_eq!(keys(&rows), ["k03"]);
    let id = c
        .scanner_open_with_prefix(t(), b"k1".to_vec(), vec![], BTreeMap::new())
        .unwrap();
    assert_eq!(c.scanner_get_list(id, 100).unwrap().len(), 10);
    let mut reversed = scan("k02", "");
    reversed.reversed = Some(true);
    let id = c
        .scanner_open_with_scan(t(), reversed, BTreeMap::new())
        .unwrap();
    assert_eq!(
        keys(&c.scanner_get_list(id, 10).unwrap()),
        ["k02", "k01", "k00"]
    );
    let (message, _) = io_error(c.scanner_open(t(), vec![], vec![b"x".to_vec()], BTreeMap::new()));
    assert!(message.contains("NoSuchColumnFamilyException: Column family x does not exist"));
}

#[test]
fn errors_are_exceptions_and_the_connection_stays_usable() {
    let (hbase, mut c) = with_table(10);
    let (message, can_retry) = io_error(c.mutate_row_ts(
        b"t".to_vec(),
        b"r".to_vec(),
        vec![put("nope:x", "1")],
        1,
        BTreeMap::new(),
    ));
    assert_eq!(
        message,
        "org.apache.hadoop.hbase.regionserver.NoSuchColumnFamilyException: Column family nope does not exist in region t,,0 in table 't'"
    );
    assert!(!can_retry);
    // In a batch the other rows are applied; HBase's client reports the
    // failed ones as RetriesExhaustedWithDetailsException (canRetry true).
    let (message, can_retry) = io_error(c.mutate_rows_ts(
        b"t".to_vec(),
        vec![
            BatchMutation::new(b"good".to_vec(), vec![put("d:x", "1")]),
            BatchMutation::new(b"bad".to_vec(), vec![put("nope:x", "1")]),
        ],
        1,
        BTreeMap::new(),
    ));
    assert!(message.starts_with("org.apache.hadoop.hbase.client.RetriesExhaustedWithDetailsException: Failed 1 action: org.apache.hadoop.hbase.regionserver.NoSuchColumnFamilyException: Column family nope"), "{message}");
    assert!(can_retry);
    assert_eq!(read(&mut c, "good", None), ["d:x=1@1"]);
    assert!(is_user_error::<IllegalArgument, _>(c.mutate_rows_ts(
        b"t".to_vec(),
        vec![BatchMutation::new(b"r".to_vec(), vec![put("d", "1")])],
        1,
        BTreeMap::new(),
    )));
    let (message, _) =
        io_error(c.get_rows(b"nosuch".to_vec(), vec![b"r".to_vec()], BTreeMap::new()));
    assert_eq!(
        message,
        "org.apache.hadoop.hbase.TableNotFoundException: nosuch"
    );
    match c.atomic_increment(b"t".to_vec(), b"r".to_vec(), b"d:n".to_vec(), 1) {
        Err(thrift::Error::Application(e)) => {
            assert!(e.message.contains("`atomicIncrement` is not implemented"))
        }
        other => panic!("expected an ApplicationError, got {other:?}"),
    }
    // Still the same connection.
    assert_eq!(c.get_table_names().unwrap(), vec![b"t".to_vec()]);
    assert_eq!(hbase.table_names(), vec!["t".to_string()]);
}

#[test]
fn a_pause_refuses_connections_and_comes_back_with_the_data() {
    let (hbase, mut c) = with_table(10);
    write(&mut c, "r", 1, vec![put("d:a", "kept")]);
    let before = hbase.dump("t");
    let paused_at = Instant::now();
    hbase.pause(Duration::from_millis(1500));
    let refused = connect(&hbase.addr()).err().expect("refused while paused");
    assert!(
        matches!(&refused, thrift::Error::Transport(t) if t.kind == thrift::TransportErrorKind::NotOpen),
        "{refused:?}"
    );
    assert!(c.get_table_names().is_err(), "open connections are closed");
    let mut back = loop {
        match connect(&hbase.addr()) {
            Ok(client) => break client,
            Err(_) if paused_at.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("the emulator did not come back: {e}"),
        }
    };
    assert!(paused_at.elapsed() >= Duration::from_millis(1500));
    assert_eq!(read(&mut back, "r", None), ["d:a=kept@1"]);
    assert_eq!(hbase.dump("t"), before);
}

#[test]
fn a_dump_lists_every_version_and_marker_in_order() {
    let (hbase, mut c) = with_table(3);
    write(&mut c, "b", 1, vec![put("d:a", "one")]);
    write(&mut c, "b", 2, vec![put("d:a", "two\t")]);
    write(&mut c, "a", 3, vec![put("m:w", "x"), delete("d")]);
    write(&mut c, "a", 4, vec![delete("m:w")]);
    assert_eq!(
        hbase.dump("t"),
        "t\ta\td:\t3\tdelete-family\n\
         t\ta\tm:w\t4\tdelete-column\n\
         t\tb\td:a\t2\tput two\\x09\n\
         t\tb\td:a\t1\tput one\n"
    );
    assert_eq!(hbase.dump_all(&[]), hbase.dump("t"));
}
