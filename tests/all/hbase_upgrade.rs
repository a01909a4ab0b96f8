//! `workflows/hbase-upgrade.toml` end to end on real wires: chat events
//! produced to Tansu, blue fed by the old updater's stand-in, green
//! restored from blue and replayed from Kafka, kept in sync in the
//! background while more events arrive, compared and cut over.

use std::time::Duration;

use switchyard_tests::bounded;
use switchyard_tests::site::Site;

/// 2026-01-01T00:00:00Z, where the chat sample starts.
const T: i64 = 1_767_225_600_000;

#[test]
fn the_hbase_upgrade_runs_end_to_end_and_keeps_green_in_sync_until_cutover() {
    let site = Site::new();
    site.produce(20_000, 7, T);
    site.feed_blue();

    // The evaluate step waits for the test's go-ahead, so the test can send
    // more events while the replay syncs in the background.
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
    let child = site.spawn_upgrade(
        "upgrade",
        &["--var", "caught_up_for=1s", "--var", &evaluate],
    );
    site.wait_for(
        "upgrade",
        Duration::from_secs(120),
        "the catch-up gate",
        |s| s["steps"]["replay-green"]["live"] == true,
    );

    // Live traffic: the service keeps writing; its updater keeps blue fed.
    site.produce(2_000, 8, T + 18 * 3_600_000);
    site.feed_blue();
    let end: i64 = {
        let s = site.wait_for("upgrade", Duration::from_secs(60), "green in sync", |s| {
            let parts = &s["steps"]["replay-green"]["partitions"];
            parts.as_object().is_some_and(|ps| {
                ps.len() == 4
                    && ps.values().all(|p| p["lag"] == 0)
                    && ps
                        .values()
                        .map(|p| p["high"].as_i64().unwrap_or(0))
                        .sum::<i64>()
                        == 22_000
            })
        });
        s["steps"]["replay-green"]["partitions"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p["acked"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(end, 22_000, "green acknowledged every event of the topic");
    std::fs::write(&go, "").unwrap();

    let out = child.wait_with_output(bounded::LIMIT);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
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
}
