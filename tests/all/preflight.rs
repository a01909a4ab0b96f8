//! The preflight: a missing topic, a wrong broker address or an HBase
//! Thrift server that does not answer is refused in seconds, naming what
//! is wrong, before any step has touched green; `runner validate
//! --connect` runs the same checks alone.

use std::time::{Duration, Instant};

use switchyard_tests::cli::Test;
use switchyard_tests::site::Site;

/// `runner exec` of the upgrade with one variable overridden.
fn refused(site: &Site, var: &str) -> String {
    let started = Instant::now();
    let run = site.upgrade(var, &["--var", var]);
    // A liveness bound: before, a wrong broker waited out a 30 s gate.
    assert!(started.elapsed() < Duration::from_secs(60), "{var}");
    assert_eq!(run.code(), 1, "{var}: {}", run.stderr());
    assert!(
        site.green.table_names().is_empty(),
        "{var}: green was touched: {:?}",
        site.green.table_names()
    );
    run.stderr()
}

#[test]
fn a_missing_topic_a_wrong_broker_and_a_silent_thrift_server_are_refused_before_green_is_touched() {
    let site = Site::new();
    site.produce(100, 7, 1_767_225_600_000);
    site.feed_blue();

    let err = refused(&site, "topic=no-such-topic");
    assert!(
        err.contains(
            "error: preflight: source `chat-events`: topic `no-such-topic` does not exist on `"
        ),
        "{err}"
    );
    assert!(err.contains("; nothing was started or written"), "{err}");

    let err = refused(&site, "brokers=127.0.0.1:1");
    assert!(
        err.contains("source `chat-events`: cannot reach the brokers `127.0.0.1:1` within 10s: "),
        "{err}"
    );
    assert!(
        err.contains("Connection refused"),
        "librdkafka's reason: {err}"
    );

    let err = refused(&site, "green_thrift=127.0.0.1:1");
    assert!(
        err.contains(
            "store `green`: cannot describe table `messages`: cannot connect to 127.0.0.1:1"
        ),
        "{err}"
    );

    // The same checks alone.
    let mut args = vec![
        "validate".to_string(),
        Site::upgrade_workflow().display().to_string(),
        "--connect".into(),
    ];
    args.extend(site.vars());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ok = Test::new().args(&args).run().success();
    assert!(
        ok.stdout()
            .contains("ok: source `chat-events`: topic `chat-events` with 4 partitions on "),
        "{}",
        ok.stdout()
    );
    assert!(
        ok.stdout().contains("ok: store `green`: HBase Thrift at ")
            && ok.stdout().contains("; will create `messages`"),
        "{}",
        ok.stdout()
    );
    assert!(
        ok.stdout().contains("ok: plugin `rmu2`: loads"),
        "{}",
        ok.stdout()
    );
    let mut missing = args;
    missing.extend(["--var", "topic=no-such-topic"]);
    let bad = Test::new().args(&missing).run().expect_code(1);
    assert!(bad.stderr().contains("no-such-topic"), "{}", bad.stderr());
}
