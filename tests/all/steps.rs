//! Step behaviour seen from the command line: the compare gate, a restore
//! by command, and `status`.

use switchyard_runner::sample::{ChatSample, write_chat};
use switchyard_tests::cli::Test;
use switchyard_tests::plugins::wasm;

/// Blue and green built from the same log by two updaters that stamp
/// their name in `m:writer`; `ignore` decides whether that counts.
fn two_updaters(ignore: &str) -> Test {
    let test = Test::new().workflow(&format!(
        r#"[workflow]
name = "gate"

[source.log]
kind = "file"
path = "events.ndjson"

[store.blue]
kind = "sqlite"
path = "blue.sqlite"

[store.green]
kind = "sqlite"
path = "green.sqlite"

[plugin.rmu]
wasm = "{transform}"
config = {{ writer = "rmu" }}

[plugin.rmu2]
wasm = "{transform}"
config = {{ writer = "rmu2" }}

[plugin.check]
wasm = "{check}"
config = {{ ignore = "{ignore}" }}

[[step]]
id = "blue"
kind = "replay"
source = "log"
transform = "rmu"
into = "blue"

[[step]]
id = "restore"
kind = "restore"
command = "echo restoring $SWITCHYARD_STORE as of $SWITCHYARD_RESTORE_POINT > restore.txt"
into = "green"
as_of = "2026-01-01T00:00:00Z"

[[step]]
id = "green"
kind = "replay"
source = "log"
transform = "rmu2"
into = "green"
start = "restore - 1m"

[[step]]
id = "compare"
kind = "compare"
blue = "blue"
green = "green"
tables = ["messages"]
check = "check"
recheck_after = "0s"
sample = 2
"#,
        transform = wasm("plugins/chat-transform").display(),
        check = wasm("plugins/chat-check").display(),
    ));
    write_chat(
        &ChatSample {
            events: 300,
            ..ChatSample::default()
        },
        &test.dir().join("events.ndjson"),
    )
    .unwrap();
    test.args(&["exec", "workflow.toml", "--no-progress"])
}

#[test]
fn the_compare_gate_fails_with_examples_when_rows_differ() {
    let test = two_updaters("");
    let run = test.run().expect_code(3);
    let err = run.stderr();
    assert!(
        err.contains("error: step `compare` (compare) failed: "),
        "{err}"
    );
    assert!(err.contains(" 0 matching, "), "{err}");
    assert!(
        err.contains("exceed the gate (max_mismatches = 0); examples:\n  messages `room-"),
        "{err}"
    );
    assert!(err.contains("(Mismatched): `m:writer` differs"), "{err}");
    let report =
        std::fs::read_to_string(test.dir().join(".switchyard/gate/compare-compare.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["samples"].as_array().unwrap().len(), 2);
    assert_eq!(report["matching"], 0);

    let status = Test::new()
        .args(&["status", test.dir().join("workflow.toml").to_str().unwrap()])
        .run()
        .success();
    let out = status.stdout();
    assert!(out.contains("  compare          failed "), "{out}");
    assert!(
        out.contains("  restore point of `green`: 1767225600000"),
        "{out}"
    );
}

#[test]
fn with_the_writer_ignored_the_same_stores_pass_and_restore_ran_its_command() {
    let test = two_updaters("m:writer");
    let run = test.run().success();
    assert!(
        run.stdout()
            .contains(" 0 mismatched, 0 only in blue, 0 only in green"),
        "{}",
        run.stdout()
    );
    assert_eq!(
        std::fs::read_to_string(test.dir().join("restore.txt")).unwrap(),
        "restoring green as of 1767225600000\n"
    );
}
