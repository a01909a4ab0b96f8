//! The background replay of `workflows/hbase-upgrade.toml` belongs to the
//! workflow, not to one process: every run of an unfinished workflow
//! starts it again from its committed position (after Ctrl-C, after a
//! failed compare), `compare` waits until it is caught up, its lag is
//! unknown (not 0) while the broker is down, and one that fails stops the
//! run at once, naming the event.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hbase_thrift::hbase::{Mutation, THbaseSyncClient};
use switchyard_tests::site::{Site, TOPIC};

/// 2026-01-01T00:00:00Z, where the chat sample starts.
const T: i64 = 1_767_225_600_000;
const HOUR: i64 = 3_600_000;

/// A program for the `evaluate` step that waits until it is stopped.
fn hold(site: &Site) -> PathBuf {
    let script = site.dir.path().join("hold");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 600\n").unwrap();
    let mut permissions = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&script, permissions).unwrap();
    script
}

/// Sends SIGINT, as Ctrl-C does.
fn interrupt(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Whether the background replay is live and `evaluate` runs.
fn evaluating(s: &serde_json::Value) -> bool {
    s["steps"]["replay-green"]["live"] == true && s["steps"]["evaluate"]["status"] == "running"
}

#[test]
fn the_background_replay_runs_again_after_ctrl_c_and_after_a_failed_compare() {
    let site = Site::new();
    site.produce(2_000, 7, T);
    site.feed_blue();
    let hold = format!("evaluate={}", hold(&site).display());

    // Stopped by Ctrl-C while green syncs in the background.
    let child = site.spawn_upgrade("up", &["--var", "caught_up_for=1s", "--var", &hold]);
    site.wait_for("up", Duration::from_secs(120), "evaluate", evaluating);
    interrupt(child.id());
    let out = child.wait_with_output(Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = site.status("up");
    assert_eq!(s["steps"]["replay-green"]["live"], true, "{s:#}");
    assert_eq!(s["steps"]["evaluate"]["status"], "interrupted", "{s:#}");
    assert_eq!(s["runner_alive"], false, "{s:#}");

    // The service goes on between runs; blue also gets a row green never
    // will, so the compare fails.
    site.produce(500, 8, T + 18 * HOUR);
    site.feed_blue();
    let mut blue = site.blue.client();
    blue.mutate_row_ts(
        b"messages".to_vec(),
        b"zz-only-in-blue".to_vec(),
        vec![Mutation::new(
            false,
            b"d:text".to_vec(),
            Some(b"x".to_vec()),
            true,
        )],
        T + 1,
        BTreeMap::new(),
    )
    .unwrap();
    let failed = site.upgrade(
        "up",
        &["--var", "caught_up_for=1s", "--var", "evaluate=true"],
    );
    assert_eq!(failed.code(), 3, "{}", failed.stderr());
    assert!(
        failed.stderr().contains("1 only in blue"),
        "{}",
        failed.stderr()
    );
    let s = site.status("up");
    assert_eq!(
        Site::acknowledged(&s),
        2_500,
        "green followed the log after the Ctrl-C: {s:#}"
    );
    assert_eq!(s["steps"]["replay-green"]["live"], true, "{s:#}");

    // Fixed; more traffic; the next run resumes the replay once more, the
    // compare waits until green is current, and the cutover goes ahead.
    blue.delete_all_row_ts(
        b"messages".to_vec(),
        b"zz-only-in-blue".to_vec(),
        T + 1,
        BTreeMap::new(),
    )
    .unwrap();
    site.produce(300, 9, T + 19 * HOUR);
    site.feed_blue();
    let done = site
        .upgrade(
            "up",
            &["--var", "caught_up_for=1s", "--var", "evaluate=true"],
        )
        .success();
    assert!(
        done.stdout()
            .contains(" 0 mismatched, 0 only in blue, 0 only in green"),
        "{}",
        done.stdout()
    );
    assert!(
        done.stdout().contains("switched from `blue` to `green`"),
        "{}",
        done.stdout()
    );
    let s = site.status("up");
    assert_eq!(
        Site::acknowledged(&s),
        2_800,
        "green followed the log after the failed compare: {s:#}"
    );
}

#[test]
fn a_poison_event_in_the_background_replay_fails_the_run_at_once_naming_it() {
    let mut site = Site::new();
    site.produce(1_000, 7, T);
    site.feed_blue();
    let hold = format!("evaluate={}", hold(&site).display());
    let child = site.spawn_upgrade(
        "poison",
        &[
            "--var",
            "caught_up_for=1s",
            "--var",
            &hold,
            "--var",
            "on_error=fail",
        ],
    );
    site.wait_for("poison", Duration::from_secs(120), "evaluate", evaluating);

    // While the broker cannot be asked, the lag is unknown, not 0.
    site.broker.kill();
    site.wait_for("poison", Duration::from_secs(60), "the lag unknown", |s| {
        s["steps"]["replay-green"]["partitions"]
            .as_object()
            .is_some_and(|ps| !ps.is_empty() && ps.values().all(|p| p["lag"].is_null()))
    });
    site.broker.restart();

    site.broker
        .produce_raw(TOPIC, &[(2, "room-0001", b"{not json", T + 20 * HOUR)]);
    let sent = Instant::now();
    let out = child.wait_with_output(Duration::from_secs(120));
    let stopped_after = sent.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // A liveness bound, not a speed claim: before, the run never ended.
    assert!(stopped_after < Duration::from_secs(60), "{stopped_after:?}");
    assert!(
        stderr.contains("step `replay-green` (replay) failed: event partition 2 offset "),
        "{stderr}"
    );
    let s = site.status("poison");
    assert_eq!(s["steps"]["replay-green"]["status"], "failed", "{s:#}");
    assert!(
        s["steps"]["replay-green"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("partition 2 offset")),
        "{s:#}"
    );
    assert_eq!(s["steps"]["evaluate"]["status"], "interrupted", "{s:#}");
    assert_eq!(s["runner_alive"], false, "{s:#}");
}
