//! A whole migration between two HBase clusters (two emulators), as the
//! quickstart does it with SQLite: feed blue from the log, restore green
//! from blue as of a restore point, replay the log into green from before
//! that point, compare, cut over.

use switchyard_runner::sample::{ChatSample, write_chat};
use switchyard_tests::cli::Test;
use switchyard_tests::hbase::HbaseEmulator;
use switchyard_tests::plugins::wasm;

#[test]
fn an_hbase_to_hbase_migration_converges_and_passes_the_compare_gate() {
    let blue = HbaseEmulator::start();
    let green = HbaseEmulator::start();
    let test = Test::new().workflow(&format!(
        r#"[workflow]
name = "hbase-upgrade"

[source.log]
kind = "file"
path = "events.ndjson"

[store.blue]
kind = "hbase"
thrift = "{blue}"
tables = {{ messages = ["d", "m"] }}

[store.green]
kind = "hbase"
thrift = "{green}"
tables = {{ messages = ["d", "m"] }}
pool = 2

[plugin.rmu]
wasm = "{transform}"
config = {{ writer = "rmu" }}

[plugin.rmu2]
wasm = "{transform}"
config = {{ writer = "rmu2" }}

[plugin.check]
wasm = "{check}"
config = {{ ignore = "m:writer" }}

[[step]]
id = "feed-blue"
kind = "replay"
source = "log"
transform = "rmu"
into = "blue"

[[step]]
id = "restore"
kind = "restore"
from = "blue"
into = "green"
as_of = "watermark - 6h"

[[step]]
id = "replay-green"
kind = "replay"
source = "log"
transform = "rmu2"
into = "green"
start = "restore - 10m"

[[step]]
id = "compare"
kind = "compare"
blue = "blue"
green = "green"
tables = ["messages"]
check = "check"
recheck_after = "0s"

[[step]]
id = "cutover"
kind = "cutover"
from = "blue"
to = "green"
"#,
        blue = blue.addr(),
        green = green.addr(),
        transform = wasm("plugins/chat-transform").display(),
        check = wasm("plugins/chat-check").display(),
    ));
    write_chat(
        &ChatSample {
            events: 3000,
            ..ChatSample::default()
        },
        &test.dir().join("events.ndjson"),
    )
    .unwrap();
    let run = test
        .args(&["exec", "workflow.toml", "--no-progress"])
        .run()
        .success();
    let out = run.stdout();
    assert!(
        out.contains(" 0 mismatched, 0 only in blue, 0 only in green"),
        "{out}"
    );
    // Green holds what blue holds, apart from who wrote it; blue keeps
    // older versions and delete markers that the restore did not copy.
    let visible = |dump: String| -> std::collections::BTreeSet<String> {
        dump.lines()
            .filter(|l| !l.contains("\tm:writer\t"))
            .map(String::from)
            .collect()
    };
    let green_lines = visible(green.dump("messages"));
    let blue_lines = visible(blue.dump("messages"));
    assert!(
        !green_lines.is_empty(),
        "green holds cells besides who wrote them"
    );
    assert!(
        green_lines.is_subset(&blue_lines),
        "every cell green holds, blue holds too"
    );
}
