//! `just bench`: the compare's figures, as ratios against baselines
//! measured in the same run on the same stores. No assertions.
//!
//! Blue and green hold the same rows but for 0.05% changed in green, on
//! SQLite and on the HBase emulator (over Thrift). Measured on this
//! thread's CPU time (the stores are read from this thread; the emulator's
//! own threads are not counted) and on the wall clock:
//!
//! 1. a raw scan of both stores as of the compare point, page by page
//!    through the store interface: every row read once from each side,
//!    nothing compared;
//! 2. a `full` compare (merge-join, built-in equality), at the lower
//!    watermark as a workflow's compare is, so with its count of the keys
//!    written after that point;
//! 3. a `hashed` compare (segments of 10,000 keys, leaves of 100);
//! 4. a `sampled` compare of 10,000 keys in ranges of 10;
//! 5. the `full` compare split in two key ranges compared at once
//!    (`parallel = 2`), each on its own connections: on the wall clock,
//!    since its work is on two threads.
//!
//! Rounds are interleaved (raw, full, hashed, sampled, parallel, raw …) and the best of each
//! kept. `SWITCHYARD_BENCH_ROWS` sets the rows (default 200,000 on SQLite,
//! a quarter of that on the emulator), `SWITCHYARD_BENCH_ROUNDS` the
//! rounds (default 3).

use std::time::{Duration, Instant};

use switchyard_runner::cancel::Cancel;
use switchyard_runner::document::values::AsOf;
use switchyard_runner::model::{Cell, RowMutation};
use switchyard_runner::steps::compare::parallel::{SplitFiles, compare_split};
use switchyard_runner::steps::compare::{Caps, Hashing, Options, compare};
use switchyard_runner::store::hbase::{HbaseConfig, HbaseStore};
use switchyard_runner::store::sqlite::{SqliteStore, SqliteSync};
use switchyard_runner::store::{KeyRange, Store};
use switchyard_tests::cpu::thread_cpu;
use switchyard_tests::hbase::HbaseEmulator;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A chat-like row: four cells of a few dozen bytes.
fn row(i: u64, text: &str) -> RowMutation {
    RowMutation {
        table: "messages".into(),
        row_key: format!("room-{:04}#{:012}", i % 1000, i)
            .into_bytes()
            .into(),
        version: 1_767_225_600_000 + i,
        cells: vec![
            Cell::put("d", b"text".to_vec(), text.as_bytes().to_vec()),
            Cell::put(
                "d",
                b"user".to_vec(),
                format!("user-{:05}", i % 7919).into_bytes(),
            ),
            Cell::put(
                "d",
                b"room".to_vec(),
                format!("room-{:04}", i % 1000).into_bytes(),
            ),
            Cell::put("m", b"writer".to_vec(), b"rmu".to_vec()),
        ],
    }
}

/// The watermark both sides record: past every row.
const WATERMARK: i64 = i64::MAX / 2;

/// The variants measured, in the order of each round.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Raw,
    Full,
    Hashed,
    Sampled,
    Parallel,
}

/// Opens another handle on the same blue and green.
type Open<'a> = &'a dyn Fn() -> (Box<dyn Store>, Box<dyn Store>);

/// Fills blue and green: the same rows, one in 2,000 changed in green.
fn fill(blue: &mut dyn Store, green: &mut dyn Store, rows: u64) -> u64 {
    let mut changed = 0;
    for start in (0..rows).step_by(5000) {
        let end = (start + 5000).min(rows);
        let b: Vec<RowMutation> = (start..end)
            .map(|i| row(i, "deploy latency pager review shipped"))
            .collect();
        let g: Vec<RowMutation> = (start..end)
            .map(|i| {
                if i % 2000 == 999 {
                    changed += 1;
                    row(i, "damaged")
                } else {
                    row(i, "deploy latency pager review shipped")
                }
            })
            .collect();
        blue.apply(&b, Some(WATERMARK)).expect("blue");
        green.apply(&g, Some(WATERMARK)).expect("green");
    }
    changed
}

/// Reads every row of both stores; how many rows.
fn raw_scan<'s>(blue: &'s mut dyn Store, green: &'s mut dyn Store) -> u64 {
    let mut rows = 0;
    for store in [blue, green] {
        let mut range = KeyRange::default();
        loop {
            let page = store
                .scan("messages", &range, 1000, Some(WATERMARK as u64))
                .expect("scan");
            rows += page.rows.len() as u64;
            match page.next_after {
                Some(a) => range.after = Some(a),
                None => break,
            }
        }
    }
    rows
}

fn options(variant: Variant) -> Options {
    Options {
        tables: vec!["messages".into()],
        as_of: Some(AsOf::Watermark(Duration::ZERO)),
        batch: 1000,
        caps: Caps {
            examples: 100,
            text: 1024,
        },
        recheck_after: Duration::ZERO,
        recheck_wait: Duration::ZERO,
        saving: None,
        rate: None,
        touched: None,
        hashed: (variant == Variant::Hashed).then(|| Hashing {
            segment: 10_000,
            leaf: 100,
            ignore: Vec::new(),
        }),
        sampled: (variant == Variant::Sampled).then_some((10_000, 10)),
        differences: None,
        bounds: Default::default(),
        first: None,
    }
}

/// Best (CPU, wall) of each variant over interleaved rounds.
fn measure(
    name: &str,
    (blue, green): (&mut dyn Store, &mut dyn Store),
    open: Open<'_>,
    rows: u64,
    rounds: usize,
) {
    use Variant::*;
    let state = tempfile::tempdir().expect("temp dir");
    let mut best = [(Duration::MAX, Duration::MAX); 5];
    let mut found = (0, 0);
    let mut sample = String::new();
    for _ in 0..rounds {
        for (variant, best) in [Raw, Full, Hashed, Sampled, Parallel]
            .into_iter()
            .zip(&mut best)
        {
            let (cpu, wall) = (thread_cpu(), Instant::now());
            if variant == Raw {
                raw_scan(blue, green);
            } else if variant == Parallel {
                let files = SplitFiles::new(state.path(), "bench", 2);
                let opener = || {
                    let (b, g) = open();
                    Ok((b, g, None))
                };
                compare_split(opener, &options(Full), &files, &Cancel::default())
                    .expect("parallel compare");
                for file in files.all() {
                    let _ = std::fs::remove_file(file);
                }
            } else {
                let report = compare(blue, green, None, &options(variant), &Cancel::default())
                    .expect("compare");
                match variant {
                    Hashed => found = (report.differing(), report.paired),
                    Sampled => {
                        sample = report.sample.map(|s| s.words).unwrap_or_default();
                    }
                    _ => {}
                }
            }
            let took = (thread_cpu() - cpu, wall.elapsed());
            best.0 = best.0.min(took.0);
            best.1 = best.1.min(took.1);
        }
    }
    let per_s = |d: Duration| rows as f64 / d.as_secs_f64();
    let [raw, full, hashed, sampled, parallel] = best;
    println!(
        "{name}: {rows} rows a side, best of {rounds} interleaved rounds (CPU of this thread; wall in brackets)"
    );
    println!(
        "  raw scan of both      {:>9.0} rows/s  ({:.0} rows/s)",
        per_s(raw.0),
        per_s(raw.1)
    );
    println!(
        "  full compare          {:>9.0} rows/s  ({:.0} rows/s)  {:.2} of the raw scan ({:.2})",
        per_s(full.0),
        per_s(full.1),
        raw.0.as_secs_f64() / full.0.as_secs_f64(),
        raw.1.as_secs_f64() / full.1.as_secs_f64()
    );
    println!(
        "  hashed compare        {:>9.0} rows/s  ({:.0} rows/s)  {:.2}× the full compare ({:.2}×); {} differing keys found, {} paired",
        per_s(hashed.0),
        per_s(hashed.1),
        full.0.as_secs_f64() / hashed.0.as_secs_f64(),
        full.1.as_secs_f64() / hashed.1.as_secs_f64(),
        found.0,
        found.1
    );
    println!(
        "  sampled compare       {:>9.3} s  ({:.3} s)  {:.1}× faster than the full compare ({:.1}×)\n    {sample}",
        sampled.0.as_secs_f64(),
        sampled.1.as_secs_f64(),
        full.0.as_secs_f64() / sampled.0.as_secs_f64(),
        full.1.as_secs_f64() / sampled.1.as_secs_f64()
    );
    println!(
        "  full in 2 ranges at once           ({:.0} rows/s)  {:.2}× the full compare on the wall clock",
        per_s(parallel.1),
        full.1.as_secs_f64() / parallel.1.as_secs_f64()
    );
}

fn main() {
    let rows = env_u64("SWITCHYARD_BENCH_ROWS", 200_000);
    let rounds = env_u64("SWITCHYARD_BENCH_ROUNDS", 3) as usize;
    println!("\n## Compare: full, hashed and sampled against a raw scan, 0.05% of rows changed\n");

    let dir = tempfile::tempdir().expect("temp dir");
    let mut blue = SqliteStore::open("blue", &dir.path().join("blue.sqlite"), SqliteSync::Normal)
        .expect("blue");
    let mut green = SqliteStore::open(
        "green",
        &dir.path().join("green.sqlite"),
        SqliteSync::Normal,
    )
    .expect("green");
    let changed = fill(&mut blue, &mut green, rows);
    println!("({changed} rows changed on SQLite)");
    let open_sqlite = || -> (Box<dyn Store>, Box<dyn Store>) {
        let open = |name: &str| {
            let path = dir.path().join(format!("{name}.sqlite"));
            Box::new(SqliteStore::open(name, &path, SqliteSync::Normal).expect(name))
        };
        (open("blue"), open("green"))
    };
    measure(
        "SQLite",
        (&mut blue, &mut green),
        &open_sqlite,
        rows,
        rounds,
    );

    let hbase_rows = (rows / 4).max(1);
    let emulators = [HbaseEmulator::start(), HbaseEmulator::start()];
    let open = |name: &str, hbase: &HbaseEmulator| {
        let config = HbaseConfig {
            thrift: hbase.addr(),
            tables: [(
                "messages".to_string(),
                vec!["d".to_string(), "m".to_string()],
            )]
            .into(),
            max_versions: None,
            pool: None,
            timeout: None,
            retry_for: None,
            batch_rows: None,
            fed_by: None,
        };
        HbaseStore::open(name, &config).expect("hbase")
    };
    let (mut blue, mut green) = (open("blue", &emulators[0]), open("green", &emulators[1]));
    let changed = fill(&mut blue, &mut green, hbase_rows);
    println!("\n({changed} rows changed on the HBase emulator)");
    let open_hbase = || -> (Box<dyn Store>, Box<dyn Store>) {
        (
            Box::new(open("blue", &emulators[0])),
            Box::new(open("green", &emulators[1])),
        )
    };
    measure(
        "HBase emulator (Thrift1)",
        (&mut blue, &mut green),
        &open_hbase,
        hbase_rows,
        rounds,
    );
}
