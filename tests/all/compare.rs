//! Compare tells lag from damage, on HBase (the emulator, over Thrift1)
//! and on SQLite: a delete that one side applied after the compare point
//! and the other had not yet applied is "changed after the compare point"
//! once both have it, "lagging" (the side named) while the side behind
//! never catches up, and never a mismatch; a row truly missing is.

use std::time::Duration;

use switchyard_runner::cancel::Cancel;
use switchyard_runner::model::{Cell, Mutations, Row, RowMutation};
use switchyard_runner::steps::compare::{Caps, Options, Report, compare};
use switchyard_runner::store::hbase::HbaseConfig;
use switchyard_runner::store::hbase::HbaseStore;
use switchyard_runner::store::sqlite::SqliteStore;
use switchyard_runner::store::sqlite::SqliteSync;
use switchyard_runner::store::{KeyRange, Page, Store, StoreError};
use switchyard_tests::hbase::HbaseEmulator;

fn put(key: &str, version: u64) -> RowMutation {
    RowMutation {
        table: "messages".into(),
        row_key: key.as_bytes().to_vec().into(),
        version,
        cells: vec![Cell::put("d", b"text".to_vec(), key.as_bytes().to_vec())],
    }
}

fn delete(key: &str, version: u64) -> RowMutation {
    RowMutation {
        table: "messages".into(),
        row_key: key.as_bytes().to_vec().into(),
        version,
        cells: vec![Cell::DeleteRow],
    }
}

/// A store that applies `later` (with its watermark) just before the
/// recheck looks at it: an event that arrives between the compare point
/// and the read.
struct ArrivesLater {
    inner: Box<dyn Store>,
    later: Option<(Vec<RowMutation>, i64)>,
    watermark_reads: u32,
}

impl Store for ArrivesLater {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn write(&mut self, m: Mutations<'_>, w: Option<i64>) -> Result<(), StoreError> {
        self.inner.write(m, w)
    }
    fn scan(
        &mut self,
        table: &str,
        range: &KeyRange,
        limit: usize,
        as_of: Option<u64>,
    ) -> Result<Page, StoreError> {
        self.inner.scan(table, range, limit, as_of)
    }
    fn get(
        &mut self,
        table: &str,
        keys: &[Vec<u8>],
        as_of: Option<u64>,
    ) -> Result<Vec<Option<Row>>, StoreError> {
        self.inner.get(table, keys, as_of)
    }
    fn tables(&mut self) -> Result<Vec<String>, StoreError> {
        self.inner.tables()
    }
    fn watermark(&mut self) -> Result<Option<i64>, StoreError> {
        // The first read is the compare point's; the next ones are the recheck's.
        self.watermark_reads += 1;
        if self.watermark_reads == 2
            && let Some((m, w)) = self.later.take()
        {
            self.inner.apply(&m, Some(w))?;
        }
        self.inner.watermark()
    }
}

/// Opens a fresh store of the kind under test.
type Open<'a> = &'a dyn Fn(&str) -> Box<dyn Store>;

/// Blue and green hold `a`, `b`, `c` written at 100. Blue then deleted
/// `b` at 300 and stands at 400; green stands at 200 (the compare point)
/// and `green_later` arrives in green between the compare point and the
/// recheck. `green_lacks_c` leaves `c` out of green: true damage.
fn scenario(
    open: Open,
    green_later: Option<(Vec<RowMutation>, i64)>,
    green_lacks_c: bool,
) -> Report {
    let mut blue = open("blue");
    let rows = [put("a", 100), put("b", 100), put("c", 100)];
    blue.apply(&rows, Some(250)).unwrap();
    blue.apply(&[delete("b", 300)], Some(400)).unwrap();
    let mut green = open("green");
    let green_rows: Vec<RowMutation> = rows
        .iter()
        .filter(|r| !(green_lacks_c && &*r.row_key == b"c"))
        .cloned()
        .collect();
    green.apply(&green_rows, Some(200)).unwrap();
    let mut green = ArrivesLater {
        inner: green,
        later: green_later,
        watermark_reads: 0,
    };
    let options = Options {
        tables: vec!["messages".into()],
        as_of: None,
        batch: 100,
        caps: Caps {
            examples: 10,
            text: 1024,
        },
        recheck_after: Duration::from_millis(10),
        recheck_wait: Duration::from_secs(1),
        saving: None,
        rate: None,
        touched: None,
        hashed: None,
        sampled: None,
        differences: None,
        bounds: Default::default(),
        first: None,
    };
    compare(&mut *blue, &mut green, None, &options, &Cancel::default()).unwrap()
}

fn tells_lag_from_damage(open: Open, hides_later_deletes: bool) {
    // The delete reaches green between the compare point and the recheck.
    let caught_up = scenario(open, Some((vec![delete("b", 300)], 400)), false);
    assert_eq!(caught_up.differing(), 0, "{caught_up:#?}");
    assert_eq!(caught_up.total.lagging, 0, "{caught_up:#?}");
    assert_eq!(
        caught_up.total.changed_after_compare_point,
        u64::from(hides_later_deletes),
        "{caught_up:#?}"
    );

    // Green never gets there: lagging, with green named, not a mismatch.
    let behind = scenario(open, None, false);
    assert_eq!(behind.differing(), 0, "{behind:#?}");
    assert_eq!(
        behind.total.lagging,
        u64::from(hides_later_deletes),
        "{behind:#?}"
    );
    if hides_later_deletes {
        let example = &behind.lagging_examples[0];
        assert!(
            example
                .reason
                .contains("green has the row, blue does not; not judged: `green` is at "),
            "{example:?}"
        );
    }

    // A row green never got is damage even while green is behind: lag
    // explains only what the side behind has and the other no longer shows.
    let behind_and_damaged = scenario(open, None, true);
    assert_eq!(
        behind_and_damaged.total.only_blue, 1,
        "{behind_and_damaged:#?}"
    );
    assert_eq!(
        behind_and_damaged.total.lagging,
        u64::from(hides_later_deletes),
        "{behind_and_damaged:#?}"
    );

    // A row green never got, with green caught up: damage, named.
    let damaged = scenario(open, Some((vec![delete("b", 300)], 400)), true);
    assert_eq!(damaged.total.only_blue, 1, "{damaged:#?}");
    assert_eq!(damaged.differing(), 1, "{damaged:#?}");
    assert_eq!(
        damaged.examples.last().unwrap().reason,
        "blue has the row, green does not",
        "{damaged:#?}"
    );
}

#[test]
fn on_hbase_a_delete_after_the_compare_point_is_lag_not_a_mismatch() {
    // Each store gets its own emulator: `meta` holds one watermark per name.
    let emulators: std::sync::Mutex<Vec<HbaseEmulator>> = Default::default();
    let open = |name: &str| -> Box<dyn Store> {
        let hbase = HbaseEmulator::start();
        let config = HbaseConfig {
            thrift: hbase.addr(),
            tables: [("messages".to_string(), vec!["d".to_string()])].into(),
            max_versions: None,
            pool: None,
            timeout: None,
            retry_for: None,
            batch_rows: None,
            fed_by: None,
        };
        let store = HbaseStore::open(name, &config).unwrap();
        emulators.lock().unwrap().push(hbase);
        Box::new(store)
    };
    // Over Thrift1, a read as of a time applies delete markers newer than it.
    tells_lag_from_damage(&open, true);
}

#[test]
fn on_sqlite_a_delete_after_the_compare_point_is_lag_not_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    let open = |name: &str| -> Box<dyn Store> {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.path().join(format!("{name}-{i}.sqlite"));
        Box::new(SqliteStore::open(name, &path, SqliteSync::Normal).unwrap())
    };
    // SQLite keeps every version: as of the compare point, `b` is there.
    tells_lag_from_damage(&open, false);
}

/// A damaged green (missing rows, changed cells, an extra row) compared
/// twice through the CLI: once straight through, once killed (`kill -9`)
/// midway and run again. The second run resumes from the saved progress
/// and writes the same report.
#[test]
fn a_compare_killed_midway_resumes_to_the_same_report() {
    killed_midway_resumes_to_the_same_report(1);
}

/// The same, with the keys split in two ranges compared at once: each
/// resumes from its own progress, in the ranges and at the point saved.
#[test]
fn a_parallel_compare_killed_midway_resumes_to_the_same_report() {
    killed_midway_resumes_to_the_same_report(2);
}

fn killed_midway_resumes_to_the_same_report(parallel: usize) {
    use std::process::{Command, Stdio};
    use std::time::Instant;
    use switchyard_tests::cli::runner_bin;

    let dir = tempfile::tempdir().unwrap();
    damaged_pair(dir.path());
    let workflow = |name: &str| {
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &file,
            format!(
                "[workflow]\nname = \"{name}\"\n[vars]\nrate = 1000000\n\
                 [store.blue]\nkind = \"sqlite\"\npath = \"blue.sqlite\"\n\
                 [store.green]\nkind = \"sqlite\"\npath = \"green.sqlite\"\n\
                 [[step]]\nid = \"compare\"\nkind = \"compare\"\nblue = \"blue\"\ngreen = \"green\"\n\
                 tables = [\"messages\"]\nbatch_size = 100\nrate = \"${{rate}}\"\nmax_mismatches = 1000\n\
                 recheck_after = \"10ms\"\nparallel = {parallel}\n"
            ),
        )
        .unwrap();
        file
    };
    let exec = |file: &std::path::Path, extra: &[&str]| {
        Command::new(runner_bin())
            .args(["exec", file.to_str().unwrap(), "--no-progress"])
            .args(extra)
            .env("RUST_LOG", "info")
            .output()
            .unwrap()
    };
    let report = |name: &str| -> serde_json::Value {
        let path = dir
            .path()
            .join(format!(".switchyard/{name}/compare-compare.json"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };

    let straight = workflow("straight");
    assert!(exec(&straight, &[]).status.success());
    let expected = report("straight");
    assert_eq!(expected["mismatched"], 9, "{expected:#}");
    assert_eq!(expected["only_blue"], 12, "{expected:#}");
    assert_eq!(expected["only_green"], 1, "{expected:#}");

    // 1,500 keys a second: the 6,000 keys take 4 s, saved every 2 s.
    let killed = workflow("killed");
    let progress = dir.path().join(if parallel > 1 {
        ".switchyard/killed/compare-compare.progress-0.json"
    } else {
        ".switchyard/killed/compare-compare.progress.json"
    });
    let mut child = Command::new(runner_bin())
        .args([
            "exec",
            killed.to_str().unwrap(),
            "--no-progress",
            "--var",
            "rate=1500",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let partial = loop {
        let saved: serde_json::Value = std::fs::read(&progress)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if saved["report"]["keys"].as_u64().unwrap_or(0) > 0 {
            break saved["report"]["keys"].as_u64().unwrap();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the compare ended before it was killed"
        );
        assert!(Instant::now() < deadline, "no progress was ever saved");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(partial < 6001, "killed after {partial} keys");

    let resumed = exec(&killed, &["--var", "rate=1500"]);
    let logged = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{logged}");
    assert!(logged.contains("resuming the compare"), "{logged}");
    assert_eq!(report("killed"), expected);
    assert!(!progress.exists(), "the progress file outlived the compare");
    let left: Vec<_> = std::fs::read_dir(dir.path().join(".switchyard/killed"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("progress") || n.contains("ranges"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A `touched` compare reads only the keys the replay wrote since its last
/// pass: it finds damage to those keys, leaves the rest to a full compare,
/// counts the keys written again after the compare point, and on its next
/// pass reads only what the replay wrote since.
#[test]
fn a_touched_compare_reads_the_keys_the_replay_wrote_since_its_last_pass() {
    use switchyard_runner::sample::{ChatSample, write_chat};
    use switchyard_tests::cli::Test;
    use switchyard_tests::plugins::wasm;

    let head = r#"[workflow]
name = "touched"

[source.head]
kind = "file"
path = "head.ndjson"

[source.log]
kind = "file"
path = "events.ndjson"

[store.blue]
kind = "sqlite"
path = "blue.sqlite"
tables = ["messages"]

[store.green]
kind = "sqlite"
path = "green.sqlite"
tables = ["messages"]

[plugin.rmu]
wasm = "TRANSFORM"
config = { writer = "rmu" }

[plugin.rmu2]
wasm = "TRANSFORM"
config = { writer = "rmu2" }

[plugin.check]
wasm = "CHECK"
config = { ignore = "m:writer" }

# Blue has seen less of the log than green will: the compare point is
# blue's, and green's later writes are newer than it.
[[step]]
id = "feed-blue"
kind = "replay"
source = "head"
transform = "rmu"
into = "blue"

[[step]]
id = "restore-green"
kind = "restore"
from = "blue"
into = "green"
as_of = "watermark - 1h"

[[step]]
id = "replay-green"
kind = "replay"
source = "log"
transform = "rmu2"
into = "green"
start = "restore - 10m"
record_touched = true
"#
    .replace(
        "TRANSFORM",
        &wasm("plugins/chat-transform").display().to_string(),
    )
    .replace("CHECK", &wasm("plugins/chat-check").display().to_string());
    let compares = r#"
[[step]]
id = "compare-touched"
kind = "compare"
mode = "touched"
touched_by = "replay-green"
blue = "blue"
green = "green"
tables = ["messages"]
check = "check"
recheck_after = "0s"
max_mismatches = ALLOWED

[[step]]
id = "compare-full"
kind = "compare"
blue = "blue"
green = "green"
tables = ["messages"]
check = "check"
recheck_after = "0s"
max_mismatches = 2
"#;
    let test = Test::new().workflow(&head);
    let events = test.dir().join("events.ndjson");
    write_chat(
        &ChatSample {
            events: 3000,
            ..ChatSample::default()
        },
        &events,
    )
    .unwrap();
    let text = std::fs::read_to_string(&events).unwrap();
    let first: String = text.lines().take(2500).map(|l| format!("{l}\n")).collect();
    std::fs::write(test.dir().join("head.ndjson"), first).unwrap();
    test.run_args(&["exec", "workflow.toml", "--no-progress"])
        .success();

    // The keys the replay wrote, and blue's watermark: the compare point.
    let log = std::fs::read_to_string(
        test.dir()
            .join(".switchyard/touched/touched-replay-green.ndjson"),
    )
    .unwrap();
    let written: Vec<(Vec<u8>, u64)> = log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let hex = v["key"].as_str().unwrap();
            let key = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (key, v["version"].as_u64().unwrap())
        })
        .collect();
    let mut blue =
        SqliteStore::open("blue", &test.dir().join("blue.sqlite"), SqliteSync::Normal).unwrap();
    let point = blue.watermark().unwrap().unwrap() as u64;
    let touched: std::collections::BTreeSet<&Vec<u8>> = written.iter().map(|(k, _)| k).collect();
    let newer = written
        .iter()
        .filter(|(_, v)| *v > point)
        .map(|(k, _)| k)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert!(newer > 0, "the replay wrote nothing after blue's watermark");

    // Damage green: a key the replay wrote, and one it did not.
    let page = blue
        .scan("messages", &KeyRange::default(), 100_000, Some(point))
        .unwrap();
    let (hit, missed) = (
        page.rows
            .iter()
            .find(|r| touched.contains(&r.row_key))
            .unwrap(),
        page.rows
            .iter()
            .find(|r| !touched.contains(&r.row_key))
            .unwrap(),
    );
    let mut green = SqliteStore::open(
        "green",
        &test.dir().join("green.sqlite"),
        SqliteSync::Normal,
    )
    .unwrap();
    for row in [hit, missed] {
        let cell = row.cells.iter().find(|c| c.qualifier == b"text").unwrap();
        green
            .apply(
                &[RowMutation {
                    table: "messages".into(),
                    row_key: row.row_key.clone().into(),
                    version: cell.version,
                    cells: vec![Cell::put("d", b"text".to_vec(), b"damaged".to_vec())],
                }],
                None,
            )
            .unwrap();
    }
    drop((blue, green));

    let report = |id: &str| -> serde_json::Value {
        let path = test
            .dir()
            .join(format!(".switchyard/touched/compare-{id}.json"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    // With no mismatch allowed, the touched compare fails, and fails again
    // when run again: a failed pass does not move on.
    let strict = compares.replace("ALLOWED", "0");
    std::fs::write(test.dir().join("workflow.toml"), format!("{head}{strict}")).unwrap();
    for _ in 0..2 {
        test.run_args(&["exec", "workflow.toml", "--no-progress"])
            .expect_code(3);
        let failed = report("compare-touched");
        assert_eq!(failed["keys"], touched.len() as u64, "{failed:#}");
        assert_eq!(failed["mismatched"], 1, "{failed:#}");
    }
    let allowed = compares.replace("ALLOWED", "1");
    std::fs::write(test.dir().join("workflow.toml"), format!("{head}{allowed}")).unwrap();
    let run = test
        .run_args(&["exec", "workflow.toml", "--no-progress"])
        .success();
    let by_touch = report("compare-touched");
    assert_eq!(by_touch["mode"], "touched");
    assert_eq!(by_touch["keys"], touched.len() as u64, "{by_touch:#}");
    assert_eq!(by_touch["mismatched"], 1, "{by_touch:#}");
    assert_eq!(
        by_touch["newer_than_compare_point"], newer as u64,
        "{by_touch:#}"
    );
    let full = report("compare-full");
    assert_eq!(full["mismatched"], 2, "{full:#}");
    assert!(full["keys"].as_u64().unwrap() > touched.len() as u64);
    assert!(
        run.stdout().contains("written after the compare point"),
        "{}",
        run.stdout()
    );

    // The next pass reads what the replay wrote since (nothing) and, once
    // more, the keys written again after the compare point.
    test.run_args(&[
        "exec",
        "workflow.toml",
        "--no-progress",
        "--from",
        "compare-touched",
    ])
    .success();
    assert_eq!(report("compare-touched")["keys"], newer as u64);
}

/// `blue.sqlite` with 6,000 rows and `green.sqlite` damaged: 12 rows
/// missing, 9 changed, 1 extra.
/// `blue.sqlite` and `green.sqlite` in `dir`, opened.
fn sqlite_pair(dir: &std::path::Path) -> (SqliteStore, SqliteStore) {
    let open = |name: &str| {
        SqliteStore::open(
            name,
            &dir.join(format!("{name}.sqlite")),
            SqliteSync::Normal,
        )
        .unwrap()
    };
    (open("blue"), open("green"))
}

fn damaged_pair(dir: &std::path::Path) {
    let (mut blue, mut green) = sqlite_pair(dir);
    let rows: Vec<RowMutation> = (0..6000).map(|i| put(&format!("k{i:05}"), 5)).collect();
    blue.apply(&rows, Some(10)).unwrap();
    let damaged: Vec<RowMutation> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 500 != 7)
        .map(|(i, r)| {
            let mut r = r.clone();
            if i % 700 == 3 {
                r.cells = vec![Cell::put("d", b"text".to_vec(), b"changed".to_vec())];
            }
            r
        })
        .chain([put("k99999", 5)])
        .collect();
    green.apply(&damaged, Some(10)).unwrap();
}

/// A damaged green compared in full mode and in hashed mode (small
/// segments, so the damage lies in a few of many ranges): the same keys
/// found, and the equal ranges counted as matching without their rows
/// being paired.
#[test]
fn a_hashed_compare_finds_what_a_full_compare_finds() {
    use switchyard_tests::cli::Test;
    let test = Test::new();
    damaged_pair(test.dir());
    let reports = compare_in_modes(
        &test,
        &[
            ("full", ""),
            ("hashed", "mode = \"hashed\"\nsegment = 500\nleaf = 16\n"),
        ],
    );
    let (full, hashed) = (&reports[0], &reports[1]);
    assert_eq!(hashed["mode"], "hashed");
    for count in ["keys", "matching", "mismatched", "only_blue", "only_green"] {
        assert_eq!(
            hashed[count], full[count],
            "{count}: {hashed:#} against {full:#}"
        );
    }
    assert_eq!(full["mismatched"], 9);
    assert_eq!(full["only_blue"], 12);
    assert_eq!(full["only_green"], 1);
    let keys = |r: &serde_json::Value| -> Vec<String> {
        r["examples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(keys(hashed), keys(full));
    // Only the ranges around the damage were paired row by row.
    assert_eq!(full["paired"], full["keys"]);
    let paired = hashed["paired"].as_u64().unwrap();
    assert!(
        paired * 5 < full["keys"].as_u64().unwrap(),
        "{paired} of {} keys paired",
        full["keys"]
    );
}

/// The modes that read every key, and a sample (of most of the keys, so the
/// damage is in it), each as the lines that set it.
const MODES: [(&str, &str); 4] = [
    ("full", "list_differences = true\n"),
    ("parallel", "parallel = 3\nlist_differences = true\n"),
    ("hashed", "mode = \"hashed\"\nsegment = 300\nleaf = 16\n"),
    (
        "sampled",
        "mode = \"sampled\"\nsample = 2000\nsample_range = 20\n",
    ),
];

/// Runs a compare of `blue.sqlite` and `green.sqlite` in each of `modes`
/// (a name, and the lines that set it) and returns the reports.
fn compare_in_modes(
    test: &switchyard_tests::cli::Test,
    modes: &[(&str, &str)],
) -> Vec<serde_json::Value> {
    modes
        .iter()
        .map(|(name, mode)| {
            std::fs::write(
                test.dir().join(format!("{name}.toml")),
                format!(
                    "[workflow]\nname = \"{name}\"\n\
                     [store.blue]\nkind = \"sqlite\"\npath = \"blue.sqlite\"\n\
                     [store.green]\nkind = \"sqlite\"\npath = \"green.sqlite\"\n\
                     [[step]]\nid = \"compare\"\nkind = \"compare\"\nblue = \"blue\"\ngreen = \"green\"\n\
                     tables = [\"messages\"]\nmax_mismatches = 1000\nrecheck_after = \"0s\"\n{mode}"
                ),
            )
            .unwrap();
            test.run_args(&["exec", &format!("{name}.toml"), "--no-progress"])
                .success();
            let path = test
                .dir()
                .join(format!(".switchyard/{name}/compare-compare.json"));
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
        })
        .collect()
}

/// The keys of a report's list, and the sides' versions in its list of
/// keys written after the compare point.
fn newer_listed(report: &serde_json::Value) -> Vec<(String, Option<u64>, Option<u64>)> {
    report["newer_examples"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| {
                    (
                        n["key"].as_str().unwrap().to_string(),
                        n["blue"].as_u64(),
                        n["green"].as_u64(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A version far past anything either log has reached (the year 2286).
const FUTURE: u64 = 10_000_000_000_000;

/// The `i`th key, spread evenly over `k00000`…`k98359` (a sample draws
/// points evenly over the key space).
fn spread(i: usize) -> String {
    format!("k{:05}", i * 41)
}

/// Green with rows missing, changed and extra, and written at a future
/// version (one new key, one overwriting a good row): each mode finds the
/// damage it can see, and the future writes are listed as newer than the
/// compare point with the side that wrote them, not skipped.
#[test]
fn every_kind_of_damage_is_found_in_every_mode() {
    let test = switchyard_tests::cli::Test::new();
    let dir = test.dir();
    let (mut blue, mut green) = sqlite_pair(dir);
    let rows: Vec<RowMutation> = (0..2400).map(|i| put(&spread(i), 5)).collect();
    blue.apply(&rows, Some(10)).unwrap();
    let mut damaged: Vec<RowMutation> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if i % 400 == 7 {
            continue; // missing: 6 keys
        }
        let mut r = r.clone();
        if i % 500 == 3 {
            // changed: 5 keys
            r.cells = vec![Cell::put("d", b"text".to_vec(), b"changed".to_vec())];
        }
        damaged.push(r);
    }
    damaged.push(put("k99999", 5)); // extra
    damaged.push(put("k77778", FUTURE));
    let mut overwritten = put(&spread(10), FUTURE);
    overwritten.cells = vec![Cell::put(
        "d",
        b"text".to_vec(),
        b"from the future".to_vec(),
    )];
    damaged.push(overwritten);
    green.apply(&damaged, Some(10)).unwrap();
    drop((blue, green));

    let reports = compare_in_modes(&test, &MODES);
    for (report, (mode, _)) in reports.iter().zip(MODES) {
        assert_eq!(report["mode"], mode.replace("parallel", "full"));
        assert_eq!(report["as_of"], 10, "{mode}: {report:#}");
        if mode == "sampled" {
            continue;
        }
        assert_eq!(report["mismatched"], 5, "{mode}: {report:#}");
        assert_eq!(report["only_blue"], 6, "{mode}: {report:#}");
        assert_eq!(report["only_green"], 1, "{mode}: {report:#}");
        assert_eq!(report["newer_than_compare_point"], 2, "{mode}: {report:#}");
        assert_eq!(
            newer_listed(report),
            vec![
                (spread(10), None, Some(FUTURE)),
                ("k77778".to_string(), None, Some(FUTURE)),
            ],
            "{mode}"
        );
    }
    // Every differing key listed, beside the report.
    let listed =
        std::fs::read_to_string(dir.join(".switchyard/full/compare-compare.differences.ndjson"))
            .unwrap();
    let mut categories: Vec<String> = listed
        .lines()
        .map(|l| {
            let line: serde_json::Value = serde_json::from_str(l).unwrap();
            line["category"].as_str().unwrap().to_string()
        })
        .collect();
    categories.sort();
    categories.dedup_by(|a, b| a == b);
    assert_eq!(listed.lines().count(), 12, "{listed}");
    assert_eq!(categories, ["mismatched", "only-blue", "only-green"]);
    // Split in three ranges compared at once: the same report, each range
    // with a fair share of the keys, and the same list.
    let (full, parallel) = (&reports[0], &reports[1]);
    let ranges: Vec<u64> = parallel["ranges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(ranges.len(), 3, "{parallel:#}");
    assert!(ranges.iter().all(|n| *n > 2401 / 6), "{ranges:?}");
    assert_eq!(ranges.iter().sum::<u64>(), full["keys"].as_u64().unwrap());
    let mut without_ranges = parallel.clone();
    without_ranges.as_object_mut().unwrap().remove("ranges");
    assert_eq!(&without_ranges, full);
    assert_eq!(
        std::fs::read_to_string(
            dir.join(".switchyard/parallel/compare-compare.differences.ndjson")
        )
        .unwrap(),
        listed
    );
    // The sample finds damage in what it drew, nothing that is not damage,
    // and says what it shows.
    let sampled = &reports[3];
    let differing = |r: &serde_json::Value| {
        ["mismatched", "only_blue", "only_green"]
            .iter()
            .map(|c| r[c].as_u64().unwrap())
            .sum::<u64>()
    };
    let found = differing(sampled);
    assert!(found > 0, "{sampled:#}");
    let full_keys: Vec<&serde_json::Value> = full["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["key"])
        .collect();
    for e in sampled["examples"].as_array().unwrap() {
        assert!(full_keys.contains(&&e["key"]), "{e:#} is no damage");
    }
    let sample = &sampled["sample"];
    assert_eq!(sample["keys"], sampled["keys"]);
    assert_eq!(
        sampled["keys"], 2000,
        "the whole sample is drawn: {sample:#}"
    );
    assert!(
        sample["upper_bound"].as_f64().unwrap() > found as f64 / sample["keys"].as_f64().unwrap(),
        "{sample:#}"
    );
    assert!(
        sample["words"].as_str().unwrap().contains("95% confidence"),
        "{sample:#}"
    );
}

/// Green behind blue, with no damage: blue wrote new keys, overwrote one and
/// deleted one after where green stands. In every mode nothing differs, and
/// blue's later writes are counted as newer than the compare point.
#[test]
fn lag_alone_is_no_mismatch_in_any_mode() {
    let test = switchyard_tests::cli::Test::new();
    let dir = test.dir();
    let (mut blue, mut green) = sqlite_pair(dir);
    let rows: Vec<RowMutation> = (0..2400).map(|i| put(&spread(i), 5)).collect();
    blue.apply(&rows, Some(10)).unwrap();
    green.apply(&rows, Some(10)).unwrap();
    let mut later: Vec<RowMutation> = (2400..2600).map(|i| put(&spread(i), 15)).collect();
    let mut overwritten = put(&spread(50), 15);
    overwritten.cells = vec![Cell::put("d", b"text".to_vec(), b"newer".to_vec())];
    later.push(overwritten);
    later.push(delete(&spread(60), 15));
    blue.apply(&later, Some(20)).unwrap();
    drop((blue, green));

    let reports = compare_in_modes(&test, &MODES);
    for (report, (mode, _)) in reports.iter().zip(MODES) {
        assert_eq!(report["as_of"], 10, "{mode}: {report:#}");
        for count in ["mismatched", "only_blue", "only_green", "lagging"] {
            assert_eq!(report[count], 0, "{mode} {count}: {report:#}");
        }
        let newer = report["newer_than_compare_point"].as_u64().unwrap();
        if mode == "sampled" {
            // Only the drawn keys are asked, as they stand now: a delete
            // leaves nothing to see.
            assert!(newer <= 201, "{mode}: {report:#}");
            continue;
        }
        assert_eq!(newer, 202, "{mode}: {report:#}");
        let listed = newer_listed(report);
        assert_eq!(listed.len(), 100, "{mode}: the first `examples`");
        assert_eq!(listed[0], (spread(50), Some(15), None));
        assert_eq!(listed[1], (spread(60), Some(15), None));
    }
}
