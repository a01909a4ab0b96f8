//! `just bench` (or `cargo bench -p switchyard-tests --bench kafka`):
//! replay from a Kafka-protocol broker through the WebAssembly chat
//! transform, run the way users run it — `runner exec` of a workflow, the
//! release build — against baselines measured in the same run. No
//! assertions: numbers for people to read.
//!
//! 1. Broker → WASM → `null` store vs a bare rdkafka consumer reading the
//!    same topic from the same broker (assign every partition from the
//!    beginning, poll to the high watermark, read each payload).
//! 2. Broker → WASM → `hbase` store (the in-process Thrift1 emulator).
//! 3. The runner's peak memory (VmHWM) replaying a backlog into the `null`
//!    store vs a backlog five times as long: it should stay flat.
//!
//! The broker is Tansu with SQLite storage.
//! Each size of log is produced once, into its own topic.
//!
//! Sizes, from the environment:
//! - `SWITCHYARD_BENCH_EVENTS`: the throughput topic (default 1,000,000);
//! - `SWITCHYARD_BENCH_HBASE_EVENTS`: events replayed into HBase, the last
//!   ones of the same topic (default all of them; `0` skips it);
//! - `SWITCHYARD_BENCH_MEMORY_EVENTS`: the two backlogs of the memory
//!   comparison, `SMALL,LARGE` (default `1000000,5000000`: with the rest,
//!   about six minutes on two cores), or `0` to skip it;
//! - `SWITCHYARD_BENCH_ROUNDS`: runs of each throughput figure, the best
//!   kept (default 2);
//! - `SWITCHYARD_BENCH_BATCH`: the replay's `batch_size` (default the
//!   runner's own, 1000);
//! - `SWITCHYARD_BENCH_CLIENT`: librdkafka settings for the runner's
//!   source, `key=value,key=value`, to try fetch settings (default none);
//! - `SWITCHYARD_BENCH_KEEP=1`: keep each run's folder (workflow, runner
//!   log) and print where;
//! - `SWITCHYARD_BENCH_RUNNER`: a `runner` executable to measure instead
//!   of building this one (to compare two builds).

#[path = "kafka/measure.rs"]
mod measure;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use switchyard_runner::sample::ChatSample;
use switchyard_tests::broker::Broker;
use switchyard_tests::hbase::HbaseEmulator;
use switchyard_tests::plugins::{repo_root, wasm};

use measure::{Exec, Row, Table};

const PARTITIONS: u64 = 4;

fn main() {
    let events = env_u64("SWITCHYARD_BENCH_EVENTS", 1_000_000);
    let hbase_events = env_u64("SWITCHYARD_BENCH_HBASE_EVENTS", events).min(events);
    let memory = env_sizes("SWITCHYARD_BENCH_MEMORY_EVENTS", (1_000_000, 5_000_000));
    let rounds = env_u64("SWITCHYARD_BENCH_ROUNDS", 2).max(1) as usize;
    let whole = Instant::now();

    let runner = match std::env::var_os("SWITCHYARD_BENCH_RUNNER") {
        Some(path) => PathBuf::from(path),
        None => phase("build the runner (release)", build_runner),
    };
    let plugin = phase("build the chat transform (wasm32-wasip2)", || {
        wasm("plugins/chat-transform")
    });
    let broker = phase("start Tansu (SQLite storage)", Broker::start);
    let mut sizes = vec![events];
    if let Some((small, large)) = memory {
        sizes.extend([small, large]);
    }
    sizes.sort_unstable();
    sizes.dedup();
    let mut topics = BTreeMap::new();
    for n in sizes {
        let topic = format!("chat-{n}");
        phase(&format!("produce {n} chat events into `{topic}`"), || {
            broker.create_topic(&topic, PARTITIONS as u32);
            broker.produce_chat(
                &topic,
                &ChatSample {
                    events: n,
                    partitions: PARTITIONS,
                    ..ChatSample::default()
                },
            );
        });
        topics.insert(n, topic);
    }
    let mut scratch = tempfile::tempdir().expect("temp dir");
    if std::env::var_os("SWITCHYARD_BENCH_KEEP").is_some() {
        scratch.disable_cleanup(true);
        eprintln!("runs are kept in {}", scratch.path().display());
    }
    let bench = Bench {
        runner,
        plugin,
        brokers: broker.addr(),
        broker_pid: broker.pid().expect("the broker runs"),
        client: client_table(&std::env::var("SWITCHYARD_BENCH_CLIENT").unwrap_or_default()),
        batch: match std::env::var_os("SWITCHYARD_BENCH_BATCH") {
            Some(_) => format!(
                "batch_size = {}",
                env_u64("SWITCHYARD_BENCH_BATCH", 1000).max(1)
            ),
            None => String::new(),
        },
        dir: scratch.path().to_path_buf(),
    };

    let mut table = Table::default();
    let topic = &topics[&events];
    let [raw, null, fixed] = against_raw(&bench, topic, events, rounds);
    let hbase = into_hbase(&bench, topic, events, hbase_events).map(|r| r.ratio(&raw, "raw"));
    table.extend([raw, null, fixed]);
    table.extend(hbase);
    if let Some((small, large)) = memory {
        table.extend(memory_by_backlog(&bench, &topics, small, large));
    }

    println!();
    println!(
        "kafka replay benchmark: Tansu (SQLite storage) on 127.0.0.1, {PARTITIONS} partitions, chat events; raw and null: best of {rounds} alternating rounds"
    );
    print!("{table}");
    println!();
    println!(
        "ratio = baseline seconds / seconds for the same events (1.00 = as fast as the baseline);"
    );
    println!(
        "runner figures are `runner exec` start to finish: process start, plugin load, seek and the end-of-log check included."
    );
    println!("total time {:.0} s", whole.elapsed().as_secs_f64());
}

/// 1. The bare consumer and the replay into the `null` store, rounds
///    alternating so that a burst of other work on the machine weighs on
///    both alike (the best of each is kept), and the replay's fixed cost
///    (an empty backlog).
fn against_raw(bench: &Bench, topic: &str, events: u64, rounds: usize) -> [Row; 3] {
    let (mut raw, mut null) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        raw.push(phase(
            &format!("raw rdkafka consume, round {round}/{rounds}"),
            || {
                let broker_before = measure::process_cpu(bench.broker_pid);
                let (took, cpu) = raw_consume(&bench.brokers, topic, events);
                let broker = measure::process_cpu(bench.broker_pid) - broker_before;
                (took, cpu, broker)
            },
        ));
        null.push(phase(
            &format!("runner exec → null, round {round}/{rounds}"),
            || bench.exec(topic, events, None, Sink::Null),
        ));
    }
    let (took, cpu, broker_cpu) = raw.into_iter().min().expect("rounds ≥ 1");
    let raw = Row::new("raw rdkafka consume (baseline)", events, took)
        .cpu(cpu)
        .broker_cpu(broker_cpu);
    let null = null.into_iter().min_by_key(|e| e.took).expect("rounds ≥ 1");
    let null = Row::exec("runner exec: kafka → wasm → null", &null).ratio(&raw, "raw");
    let startup = phase("runner exec → null, nothing to read", || {
        bench.exec(topic, events, Some(0), Sink::Null)
    });
    let startup = Row::exec("  fixed cost (empty backlog)", &startup);
    [raw, null, startup]
}

/// 2. The replay into the `hbase` store (the emulator, in this process).
fn into_hbase(bench: &Bench, topic: &str, events: u64, replayed: u64) -> Option<Row> {
    if replayed == 0 {
        return None;
    }
    let hbase = HbaseEmulator::start();
    let run = phase("runner exec → hbase", || {
        bench.exec(topic, events, Some(replayed), Sink::Hbase(hbase.addr()))
    });
    Some(Row::exec("runner exec: kafka → wasm → hbase", &run))
}

/// 3. Peak memory replaying a short backlog and a long one.
fn memory_by_backlog(
    bench: &Bench,
    topics: &BTreeMap<u64, String>,
    small: u64,
    large: u64,
) -> [Row; 2] {
    let [small, large] = [small, large].map(|n| {
        let run = phase(&format!("runner exec → null, {n}-event backlog"), || {
            bench.exec(&topics[&n], n, None, Sink::Null)
        });
        Row::exec("runner exec: kafka → wasm → null", &run)
    });
    let large = large.rss_ratio(&small);
    [small, large]
}

/// Where a replay writes.
enum Sink {
    Null,
    Hbase(String),
}

/// What every `runner exec` shares.
struct Bench {
    runner: PathBuf,
    plugin: PathBuf,
    brokers: String,
    broker_pid: u32,
    /// Extra librdkafka settings of the source, as a TOML table.
    client: String,
    /// The step's `batch_size` line, if set.
    batch: String,
    dir: PathBuf,
}

impl Bench {
    /// Replays `topic` (of `size` events) to its end through a workflow of
    /// its own: all of it, or only its last `limit` events (`start_offsets`);
    /// checks it read them all.
    fn exec(&self, topic: &str, size: u64, limit: Option<u64>, sink: Sink) -> Exec {
        static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = self.dir.join(format!("run-{run}"));
        std::fs::create_dir_all(&dir).expect("run dir");
        let store = match &sink {
            Sink::Null => "kind = \"null\"\ntables = [\"messages\"]".to_string(),
            Sink::Hbase(addr) => {
                format!(
                    "kind = \"hbase\"\nthrift = \"{addr}\"\ntables = {{ messages = [\"d\", \"m\"] }}"
                )
            }
        };
        let start = match limit {
            None => "start = \"earliest\"".to_string(),
            Some(0) => "start = \"latest\"".to_string(),
            Some(n) => skip_to(&self.brokers, topic, n),
        };
        let text = format!(
            r#"[workflow]
name = "bench-{run}"

[source.chat]
kind = "kafka"
brokers = "{brokers}"
topic = "{topic}"
client = {client}

[store.sink]
{store}

[plugin.rmu2]
wasm = "{wasm}"
config = {{ table = "messages", writer = "rmu2" }}

[[step]]
id = "replay"
kind = "replay"
source = "chat"
transform = "rmu2"
into = "sink"
until = "end"
{start}
{batch}
"#,
            brokers = self.brokers,
            client = self.client,
            batch = self.batch,
            wasm = self.plugin.display(),
        );
        let file = dir.join("workflow.toml");
        std::fs::write(&file, text).expect("workflow");
        let broker_before = measure::process_cpu(self.broker_pid);
        let mut run = measure::exec(&self.runner, &file, &dir.join("state"));
        run.broker_cpu = Some(measure::process_cpu(self.broker_pid) - broker_before);
        assert_eq!(
            run.events,
            limit.unwrap_or(size),
            "the replay of `{topic}` in {} read every event",
            dir.display()
        );
        run
    }
}

/// `key=value,key=value` as a TOML inline table.
fn client_table(settings: &str) -> String {
    let pairs: Vec<String> = settings
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let (k, v) = s
                .split_once('=')
                .unwrap_or_else(|| panic!("SWITCHYARD_BENCH_CLIENT: `{s}` is not key=value"));
            format!("{:?} = {:?}", k.trim(), v.trim())
        })
        .collect();
    format!("{{ {} }}", pairs.join(", "))
}

/// `start_offsets` that leave `n` events of `topic` to read, spread over
/// its partitions as they lie: each partition starts `n · its share`
/// before its end.
fn skip_to(brokers: &str, topic: &str, n: u64) -> String {
    let ends = ends(&consumer(brokers), topic);
    let total: i64 = ends.values().sum();
    let mut left = n as i64;
    let mut out = String::from("start_offsets = {");
    for (i, (p, end)) in ends.iter().enumerate() {
        let take = if i + 1 == ends.len() {
            left
        } else {
            (n as i64 * end / total.max(1)).min(left)
        };
        left -= take;
        out.push_str(&format!(" \"{p}\" = {},", (end - take).max(0)));
    }
    out.pop();
    out.push_str(" }");
    out
}

fn consumer(brokers: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "switchyard-bench-raw")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// The high watermark of every partition of `topic`.
fn ends(consumer: &BaseConsumer, topic: &str) -> BTreeMap<i32, i64> {
    (0..PARTITIONS as i32)
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .expect("watermarks");
            (p, high)
        })
        .collect()
}

/// The baseline: a bare consumer reads the whole topic, start to finish.
fn raw_consume(brokers: &str, topic: &str, expected: u64) -> (Duration, Duration) {
    let cpu_before = measure::cpu_times().0;
    let started = Instant::now();
    let consumer = consumer(brokers);
    let mut left = ends(&consumer, topic);
    let mut tpl = TopicPartitionList::new();
    for p in left.keys() {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    left.retain(|_, end| *end > 0);
    let (mut n, mut sum) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(600);
    while !left.is_empty() {
        assert!(Instant::now() < deadline, "raw consume stalled at {n}");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                n += 1;
                let payload = m.payload().unwrap_or_default();
                sum = payload
                    .iter()
                    .fold(sum, |s, b| s.wrapping_add(u64::from(*b)));
                if left
                    .get(&m.partition())
                    .is_some_and(|end| m.offset() + 1 >= *end)
                {
                    left.remove(&m.partition());
                }
            }
            Some(Err(e)) => panic!("raw consume: {e}"),
            None => {}
        }
    }
    std::hint::black_box(sum);
    assert_eq!(n, expected, "raw consume read every event once");
    let took = started.elapsed();
    drop(consumer);
    (took, measure::cpu_times().0.saturating_sub(cpu_before))
}

/// Builds `runner` in release and returns its path.
fn build_runner() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--release", "--bin", "runner"])
        .current_dir(repo_root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the runner failed");
    // target/release/deps/kafka-… → target/release/runner
    std::env::current_exe()
        .expect("bench exe path")
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("runner")
}

/// Runs one phase of the benchmark, printing what it is and how long it took.
fn phase<T>(what: &str, f: impl FnOnce() -> T) -> T {
    eprintln!("… {what}");
    let started = Instant::now();
    let out = f();
    eprintln!("  {what}: {:.1} s", started.elapsed().as_secs_f64());
    out
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name} = `{v}` is not a number")),
        Err(_) => default,
    }
}

fn env_sizes(name: &str, default: (u64, u64)) -> Option<(u64, u64)> {
    match std::env::var(name) {
        Ok(v) if v.trim() == "0" => None,
        Ok(v) => {
            let sizes: Vec<u64> = v
                .split(',')
                .map(|s| s.trim().replace('_', "").parse())
                .collect::<Result<_, _>>()
                .unwrap_or_else(|_| panic!("{name} = `{v}` is not SMALL,LARGE"));
            match sizes[..] {
                [small, large] => Some((small, large)),
                _ => panic!("{name} = `{v}` is not SMALL,LARGE"),
            }
        }
        Err(_) => Some(default),
    }
}
