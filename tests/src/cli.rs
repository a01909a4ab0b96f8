//! A small fluent helper for CLI tests: a workflow in, the `runner` binary
//! run in a scratch folder, exit code and output checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::plugins::repo_root;

/// The `runner` binary of this build, built once per test binary.
pub fn runner_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--bin", "runner"])
            .current_dir(repo_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the runner failed");
        let exe = std::env::current_exe().expect("test exe path");
        // target/debug/deps/all-… → target/debug/runner
        exe.parent()
            .and_then(Path::parent)
            .expect("target dir")
            .join("runner")
    })
    .clone()
}

/// One CLI run, built up fluently.
pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Default for Test {
    fn default() -> Self {
        Self::new()
    }
}

impl Test {
    /// A run in a new scratch folder.
    pub fn new() -> Self {
        Test {
            dir: tempfile::tempdir().expect("temp dir"),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The scratch folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `workflow.toml` into the scratch folder.
    pub fn workflow(self, text: &str) -> Self {
        self.file("workflow.toml", text)
    }

    /// Writes a file into the scratch folder.
    pub fn file(self, name: &str, text: &str) -> Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write fixture");
        self
    }

    /// Copies a fixture folder (files and folders in it) into the scratch
    /// folder.
    pub fn fixture(self, folder: &Path) -> Self {
        copy_tree(folder, self.dir.path());
        self
    }

    /// The command line after `runner`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// An environment variable for the run.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs `runner` with `args` in the scratch folder.
    pub fn run_args(&self, args: &[&str]) -> Run {
        let mut cmd = self.command();
        cmd.args(args);
        Run {
            output: crate::bounded::output(&mut cmd, crate::bounded::LIMIT),
        }
    }

    /// Runs `runner` in the scratch folder.
    pub fn run(&self) -> Run {
        let output = crate::bounded::output(&mut self.command(), crate::bounded::LIMIT);
        Run { output }
    }

    /// Runs `runner` in the scratch folder, measuring its peak memory and
    /// wall time; kills it past `limit`.
    pub fn measure(&self, limit: std::time::Duration) -> crate::bounded::Measured {
        crate::bounded::measured(&self.command(), limit)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(runner_bin());
        cmd.args(&self.args)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().cloned());
        cmd
    }
}

/// What a run did.
pub struct Run {
    /// The raw output.
    pub output: Output,
}

impl Run {
    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The exit code.
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    /// Asserts the exit code, showing the output when it differs.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            code,
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// Asserts the whole of standard error.
    pub fn stderr_is(self, expected: &str) -> Self {
        assert_eq!(self.stderr(), expected);
        self
    }

    /// Asserts success.
    pub fn success(self) -> Self {
        self.expect_code(0)
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("fixture folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                std::fs::create_dir_all(&target).expect("fixture subfolder");
                copy_tree(&entry.path(), &target);
            }
            Ok(t) if t.is_file() => {
                std::fs::copy(entry.path(), target).expect("copy");
            }
            _ => {}
        }
    }
}
