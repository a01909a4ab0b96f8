//! `cargo bench -p switchyard-tests --bench hbase`: how fast the `hbase`
//! store writes and reads through Thrift1 against the in-process emulator,
//! with 1, 2 and 4 connections. No assertions: numbers for people to read.
//!
//! Chat-like rows: each mutation has its own version (an event time), so
//! each is one `mutateRowsTs` call: Thrift1 has one timestamp per call.
//! For contrast, the same rows all at one version: one call per 1000 rows.

use std::time::{Duration, Instant};

use switchyard_runner::model::{Cell, RowMutation};
use switchyard_runner::store::hbase::HbaseConfig;
use switchyard_runner::store::hbase::HbaseStore;
use switchyard_runner::store::{KeyRange, Store};
use switchyard_tests::hbase::HbaseEmulator;

const ROWS: usize = 20_000;
const BATCH: usize = 1000;
const ROUNDS: usize = 3;

fn main() {
    println!(
        "hbase store benchmarks: {ROWS} chat rows, batches of {BATCH}, against the in-process emulator, best of {ROUNDS} rounds"
    );
    println!();
    for (label, shared_version) in [
        ("one version per row (events)", false),
        ("one version per batch", true),
    ] {
        println!("apply, {label}:");
        let mut base = None;
        for pool in [1, 2, 4] {
            let rate = best(|| apply_rate(pool, shared_version));
            let ratio = base.map_or(String::new(), |b: f64| {
                format!("  ({:.2}x pool 1)", rate / b)
            });
            base.get_or_insert(rate);
            println!("  pool {pool}: {rate:>9.0} rows/s{ratio}");
        }
        println!();
    }
    println!("scan, pages of {BATCH} rows:");
    let rate = best(scan_rate);
    println!("  {rate:>9.0} rows/s");
}

fn best(mut f: impl FnMut() -> f64) -> f64 {
    (0..ROUNDS).map(|_| f()).fold(0.0, f64::max)
}

fn mutations(shared_version: bool) -> Vec<RowMutation> {
    (0..ROWS)
        .map(|i| RowMutation {
            table: "messages".into(),
            row_key: format!(
                "room-{:03}#{:013}#m{i}",
                i % 100,
                1_700_000_000_000u64 + i as u64
            )
            .into_bytes()
            .into(),
            version: if shared_version {
                1_700_000_000_000 + (i / BATCH) as u64
            } else {
                1_700_000_000_000 + i as u64
            },
            cells: vec![
                Cell::put(
                    "d",
                    &b"room"[..],
                    format!("room-{:03}", i % 100).into_bytes(),
                ),
                Cell::put("d", &b"user"[..], format!("user-{}", i % 997).into_bytes()),
                Cell::put(
                    "d",
                    &b"text"[..],
                    format!("message number {i} with some text").into_bytes(),
                ),
                Cell::put(
                    "d",
                    &b"posted_at"[..],
                    (1_700_000_000_000u64 + i as u64).to_string().into_bytes(),
                ),
                Cell::put("m", &b"writer"[..], &b"rmu"[..]),
            ],
        })
        .collect()
}

fn open(hbase: &HbaseEmulator, pool: usize) -> HbaseStore {
    let cfg = HbaseConfig {
        thrift: hbase.addr(),
        tables: [(
            "messages".to_string(),
            vec!["d".to_string(), "m".to_string()],
        )]
        .into_iter()
        .collect(),
        max_versions: None,
        pool: Some(pool),
        timeout: None,
        retry_for: None,
        batch_rows: None,
        fed_by: None,
    };
    HbaseStore::open("bench", &cfg).expect("open the store")
}

fn apply_rate(pool: usize, shared_version: bool) -> f64 {
    let hbase = HbaseEmulator::start();
    let mut store = open(&hbase, pool);
    let batch = mutations(shared_version);
    let started = Instant::now();
    for chunk in batch.chunks(BATCH) {
        store.apply(chunk, Some(1)).expect("apply");
    }
    rate(ROWS, started.elapsed())
}

fn scan_rate() -> f64 {
    let hbase = HbaseEmulator::start();
    let mut store = open(&hbase, 4);
    for chunk in mutations(false).chunks(BATCH) {
        store.apply(chunk, None).expect("apply");
    }
    let started = Instant::now();
    let mut range = KeyRange::default();
    let mut rows = 0;
    loop {
        let page = store.scan("messages", &range, BATCH, None).expect("scan");
        rows += page.rows.len();
        match page.next_after {
            Some(after) => range.after = Some(after),
            None => break,
        }
    }
    assert_eq!(rows, ROWS);
    rate(rows, started.elapsed())
}

fn rate(rows: usize, took: Duration) -> f64 {
    rows as f64 / took.as_secs_f64()
}
