//! A move to PostgreSQL end to end through the CLI: blue (SQLite) built
//! from the log, green (PostgreSQL) loaded by a `copy` through the
//! `chat-copy` row-map plugin as of T0, the log replayed from before T0,
//! and the compare at 0 mismatches; and a copy, then a replay, killed
//! midway (`kill -9`) that, run again, leave green identical to an
//! uninterrupted run, as does a replay whose server is restarted under it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_tests::bounded;
use switchyard_tests::cli::runner_bin;
use switchyard_tests::plugins::wasm;
use switchyard_tests::postgres::{PrivateServer, TestDatabase};

/// The workflow: events → blue → copy (mapped) into green → replay → compare.
fn workflow(dir: &std::path::Path, name: &str, url: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[workflow]
name = "{name}"

[source.chat-log]
kind = "file"
path = "events.ndjson"

[store.blue]
kind = "sqlite"
path = "${{state_dir}}/blue.sqlite"
tables = ["messages"]

[store.green]
kind = "postgres"
url = "{url}"
schema = "chat"
tables = ["messages"]

[plugin.rmu]
wasm = "{transform}"
config = {{ table = "messages", writer = "rmu" }}

[plugin.rmu2]
wasm = "{transform}"
config = {{ table = "messages", writer = "rmu2" }}

[plugin.chat-copy]
wasm = "{copy}"

[plugin.chat-check]
wasm = "{check}"
config = {{ ignore = "m:writer" }}

[[step]]
id = "feed-blue"
kind = "replay"
source = "chat-log"
transform = "rmu"
into = "blue"

[[step]]
id = "copy-green"
kind = "copy"
from = "blue"
into = "green"
as_of = "watermark - 2h"
map = "chat-copy"
batch_size = 100

[[step]]
id = "replay-green"
kind = "replay"
source = "chat-log"
transform = "rmu2"
into = "green"
start = "restore - 10m"
batch_size = 50

[[step]]
id = "compare"
kind = "compare"
blue = "blue"
green = "green"
tables = ["messages"]
check = "chat-check"
max_mismatches = 0
"#,
        url = url,
        transform = wasm("plugins/chat-transform").display(),
        copy = wasm("plugins/chat-copy").display(),
        check = wasm("plugins/chat-check").display(),
    );
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    file
}

/// One stored entry: row key, family, qualifier, kind, version, value.
type Entry = (Vec<u8>, String, Vec<u8>, i16, i64, Vec<u8>);

/// Every stored entry of green, in order.
fn dump(mut client: postgres::Client) -> Vec<Entry> {
    client
        .query(
            "SELECT row_key, family, qualifier, kind, version, value FROM chat.messages
             ORDER BY row_key, family, qualifier, kind, version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

fn exec(file: &std::path::Path) -> std::process::Output {
    Command::new(runner_bin())
        .args(["exec", file.to_str().unwrap(), "--no-progress"])
        .output()
        .unwrap()
}

#[test]
fn a_copy_through_a_row_map_plugin_then_a_replay_compare_clean_and_a_killed_copy_resumes_to_the_same_rows()
 {
    let dir = tempfile::tempdir().unwrap();
    let sampled = Command::new(runner_bin())
        .args(["sample", "chat", "--events", "20000", "--out"])
        .arg(dir.path().join("events.ndjson"))
        .output()
        .unwrap();
    assert!(sampled.status.success());

    let whole = TestDatabase::new();
    let out = exec(&workflow(dir.path(), "whole", whole.url()));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("through plugin `chat-copy`"), "{said}");
    assert!(
        said.contains(" 0 mismatched, 0 only in blue, 0 only in green"),
        "{said}"
    );

    let expected = dump(whole.client());
    // The same, killed in the middle of the copy, then run again.
    let partial = killed_then_resumed(dir.path(), "killed-copy", &expected, |saved| {
        // Some pages of the copy are saved, and it is not done.
        let at = &saved["steps"]["copy-green"]["resume"]["messages"];
        at.is_string() && at != "done"
    });
    assert!(
        partial > 0 && partial < expected.len(),
        "the copy was killed after {partial} of {} entries",
        expected.len()
    );
    // And killed in the middle of the replay after the copy.
    killed_then_resumed(dir.path(), "killed-replay", &expected, |saved| {
        let replay = &saved["steps"]["replay-green"];
        replay["status"] == "running"
    });
    // And with the server stopped and started again during the replay.
    restarted_mid_replay(dir.path(), &expected);
}

/// Runs the workflow against a server of its own, stops that server for
/// two seconds during the replay (`pg_ctl stop -m fast`, as an operator's
/// restart does) and starts it again: the run rides through on its
/// retries, and green ends identical to an uninterrupted run.
fn restarted_mid_replay(dir: &std::path::Path, expected: &[Entry]) {
    let server = PrivateServer::start();
    let file = workflow(dir, "restarted", &server.url());
    let state = dir.join(".switchyard/restarted/state.json");
    let child = bounded::spawn(
        Command::new(runner_bin())
            .args(["exec", file.to_str().unwrap(), "--no-progress"])
            .env("RUST_LOG", "warn"),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        let saved: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if saved["steps"]["replay-green"]["status"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "the replay never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    server.stop();
    std::thread::sleep(Duration::from_secs(2));
    server.start_again();
    let out = child.wait_with_output(bounded::LIMIT);
    let (said, logged) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{said}\n{logged}");
    assert!(
        logged.contains("trying again"),
        "the restart went unnoticed: {logged}"
    );
    assert!(said.contains(" 0 mismatched"), "{said}");
    let green = dump(server.client());
    assert!(
        green == expected,
        "green differs after a restart ({} entries, {} expected)",
        green.len(),
        expected.len()
    );
}

/// Runs the workflow in a database of its own, kills it (`kill -9`) once
/// its saved state satisfies `now`, runs it again to the end, and checks
/// green holds exactly `expected`; returns how many entries green held
/// when it was killed.
fn killed_then_resumed(
    dir: &std::path::Path,
    name: &str,
    expected: &[Entry],
    now: impl Fn(&serde_json::Value) -> bool,
) -> usize {
    let db = TestDatabase::new();
    let file = workflow(dir, name, db.url());
    let state = dir.join(format!(".switchyard/{name}/state.json"));
    let mut child = Command::new(runner_bin())
        .args(["exec", file.to_str().unwrap(), "--no-progress"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        let saved: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if now(&saved) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "{name}: the run ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "{name}: never reached the point");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = dump(db.client()).len();
    let out = exec(&file);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name}: {said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(" 0 mismatched"), "{name}: {said}");
    let resumed = dump(db.client());
    assert_eq!(resumed.len(), expected.len(), "{name}");
    assert!(
        resumed == expected,
        "{name}: green differs after the killed run was resumed"
    );
    partial
}
