//! Ctrl-C, SIGTERM and kill -9 during a `shell` step: the step stops with
//! everything its command started (the whole process group, after a short
//! grace period), exits 130 or 143, and no child outlives the runner —
//! not even one killed with -9, after which `status` says no runner is
//! alive for the state folder.

use std::process::Command;
use std::time::{Duration, Instant};

use switchyard_tests::bounded::{self, Running};
use switchyard_tests::cli::runner_bin;

/// Processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

/// Waits until `done` holds, or panics after `limit` with `what`.
fn wait_until(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A workflow whose shell step starts a child of a child, both sleeping
/// with `marker` (a sleep of an odd length) on their command lines.
fn start(dir: &std::path::Path, marker: &str) -> Running {
    let workflow = dir.join("workflow.toml");
    std::fs::write(
        &workflow,
        format!(
            "[workflow]\nname = \"hold\"\n\n[[step]]\nid = \"hold\"\nkind = \"shell\"\nrun = \"sleep {marker} & sleep {marker}; wait\"\n"
        ),
    )
    .unwrap();
    let child = bounded::spawn(
        Command::new(runner_bin())
            .args(["exec", "--no-progress"])
            .arg(&workflow)
            .env("RUST_LOG", "warn"),
    );
    wait_until(Duration::from_secs(30), "the shell step's children", || {
        processes_with(marker).len() >= 2
    });
    child
}

fn status(dir: &std::path::Path, json: bool) -> String {
    let mut cmd = Command::new(runner_bin());
    cmd.arg("status").arg(dir.join("workflow.toml"));
    if json {
        cmd.arg("--json");
    }
    let out = bounded::output(&mut cmd, Duration::from_secs(60));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn ctrl_c_and_sigterm_stop_a_shell_step_with_its_children_and_record_it_interrupted() {
    for (name, code, marker) in [("INT", 130, "987.125"), ("TERM", 143, "987.375")] {
        let dir = tempfile::tempdir().unwrap();
        let child = start(dir.path(), marker);
        let asked = Instant::now();
        signal(child.id(), name);
        let out = child.wait_with_output(Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "SIG{name}: {stderr}");
        // The grace period is 5 s; the hour-long default timeout is not waited for.
        assert!(asked.elapsed() < Duration::from_secs(30), "SIG{name}");
        assert_eq!(processes_with(marker), Vec::<String>::new(), "SIG{name}");
        let state: serde_json::Value = serde_json::from_str(&status(dir.path(), true)).unwrap();
        assert_eq!(state["steps"]["hold"]["status"], "interrupted", "{state:#}");
    }
}

#[test]
fn after_kill_9_no_child_outlives_the_runner_and_status_says_none_is_alive() {
    let dir = tempfile::tempdir().unwrap();
    let marker = "987.625";
    let mut child = start(dir.path(), marker);
    let alive = status(dir.path(), false);
    assert!(alive.contains("runner: alive"), "{alive}");
    child.kill();
    wait_until(
        Duration::from_secs(30),
        "the children to be stopped",
        || processes_with(marker).is_empty(),
    );
    let text = status(dir.path(), false);
    assert!(
        text.contains("runner: none alive for this state folder"),
        "{text}"
    );
    assert!(text.contains("hold             stopped"), "{text}");
}
