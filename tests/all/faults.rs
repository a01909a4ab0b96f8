//! Faults around a Kafka → HBase replay (`tests/workflows/replay-green.toml`):
//! the runner killed at several points, the broker restarted, HBase
//! unreachable for a while, malformed events. Each time green must end up
//! exactly as an uninterrupted replay leaves it: nothing lost, nothing extra.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use switchyard_tests::bounded::{self, Running};
use switchyard_tests::cli::{Test, runner_bin};
use switchyard_tests::hbase::HbaseEmulator;
use switchyard_tests::plugins::repo_root;
use switchyard_tests::site::{Site, TOPIC};

const T: i64 = 1_767_225_600_000;
const EVENTS: u64 = 20_000;

fn workflow() -> PathBuf {
    repo_root().join("tests/workflows/replay-green.toml")
}

/// `runner exec replay-green.toml` into `green` with consumer group `group`.
fn args(site: &Site, green: &HbaseEmulator, group: &str, extra: &[&str]) -> Vec<String> {
    args_of(&workflow(), site, green, group, extra)
}

/// `runner exec WORKFLOW` into `green` with consumer group `group`.
fn args_of(
    workflow: &std::path::Path,
    site: &Site,
    green: &HbaseEmulator,
    group: &str,
    extra: &[&str],
) -> Vec<String> {
    let mut a = vec![
        "exec".to_string(),
        workflow.display().to_string(),
        "--state".into(),
        site.state(group).display().to_string(),
        "--no-progress".into(),
    ];
    for v in [
        format!("brokers={}", site.broker.addr()),
        format!("topic={TOPIC}"),
        format!("green_thrift={}", green.addr()),
        format!("group={group}"),
    ] {
        a.push("--var".into());
        a.push(v);
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn spawn(site: &Site, green: &HbaseEmulator, group: &str) -> Running {
    bounded::spawn(
        Command::new(runner_bin())
            .args(args(site, green, group, &[]))
            .env("RUST_LOG", "warn"),
    )
}

fn run(
    site: &Site,
    green: &HbaseEmulator,
    group: &str,
    extra: &[&str],
) -> switchyard_tests::cli::Run {
    let a = args(site, green, group, extra);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    Test::new().args(&a).run()
}

/// Events the replay has applied, from its saved state.
fn applied(site: &Site, group: &str) -> u64 {
    std::fs::read(site.state(group).join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|s| s["steps"]["replay-green"]["metrics"]["events"].as_u64())
        .unwrap_or(0)
}

/// Waits until the replay has applied at least `n` events.
fn wait_applied(site: &Site, group: &str, n: u64, child: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while applied(site, group) < n {
        if let Some(status) = child.try_wait() {
            panic!("the replay ended ({status}) before {n} events were applied");
        }
        assert!(Instant::now() < deadline, "no progress to {n} events");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A site with the chat events and green as an uninterrupted replay leaves it.
fn site_and_reference() -> (Site, String) {
    let site = Site::new();
    site.produce(EVENTS, 7, T);
    let reference = HbaseEmulator::start();
    run(&site, &reference, "reference", &[]).success();
    let dump = reference.dump("messages");
    assert!(
        dump.lines().count() > 10_000,
        "the reference holds the rows"
    );
    (site, dump)
}

#[test]
fn a_replay_killed_at_several_points_and_resumed_leaves_green_as_an_uninterrupted_one() {
    let (site, reference) = site_and_reference();
    // Killed after 2,000, 5,000 and 8,000 more events than it had saved.
    for more in [2_000, 3_000, 3_000] {
        let before = applied(&site, "killed");
        let mut child = spawn(&site, &site.green, "killed");
        wait_applied(&site, "killed", before + more, &mut child);
        child.kill();
    }
    let out = run(&site, &site.green, "killed", &[]).success();
    assert!(out.stdout().contains("completed"), "{}", out.stdout());
    assert_eq!(
        site.green.dump("messages"),
        reference,
        "green differs from the reference"
    );
}

#[test]
fn a_broker_restarted_mid_replay_and_hbase_unreachable_for_seconds_lose_nothing() {
    let (mut site, reference) = site_and_reference();
    let mut child = spawn(&site, &site.green, "faults");
    wait_applied(&site, "faults", 4_000, &mut child);
    site.broker.restart();
    wait_applied(&site, "faults", 10_000, &mut child);
    site.green.pause(Duration::from_secs(3));
    let out = child.wait_with_output(bounded::LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("HBase call failed; retrying"),
        "the store said it retried: {stderr}"
    );
    assert!(applied(&site, "faults") >= EVENTS);
    assert_eq!(
        site.green.dump("messages"),
        reference,
        "green differs from the reference"
    );
}

#[test]
fn a_malformed_event_is_named_by_partition_and_offset_and_the_policy_applies() {
    let site = Site::new();
    site.produce(1_000, 7, T);
    site.broker
        .produce_raw(TOPIC, &[(1, "room-0001", b"{not json", T + 20 * 3_600_000)]);

    let failed = run(&site, &site.green, "fail", &[]);
    assert_eq!(failed.code(), 1, "{}", failed.stderr());
    let err = failed.stderr();
    assert!(err.contains("event partition 1 offset "), "{err}");
    assert!(err.contains("was refused by plugin `rmu2`"), "{err}");

    let green = HbaseEmulator::start();
    let ok = run(&site, &green, "dead", &["--var", "on_error=dead-letter"]).success();
    assert!(ok.stdout().contains("1 refused"), "{}", ok.stdout());
    let letters = std::fs::read_to_string(site.state("dead").join("dead-letter.ndjson")).unwrap();
    let letter: serde_json::Value = serde_json::from_str(letters.lines().next().unwrap()).unwrap();
    assert_eq!(letter["partition"], 1);
    assert!(
        err.contains(&format!("offset {} ", letter["offset"])),
        "{err} vs {letter}"
    );
    assert_eq!(letter["value"], "{not json");
    assert!(
        letter["error"].as_str().unwrap().contains("malformed"),
        "{letter}"
    );
}

#[test]
fn a_malformed_event_goes_to_the_dead_letter_topic_with_where_it_came_from() {
    let site = Site::new();
    site.produce(1_000, 7, T);
    let bad_time = T + 20 * 3_600_000;
    site.broker
        .produce_raw(TOPIC, &[(1, "room-0001", b"{not json", bad_time)]);
    // replay-green.toml with the dead letters going to a topic.
    let text = std::fs::read_to_string(workflow())
        .unwrap()
        .replace(
            "dead_letter = \"${state_dir}/dead-letter.ndjson\"",
            "dead_letter_topic = \"chat-events.dlq\"",
        )
        .replace(
            "crate = \"../../plugins/",
            &format!("crate = \"{}/plugins/", repo_root().display()),
        );
    let dlq_workflow = site.dir.path().join("replay-green-dlq.toml");
    std::fs::write(&dlq_workflow, text).unwrap();
    let run_dlq = |group: &str| {
        let a = args_of(
            &dlq_workflow,
            &site,
            &site.green,
            group,
            &["--var", "on_error=dead-letter"],
        );
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        Test::new().args(&a).run()
    };

    // The runner never creates topics: a missing one fails before reading.
    let missing = run_dlq("missing");
    assert_eq!(missing.code(), 1, "{}", missing.stderr());
    assert!(
        missing
            .stderr()
            .contains("dead-letter topic `chat-events.dlq`")
            && missing.stderr().contains("does not exist"),
        "{}",
        missing.stderr()
    );

    site.broker.create_topic("chat-events.dlq", 1);
    let ok = run_dlq("dlq").success();
    assert!(ok.stdout().contains("1 refused"), "{}", ok.stdout());
    let letters = site.broker.consume("chat-events.dlq", 1);
    assert_eq!(letters.len(), 1, "exactly the malformed event");
    let letter = &letters[0];
    assert_eq!(letter.key.as_deref(), Some(&b"room-0001"[..]));
    assert_eq!(letter.value, b"{not json");
    assert_eq!(letter.timestamp, Some(bad_time));
    let header = |k: &str| letter.headers.get(k).cloned().unwrap_or_default();
    assert_eq!(header("switchyard.source.topic"), TOPIC);
    assert_eq!(header("switchyard.source.partition"), "1");
    // The malformed event was the last one produced to partition 1.
    let last = site.broker.high_watermark(TOPIC, 1) - 1;
    assert_eq!(header("switchyard.source.offset"), last.to_string());
    assert_eq!(header("switchyard.step"), "replay-green");
    assert_eq!(header("switchyard.plugin"), "rmu2");
    assert!(
        header("switchyard.error").contains("malformed"),
        "{:?}",
        letter.headers
    );
}

#[test]
fn two_runners_sharing_the_group_split_the_partitions_and_green_is_complete() {
    let site = Site::new();
    let scaled = repo_root().join("tests/workflows/replay-green-scaled.toml");
    let spawn_scaled = |state: &str| {
        let mut a = args(&site, &site.green, "shared", &[]);
        a[1] = scaled.display().to_string();
        a[3] = site.state(state).display().to_string();
        bounded::spawn(Command::new(runner_bin()).args(a).env("RUST_LOG", "warn"))
    };
    let (a, b) = (spawn_scaled("runner-a"), spawn_scaled("runner-b"));
    // Both joined the group and split its partitions: each shows its own.
    let owned = |state: &str| -> Vec<String> {
        std::fs::read(site.state(state).join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|s| {
                s["steps"]["replay-green"]["partitions"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (pa, pb) = (owned("runner-a"), owned("runner-b"));
        if !pa.is_empty() && !pb.is_empty() && pa.len() + pb.len() == 4 {
            assert!(pa.iter().all(|p| !pb.contains(p)), "{pa:?} {pb:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no split: {pa:?} {pb:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    site.produce(EVENTS, 7, T);
    for child in [a, b] {
        let out = child.wait_with_output(bounded::LIMIT);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (done_a, done_b) = (applied(&site, "runner-a"), applied(&site, "runner-b"));
    assert!(
        done_a > 0 && done_b > 0,
        "each runner replays its share: {done_a} and {done_b}"
    );
    assert_eq!(done_a + done_b, EVENTS, "{done_a} + {done_b}");
    let reference = HbaseEmulator::start();
    run(&site, &reference, "reference", &[]).success();
    assert_eq!(
        site.green.dump("messages"),
        reference.dump("messages"),
        "green differs from the reference"
    );
}
