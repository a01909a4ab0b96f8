//! The runner's `postgres` store against the machine's PostgreSQL, each
//! test in a database of its own: it reads back exactly what the SQLite
//! store reads back for the same mutations (versions, every kind of
//! delete, ties, reads as of a version), writing again changes nothing,
//! an older event replayed after a delete does not bring the row back,
//! connections cut mid-replay cost nothing, and bad settings are refused
//! with a clear error.

use std::collections::BTreeMap;
use switchyard_runner::document::Home;
use switchyard_runner::fault::Fault;
use switchyard_runner::model::{Cell, Mutations, Row, RowMutation};

use switchyard_runner::store::postgres::PostgresStore;
use switchyard_runner::store::postgres::config::{LatestTable, PostgresConfig};
use switchyard_runner::store::postgres::latest::{Latest, LatestLayout};
use switchyard_runner::store::sqlite::{SqliteStore, SqliteSync};
use switchyard_runner::store::{KeyRange, Store, StoreConfig};
use switchyard_tests::postgres::TestDatabase;

fn home() -> Home {
    Home {
        dir: std::env::temp_dir(),
        workflow: "w".into(),
    }
}

fn config(db: &TestDatabase) -> PostgresConfig {
    PostgresConfig {
        url: db.url().to_string(),
        password_env: None,
        tls_ca: None,
        schema: Some("green".into()),
        tables: None,
        latest: Default::default(),
        retry_for: None,
        fed_by: None,
    }
}

fn open(db: &TestDatabase) -> PostgresStore {
    let c = config(db);
    PostgresStore::open(
        "pg",
        c.target(&home(), "pg").unwrap(),
        c.schema(),
        c.latest_layouts().unwrap(),
        std::time::Duration::from_secs(30),
    )
    .unwrap()
}

/// Every visible row of `table`, page by page.
fn scan_all(store: &mut dyn Store, table: &str, page: usize, as_of: Option<u64>) -> Vec<String> {
    let mut rows: Vec<Row> = Vec::new();
    let mut range = KeyRange::default();
    loop {
        let p = store.scan(table, &range, page, as_of).unwrap();
        rows.extend(p.rows);
        match p.next_after {
            Some(after) => range.after = Some(after),
            None => break,
        }
    }
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

/// A deterministic stream of mutations over a few keys, cells and
/// versions: puts, every kind of delete, ties (the same cell at the same
/// version with another value) and versions out of order.
fn stream(n: usize, seed: u64) -> Vec<RowMutation> {
    let mut x = seed;
    let mut next = move |m: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % m
    };
    (0..n)
        .map(|i| {
            let key = format!("room-{}/{:03}", next(3), next(12));
            let version = 1 + next(12);
            let cell = match next(10) {
                0 => Cell::DeleteRow,
                1 => Cell::DeleteFamily { family: "m".into() },
                2 => Cell::DeleteCell {
                    family: "d".into(),
                    qualifier: b"text"[..].into(),
                },
                3..=5 => Cell::put("m", &b"writer"[..], format!("w{i}").into_bytes()),
                _ => Cell::put("d", &b"text"[..], format!("t{i}").into_bytes()),
            };
            RowMutation {
                table: "messages".into(),
                row_key: key.into_bytes().into(),
                version,
                cells: vec![cell],
            }
        })
        .collect()
}

#[test]
fn it_reads_back_what_sqlite_reads_back_at_every_version_however_often_written() {
    let db = TestDatabase::new();
    let mut pg = open(&db);
    let dir = tempfile::tempdir().unwrap();
    let mut lite =
        SqliteStore::open("s", &dir.path().join("s.sqlite"), SqliteSync::Normal).unwrap();
    let all = stream(600, 7);
    for (i, batch) in all.chunks(37).enumerate() {
        pg.apply(batch, Some(i as i64)).unwrap();
        lite.apply(batch, Some(i as i64)).unwrap();
    }
    let expected: Vec<Vec<String>> = (0..=13)
        .map(|v| scan_all(&mut lite, "messages", 5, (v > 0).then_some(v)))
        .collect();
    assert!(expected[0].len() > 10, "{:?}", expected[0]);
    let check = |pg: &mut PostgresStore, when: &str| {
        for (v, rows) in expected.iter().enumerate() {
            let as_of = (v > 0).then_some(v as u64);
            assert_eq!(
                &scan_all(pg, "messages", 5, as_of),
                rows,
                "{when}, as of {as_of:?}"
            );
        }
    };
    check(&mut pg, "written once");
    // The whole log again, in other batches: nothing changes.
    for batch in all.chunks(101) {
        pg.apply(batch, Some(0)).unwrap();
    }
    check(&mut pg, "written twice");
    assert_eq!(
        pg.watermark().unwrap(),
        Some((600 / 37) as i64),
        "never goes back"
    );
    assert_eq!(pg.tables().unwrap(), vec!["messages".to_string()]);
    // Reads of given keys agree with scans, absent keys included.
    let keys: Vec<Vec<u8>> = ["room-0/003", "room-9/999", "room-1/007", "room-0/003"]
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
    let got = pg.get("messages", &keys, Some(6)).unwrap();
    let want = lite.get("messages", &keys, Some(6)).unwrap();
    assert_eq!(got, want);
    assert!(got[1].is_none());
}

#[test]
fn a_delete_outlives_older_events_replayed_after_it() {
    let db = TestDatabase::new();
    let mut pg = open(&db);
    let put = |v: u64, text: &str| RowMutation {
        table: "messages".into(),
        row_key: b"k"[..].into(),
        version: v,
        cells: vec![Cell::put("d", &b"text"[..], text.as_bytes().to_vec())],
    };
    let delete = RowMutation {
        table: "messages".into(),
        row_key: b"k"[..].into(),
        version: 10,
        cells: vec![Cell::DeleteRow],
    };
    pg.apply(&[put(5, "old"), delete], None).unwrap();
    // The log replayed from before the delete: the older events again.
    pg.apply(&[put(3, "older"), put(5, "old"), put(9, "newer")], None)
        .unwrap();
    assert!(scan_all(&mut pg, "messages", 10, None).is_empty());
    // A later event brings it back, as in HBase.
    pg.apply(&[put(11, "later")], None).unwrap();
    assert_eq!(
        scan_all(&mut pg, "messages", 10, None),
        vec!["k d:text=later@11"]
    );
    // Before the delete, what was there then.
    assert_eq!(
        scan_all(&mut pg, "messages", 10, Some(9)),
        vec!["k d:text=newer@9"]
    );
    assert_eq!(
        scan_all(&mut pg, "messages", 10, Some(8)),
        vec!["k d:text=old@5"]
    );
}

#[test]
fn a_duplicate_heavy_batch_keeps_the_last_write_of_each_cell() {
    let db = TestDatabase::new();
    let mut pg = open(&db);
    // 5,000 writes of 50 cells at one version: the last of each wins.
    let batch: Vec<RowMutation> = (0..5000)
        .map(|i| RowMutation {
            table: "messages".into(),
            row_key: format!("k{:02}", i % 50).into_bytes().into(),
            version: 1,
            cells: vec![Cell::put("d", &b"n"[..], i.to_string().into_bytes())],
        })
        .collect();
    pg.apply(&batch, None).unwrap();
    let rows = scan_all(&mut pg, "messages", 1000, None);
    assert_eq!(rows.len(), 50);
    assert_eq!(rows[0], "k00 d:n=4950@1");
    assert_eq!(rows[49], "k49 d:n=4999@1");
    let stored: i64 = db
        .client()
        .query_one("SELECT count(*) FROM green.messages", &[])
        .unwrap()
        .get(0);
    assert_eq!(stored, 50, "one entry per cell and version");
}

#[test]
fn connections_cut_mid_replay_are_made_again_and_nothing_is_lost() {
    let db = TestDatabase::new();
    let mut pg = open(&db);
    let dir = tempfile::tempdir().unwrap();
    let mut lite =
        SqliteStore::open("s", &dir.path().join("s.sqlite"), SqliteSync::Normal).unwrap();
    let all = stream(3000, 11);
    let mut cut = 0;
    for (i, batch) in all.chunks(50).enumerate() {
        if i % 7 == 3 {
            cut += db.cut_connections();
        }
        pg.apply(batch, Some(i as i64)).unwrap();
        lite.apply(batch, Some(i as i64)).unwrap();
    }
    assert!(cut >= 5, "connections were cut {cut} times");
    assert_eq!(
        scan_all(&mut pg, "messages", 100, None),
        scan_all(&mut lite, "messages", 100, None)
    );
}

#[test]
fn bad_settings_are_refused_with_a_clear_error() {
    let db = TestDatabase::new();
    let with_password = PostgresConfig {
        url: "postgres://postgres:secret@127.0.0.1:5432/x".into(),
        ..config(&db)
    };
    let e = with_password.target(&home(), "pg").unwrap_err();
    assert!(e.message.contains("holds a password"), "{e}");
    assert!(!e.to_string().contains("secret"));
    let unset = PostgresConfig {
        password_env: Some("SWITCHYARD_TEST_NO_SUCH_VARIABLE".into()),
        ..config(&db)
    };
    let e = unset.target(&home(), "pg").unwrap_err();
    assert!(
        e.message.contains("SWITCHYARD_TEST_NO_SUCH_VARIABLE"),
        "{e}"
    );
    // TLS as the URL asks: encrypted (the server's own certificate is
    // not signed by any authority); checked against an authority that
    // did not sign it, refused at once, said plainly, not retried.
    let tls = PostgresConfig {
        url: format!("{}?sslmode=require", db.url()),
        ..config(&db)
    };
    let mut store = tls.open(&home(), "pg").expect("an encrypted connection");
    assert!(store.tables().unwrap().is_empty());
    let encrypted: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.datname = current_database() AND a.application_name = 'switchyard' AND s.ssl",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(encrypted, 1);
    drop(store);
    let checked = PostgresConfig {
        tls_ca: Some("/etc/ssl/certs/ca-certificates.crt".into()),
        ..tls
    };
    let e = checked.open(&home(), "pg").err().expect("refused");
    assert_eq!(e.fault, Fault::Refused, "{e}");
    let nobody = PostgresConfig {
        url: "postgres://postgres@127.0.0.1:5432/switchyard_no_such_database".into(),
        ..config(&db)
    };
    let e = nobody.open(&home(), "pg").err().expect("refused");
    assert_eq!(e.fault, Fault::Refused, "{e}");
    assert!(e.message.contains("does not exist"), "{e}");
    let mut pg = open(&db);
    let bad = RowMutation {
        table: "a\"; DROP TABLE x; --".into(),
        row_key: b"k"[..].into(),
        version: 1,
        cells: vec![Cell::put("d", &b"q"[..], b"v".to_vec())],
    };
    let e = pg.apply(&[bad], None).unwrap_err();
    assert_eq!(e.fault, Fault::Refused, "{e}");
}

/// A store whose `messages` table keeps the latest row of each key, with
/// `text` and `posted_at` as typed columns.
fn open_latest(db: &TestDatabase) -> PostgresStore {
    let mut c = config(db);
    c.latest.insert(
        "messages".into(),
        LatestTable {
            columns: [
                ("text".to_string(), "d:text".to_string()),
                ("posted_at".to_string(), "d:posted_at bigint".to_string()),
            ]
            .into(),
        },
    );
    PostgresStore::open(
        "pg",
        c.target(&home(), "pg").unwrap(),
        c.schema(),
        c.latest_layouts().unwrap(),
        std::time::Duration::from_secs(30),
    )
    .unwrap()
}

#[test]
fn a_latest_table_is_what_applying_each_event_in_turn_leaves_whatever_the_batches() {
    let db = TestDatabase::new();
    let mut pg = open_latest(&db);
    let mut all = stream(2000, 5);
    // Typed cells too, among the others.
    for (i, m) in all.iter_mut().enumerate().filter(|(i, _)| i % 5 == 0) {
        m.cells.push(Cell::put(
            "d",
            &b"posted_at"[..],
            (1000 + i).to_string().into_bytes(),
        ));
    }
    // The same events one by one, as the guarded upsert would take them.
    let mut expected: BTreeMap<Vec<u8>, Option<Latest>> = BTreeMap::new();
    for m in Mutations::Owned(&all).rows() {
        let row = expected.entry(m.row_key.to_vec()).or_insert(None);
        Latest::apply(row, m.version as i64, m.cells());
    }
    let expected: Vec<String> = expected
        .into_iter()
        .filter_map(|(k, r)| r.and_then(|r| r.visible(k)))
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
        .collect();
    assert!(expected.len() > 10);
    for batch in all.chunks(61) {
        pg.apply(batch, None).unwrap();
    }
    assert_eq!(scan_all(&mut pg, "messages", 7, None), expected);
    // Again, in other batches: the versions guard every row.
    for batch in all.chunks(250) {
        pg.apply(batch, None).unwrap();
    }
    assert_eq!(scan_all(&mut pg, "messages", 7, None), expected);
    // The typed columns are PostgreSQL's own types.
    let typed: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM green.messages WHERE posted_at IS NOT NULL AND posted_at >= 1000",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(typed > 0);
}

#[test]
fn a_latest_table_refuses_reads_before_its_rows_and_values_its_columns_cannot_hold() {
    let db = TestDatabase::new();
    let mut pg = open_latest(&db);
    let put = |v: u64, q: &str, value: &str| RowMutation {
        table: "messages".into(),
        row_key: b"k"[..].into(),
        version: v,
        cells: vec![Cell::put(
            "d",
            q.as_bytes().to_vec(),
            value.as_bytes().to_vec(),
        )],
    };
    pg.apply(&[put(10, "text", "ten"), put(12, "mood", "fine")], None)
        .unwrap();
    // A late, older event is dropped whole; a delete stays a tombstone.
    pg.apply(&[put(11, "text", "late")], None).unwrap();
    assert_eq!(
        scan_all(&mut pg, "messages", 10, None),
        vec!["k d:mood=fine@12 d:text=ten@12"]
    );
    let e = pg.get("messages", &[b"k".to_vec()], Some(11)).unwrap_err();
    assert_eq!(e.fault, Fault::Refused);
    assert!(e.message.contains("row k is at version 12"), "{e}");
    let e = pg
        .apply(&[put(13, "posted_at", "yesterday")], None)
        .unwrap_err();
    assert_eq!(e.fault, Fault::Refused);
    assert!(
        e.message
            .contains("`d:posted_at` is not an integer written as PostgreSQL writes it back"),
        "{e}"
    );
    let deleted = RowMutation {
        table: "messages".into(),
        row_key: b"k"[..].into(),
        version: 20,
        cells: vec![Cell::DeleteRow],
    };
    pg.apply(&[deleted, put(15, "text", "replayed")], None)
        .unwrap();
    assert!(scan_all(&mut pg, "messages", 10, None).is_empty());
    let tombstone: (i64, bool) = db
        .client()
        .query_one("SELECT version, deleted FROM green.messages", &[])
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(tombstone, (20, true));
    // The same table with other columns is refused, saying both.
    drop(pg);
    let e = PostgresStore::open(
        "pg",
        config(&db).target(&home(), "pg").unwrap(),
        "green",
        [(
            "messages".to_string(),
            LatestLayout::parse(&[("body".to_string(), "d:text".to_string())].into()).unwrap(),
        )]
        .into(),
        std::time::Duration::from_secs(5),
    )
    .unwrap()
    .scan("messages", &KeyRange::default(), 10, None)
    .unwrap_err();
    assert!(
        e.message
            .contains("was made with layout `latest` with columns"),
        "{e}"
    );
}
