//! The host tried the way an attacker would: plugins that stay inside
//! their own limits but lean on the host (make it build, wait, log), values
//! that hold shell syntax, a state folder that is not the runner's.
//!
//! Each case is a folder `tests/cases/hostile-NAME/` with the workflow (its
//! plugins named by the `${misbehave}` and `${amplify}` variables, which the
//! test points at the built test plugins), its events, and `expect.toml`:
//! the exit code, the named error, and the bounds that must hold (peak
//! memory of the runner, wall time, bytes of output, files untouched).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use switchyard_tests::cli::Test;
use switchyard_tests::plugins::{repo_root, wasm};

/// What a case must show.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// Arguments after `exec workflow.toml --no-progress`.
    #[serde(default)]
    args: Vec<String>,
    /// Environment of the run.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// A FIFO to create first (git cannot hold one).
    #[serde(default)]
    fifo: Option<String>,
    code: i32,
    /// The whole of stderr.
    #[serde(default)]
    stderr: Option<String>,
    /// Parts of stderr.
    #[serde(default)]
    contains: Vec<String>,
    /// Never in stderr.
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    max_stderr_bytes: Option<usize>,
    #[serde(default)]
    max_stderr_lines: Option<usize>,
    /// Bytes of the state file.
    #[serde(default)]
    max_state_bytes: Option<u64>,
    /// The runner's own peak resident memory.
    #[serde(default)]
    max_rss_mib: Option<u64>,
    #[serde(default)]
    max_seconds: Option<u64>,
    /// Run `exec` once more: the same code and error.
    #[serde(default)]
    again: bool,
    #[serde(default)]
    files_absent: Vec<String>,
    /// Files that must start with these texts.
    #[serde(default)]
    files: BTreeMap<String, String>,
    /// Files that must contain these texts.
    #[serde(default)]
    file_contains: BTreeMap<String, Vec<String>>,
    /// Files that must hold exactly these texts.
    #[serde(default)]
    file_equals: BTreeMap<String, String>,
}

fn case(name: &str) {
    let folder = repo_root()
        .join("tests/cases")
        .join(format!("hostile-{name}"));
    let expect: Expect =
        toml::from_str(&std::fs::read_to_string(folder.join("expect.toml")).expect("expect.toml"))
            .unwrap_or_else(|e| panic!("{name}/expect.toml: {e}"));
    let mut test = Test::new();
    for entry in std::fs::read_dir(&folder).expect("case folder") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n != "expect.toml") {
            std::fs::copy(&path, test.dir().join(path.file_name().unwrap())).expect("copy");
        }
    }
    if let Some(fifo) = &expect.fifo {
        let path = test.dir().join(fifo);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo");
    }
    let misbehave = format!("misbehave={}", wasm("tests/plugins/misbehave").display());
    let amplify = format!("amplify={}", wasm("tests/plugins/amplify").display());
    let mut args = vec![
        "exec",
        "workflow.toml",
        "--no-progress",
        "--var",
        &misbehave,
        "--var",
        &amplify,
    ];
    args.extend(expect.args.iter().map(String::as_str));
    test = test.args(&args);
    for (k, v) in &expect.env {
        test = test.env(k, v);
    }
    let limit = Duration::from_secs(expect.max_seconds.unwrap_or(120));
    let first = check(name, &test, &expect, limit);
    if expect.again {
        let second = check(name, &test, &expect, limit);
        assert_eq!(first, second, "{name}: a second run ends the same way");
    }
    for file in &expect.files_absent {
        assert!(!test.dir().join(file).exists(), "{name}: `{file}` exists");
    }
    let read = |file: &String| {
        std::fs::read_to_string(test.dir().join(file))
            .unwrap_or_else(|e| panic!("{name}: cannot read `{file}`: {e}"))
    };
    for (file, start) in &expect.files {
        assert!(read(file).starts_with(start.as_str()), "{name}: `{file}`");
    }
    for (file, parts) in &expect.file_contains {
        let text = read(file);
        for part in parts {
            assert!(
                text.contains(part.as_str()),
                "{name}: `{part}` not in `{file}`: {text}"
            );
        }
    }
    for (file, whole) in &expect.file_equals {
        assert_eq!(&read(file), whole, "{name}: `{file}`");
    }
    if let Some(max) = expect.max_state_bytes {
        let state = test.dir().join(format!(".switchyard/{name}/state.json"));
        let len = std::fs::metadata(&state).expect("state.json").len();
        assert!(len <= max, "{name}: state.json is {len} bytes");
    }
}

/// One run: checks what it must show; returns its exit code and error.
fn check(name: &str, test: &Test, expect: &Expect, limit: Duration) -> (i32, String) {
    let run = test.measure(limit);
    eprintln!(
        "{name}: peak {} MiB, {:?}",
        run.peak_rss_kib / 1024,
        run.elapsed
    );
    let stderr = String::from_utf8_lossy(&run.output.stderr).into_owned();
    let code = run.output.status.code().unwrap_or(-1);
    assert_eq!(code, expect.code, "{name}: exit code; stderr:\n{stderr}");
    if let Some(whole) = &expect.stderr {
        assert_eq!(&stderr, whole, "{name}");
    }
    for part in &expect.contains {
        assert!(
            stderr.contains(part.as_str()),
            "{name}: `{part}` not in:\n{stderr}"
        );
    }
    for part in &expect.absent {
        assert!(
            !stderr.contains(part.as_str()),
            "{name}: `{part}` in:\n{stderr}"
        );
    }
    if let Some(max) = expect.max_stderr_bytes {
        assert!(
            stderr.len() <= max,
            "{name}: {} bytes of stderr",
            stderr.len()
        );
    }
    if let Some(max) = expect.max_stderr_lines {
        let lines = stderr.lines().count();
        assert!(lines <= max, "{name}: {lines} lines of stderr");
    }
    if let Some(max) = expect.max_rss_mib {
        let mib = run.peak_rss_kib / 1024;
        assert!(mib <= max, "{name}: the runner peaked at {mib} MiB");
    }
    // Wall time is a bound on a hang here (a 20 s sleep under a 1 s
    // deadline), far from what a healthy run takes.
    if let Some(max) = expect.max_seconds {
        assert!(
            run.elapsed <= Duration::from_secs(max),
            "{name}: took {:?}",
            run.elapsed
        );
    }
    (code, stderr)
}

macro_rules! cases {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                case($name);
            }
        )*

        #[test]
        fn every_hostile_case_has_a_test() {
            let listed = [$($name),*];
            for entry in std::fs::read_dir(repo_root().join("tests/cases")).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                if let Some(case) = name.strip_prefix("hostile-") {
                    assert!(listed.contains(&case), "tests/cases/{name} has no test");
                }
            }
        }
    };
}

cases! {
    rows_sharing_one_range_of_cells_are_stopped_before_they_are_built => "shared-cells",
    cells_sharing_one_value_count_every_use_against_the_batch_budget => "shared-puts",
    a_batch_run_again_event_by_event_keeps_one_budget => "one-at-a-time",
    a_plugin_writes_only_to_the_tables_the_store_declares => "tables",
    a_refusal_of_a_megabyte_is_kept_to_a_kilobyte => "long-refusal",
    a_sleep_inside_a_host_call_still_ends_at_the_deadline => "sleep",
    a_fifo_in_a_granted_folder_cannot_hang_the_runner => "fifo",
    a_flood_of_plugin_log_lines_is_capped_per_call => "log-flood",
    a_plugin_cannot_forge_a_runner_log_line => "log-forge",
    a_timeout_that_would_overflow_is_refused_at_load => "huge-timeout",
    too_much_data_in_one_call_names_max_output => "big-value",
    a_stack_overflow_is_named => "recurse",
    random_numbers_are_denied_unless_granted => "random",
    granted_random_numbers_are_handed_out_in_bounded_amounts => "random-granted-huge",
    an_event_over_the_size_limit_is_set_aside_with_its_line => "oversized-event",
    a_var_holding_shell_syntax_stays_one_literal_word => "var-shell",
    a_var_where_a_program_reads_code_is_refused => "var-code",
    a_state_folder_that_is_not_the_runners_is_refused_and_left_alone => "state-here",
}
