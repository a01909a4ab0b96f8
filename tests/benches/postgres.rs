//! `just bench`: the PostgreSQL store's figures, as ratios against a
//! baseline measured in the same run on the same server. No assertions.
//!
//! 1. Replay of an NDJSON chat log through the WebAssembly transform into
//!    PostgreSQL (every entry kept), end to end through the engine, vs a
//!    raw binary `COPY` of the very rows the replay left, by the same
//!    client into a fresh table of the same schema, in one transaction:
//!    what the store could not beat.
//! 2. The `copy` step from SQLite into PostgreSQL: rows read and written
//!    a second, as they are and through the `chat-copy` row-map plugin.
//!
//! Rounds are interleaved (replay, raw, replay, raw …), each in a fresh
//! database, and the best of each is kept. `SWITCHYARD_BENCH_EVENTS` sets
//! the events (default 100,000), `SWITCHYARD_BENCH_ROUNDS` the rounds
//! (default 3), `SWITCHYARD_BENCH_BATCH` the replay's batch (default
//! 1,000 events); the server is the tests' (`SWITCHYARD_TEST_POSTGRES`).

use std::time::{Duration, Instant};

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use switchyard_runner::engine::{self, ExecOptions, ExecResult};
use switchyard_runner::sample::{ChatSample, write_chat};
use switchyard_runner::workflow::{self, LoadOptions};
use switchyard_tests::plugins::wasm;
use switchyard_tests::postgres::TestDatabase;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let events = env_u64("SWITCHYARD_BENCH_EVENTS", 100_000);
    let rounds = env_u64("SWITCHYARD_BENCH_ROUNDS", 3) as usize;
    // Events a replay batch (and so a transaction) holds.
    let batch = env_u64("SWITCHYARD_BENCH_BATCH", 1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("events.ndjson");
    write_chat(
        &ChatSample {
            events,
            ..ChatSample::default()
        },
        &log,
    )
    .expect("sample");
    let transform = wasm("plugins/chat-transform");
    let mapper = wasm("plugins/chat-copy");
    println!(
        "\n## PostgreSQL: {events} chat events, best of {rounds} interleaved rounds, each in a fresh database\n"
    );

    let (mut replay, mut replay_step, mut raw) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let (mut plain, mut mapped) = (Duration::MAX, Duration::MAX);
    let mut entries = 0usize;
    let mut copied_rows = 0u64;
    for round in 0..rounds {
        // 1. The replay, and the raw COPY of what it left.
        let db = TestDatabase::new();
        let state = dir.path().join(format!("replay-{round}"));
        let text = format!(
            r#"[workflow]
name = "bench"
[source.log]
kind = "file"
path = "{log}"
[store.green]
kind = "postgres"
url = "{url}"
schema = "chat"
tables = ["messages"]
[plugin.t]
wasm = "{transform}"
[[step]]
id = "replay"
kind = "replay"
source = "log"
transform = "t"
into = "green"
batch_size = {batch}
"#,
            log = log.display(),
            url = db.url(),
            transform = transform.display()
        );
        let (whole, step) = exec(dir.path(), &text, state);
        replay = replay.min(whole);
        replay_step = replay_step.min(step);
        let rows = dump(&db);
        entries = rows.len();
        let target = TestDatabase::new();
        raw = raw.min(copy_raw(&target, &rows));

        // 2. The copy step, SQLite → PostgreSQL, plain and mapped.
        let blue = dir.path().join(format!("blue-{round}.sqlite"));
        let state = dir.path().join(format!("feed-{round}"));
        let feed = format!(
            r#"[workflow]
name = "feed"
[source.log]
kind = "file"
path = "{log}"
[store.blue]
kind = "sqlite"
path = "{blue}"
tables = ["messages"]
[plugin.t]
wasm = "{transform}"
[[step]]
id = "feed"
kind = "replay"
source = "log"
transform = "t"
into = "blue"
"#,
            log = log.display(),
            blue = blue.display(),
            transform = transform.display()
        );
        exec(dir.path(), &feed, state);
        for (with_map, best) in [(false, &mut plain), (true, &mut mapped)] {
            let db = TestDatabase::new();
            let state = dir.path().join(format!("copy-{round}-{with_map}"));
            let text = format!(
                r#"[workflow]
name = "copy"
[store.blue]
kind = "sqlite"
path = "{blue}"
tables = ["messages"]
[store.green]
kind = "postgres"
url = "{url}"
schema = "chat"
tables = ["messages"]
[plugin.m]
wasm = "{mapper}"
[[step]]
id = "copy"
kind = "copy"
from = "blue"
into = "green"
{map}
"#,
                blue = blue.display(),
                url = db.url(),
                mapper = mapper.display(),
                map = if with_map { "map = \"m\"" } else { "" }
            );
            let (_, step) = exec(dir.path(), &text, state);
            *best = (*best).min(step);
            copied_rows = db
                .client()
                .query_one("SELECT count(DISTINCT row_key) FROM chat.messages", &[])
                .expect("count")
                .get::<_, i64>(0) as u64;
        }
    }
    let n = events as f64;
    println!(
        "replay, NDJSON file → WASM chat transform → PostgreSQL (every entry kept), batches of {batch} events:"
    );
    println!(
        "  raw binary COPY    {:>10.0} events/s  ({entries} stored entries, the same client, one transaction)",
        n / raw.as_secs_f64()
    );
    println!(
        "  replay             {:>10.0} events/s, step alone {:.0}/s  (ratio to raw COPY {:.2}, step alone {:.2})",
        n / replay.as_secs_f64(),
        n / replay_step.as_secs_f64(),
        raw.as_secs_f64() / replay.as_secs_f64(),
        raw.as_secs_f64() / replay_step.as_secs_f64()
    );
    println!("copy step, SQLite → PostgreSQL, {copied_rows} rows:");
    println!(
        "  as they are        {:>10.0} rows/s",
        copied_rows as f64 / plain.as_secs_f64()
    );
    println!(
        "  through chat-copy  {:>10.0} rows/s  ({:.2} of the plain copy)",
        copied_rows as f64 / mapped.as_secs_f64(),
        plain.as_secs_f64() / mapped.as_secs_f64()
    );
}

/// Runs a workflow to its end: the whole run and its steps' time.
fn exec(dir: &std::path::Path, text: &str, state: std::path::PathBuf) -> (Duration, Duration) {
    let file = dir.join("bench.toml");
    std::fs::write(&file, text).expect("workflow");
    let w = workflow::load(
        &file,
        &LoadOptions {
            state_dir: Some(state),
            ..Default::default()
        },
    )
    .expect("workflow");
    let started = Instant::now();
    let step = match engine::exec(w, &ExecOptions::default()) {
        Ok(ExecResult::Completed(report)) => report.steps.iter().map(|s| s.elapsed).sum(),
        other => panic!("the run did not complete: {other:?}"),
    };
    (started.elapsed(), step)
}

/// One stored entry: row key, family, qualifier, kind, version, value.
type Entry = (Vec<u8>, String, Vec<u8>, i16, i64, Vec<u8>);

fn dump(db: &TestDatabase) -> Vec<Entry> {
    db.client()
        .query(
            "SELECT row_key, family, qualifier, kind, version, value FROM chat.messages",
            &[],
        )
        .expect("dump")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

/// Writes `rows` with one binary COPY into a table of the store's schema.
fn copy_raw(db: &TestDatabase, rows: &[Entry]) -> Duration {
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE SCHEMA chat;
             CREATE TABLE chat.messages (
                row_key bytea NOT NULL, family text NOT NULL, qualifier bytea NOT NULL,
                kind smallint NOT NULL, version bigint NOT NULL, value bytea NOT NULL,
                PRIMARY KEY (row_key, family, qualifier, kind, version))",
        )
        .expect("schema");
    let started = Instant::now();
    let mut tx = client.transaction().expect("transaction");
    let sink = tx
        .copy_in("COPY chat.messages (row_key, family, qualifier, kind, version, value) FROM STDIN BINARY")
        .expect("copy");
    let mut writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::BYTEA,
            Type::TEXT,
            Type::BYTEA,
            Type::INT2,
            Type::INT8,
            Type::BYTEA,
        ],
    );
    for (k, f, q, kind, v, value) in rows {
        writer.write(&[k, f, q, kind, v, value]).expect("row");
    }
    writer.finish().expect("finish");
    tx.commit().expect("commit");
    started.elapsed()
}
