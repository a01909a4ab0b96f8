//! `workflows/hbase-to-postgres.toml` end to end on real wires: chat
//! events in Tansu, blue on the HBase emulator fed by the old updater's
//! stand-in (its own consumer group), green in a PostgreSQL database of
//! the test's own, loaded by a copy through the `chat-copy` plugin,
//! replayed from Kafka, compared at 0 mismatches, then the reads mirrored
//! (compared by `read-check`), ramped and cut over to green.

use switchyard_tests::bounded;
use switchyard_tests::http::free_port;
use switchyard_tests::postgres::TestDatabase;
use switchyard_tests::site::Site;

/// 2026-01-01T00:00:00Z, where the chat sample starts.
const T: i64 = 1_767_225_600_000;

#[test]
fn hbase_to_postgres_copies_replays_compares_clean_and_moves_the_reads() {
    let site = Site::new();
    site.produce(20_000, 7, T);
    site.feed_blue();
    let db = TestDatabase::new();
    let workflow = switchyard_tests::plugins::repo_root().join("workflows/hbase-to-postgres.toml");
    let vars = [
        format!("green_url={}", db.url()),
        "caught_up_for=1s".to_string(),
        format!("router_port={}", free_port()),
        format!("blue_port={}", free_port()),
        format!("green_port={}", free_port()),
    ];
    let mut extra: Vec<&str> = Vec::new();
    for v in &vars {
        extra.extend(["--var", v.as_str()]);
    }
    let mut args = site.exec_args(&workflow, "to-postgres", &extra);
    // The workflow knows only blue's cluster.
    if let Some(at) = args.iter().position(|a| a.starts_with("green_thrift=")) {
        args.drain(at - 1..=at);
    }
    let out = bounded::output(
        std::process::Command::new(switchyard_tests::cli::runner_bin())
            .args(&args)
            .env("RUST_LOG", "warn"),
        bounded::LIMIT,
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("through plugin `chat-copy`"), "{stdout}");
    assert!(
        stdout.contains(" 0 mismatched, 0 only in blue, 0 only in green"),
        "{stdout}"
    );
    let mirror = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("mirror "))
        .expect("a mirror line");
    assert!(mirror.contains(" 0 mismatched, 0 lagging"), "{stdout}");
    assert!(!mirror.contains("mirrored 0:"), "{stdout}");
    assert!(
        stdout.contains("switched from `blue` to `green`"),
        "{stdout}"
    );
    // Green is PostgreSQL's: its rows are there, in the workflow's schema.
    let rows: i64 = db
        .client()
        .query_one("SELECT count(DISTINCT row_key) FROM chat.messages", &[])
        .unwrap()
        .get(0);
    assert!(rows > 1_000, "{rows}");
}
