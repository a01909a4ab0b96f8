//! The command line: exact error texts of bad workflows (fixtures in
//! `tests/cases/invalid-*`), the plan, exit codes.

use std::path::PathBuf;

use switchyard_tests::cli::Test;
use switchyard_tests::plugins::repo_root;

fn cases(prefix: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo_root().join("tests/cases"))
        .expect("tests/cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_invalid_workflow_gets_its_exact_error_with_file_line_and_column() {
    let cases = cases("invalid-");
    assert!(cases.len() >= 10, "fixtures found: {cases:?}");
    for case in cases {
        let expected =
            std::fs::read_to_string(case.join("expected.stderr")).expect("expected.stderr");
        let run = Test::new()
            .fixture(&case)
            .args(&["validate", "workflow.toml"])
            .run();
        assert_eq!(run.code(), 2, "{}: {}", case.display(), run.stderr());
        assert_eq!(run.stderr(), expected, "{}", case.display());
        // `plan` and `exec` refuse the same file the same way.
        let exec = Test::new()
            .fixture(&case)
            .args(&["exec", "workflow.toml"])
            .run();
        assert_eq!(exec.stderr(), expected, "exec of {}", case.display());
    }
}

#[test]
fn an_unknown_override_names_the_declared_variables() {
    Test::new()
        .workflow("[workflow]\nname = \"w\"\n\n[vars]\nevents = 5\n")
        .args(&["validate", "workflow.toml", "--var", "event=6"])
        .run()
        .expect_code(2)
        .stderr_is(
            "error: `--var event=…` names no variable of this workflow; it declares `events`\n",
        );
}

#[test]
fn overrides_replace_variables_everywhere() {
    let run = Test::new()
        .workflow(
            "[workflow]\nname = \"w\"\n\n[vars]\nword = \"hello\"\n\n[[step]]\nid = \"say\"\nkind = \"shell\"\nrun = \"echo ${word} > out.txt\"\n",
        )
        .args(&["exec", "workflow.toml", "--var", "word=bye"]);
    run.run().success();
    assert_eq!(
        std::fs::read_to_string(run.dir().join("out.txt")).unwrap(),
        "bye\n"
    );
}

#[test]
fn plan_lists_the_quickstart_steps_in_order() {
    let run = Test::new()
        .args(&[
            "plan",
            repo_root()
                .join("workflows/quickstart.toml")
                .to_str()
                .unwrap(),
        ])
        .run()
        .success();
    let out = run.stdout();
    let order: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim_start().split_once(". ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split(' ').next())
        .collect();
    assert_eq!(
        order,
        [
            "sample-events",
            "feed-blue",
            "restore-green",
            "replay-green",
            "compare",
            "sample-reads",
            "blue-read-api",
            "green-read-api",
            "routing",
            "reads",
            "mirror",
            "ramp",
            "cutover"
        ],
        "{out}"
    );
    assert!(
        out.contains("3. restore-green (restore): copy `blue`"),
        "{out}"
    );
}

#[test]
fn a_failing_shell_step_fails_the_run_with_its_output_and_resumes_there() {
    let test = Test::new()
        .workflow(
            "[workflow]\nname = \"w\"\n\n[[step]]\nid = \"one\"\nkind = \"shell\"\nrun = \"echo one >> log.txt\"\n\n[[step]]\nid = \"two\"\nkind = \"shell\"\nrun = \"test -f ok || { echo 'no ok file' >&2; exit 4; }\"\n",
        )
        .args(&["exec", "workflow.toml"]);
    let run = test.run().expect_code(1);
    assert!(
        run.stderr().contains("error: step `two` (shell) failed: `test -f ok || { echo 'no ok file' >&2; exit 4; }` exited with status 4; its last output:\n  no ok file"),
        "{}",
        run.stderr()
    );
    std::fs::write(test.dir().join("ok"), "").unwrap();
    test.run().success();
    // Step one ran once: the second run resumed at step two.
    assert_eq!(
        std::fs::read_to_string(test.dir().join("log.txt")).unwrap(),
        "one\n"
    );
    let again = test.run().success();
    assert!(
        again.stdout().starts_with("workflow already completed"),
        "{}",
        again.stdout()
    );
}

#[test]
fn exec_from_a_step_runs_it_and_the_later_ones_again_and_nothing_before() {
    let test = Test::new().workflow(
        "[workflow]\nname = \"w\"\n\n[[step]]\nid = \"one\"\nkind = \"shell\"\nrun = \"echo one >> log.txt\"\n\n[[step]]\nid = \"two\"\nkind = \"shell\"\nrun = \"echo two >> log.txt\"\n\n[[step]]\nid = \"three\"\nkind = \"shell\"\nrun = \"echo three >> log.txt\"\n",
    );
    test.run_args(&["exec", "workflow.toml"]).success();
    test.run_args(&["exec", "workflow.toml", "--from", "two"])
        .success();
    assert_eq!(
        std::fs::read_to_string(test.dir().join("log.txt")).unwrap(),
        "one\ntwo\nthree\ntwo\nthree\n"
    );
    test.run_args(&["exec", "workflow.toml", "--from", "four"])
        .expect_code(2)
        .stderr_is("error: `--from four`: the workflow has no step `four`; its steps are `one`, `two`, `three`\n");
}

#[test]
fn a_shell_step_past_its_timeout_is_killed() {
    let run = Test::new()
        .workflow("[workflow]\nname = \"w\"\n\n[[step]]\nid = \"slow\"\nkind = \"shell\"\nrun = \"sleep 5\"\ntimeout = \"300ms\"\n")
        .args(&["exec", "workflow.toml"])
        .run()
        .expect_code(1);
    assert!(
        run.stderr()
            .contains("`sleep 5` ran longer than its timeout of 300ms and was killed"),
        "{}",
        run.stderr()
    );
}

/// What `validate` can check without running anything, it checks: a pin
/// against the file, granted folders, a prebuilt plugin's world, and a
/// number written as a variable.
#[test]
fn validate_checks_pins_folders_worlds_and_numbers_written_as_variables() {
    let misbehave = switchyard_tests::plugins::wasm("tests/plugins/misbehave");
    let check = switchyard_tests::plugins::wasm("plugins/chat-check");
    let workflow = |plugin: &std::path::Path, extra: &str| {
        format!(
            "[workflow]\nname = \"w\"\n\n[vars]\nbs = 500\n\n[source.log]\nkind = \"file\"\npath = \"e.ndjson\"\n\n[store.s]\nkind = \"sqlite\"\npath = \"s.sqlite\"\ntables = [\"t\"]\n\n[plugin.p]\nwasm = \"{}\"\n{extra}\n\n[[step]]\nid = \"r\"\nkind = \"replay\"\nsource = \"log\"\ntransform = \"p\"\ninto = \"s\"\nbatch_size = \"${{bs}}\"\n",
            plugin.display()
        )
    };
    let validate = |text: String| {
        Test::new()
            .workflow(&text)
            .args(&["validate", "workflow.toml"])
            .run()
    };
    validate(workflow(&misbehave, "")).success();
    let pinned = validate(workflow(&misbehave, "sha256 = \"00\"")).expect_code(2);
    assert!(
        pinned
            .stderr()
            .starts_with("error: workflow.toml:18:10: plugin `p`: `")
            && pinned
                .stderr()
                .contains("but the workflow pins 00; rebuild the plugin or update `sha256`"),
        "{}",
        pinned.stderr()
    );
    validate(workflow(&misbehave, "read_dirs = [\"nowhere\"]"))
        .expect_code(2)
        .stderr_is("error: workflow.toml:18:14: plugin `p`: `read_dirs` grants `nowhere`, which is not a folder (paths are relative to the workflow's folder)\n");
    validate(workflow(&check, ""))
        .expect_code(2)
        .stderr_is("error: workflow.toml:24:13: plugin `p` is not a transform plugin: it exports `switchyard:plugin/checker@0.2.0`; expected `switchyard:plugin/transformer@0.2.0` (build it with `#[switchyard_sdk::transform]`)\n");
    Test::new()
        .workflow("[workflow]\nname = \"w\"\n\n[[step]]\nid = \"s\"\nkind = \"shell\"\ncommand = [\"true\"]\ntimeout = \"0s\"\n")
        .args(&["validate", "workflow.toml"])
        .run()
        .expect_code(2)
        .stderr_is("error: workflow.toml:5:6: step `s`: `timeout` must be longer than 0s\n");
    Test::new()
        .workflow("[workflow]\nname = \"w\"\n\n[vars]\nk = \"shell\"\n\n[[step]]\nid = \"s\"\nkind = \"${k}\"\nrun = \"true\"\n")
        .args(&["validate", "workflow.toml"])
        .run()
        .expect_code(2)
        .stderr_is("error: workflow.toml:9:8: a step's `kind` is written out, not taken from a variable\n");
    validate(workflow(&misbehave, "timeout = \"0s\""))
        .expect_code(2)
        .stderr_is("error: workflow.toml:18:11: plugin `p`: `timeout` = 0s is outside 10ms to 1h; a call needs a few ticks of the 10ms clock, and one batch should never take an hour\n");
}

/// A state folder records whose it is: another workflow's state, or this
/// one's from before its steps changed, is refused instead of being taken
/// for "already completed".
#[test]
fn another_workflows_state_is_refused_not_taken_for_done() {
    let workflow = |name: &str, step: &str| {
        format!(
            "[workflow]\nname = \"{name}\"\n\n[[step]]\nid = \"{step}\"\nkind = \"shell\"\ncommand = [\"true\"]\n"
        )
    };
    let test = Test::new()
        .file("a.toml", &workflow("a", "only"))
        .file("b.toml", &workflow("b", "only"))
        .file("a2.toml", &workflow("a", "other"));
    let exec = |file: &str, fresh: bool| {
        let mut args = vec!["exec", file, "--state", "st", "--no-progress"];
        if fresh {
            args.push("--fresh");
        }
        switchyard_tests::bounded::output(
            std::process::Command::new(switchyard_tests::cli::runner_bin())
                .args(&args)
                .current_dir(test.dir())
                .env("RUST_LOG", "warn"),
            switchyard_tests::bounded::LIMIT,
        )
    };
    assert!(exec("a.toml", false).status.success());
    let other = exec("b.toml", false);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&other.stderr).ends_with(
            "/st` holds the state of workflow `a`, not of `b`; give this workflow its own `--state` folder\n"
        ),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    let changed = exec("a2.toml", false);
    assert_eq!(changed.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&changed.stderr)
            .contains("holds the state of another version of `a`: it ran a step `only` (shell) that the workflow no longer has"),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    assert!(
        exec("a2.toml", true).status.success(),
        "--fresh starts over"
    );
}

/// A plugin is compiled once: the next run reads the compiled code from
/// the cache folder, and `runner plugin clean` empties it.
#[test]
fn a_compiled_plugin_is_kept_and_the_next_run_reads_it_back() {
    let transform = switchyard_tests::plugins::wasm("plugins/chat-transform");
    let test = Test::new()
        .workflow(&format!(
            "[workflow]\nname = \"w\"\n\n[source.log]\nkind = \"file\"\npath = \"e.ndjson\"\n\n[store.s]\nkind = \"sqlite\"\npath = \"s.sqlite\"\ntables = [\"messages\"]\n\n[plugin.p]\nwasm = \"{}\"\n\n[[step]]\nid = \"r\"\nkind = \"replay\"\nsource = \"log\"\ntransform = \"p\"\ninto = \"s\"\n",
            transform.display()
        ))
        .file("e.ndjson", "");
    let cache = test.dir().join("compiled");
    let cache = cache.to_str().unwrap();
    let run = |args: &[&str]| {
        Test::new()
            .fixture(test.dir())
            .env("SWITCHYARD_PLUGIN_CACHE", cache)
            .env("RUST_LOG", "switchyard_runner::plugin=debug")
            .args(args)
            .run()
            .success()
    };
    let first = run(&["validate", "--connect", "workflow.toml"]);
    assert!(
        first.stderr().contains("plugin compiled"),
        "{}",
        first.stderr()
    );
    let second = run(&["validate", "--connect", "workflow.toml"]);
    assert!(
        second
            .stderr()
            .contains("compiled plugin read from the cache")
            && !second.stderr().contains("plugin compiled"),
        "{}",
        second.stderr()
    );
    let clean = run(&["plugin", "clean"]);
    assert!(
        clean.stdout().starts_with("removed 1 compiled plugin(s)"),
        "{}",
        clean.stdout()
    );
}
