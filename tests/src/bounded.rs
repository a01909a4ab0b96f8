//! Child processes with a time limit. A runner that hangs must fail its
//! test with what it printed, not stall the whole suite until CI gives up.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Long enough for the slowest workflow the tests run on two busy cores.
pub const LIMIT: Duration = Duration::from_secs(300);

/// Runs `cmd` to the end, capturing its output; kills it and panics with
/// that output when it runs past `limit`.
pub fn output(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"));
    wait_with_output(child, limit)
}

/// Waits for a spawned child, collecting whatever of stdout and stderr was
/// piped; kills it and panics with that output past `limit`.
pub fn wait_with_output(mut child: Child, limit: Duration) -> Output {
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_or_kill(&mut child, limit);
    let output = Output {
        status: status.unwrap_or_else(|| child.wait().expect("wait after kill")),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if status.is_none() {
        panic!(
            "process {} still ran after {limit:?} and was killed;\nstdout:\n{}\nstderr:\n{}",
            child.id(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// Waits for a child whose output is not captured; kills it and panics past
/// `limit`.
pub fn wait(mut child: Child, limit: Duration) -> ExitStatus {
    match wait_or_kill(&mut child, limit) {
        Some(status) => status,
        None => panic!(
            "process {} still ran after {limit:?} and was killed",
            child.id()
        ),
    }
}

/// The exit status, or `None` after killing a child that outlived `limit`.
fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
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
