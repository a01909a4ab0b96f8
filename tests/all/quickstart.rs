//! The quickstart workflow runs whole on the embedded default, reads
//! moved to green at the end, and a finished workflow is not run twice.

use switchyard_tests::cli::Test;
use switchyard_tests::plugins::repo_root;

#[test]
fn the_quickstart_migrates_and_compares_clean() {
    let workflow = repo_root().join("workflows/quickstart.toml");
    let scratch = tempfile::tempdir().unwrap();
    let state = scratch.path().join("state");
    let ports: Vec<String> = ["router_port", "blue_port", "green_port"]
        .iter()
        .map(|name| format!("{name}={}", switchyard_tests::http::free_port()))
        .collect();
    let args = [
        "exec",
        workflow.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--var",
        "events=20000",
        "--var",
        &ports[0],
        "--var",
        &ports[1],
        "--var",
        &ports[2],
        "--no-progress",
    ];
    let test = Test::new().args(&args);
    let run = test.run().success();
    let out = run.stdout();
    assert!(
        out.starts_with("workflow `quickstart` completed in "),
        "{out}"
    );
    assert!(
        out.contains("20000 events → 20000 row mutations into `blue`"),
        "{out}"
    );
    assert!(
        out.contains(" 0 mismatched, 0 only in blue, 0 only in green"),
        "{out}"
    );
    assert!(out.contains("switched from `blue` to `green`"), "{out}");
    // Reads moved: mirrored with no real mismatch, ramped to every read.
    let mirror = out
        .lines()
        .find(|l| l.trim_start().starts_with("mirror "))
        .expect("a mirror line");
    assert!(mirror.contains(" 0 mismatched, 0 lagging"), "{out}");
    assert!(!mirror.contains("mirrored 0:"), "{out}");
    assert!(out.contains("reads shifted: 10%: green"), "{out}");
    assert!(out.contains("100%: green"), "{out}");
    let routing = std::fs::read_to_string(state.join("routing.json")).unwrap();
    assert!(routing.contains("\"mode\": \"all-green\""), "{routing}");
    let again = test.run().success();
    assert!(
        again.stdout().starts_with("workflow already completed"),
        "{}",
        again.stdout()
    );
}
