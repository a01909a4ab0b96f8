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
tables = ["messages"]

[store.green]
kind = "sqlite"
path = "green.sqlite"
tables = ["messages"]

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
examples = 2
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
    assert!(
        err.contains("(differs): `m:writer` differs between blue and green"),
        "{err}"
    );
    let report =
        std::fs::read_to_string(test.dir().join(".switchyard/gate/compare-compare.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["examples"].as_array().unwrap().len(), 2);
    assert_eq!(report["matching"], 0);
    assert_eq!(
        report["tables"]["messages"]["mismatched"],
        report["mismatched"]
    );
    // Cell by cell: the writer differs, the rest is the same.
    let cells = &report["examples"][0]["cells"];
    assert_eq!(cells.as_array().unwrap().len(), 1, "{cells}");
    assert_eq!(cells[0]["cell"], "m:writer");
    assert_eq!(cells[0]["blue"]["value"], "rmu");
    assert_eq!(cells[0]["green"]["value"], "rmu2");

    // `runner report` prints the Markdown again.
    let again = Test::new()
        .args(&["report", test.dir().join("workflow.toml").to_str().unwrap()])
        .run()
        .success();
    let text = again.stdout();
    assert!(
        text.starts_with("# Compare `compare`: `blue` (blue) and `green` (green)"),
        "{text}"
    );
    assert!(text.contains("| `m:writer` | `rmu` @"), "{text}");
    assert!(text.contains(" | `rmu2` @"), "{text}");

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

/// 300 differing keys of 3 KiB each: the counts stay exact, the report
/// keeps 100 examples with each text cut to 1 KiB, the error quotes ten,
/// and the state file keeps a bounded error.
#[test]
fn compare_keeps_bounded_examples_and_exact_counts() {
    use switchyard_runner::model::{Cell, RowMutation};
    use switchyard_runner::store::Store;
    use switchyard_runner::store::sqlite::SqliteStore;
    use switchyard_runner::store::sqlite::SqliteSync;

    let test = Test::new().workflow(
        r#"[workflow]
name = "caps"

[store.blue]
kind = "sqlite"
path = "blue.sqlite"

[store.green]
kind = "sqlite"
path = "green.sqlite"

[[step]]
id = "compare"
kind = "compare"
blue = "blue"
green = "green"
tables = ["t"]
recheck_after = "0s"
"#,
    );
    for (store, value) in [("blue", "b"), ("green", "g")] {
        let mut s = SqliteStore::open(
            store,
            &test.dir().join(format!("{store}.sqlite")),
            SqliteSync::Normal,
        )
        .unwrap();
        let rows: Vec<RowMutation> = (0..300)
            .map(|i| RowMutation {
                table: "t".into(),
                row_key: format!("{i:04}{}", "k".repeat(3000)).into_bytes().into(),
                cells: vec![Cell::put("d", &b"v"[..], value.as_bytes().to_vec())],
                version: 1,
            })
            .collect();
        s.apply(&rows, Some(1)).unwrap();
    }
    let test = test.args(&["exec", "workflow.toml", "--no-progress"]);
    let run = test.run().expect_code(3);
    let err = run.stderr();
    assert!(err.contains("300 keys as of "), "{err}");
    assert!(err.contains("300 mismatched"), "{err}");
    assert_eq!(err.matches("(differs)").count(), 10, "{err}");
    assert!(err.contains("full report (100 examples)"), "{err}");
    assert!(err.len() < 16 * 1024, "{} bytes of error", err.len());
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(test.dir().join(".switchyard/caps/compare-compare.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["mismatched"], 300);
    let examples = report["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 100);
    let key = examples[0]["key"].as_str().unwrap();
    assert!(
        key.starts_with("0000kkk") && key.ends_with("… (1980 more bytes cut)"),
        "{key}"
    );
    let state = std::fs::read_to_string(test.dir().join(".switchyard/caps/state.json")).unwrap();
    assert!(
        state.len() < 24 * 1024,
        "state.json is {} bytes",
        state.len()
    );
}
