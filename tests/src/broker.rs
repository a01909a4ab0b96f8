//! A real Kafka-protocol broker for the tests: Tansu, started on
//! 127.0.0.1 on a free port, installed with `cargo install` the first time
//! it is missing. It keeps its log in SQLite, so it survives a restart on
//! the same port and answers offsets-for-times; or in memory
//! ([`Broker::start_in_memory`]), where Tansu 0.6 answers offsets-for-times
//! with 0 whatever the time — a broker that answers wrong, for the tests
//! of the source's check. Its memory storage also counts batches instead of
//! records in its log end and returns nothing to a fetch from inside a
//! batch, so producers to it send one record a batch.
//! Also a producer of the chat sample, so tests feed the broker the same
//! events the quickstart writes to a file, and a reader of whole topics.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use switchyard_runner::sample::{ChatSample, Counts};

/// A running Tansu broker; stopped on drop.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    in_memory: bool,
    dir: tempfile::TempDir,
}

/// The `tansu` executable: on the PATH, in cargo's bin folder, or
/// installed there now (once per test process; cargo's own lock keeps
/// parallel test processes from installing twice).
pub fn tansu() -> &'static Path {
    static TANSU: OnceLock<PathBuf> = OnceLock::new();
    TANSU.get_or_init(|| {
        let cargo_bin = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
            .expect("HOME or CARGO_HOME is set")
            .join("bin");
        let candidates = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain([cargo_bin.clone()])
            .map(|d| d.join("tansu"));
        if let Some(found) = candidates.into_iter().find(|p| p.is_file()) {
            return found;
        }
        eprintln!("tansu is not installed; installing it (about 10 minutes on 2 cores)");
        let status = Command::new(env!("CARGO"))
            .args([
                "install",
                "tansu",
                "--locked",
                "--features",
                "dynostore,libsql",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo install tansu failed");
        cargo_bin.join("tansu")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Broker {
    /// Starts a broker keeping its log in SQLite.
    pub fn start() -> Broker {
        Self::launched(false)
    }

    /// Starts a broker keeping its log in memory: lost on restart, and
    /// wrong answers to offsets-for-times.
    pub fn start_in_memory() -> Broker {
        Self::launched(true)
    }

    fn launched(in_memory: bool) -> Broker {
        let mut b = Broker {
            child: None,
            port: free_port(),
            in_memory,
            dir: tempfile::tempdir().expect("temp dir"),
        };
        b.launch();
        b
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
            .expect("broker log");
        let child = Command::new(tansu())
            .current_dir(self.dir.path())
            .args([
                "broker",
                "--listener-url",
                &self.url(),
                "--advertised-listener-url",
                &self.url(),
                "--storage-engine",
                if self.in_memory {
                    "memory://tansu/"
                } else {
                    "sqlite://tansu.db"
                },
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.addr()).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {} within 30s; its log: {}",
                self.addr(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the broker logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    /// Kills the broker (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (and, with SQLite, the same log).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Creates a topic.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(tansu())
            .args([
                "topic",
                "create",
                "--broker",
                &self.url(),
                "--partitions",
                &partitions.to_string(),
                name,
            ])
            .output()
            .expect("tansu topic create runs");
        assert!(
            out.status.success(),
            "tansu topic create {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A producer on this broker.
    pub fn producer(&self) -> ThreadedProducer<DefaultProducerContext> {
        ClientConfig::new()
            .set("bootstrap.servers", self.addr())
            .set(
                "batch.num.messages",
                if self.in_memory { "1" } else { "10000" },
            )
            .set("linger.ms", "5")
            .set("acks", "all")
            .set("enable.idempotence", "false")
            .set("message.timeout.ms", "60000")
            .create()
            .expect("producer")
    }

    /// Produces the chat sample into `topic` (the sample's partitions must
    /// exist), each event with its own time; waits until all are acknowledged.
    pub fn produce_chat(&self, topic: &str, sample: &ChatSample) -> Counts {
        let producer = self.producer();
        let counts = switchyard_runner::sample::generate(sample, |e| {
            let value = e.value.to_string();
            let mut record = BaseRecord::to(topic)
                .partition(e.partition)
                .key(&e.key)
                .payload(&value)
                .timestamp(e.timestamp_ms);
            loop {
                match producer.send(record) {
                    Ok(()) => return Ok::<(), String>(()),
                    Err((
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull,
                        ),
                        r,
                    )) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((e, _)) => return Err(e.to_string()),
                }
            }
        })
        .expect("produce");
        producer
            .flush(Duration::from_secs(120))
            .expect("all events acknowledged");
        counts
    }

    /// Produces raw records `(partition, key, value, time)`.
    pub fn produce_raw(&self, topic: &str, records: &[(i32, &str, &[u8], i64)]) {
        let producer = self.producer();
        for (partition, key, value, time) in records {
            producer
                .send(
                    BaseRecord::to(topic)
                        .partition(*partition)
                        .key(*key)
                        .payload(*value)
                        .timestamp(*time),
                )
                .map_err(|(e, _)| e)
                .expect("send");
        }
        producer
            .flush(Duration::from_secs(60))
            .expect("all records acknowledged");
    }
}

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Key, value and time as produced.
    pub key: Option<Vec<u8>>,
    /// The payload.
    pub value: Vec<u8>,
    /// The record time, in ms.
    pub timestamp: Option<i64>,
    /// Headers, values as text.
    pub headers: BTreeMap<String, String>,
}

impl Broker {
    fn consumer(&self) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", self.addr())
            .set("group.id", "switchyard-tests-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .expect("consumer")
    }

    /// The log end of one partition.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> i64 {
        self.consumer()
            .fetch_watermarks(topic, partition, Duration::from_secs(30))
            .expect("watermarks")
            .1
    }

    /// Every record of `topic` (of `partitions` partitions), start to end.
    pub fn consume(&self, topic: &str, partitions: i32) -> Vec<Record> {
        let consumer = self.consumer();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&tpl).expect("assign");
        let mut at_end = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while at_end.len() < partitions as usize {
            assert!(Instant::now() < deadline, "reading `{topic}` took over 60s");
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => out.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().unwrap_or_default().to_vec(),
                    timestamp: m.timestamp().to_millis(),
                    headers: m
                        .headers()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| {
                                    let v = h.value.map(String::from_utf8_lossy);
                                    (h.key.to_string(), v.unwrap_or_default().into_owned())
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }),
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                }
                Some(Err(e)) => panic!("reading `{topic}`: {e}"),
                None => {}
            }
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
