//! Child processes with a time limit. A runner that hangs must fail its
//! test with what it printed, not stall the whole suite until CI gives up;
//! and a test that panics must not leave its runner behind.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Long enough for the slowest workflow the tests run on two busy cores.
pub const LIMIT: Duration = Duration::from_secs(300);

/// A running child whose stdout and stderr are read as it writes them (so
/// a full pipe never blocks it), killed if dropped before it ends.
pub struct Running {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

/// Starts `cmd` with its output captured.
pub fn spawn(cmd: &mut Command) -> Running {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"));
    Running {
        stdout: Some(drain(child.stdout.take())),
        stderr: Some(drain(child.stderr.take())),
        child,
    }
}

/// Runs `cmd` to the end, capturing its output; kills it and panics with
/// that output when it runs past `limit`.
pub fn output(cmd: &mut Command, limit: Duration) -> Output {
    spawn(cmd).wait_with_output(limit)
}

impl Running {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if it ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Kills it (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the end and collects the output; kills it and panics with
    /// that output past `limit`.
    pub fn wait_with_output(mut self, limit: Duration) -> Output {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.try_wait() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if status.is_none() {
            self.kill();
        }
        let output = Output {
            status: status.unwrap_or_else(|| self.child.wait().expect("wait after kill")),
            stdout: join(self.stdout.take()),
            stderr: join(self.stderr.take()),
        };
        if status.is_none() {
            panic!(
                "process {} still ran after {limit:?} and was killed;\nstdout:\n{}\nstderr:\n{}",
                self.child.id(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        output
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            self.kill();
        }
    }
}

/// What a measured run did: its output, its peak resident memory and how
/// long it took.
pub struct Measured {
    /// Exit status and output.
    pub output: Output,
    /// The program's peak resident set, in KiB.
    pub peak_rss_kib: u64,
    /// Wall time from start to exit.
    pub elapsed: Duration,
}

/// Runs `cmd` to the end like [`output`], through `peak-rss` (a bin of
/// this crate), which measures the program's own peak memory.
pub fn measured(cmd: &Command, limit: Duration) -> Measured {
    let dir = tempfile::tempdir().expect("temp dir");
    let peak_file = dir.path().join("peak");
    let exe = std::env::current_exe().expect("test exe path");
    // target/debug/deps/all-… → target/debug/peak-rss
    let tool = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target dir")
        .join("peak-rss");
    let mut wrapped = Command::new(tool);
    wrapped
        .arg(&peak_file)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    let started = Instant::now();
    let output = self::output(&mut wrapped, limit);
    let elapsed = started.elapsed();
    let peak_rss_kib = std::fs::read_to_string(&peak_file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    Measured {
        output,
        peak_rss_kib,
        elapsed,
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

fn join(reader: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    reader.and_then(|r| r.join().ok()).unwrap_or_default()
}
