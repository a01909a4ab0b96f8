//! `workflows/hbase-upgrade.toml` end to end on real wires, against a blue
//! that only the service writes: chat events produced to Tansu the whole
//! time, blue fed by the old updater's stand-in as the service would (its
//! own consumer group, offsets committed after each write, no Switchyard
//! watermark of blue's), green restored from blue as of the group's
//! position, replayed from Kafka, kept in sync in the background while the
//! traffic goes on, compared and cut over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use switchyard_runner::sample::ChatSample;
use switchyard_tests::bounded;
use switchyard_tests::site::{Site, TOPIC};

/// 2026-01-01T00:00:00Z, where the chat sample starts.
const T: i64 = 1_767_225_600_000;
const HOUR: i64 = 3_600_000;

#[test]
fn the_hbase_upgrade_runs_end_to_end_against_a_service_fed_blue_with_live_traffic() {
    let site = Site::new();
    site.produce(20_000, 7, T);
    site.feed_blue();

    // The evaluate step waits for the test's go-ahead, so traffic flows
    // while the replay syncs in the background.
    let go = site.dir.path().join("go");
    let script = site.dir.path().join("wait-for-go");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor i in $(seq 3000); do [ -f '{}' ] && exit 0; sleep 0.1; done; exit 1\n",
            go.display()
        ),
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&script, permissions).unwrap();
    let evaluate = format!("evaluate={}", script.display());

    let stop = AtomicBool::new(false);
    let (out, produced) = std::thread::scope(|scope| {
        // The service: events keep coming, and its updater keeps blue fed.
        let traffic = scope.spawn(|| {
            let mut produced = 20_000;
            let mut round = 0;
            while !stop.load(Ordering::SeqCst) {
                // Event times move forward as a live service's do: each
                // round within ten minutes, a quarter of an hour apart.
                site.broker.produce_chat(
                    TOPIC,
                    &ChatSample {
                        events: 200,
                        seed: 100 + round,
                        start_ms: T + 20 * HOUR + round as i64 * HOUR / 4,
                        span_ms: HOUR / 6,
                        ..ChatSample::default()
                    },
                );
                produced += 200;
                site.feed_blue();
                round += 1;
            }
            produced
        });
        let child = site.spawn_upgrade(
            "upgrade",
            &["--var", "caught_up_for=1s", "--var", &evaluate],
        );
        let live = site.wait_for(
            "upgrade",
            Duration::from_secs(180),
            "the catch-up gate",
            |s| s["steps"]["replay-green"]["live"] == true,
        );
        // Green follows the live log in the background.
        let from = Site::acknowledged(&live);
        site.wait_for(
            "upgrade",
            Duration::from_secs(120),
            "green following",
            |s| Site::acknowledged(s) >= from + 1_000,
        );
        std::fs::write(&go, "").unwrap();
        let out = child.wait_with_output(bounded::LIMIT);
        stop.store(true, Ordering::SeqCst);
        (out, traffic.join().unwrap())
    });

    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(produced >= 21_000, "{produced}");
    // The end of a partition is news, not a warning.
    assert!(
        !stderr.contains("PartitionEOF") && !stderr.contains("Partition EOF"),
        "{stderr}"
    );
    assert!(
        stdout.contains(" 0 mismatched, 0 only in blue, 0 only in green"),
        "{stdout}"
    );
    assert!(
        stdout.contains("keeps syncing in the background"),
        "{stdout}"
    );
    assert!(
        stdout.contains("switched from `blue` to `green`"),
        "{stdout}"
    );
    // Blue holds no watermark of Switchyard's under its name: the restore
    // and compare points came from the service's consumer group.
    let meta = site.blue.dump("switchyard_meta");
    assert!(!meta.contains("m:blue"), "{meta}");
    let state = site.status("upgrade");
    assert_eq!(
        state["steps"]["replay-green"]["live"],
        serde_json::Value::Null
    );
    assert!(
        state["steps"]["replay-green"]["summary"]
            .as_str()
            .unwrap()
            .contains("stopped:"),
        "{state:#}"
    );
    assert!(
        state["restore_points"]["green"].as_i64().unwrap() > T,
        "{state:#}"
    );
}
