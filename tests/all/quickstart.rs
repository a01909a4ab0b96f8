//! The quickstart workflow runs whole on the embedded default, and a
//! finished workflow is not run twice.

use switchyard_tests::cli::Test;
use switchyard_tests::plugins::repo_root;

#[test]
fn the_quickstart_migrates_and_compares_clean() {
    let workflow = repo_root().join("workflows/quickstart.toml");
    let scratch = tempfile::tempdir().unwrap();
    let state = scratch.path().join("state");
    let args = [
        "exec",
        workflow.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--var",
        "events=20000",
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
    let again = test.run().success();
    assert!(
        again.stdout().starts_with("workflow already completed"),
        "{}",
        again.stdout()
    );
}
