//! Replay semantics on the embedded source and store: idempotent writes,
//! resume after the process is killed, and the error policy for refused
//! events.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_runner::sample::{ChatSample, write_chat};
use switchyard_tests::bounded;
use switchyard_tests::cli::{Test, runner_bin};
use switchyard_tests::plugins::wasm;
use switchyard_tests::stores::dump_sqlite;

/// A replay-only workflow: `events.ndjson` → chat transform → `${store}`.
fn replay_workflow(batch: usize) -> String {
    let wasm = wasm("plugins/chat-transform");
    format!(
        r#"[workflow]
name = "replay-test"

[vars]
store = "green.sqlite"
on_error = "fail"

[source.log]
kind = "file"
path = "events.ndjson"

[store.green]
kind = "sqlite"
path = "${{store}}"
sync = "normal"
tables = ["messages"]

[plugin.t]
wasm = "{}"

[[step]]
id = "replay"
kind = "replay"
source = "log"
transform = "t"
into = "green"
batch_size = {batch}
checkpoint_every = "0s"
on_error = "${{on_error}}"
dead_letter = "dead.ndjson"
"#,
        wasm.display()
    )
}

fn with_events(test: Test, events: u64) -> Test {
    write_chat(
        &ChatSample {
            events,
            ..ChatSample::default()
        },
        &test.dir().join("events.ndjson"),
    )
    .unwrap();
    test
}

#[test]
fn replaying_the_same_events_twice_leaves_the_store_unchanged() {
    let test = with_events(Test::new().workflow(&replay_workflow(500)), 5_000);
    test_args(&test, &["exec", "workflow.toml", "--state", "state-1"]).success();
    let once = dump_sqlite(&test.dir().join("green.sqlite"));
    assert!(!once.is_empty());
    // A second replay of the whole log, with its own fresh state, into the same store.
    test_args(&test, &["exec", "workflow.toml", "--state", "state-2"]).success();
    assert_eq!(dump_sqlite(&test.dir().join("green.sqlite")), once);
}

#[test]
fn a_damaged_checkpoint_in_the_state_file_is_refused_before_any_step_runs() {
    let test = with_events(Test::new().workflow(&replay_workflow(500)), 2_000);
    test_args(&test, &["exec", "workflow.toml"]).success();
    let path = test.dir().join(".switchyard/replay-test/state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    state["steps"]["replay"]["checkpoint"] = "line 7".into();
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    let again = test_args(&test, &["exec", "workflow.toml"]);
    assert_ne!(again.code(), 0);
    assert!(
        again
            .stderr()
            .contains("the saved state of a `replay` step cannot be read"),
        "{}",
        again.stderr()
    );
    let status = bounded::output(
        Command::new(runner_bin())
            .args(["status", "workflow.toml"])
            .current_dir(test.dir()),
        bounded::LIMIT,
    );
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("cannot be read"), "{shown}");
}

#[test]
fn a_replay_killed_midway_resumes_to_the_same_store_as_an_uninterrupted_run() {
    const EVENTS: u64 = 60_000;
    let reference = with_events(Test::new().workflow(&replay_workflow(100)), EVENTS);
    test_args(&reference, &["exec", "workflow.toml"]).success();
    let expected = dump_sqlite(&reference.dir().join("green.sqlite"));

    let test = with_events(Test::new().workflow(&replay_workflow(100)), EVENTS);
    let state = test.dir().join(".switchyard/replay-test/state.json");
    let mut kills = 0;
    for target_line in [8_000u64, 25_000, 45_000] {
        let mut child = Command::new(runner_bin())
            .args(["exec", "workflow.toml", "--no-progress"])
            .current_dir(test.dir())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "the runner finished ({status}) before it could be killed at line {target_line}"
                );
            }
            if checkpoint_line(&state) >= target_line {
                child.kill().unwrap(); // SIGKILL: no clean-up of any kind
                child.wait().unwrap();
                kills += 1;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no progress to line {target_line}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert_eq!(kills, 3);
    let resumed = test_args(&test, &["exec", "workflow.toml", "-v"]).success();
    assert!(
        resumed.stderr().contains("resuming from checkpoint"),
        "{}",
        resumed.stderr()
    );
    assert_eq!(dump_sqlite(&test.dir().join("green.sqlite")), expected);
}

#[test]
fn a_refused_event_is_named_and_fails_the_step_by_default() {
    let test = Test::new()
        .workflow(&replay_workflow(10))
        .file("events.ndjson", &events_with_bad_one());
    let run = test_args(&test, &["exec", "workflow.toml"]).expect_code(1);
    assert!(
        run.stderr().contains(
            "error: step `replay` (replay) failed: event partition 2 offset 1 was refused by plugin `t`: malformed input: missing field `room`"
        ),
        "{}",
        run.stderr()
    );
    assert!(!test.dir().join("dead.ndjson").exists());
}

#[test]
fn with_dead_letter_a_refused_event_is_set_aside_and_the_rest_written() {
    let test = Test::new()
        .workflow(&replay_workflow(10))
        .file("events.ndjson", &events_with_bad_one());
    let run = test_args(
        &test,
        &["exec", "workflow.toml", "--var", "on_error=dead-letter"],
    )
    .success();
    assert!(
        run.stdout()
            .contains("3 events → 2 row mutations into `green`; 1 refused"),
        "{}",
        run.stdout()
    );
    let dead = std::fs::read_to_string(test.dir().join("dead.ndjson")).unwrap();
    let line: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(line["partition"], 2);
    assert_eq!(line["offset"], 1);
    assert_eq!(line["plugin"], "t");
    assert_eq!(
        line["error"],
        "malformed input: missing field `room` at line 1 column 83"
    );
}

fn events_with_bad_one() -> String {
    [
        r#"{"partition":2,"offset":0,"timestamp":1000,"value":{"type":"message_posted","room":"r","message_id":"m1","user":"u","text":"hi","posted_at":1000}}"#,
        r#"{"partition":2,"offset":1,"timestamp":1001,"value":{"type":"message_posted","message_id":"m2","user":"u","text":"hi","posted_at":1001}}"#,
        r#"{"partition":2,"offset":2,"timestamp":1002,"value":{"type":"message_posted","room":"r","message_id":"m3","user":"u","text":"yo","posted_at":1002}}"#,
    ]
    .join("\n")
}

fn test_args(test: &Test, args: &[&str]) -> switchyard_tests::cli::Run {
    let output = bounded::output(
        Command::new(runner_bin())
            .args(args)
            .arg("--no-progress")
            .current_dir(test.dir())
            .env("RUST_LOG", "info"),
        bounded::LIMIT,
    );
    switchyard_tests::cli::Run { output }
}

/// The line cursor of the replay's saved checkpoint (0 if none yet).
fn checkpoint_line(state: &Path) -> u64 {
    std::fs::read(state)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["steps"]["replay"]["checkpoint"]["cursor"].as_u64())
        .unwrap_or(0)
}

#[test]
fn ctrl_c_stops_a_replay_cleanly_and_exec_resumes_it() {
    const EVENTS: u64 = 60_000;
    let test = with_events(Test::new().workflow(&replay_workflow(100)), EVENTS);
    let state = test.dir().join(".switchyard/replay-test/state.json");
    let child = bounded::spawn(
        Command::new(runner_bin())
            .args(["exec", "workflow.toml", "--no-progress"])
            .current_dir(test.dir())
            .env("RUST_LOG", "warn"),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while checkpoint_line(&state) < 10_000 {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let out = child.wait_with_output(bounded::LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("error: step `replay` (replay) failed: interrupted; progress is saved and `runner exec` resumes from here"),
        "{stderr}"
    );
    let stopped_at = checkpoint_line(&state);
    assert!(stopped_at < EVENTS, "stopped before the end ({stopped_at})");
    test_args(&test, &["exec", "workflow.toml"]).success();

    let reference = with_events(Test::new().workflow(&replay_workflow(100)), EVENTS);
    test_args(&reference, &["exec", "workflow.toml"]).success();
    assert_eq!(
        dump_sqlite(&test.dir().join("green.sqlite")),
        dump_sqlite(&reference.dir().join("green.sqlite"))
    );
}

/// A plugin stuck in a loop under a long deadline: SIGTERM (exit 143) or
/// Ctrl-C (130) interrupts the call itself, the step is saved as
/// interrupted (not failed on a time limit), and `exec` resumes it.
#[test]
fn a_signal_interrupts_a_plugin_call_in_progress_and_exec_resumes() {
    for (signal, code) in [("-TERM", 143), ("-INT", 130)] {
        let test = Test::new()
            .workflow(&format!(
                r#"[workflow]
name = "stuck"

[vars]
mode = "loop"

[source.log]
kind = "file"
path = "events.ndjson"

[store.green]
kind = "sqlite"
path = "green.sqlite"
tables = ["t"]

[plugin.stuck]
wasm = "{}"
timeout = "1h"
config = {{ mode = "${{mode}}" }}

[[step]]
id = "replay"
kind = "replay"
source = "log"
transform = "stuck"
into = "green"
"#,
                wasm("tests/plugins/misbehave").display()
            ))
            .file(
                "events.ndjson",
                "{\"timestamp\":1,\"value\":\"a\"}\n{\"timestamp\":2,\"value\":\"misbehave\"}\n",
            );
        let state = test.dir().join(".switchyard/stuck/state.json");
        let child = bounded::spawn(
            Command::new(runner_bin())
                .args(["exec", "workflow.toml", "--no-progress"])
                .current_dir(test.dir())
                .env("RUST_LOG", "warn"),
        );
        let status = |state: &Path| {
            std::fs::read(state)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .map(|v| v["steps"]["replay"]["status"].clone())
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while status(&state) != Some(serde_json::json!("running")) {
            assert!(Instant::now() < deadline, "the step never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Time to load the plugin and enter its loop.
        std::thread::sleep(Duration::from_secs(3));
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let out = child.wait_with_output(Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{signal}: {stderr}");
        assert!(
            stderr.contains("error: step `replay` (replay) failed: interrupted; progress is saved"),
            "{signal}: {stderr}"
        );
        assert!(!stderr.contains("time limit"), "{signal}: {stderr}");
        assert_eq!(status(&state), Some(serde_json::json!("interrupted")));
        let resumed = test_args(&test, &["exec", "workflow.toml", "--var", "mode=ok"]).success();
        assert!(
            resumed.stdout().contains("2 events → 2 row mutations"),
            "{signal}: {}",
            resumed.stdout()
        );
    }
}

/// Partition 0 runs ahead in time and comes first in the file; partition 1
/// is behind. Green replays a prefix of the log (it lags). Whatever the
/// batch size, green's watermark is what *both* partitions reached, so the
/// compare as of it finds blue and green equal.
#[test]
fn the_watermark_covers_every_partition_at_any_batch_size() {
    let line = |p: i32, offset: i64, time: i64| {
        format!(
            "{{\"partition\":{p},\"offset\":{offset},\"timestamp\":{time},\"value\":\"v{offset}\"}}\n"
        )
    };
    let mut log: Vec<String> = (0..10).map(|i| line(0, i, 1000 + i)).collect();
    log.extend((0..10).map(|i| line(1, 100 + i, 500 + i)));
    let mut watermarks = Vec::new();
    for batch in [1, 5, 1000] {
        let test = Test::new()
            .workflow(&format!(
                r#"[workflow]
name = "aligned"

[source.full]
kind = "file"
path = "full.ndjson"

[source.prefix]
kind = "file"
path = "prefix.ndjson"

[store.blue]
kind = "sqlite"
path = "blue.sqlite"
tables = ["t"]

[store.green]
kind = "sqlite"
path = "green.sqlite"
tables = ["t"]

[plugin.t]
wasm = "{}"

[[step]]
id = "blue"
kind = "replay"
source = "full"
transform = "t"
into = "blue"

[[step]]
id = "green"
kind = "replay"
source = "prefix"
transform = "t"
into = "green"
batch_size = {batch}

[[step]]
id = "compare"
kind = "compare"
blue = "blue"
green = "green"
tables = ["t"]
recheck_after = "0s"
"#,
                wasm("tests/plugins/misbehave").display()
            ))
            .file("full.ndjson", &log.concat())
            .file("prefix.ndjson", &log[..15].concat());
        let run = test_args(&test, &["exec", "workflow.toml"]);
        assert_eq!(run.code(), 0, "batch {batch}: {}", run.stderr());
        let green = rusqlite::Connection::open(test.dir().join("green.sqlite")).unwrap();
        let watermark: i64 = green
            .query_row(
                "SELECT value FROM sy_meta WHERE key = 'watermark'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        watermarks.push(watermark);
        assert!(
            run.stdout()
                .contains("0 mismatched, 0 only in blue, 0 only in green"),
            "batch {batch}: {}",
            run.stdout()
        );
    }
    assert_eq!(watermarks, vec![504, 504, 504], "partition 1 reached 504");
}

/// `qty` 2 then 10 at one millisecond: the later write wins, in SQLite
/// and in HBase alike.
#[test]
fn a_tie_at_one_version_goes_to_the_later_event_in_every_store() {
    let hbase = switchyard_tests::hbase::HbaseEmulator::start();
    let test = Test::new()
        .workflow(&format!(
            r#"[workflow]
name = "ties"

[source.log]
kind = "file"
path = "events.ndjson"

[store.sqlite]
kind = "sqlite"
path = "ties.sqlite"
tables = ["t"]

[store.hbase]
kind = "hbase"
thrift = "{}"
tables = {{ t = ["d"] }}

[plugin.t]
wasm = "{}"
config = {{ key = "order-7" }}

[[step]]
id = "sqlite"
kind = "replay"
source = "log"
transform = "t"
into = "sqlite"

[[step]]
id = "hbase"
kind = "replay"
source = "log"
transform = "t"
into = "hbase"
"#,
            hbase.addr(),
            wasm("tests/plugins/misbehave").display()
        ))
        .file(
            "events.ndjson",
            "{\"offset\":0,\"timestamp\":1000,\"value\":\"2\"}\n{\"offset\":1,\"timestamp\":1000,\"value\":\"10\"}\n",
        );
    test_args(&test, &["exec", "workflow.toml"]).success();
    let workflow =
        switchyard_runner::workflow::load(&test.dir().join("workflow.toml"), &Default::default())
            .unwrap();
    for store in ["sqlite", "hbase"] {
        let mut s = workflow.open_store(store).unwrap();
        let row = s.get("t", &[b"order-7".to_vec()], None).unwrap()[0]
            .clone()
            .expect("the row");
        assert_eq!(row.cells[0].value, b"10", "{store}");
    }
}
