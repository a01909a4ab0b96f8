//! `shell`: runs a command in the workflow's folder: a program and its
//! arguments directly (`command = [...]`), or a line with `sh -c` (`run`),
//! in which the workflow loader has quoted every `${var}`. Its output goes
//! to the log line by line; a non-zero exit, a timeout or Ctrl-C fails the
//! step, quoting the last lines of output. The command and everything it
//! starts are stopped with the step and never outlive the runner (see
//! `process`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{StepContext, StepError};
use crate::cancel::Cancel;
use crate::process::{guarded, stop_group, stop_leftovers};
use crate::workflow::steps::{CommandLine, ShellStep};

/// Lines of output quoted when a command fails.
const TAIL: usize = 20;

/// The longest line of a command's output that is kept; the rest of a
/// longer line is skipped, so a command that never prints a newline cannot
/// fill the runner's memory.
const LINE_LIMIT: u64 = 4096;

/// Runs the step's command.
pub fn run(ctx: &StepContext, id: &str, s: &ShellStep) -> Result<String, StepError> {
    let dir = s
        .dir
        .as_deref()
        .map_or(ctx.workflow.dir.clone(), |d| ctx.workflow.path(d));
    let timeout = s.timeout.map_or(Duration::from_secs(600), |t| t.0);
    let env: Vec<(String, String)> = s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let command = match (&s.command, &s.run) {
        (Some(args), _) => CommandLine::Args(args.clone()),
        (None, Some(line)) => CommandLine::Shell(line.clone()),
        (None, None) => {
            return Err(StepError::Other(
                "the step has neither `command` nor `run`".into(),
            ));
        }
    };
    let elapsed =
        ctx.run_command(|| run_command(&command, &dir, &env, timeout, &ctx.cancel, id))?;
    Ok(format!(
        "command succeeded in {}",
        crate::report::duration(elapsed)
    ))
}

/// Runs `command` and waits for it, within `timeout`.
pub fn run_command(
    command: &CommandLine,
    dir: &Path,
    env: &[(String, String)],
    timeout: Duration,
    cancel: &Cancel,
    step: &str,
) -> Result<Duration, StepError> {
    let started = Instant::now();
    let shown = command.shown();
    // Under a guard in a process group of its own: stopping the step stops
    // everything the command started, and nothing outlives the runner.
    let mut cmd = match command {
        CommandLine::Shell(line) => guarded("sh", &["-c".to_string(), line.clone()]),
        CommandLine::Args(args) => {
            let Some((program, rest)) = args.split_first() else {
                return Err(StepError::Command("the command is empty".into()));
            };
            // Under the guard a missing program would only show as status
            // 127; said plainly before anything starts.
            if !findable(program, dir, env) {
                return Err(StepError::Command(format!(
                    "cannot start `{shown}`: no program `{program}` {}",
                    if program.contains('/') {
                        format!("in {}", dir.display())
                    } else {
                        "on the PATH".to_string()
                    }
                )));
            }
            guarded(program, rest)
        }
    };
    let mut child = cmd
        .current_dir(dir)
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| StepError::Command(format!("cannot start `{shown}`: {e}")))?;
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
            let mut out = BufReader::new(out);
            while let Some(line) = bounded_line(&mut out) {
                let line = crate::text::one_line(&line);
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
            .map_err(|e| StepError::Command(format!("cannot wait for `{shown}`: {e}")))?
        {
            break Some(status);
        }
        if started.elapsed() > timeout || cancel.is_cancelled() {
            stop_group(&mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if status.is_some() {
        stop_leftovers(&mut child);
    }
    // The group is gone, so its output ends; a process that left the group
    // (`setsid`) may still hold it open, and is not waited for.
    let deadline = Instant::now() + Duration::from_secs(2);
    while readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for r in readers {
        if r.is_finished() {
            let _ = r.join();
        }
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
            "`{shown}` {}{quoted}",
            match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                (Some(c), _) => format!("exited with status {c}"),
                (None, Some(n)) => format!("was killed by signal {n}"),
                (None, None) => "ended without a status".to_string(),
            }
        ))),
        None if cancel.is_cancelled() => Err(StepError::Interrupted),
        None => Err(StepError::Command(format!(
            "`{shown}` ran longer than its timeout of {} and was killed{quoted}",
            humantime::format_duration(timeout)
        ))),
    }
}

/// Whether `program` names an executable file: a path (relative to `dir`),
/// or a name found on the `PATH` the command will get.
fn findable(program: &str, dir: &Path, env: &[(String, String)]) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(&dir.join(program));
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    std::env::split_paths(&path).any(|d| executable(&dir.join(d).join(program)))
}

/// The next line of `out`, at most [`LINE_LIMIT`] bytes of it; `None` at
/// the end.
fn bounded_line(out: &mut impl BufRead) -> Option<String> {
    let mut line = Vec::new();
    crate::text::read_line(out, &mut line, LINE_LIMIT).ok()??;
    Some(String::from_utf8_lossy(&line).into_owned())
}
