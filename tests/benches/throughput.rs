//! `just bench`: throughput figures and ratios against a baseline measured
//! in the same run. No assertions: numbers for people to read.
//!
//! 1. The chat transform through WebAssembly vs the same function compiled
//!    natively, on the same events, in thread CPU time, rounds interleaved:
//!    natively as a bare function, and natively through the same path as
//!    the sandbox's (events packed by the host and copied in, the SDK's
//!    batch loop, the answer copied out and unpacked into runner types);
//!    WebAssembly in batches of 1, 100, 1,000 and 10,000 events.
//! 2. Replay of an NDJSON file into SQLite through the WebAssembly
//!    transform, end to end through the engine, vs reading and parsing the
//!    same file alone, and vs a raw bulk insert of the rows the replay left
//!    into the same schema in one transaction.
//! 3. The same replay into HBase (the Thrift1 emulator, in this process)
//!    vs a raw loop of the very `mutateRowsTs` calls the store makes for
//!    the same rows, over the same pool of connections.
//! 4. Loading the chat transform: compiling it vs reading it back from the
//!    cache of compiled plugins.

use std::time::{Duration, Instant};

use switchyard_runner::engine::{self, ExecOptions, ExecResult};
use switchyard_runner::model::{Event, Mutations};
use switchyard_runner::plugin::contract::Transform;
use switchyard_runner::plugin::instance::Instance;
use switchyard_runner::plugin::transform::pack;
use switchyard_runner::plugin::unpack::{Index, Packed, Tally, unpack};
use switchyard_runner::plugin::{
    Grants, Limits, PluginEngine, PluginSource, PluginSpec, TransformPlugin,
};
use switchyard_runner::sample::{ChatSample, write_chat};
use switchyard_runner::source::file::{DEFAULT_MAX_EVENT, FileSource};
use switchyard_runner::source::{BatchLimit, Source};
use switchyard_runner::steps::replay::DEFAULT_BATCH_BYTES;
use switchyard_runner::workflow::{self, LoadOptions};
use switchyard_tests::plugins::wasm;

const EVENTS: u64 = 200_000;
const BATCH: usize = 1000;
const ROUNDS: usize = 3;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("events.ndjson");
    write_chat(
        &ChatSample {
            events: EVENTS,
            ..ChatSample::default()
        },
        &log,
    )
    .expect("sample");
    let events = read_all(&log);
    println!(
        "switchyard benchmarks: {} chat events, batches of {BATCH}, best of {ROUNDS} rounds",
        events.len()
    );
    println!();
    transform_wasm_vs_native(&events);
    println!();
    replay_vs_read(&log, dir.path());
    println!();
    replay_into_hbase_vs_raw(&events, dir.path());
    println!();
    compile_cold_vs_cached(dir.path());
    println!();
    println!("peak memory of this process: {}", peak_rss());
}

fn transform_wasm_vs_native(events: &[Event]) {
    let config = switchyard_sdk::Config::from_pairs([("table", "messages"), ("writer", "bench")]);
    let sdk_events: Vec<switchyard_sdk::Event> = events
        .iter()
        .map(|e| switchyard_sdk::Event {
            partition: e.partition,
            offset: e.offset,
            timestamp_ms: e.timestamp_ms,
            key: e.key.clone(),
            value: e.value.clone(),
            headers: vec![],
        })
        .collect();
    let native = |batch: usize| {
        let mut n = 0;
        for chunk in sdk_events.chunks(batch) {
            for e in chunk {
                n += chat_transform::to_rows(e, &config)
                    .expect("native transform")
                    .len();
            }
        }
        n
    };
    // What the sandbox path does around the function, done natively: the
    // copies stand for wasmtime's copies into and out of the sandbox.
    let output = Limits::default().output;
    let same_path = |batch: usize| {
        let mut n = 0;
        for chunk in events.chunks(batch) {
            let packed = pack(chunk);
            let (bytes, words) = (packed.bytes.clone(), packed.words.clone());
            let answer = switchyard_sdk::__native::transform(
                &bytes,
                &words,
                &config,
                chat_transform::to_rows,
            );
            let back = Packed {
                bytes: answer.bytes.clone(),
                index: Index::Words(answer.words.clone()),
                refused: Vec::new(),
            };
            assert!(answer.refused.is_empty(), "every event accepted");
            let mut tally = Tally::new(output, "native", None);
            n += unpack(back, chunk.len(), &mut tally)
                .expect("unpack")
                .rows
                .len();
        }
        n
    };

    let engine = PluginEngine::new().expect("engine");
    let load = |krate: &str, config: Vec<(String, String)>| {
        TransformPlugin::load(
            &engine,
            &PluginSpec {
                name: krate.into(),
                source: PluginSource::Wasm(wasm(krate)),
                sha256: None,
                limits: Limits::default(),
                grants: Grants::default(),
                config,
            },
        )
        .expect("load plugin")
        .instance()
    };
    let mut chat = load(
        "plugins/chat-transform",
        vec![
            ("table".into(), "messages".into()),
            ("writer".into(), "bench".into()),
        ],
    );
    // The same events through a plugin that returns nothing: what crossing
    // the sandbox costs by itself.
    let mut empty = load(
        "tests/plugins/misbehave",
        vec![("mode".into(), "empty".into())],
    );
    let through = |instance: &mut Instance<Transform>, batch: usize| {
        let mut n = 0;
        for chunk in events.chunks(batch) {
            let answer = instance.transform(chunk, None).expect("wasm transform");
            assert!(answer.unpacked.refused.is_empty(), "every event accepted");
            n += answer.unpacked.rows.len();
        }
        n
    };
    // Interleaved: every variant once per round, so a slow spell of the
    // machine hits them all; each keeps its best round of thread CPU time.
    let sizes = [1usize, 100, BATCH, 10_000];
    let mut best_native = Duration::MAX;
    let mut best_same_path = Duration::MAX;
    let mut best_wasm = [Duration::MAX; 4];
    let mut best_empty = Duration::MAX;
    for _ in 0..ROUNDS {
        best_native = best_native.min(cpu(|| native(BATCH)));
        best_same_path = best_same_path.min(cpu(|| same_path(BATCH)));
        for (i, size) in sizes.iter().enumerate() {
            best_wasm[i] = best_wasm[i].min(cpu(|| through(&mut chat, *size)));
        }
        best_empty = best_empty.min(cpu(|| through(&mut empty, BATCH)));
    }
    let (native, wasm, boundary) = (best_native, best_wasm[2], best_empty);
    let n = events.len() as f64;
    let per_event = |d: Duration| d.as_secs_f64() * 1e6 / n;
    println!("chat transform, same {} events:", events.len());
    println!(
        "  native   {:>12.0} events/s  {:.2} µs/event  (the bare function)",
        n / native.as_secs_f64(),
        per_event(native)
    );
    println!(
        "  native   {:>12.0} events/s  {:.2} µs/event  (the same path as the sandbox's: packed, copied, unpacked)",
        n / best_same_path.as_secs_f64(),
        per_event(best_same_path)
    );
    println!(
        "  wasm     {:>12.0} events/s  {:.2} µs/event  (through the sandbox, batches of {BATCH})",
        n / wasm.as_secs_f64(),
        per_event(wasm)
    );
    println!(
        "  crossing the sandbox alone (a plugin that returns nothing): {:.2} µs/event",
        per_event(boundary)
    );
    for (size, time) in sizes.iter().zip(best_wasm) {
        println!(
            "  wasm, batches of {size:>6}: {:.2} µs/event ({:.2}× native)",
            per_event(time),
            native.as_secs_f64() / time.as_secs_f64()
        );
    }
    println!(
        "  ratio wasm/native = {:.2} of the same path, {:.2} of the bare function",
        best_same_path.as_secs_f64() / wasm.as_secs_f64(),
        native.as_secs_f64() / wasm.as_secs_f64()
    );
}

fn replay_vs_read(log: &std::path::Path, dir: &std::path::Path) {
    let read = best(|| read_all(log).len());
    let mut replay = ReplayTime::MAX;
    let mut raw = Duration::MAX;
    let mut written: Option<Written> = None;
    for round in 0..ROUNDS {
        let state = dir.join(format!("state-{round}"));
        let store = format!(
            "kind = \"sqlite\"\npath = \"{}/green.sqlite\"\ntables = [\"messages\"]",
            state.display()
        );
        let text = replay_workflow(log, &store);
        replay = replay.min(exec_replay(dir, &text, state));
        // The same final rows, written raw into the same schema in one
        // transaction: what the store itself could not beat.
        let written = written
            .get_or_insert_with(|| Written::read(&dir.join(format!("state-{round}/green.sqlite"))));
        raw = raw.min(written.insert_into(&dir.join(format!("raw-{round}.sqlite"))));
    }
    let rows = written.map_or(0, |w| w.rows());
    let n = EVENTS as f64;
    println!("replay, NDJSON file → WASM chat transform → SQLite (sync = full), {EVENTS} events:");
    println!(
        "  read + parse only  {:>10.0} events/s",
        n / read.as_secs_f64()
    );
    println!(
        "  raw bulk insert    {:>10.0} events/s  ({rows} final rows into the same schema, one transaction, synchronous = FULL)",
        n / raw.as_secs_f64()
    );
    println!("  replay vs raw insert {}", replay.show(n, raw));
    println!("  replay vs read only  {}", replay.show(n, read));
    println!(
        "  (a whole run includes loading the workflow, starting the engine, loading the plugin and opening the store)"
    );
}

/// A workflow that replays `log` through the chat transform into a store
/// with these settings.
fn replay_workflow(log: &std::path::Path, store: &str) -> String {
    format!(
        r#"[workflow]
name = "bench"
[source.log]
kind = "file"
path = "{}"
[store.green]
{store}
[plugin.t]
wasm = "{}"
[[step]]
id = "replay"
kind = "replay"
source = "log"
transform = "t"
into = "green"
"#,
        log.display(),
        wasm("plugins/chat-transform").display()
    )
}

/// The wall-clock time of a replay: the whole `exec` (workflow loaded,
/// engine started, plugin loaded, store opened) and the step alone.
#[derive(Clone, Copy)]
struct ReplayTime {
    whole: Duration,
    step: Duration,
}

impl ReplayTime {
    const MAX: ReplayTime = ReplayTime {
        whole: Duration::MAX,
        step: Duration::MAX,
    };

    fn min(self, other: ReplayTime) -> ReplayTime {
        ReplayTime {
            whole: self.whole.min(other.whole),
            step: self.step.min(other.step),
        }
    }

    /// Events per second, whole and step alone, and both as ratios of a
    /// baseline time for the same events.
    fn show(&self, events: f64, baseline: Duration) -> String {
        format!(
            "{:>10.0} events/s, step alone {:.0}/s  (ratio {:.2}, step alone {:.2})",
            events / self.whole.as_secs_f64(),
            events / self.step.as_secs_f64(),
            baseline.as_secs_f64() / self.whole.as_secs_f64(),
            baseline.as_secs_f64() / self.step.as_secs_f64()
        )
    }
}

/// Runs a workflow to its end.
fn exec_replay(dir: &std::path::Path, text: &str, state: std::path::PathBuf) -> ReplayTime {
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
        other => panic!("replay did not complete: {other:?}"),
    };
    ReplayTime {
        whole: started.elapsed(),
        step,
    }
}

/// Events replayed into HBase: the emulator takes one call per event
/// (each row has its own version), so fewer than into SQLite.
const HBASE_EVENTS: usize = 50_000;

fn replay_into_hbase_vs_raw(events: &[Event], dir: &std::path::Path) {
    use switchyard_runner::store::hbase::{HbaseConfig, HbaseStore, convert, pool::Pool};
    use switchyard_tests::hbase::HbaseEmulator;
    let events = &events[..HBASE_EVENTS.min(events.len())];
    let log = dir.join("hbase-events.ndjson");
    write_chat(
        &ChatSample {
            events: events.len() as u64,
            ..ChatSample::default()
        },
        &log,
    )
    .expect("sample");
    // The rows the replay writes, made beforehand by the same path natively.
    let config = switchyard_sdk::Config::from_pairs([("table", "messages"), ("writer", "rmu")]);
    let events = read_all(&log);
    let mut batches = Vec::new();
    for chunk in events.chunks(BATCH) {
        let packed = pack(chunk);
        let answer = switchyard_sdk::__native::transform(
            &packed.bytes,
            &packed.words,
            &config,
            chat_transform::to_rows,
        );
        let back = Packed {
            bytes: answer.bytes,
            index: Index::Words(answer.words),
            refused: Vec::new(),
        };
        let mut tally = Tally::new(Limits::default().output, "native", None);
        batches.push(unpack(back, chunk.len(), &mut tally).expect("unpack").rows);
    }
    let rows = Mutations::Packed(&batches);
    let calls = convert::calls(rows.rows(), 1000).expect("calls");
    const POOL: usize = 4;
    let mut replay = ReplayTime::MAX;
    let mut raw = Duration::MAX;
    for round in 0..ROUNDS {
        let hbase = HbaseEmulator::start();
        let store = format!(
            "kind = \"hbase\"\nthrift = \"{}\"\ntables = {{ messages = [\"d\", \"m\"] }}\npool = {POOL}",
            hbase.addr()
        );
        let text = replay_workflow(&log, &store);
        replay = replay.min(exec_replay(
            dir,
            &text,
            dir.join(format!("hbase-state-{round}")),
        ));
        // The same calls on a fresh emulator, its table made by the store,
        // sent by as many threads as the pool has connections.
        let hbase = HbaseEmulator::start();
        let cfg = HbaseConfig {
            thrift: hbase.addr(),
            tables: [("messages".to_string(), vec!["d".into(), "m".into()])].into(),
            max_versions: None,
            pool: Some(POOL),
            timeout: None,
            retry_for: None,
            batch_rows: None,
            fed_by: None,
        };
        drop(HbaseStore::open("raw", &cfg).expect("the store creates the table"));
        let pool = Pool::new(
            "raw",
            &hbase.addr(),
            Duration::from_secs(30),
            Duration::ZERO,
            POOL,
        );
        let next = std::sync::atomic::AtomicUsize::new(0);
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..POOL {
                s.spawn(|| {
                    use hbase_thrift::hbase::THbaseSyncClient;
                    while let Some(call) =
                        calls.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        let table = call.table().as_bytes().to_vec();
                        match call {
                            convert::Call::Rows {
                                timestamp, batches, ..
                            } => pool.call("mutateRowsTs", |c| {
                                c.mutate_rows_ts(
                                    table.clone(),
                                    batches.clone(),
                                    *timestamp,
                                    Default::default(),
                                )
                            }),
                            convert::Call::DeleteRow { row, timestamp, .. } => {
                                pool.call("deleteAllRowTs", |c| {
                                    c.delete_all_row_ts(
                                        table.clone(),
                                        row.clone(),
                                        *timestamp,
                                        Default::default(),
                                    )
                                })
                            }
                        }
                        .expect("raw write");
                    }
                });
            }
        });
        raw = raw.min(started.elapsed());
    }
    let n = events.len() as f64;
    println!(
        "replay, NDJSON file → WASM chat transform → HBase (Thrift1 emulator in this process, pool {POOL}), {} events:",
        events.len()
    );
    println!(
        "  raw mutateRowsTs   {:>10.0} events/s  (the same {} calls for {} rows, {POOL} threads on the same pool)",
        n / raw.as_secs_f64(),
        calls.len(),
        rows.len()
    );
    println!("  replay vs raw calls  {}", replay.show(n, raw));
}

/// What a replay left in its SQLite store: the schema and every row.
struct Written {
    tables: Vec<(String, String, Vec<Vec<rusqlite::types::Value>>)>,
}

impl Written {
    fn read(path: &std::path::Path) -> Self {
        let conn = rusqlite::Connection::open(path).expect("replayed store");
        let mut stmt = conn
            .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
            .expect("schema");
        let schema: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("schema")
            .map(|r| r.expect("table"))
            .collect();
        let tables = schema
            .into_iter()
            .map(|(name, sql)| {
                let mut stmt = conn
                    .prepare(&format!("SELECT * FROM \"{name}\""))
                    .expect("rows");
                let columns = stmt.column_count();
                let rows = stmt
                    .query_map([], |r| {
                        (0..columns)
                            .map(|i| r.get::<_, rusqlite::types::Value>(i))
                            .collect()
                    })
                    .expect("rows")
                    .map(|r| r.expect("row"))
                    .collect();
                (name, sql, rows)
            })
            .collect();
        Written { tables }
    }

    fn rows(&self) -> usize {
        self.tables.iter().map(|(_, _, rows)| rows.len()).sum()
    }

    /// Writes every row into a new database at `path`; the time of the
    /// transaction that writes them.
    fn insert_into(&self, path: &std::path::Path) -> Duration {
        let _ = std::fs::remove_file(path);
        let conn = rusqlite::Connection::open(path).expect("raw store");
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .expect("pragmas");
        for (_, sql, _) in &self.tables {
            conn.execute_batch(sql).expect("create");
        }
        let started = Instant::now();
        let tx = conn.unchecked_transaction().expect("begin");
        for (name, _, rows) in &self.tables {
            let Some(first) = rows.first() else { continue };
            let marks: Vec<String> = (1..=first.len()).map(|i| format!("?{i}")).collect();
            let mut insert = tx
                .prepare(&format!(
                    "INSERT INTO \"{name}\" VALUES ({})",
                    marks.join(", ")
                ))
                .expect("insert");
            for row in rows {
                insert
                    .execute(rusqlite::params_from_iter(row.iter()))
                    .expect("row");
            }
        }
        tx.commit().expect("commit");
        started.elapsed()
    }
}

fn read_all(log: &std::path::Path) -> Vec<Event> {
    // Opening reads the file once to learn its partitions, as a replay does.
    let mut source =
        FileSource::open("log", log, DEFAULT_MAX_EVENT, &Default::default()).expect("open");
    let limit = BatchLimit {
        events: BATCH,
        bytes: DEFAULT_BATCH_BYTES,
    };
    let mut out = Vec::new();
    while let Some(batch) = source.next_batch(limit).expect("read") {
        out.extend(batch.events);
    }
    out
}

fn compile_cold_vs_cached(dir: &std::path::Path) {
    use switchyard_runner::plugin::cache::{CompiledCache, MAX_CACHE_BYTES};
    let bytes = std::fs::read(wasm("plugins/chat-transform")).expect("chat-transform");
    let engine = PluginEngine::new().expect("engine");
    let cache = CompiledCache::new(dir.join("compiled"), MAX_CACHE_BYTES);
    let compile = || wasmtime::component::Component::new(engine.engine(), &bytes);
    let cold = best(|| {
        let _ = cache.clean();
        cache
            .component(engine.engine(), "bench", compile)
            .expect("compile");
        1
    });
    let cached = best(|| {
        cache
            .component(engine.engine(), "bench", compile)
            .expect("cached");
        1
    });
    println!(
        "loading the chat transform ({} KiB component):",
        bytes.len() / 1024
    );
    println!(
        "  compiled          {:>8.1} ms (and stored in the cache)",
        cold.as_secs_f64() * 1e3
    );
    println!("  from the cache    {:>8.1} ms", cached.as_secs_f64() * 1e3);
    println!(
        "  ratio compile/cached = {:.0}",
        cold.as_secs_f64() / cached.as_secs_f64()
    );
}

/// The CPU time this thread spends in `f` (from the scheduler's own
/// count, in nanoseconds: other threads and waits do not count).
fn cpu(f: impl FnOnce() -> usize) -> Duration {
    let before = thread_cpu();
    std::hint::black_box(f());
    thread_cpu().saturating_sub(before)
}

fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// The best time of a few rounds (the first warms caches and code).
fn best(mut f: impl FnMut() -> usize) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        std::hint::black_box(f());
        best = best.min(started.elapsed());
    }
    best
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
