//! `shell`: runs a command with `sh -c` in the workflow's folder. Its output
//! goes to the log line by line; a non-zero exit, a timeout or Ctrl-C fails
//! the step, quoting the last lines of output.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{StepContext, StepError};
use crate::engine::Cancel;
use crate::workflow::steps::ShellStep;

/// Lines of output quoted when a command fails.
const TAIL: usize = 20;

/// Runs the step's command.
pub fn run(ctx: &StepContext, id: &str, s: &ShellStep) -> Result<String, StepError> {
    let dir = s
        .dir
        .as_deref()
        .map_or(ctx.workflow.dir.clone(), |d| ctx.workflow.path(d));
    let timeout = s.timeout.map_or(Duration::from_secs(600), |t| t.0);
    let env: Vec<(String, String)> = s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let elapsed = run_command(&s.run, &dir, &env, timeout, &ctx.cancel, id)?;
    Ok(format!(
        "command succeeded in {}",
        crate::report::duration(elapsed)
    ))
}

/// Runs `command` and waits for it, within `timeout`.
pub fn run_command(
    command: &str,
    dir: &Path,
    env: &[(String, String)],
    timeout: Duration,
    cancel: &Cancel,
    step: &str,
) -> Result<Duration, StepError> {
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| StepError::Command(format!("cannot start `sh -c {command}`: {e}")))?;
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|out| {
        let tail = tail.clone();
        let step = step.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                tracing::info!(step = %step, "| {line}");
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                if t.len() == TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        })
    })
    .collect();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| StepError::Command(format!("cannot wait for `{command}`: {e}")))?
        {
            break Some(status);
        }
        if started.elapsed() > timeout || cancel.is_cancelled() {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for r in readers {
        let _ = r.join();
    }
    let tail: Vec<String> = tail
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect();
    let quoted = if tail.is_empty() {
        String::new()
    } else {
        format!("; its last output:\n  {}", tail.join("\n  "))
    };
    match status {
        Some(s) if s.success() => Ok(started.elapsed()),
        Some(s) => Err(StepError::Command(format!(
            "`{command}` exited with {}{quoted}",
            s.code()
                .map_or("a signal".to_string(), |c| format!("status {c}"))
        ))),
        None if cancel.is_cancelled() => Err(StepError::Interrupted),
        None => Err(StepError::Command(format!(
            "`{command}` ran longer than its timeout of {} and was killed{quoted}",
            humantime::format_duration(timeout)
        ))),
    }
}
