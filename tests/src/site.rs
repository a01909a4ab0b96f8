//! A whole test site for the HBase upgrade: a Tansu broker with the chat
//! topic, blue and green HBase emulators, the old read-model-updater's
//! stand-in that feeds blue (`tests/workflows/rmu-standin.toml`), and
//! `workflows/hbase-upgrade.toml` pointed at all of them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use switchyard_runner::sample::{ChatSample, Counts};

use crate::bounded::Running;
use crate::broker::Broker;
use crate::cli::{Run, Test, runner_bin};
use crate::hbase::HbaseEmulator;
use crate::plugins::repo_root;

/// The topic.
pub const TOPIC: &str = "chat-events";

/// Broker, topic and stores.
pub struct Site {
    /// The broker.
    pub broker: Broker,
    /// The old cluster.
    pub blue: HbaseEmulator,
    /// The new cluster.
    pub green: HbaseEmulator,
    /// Scratch space: state folders live here.
    pub dir: tempfile::TempDir,
}

impl Default for Site {
    fn default() -> Self {
        Self::new()
    }
}

impl Site {
    /// A broker with the topic (4 partitions) and two empty clusters.
    pub fn new() -> Site {
        let broker = Broker::start();
        broker.create_topic(TOPIC, 4);
        Site {
            broker,
            blue: HbaseEmulator::start(),
            green: HbaseEmulator::start(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Produces `events` chat events (seed `seed`), starting at `start_ms`.
    pub fn produce(&self, events: u64, seed: u64, start_ms: i64) -> Counts {
        self.broker.produce_chat(
            TOPIC,
            &ChatSample {
                events,
                seed,
                start_ms,
                ..ChatSample::default()
            },
        )
    }

    /// The `--var` arguments that point a workflow at this site.
    pub fn vars(&self) -> Vec<String> {
        [
            format!("brokers={}", self.broker.addr()),
            format!("topic={TOPIC}"),
            format!("blue_thrift={}", self.blue.addr()),
            format!("green_thrift={}", self.green.addr()),
        ]
        .into_iter()
        .flat_map(|v| ["--var".to_string(), v])
        .collect()
    }

    /// A state folder in the scratch space.
    pub fn state(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The arguments of `runner exec` for a workflow of this site.
    pub fn exec_args(&self, workflow: &Path, state: &str, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "exec".to_string(),
            workflow.display().to_string(),
            "--state".into(),
            self.state(state).display().to_string(),
            "--no-progress".into(),
        ];
        args.extend(self.vars());
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Runs the rmu stand-in to the end of the topic: blue is up to date.
    pub fn feed_blue(&self) -> Run {
        self.feed_blue_of(TOPIC, "messages", "chat-rmu")
    }

    /// Runs the stand-in of another service's updater: `topic` into blue's
    /// `table` (`messages` or `tickets`) in consumer group `group`.
    pub fn feed_blue_of(&self, topic: &str, table: &str, group: &str) -> Run {
        let workflow = repo_root().join("tests/workflows/rmu-standin.toml");
        let state = format!("rmu-{group}");
        let mut args = self.exec_args(&workflow, &state, &["--fresh"]);
        // The stand-in knows only blue.
        if let Some(at) = args.iter().position(|a| a.starts_with("green_thrift=")) {
            args.drain(at - 1..=at);
        }
        for (name, value) in [("topic", topic), ("table", table), ("group", group)] {
            args.extend(["--var".to_string(), format!("{name}={value}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Test::new().args(&args).run().success()
    }

    /// `workflows/hbase-upgrade.toml`.
    pub fn upgrade_workflow() -> PathBuf {
        repo_root().join("workflows/hbase-upgrade.toml")
    }

    /// Runs the upgrade to its end.
    pub fn upgrade(&self, state: &str, extra: &[&str]) -> Run {
        let args = self.exec_args(&Self::upgrade_workflow(), state, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Test::new().args(&args).run()
    }

    /// Starts the upgrade as a child process.
    pub fn spawn_upgrade(&self, state: &str, extra: &[&str]) -> Running {
        crate::bounded::spawn(
            Command::new(runner_bin())
                .args(self.exec_args(&Self::upgrade_workflow(), state, extra))
                .env("RUST_LOG", "warn"),
        )
    }

    /// The saved state of a run, as JSON (`runner status --json`).
    pub fn status(&self, state: &str) -> serde_json::Value {
        let out = crate::bounded::output(
            Command::new(runner_bin())
                .arg("status")
                .arg(Self::upgrade_workflow())
                .arg("--state")
                .arg(self.state(state))
                .arg("--json")
                .args(self.vars()),
            Duration::from_secs(60),
        );
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// Events green's replay acknowledged, over all partitions, as a saved
    /// state (`status`) says.
    pub fn acknowledged(state: &serde_json::Value) -> i64 {
        state["steps"]["replay-green"]["partitions"]
            .as_object()
            .map_or(0, |ps| {
                ps.values().filter_map(|p| p["acked"].as_i64()).sum()
            })
    }

    /// Waits until `done` holds for the saved state, or panics after `limit`.
    pub fn wait_for(
        &self,
        state: &str,
        limit: Duration,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.status(state);
            if done(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "waited {limit:?} for {what}; state: {s:#}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
