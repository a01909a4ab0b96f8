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

use std::collections::BTreeMap;

use serde::Deserialize;

use super::checking::Checking;
use super::uses::Uses;
use super::{StepConfig, StepContext, StepError, StepFile};
use crate::cancel::Cancel;
use crate::document::values::Period;
use crate::document::{Kind, WorkflowError};
use crate::process::{guarded, stop_group, stop_leftovers};
use crate::setup::Setup;

/// The kind, for the registration list.
pub const KIND: Kind<dyn StepFile> = Kind {
    name: "shell",
    read: |table| Ok(Box::new(table.read::<ShellFile>()?)),
};

/// `kind = "shell"` as written: a command, run directly
/// (`command = ["prog", "arg"]`) or with `sh -c` (`run = "…"`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellFile {
    /// A command line for `sh -c`; every `${var}` in it is quoted by the runner.
    #[serde(default)]
    run: Option<String>,
    /// A program and its arguments, run without a shell.
    #[serde(default)]
    command: Option<Vec<String>>,
    /// Longest it may run (default 10m); then it is killed and the step fails.
    #[serde(default)]
    timeout: Option<Period>,
    /// Extra environment variables.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Working folder (default: the workflow's folder).
    #[serde(default)]
    dir: Option<String>,
    /// Not run in order: only when a `cutover` (`on_cutover`) or a
    /// `shift` (`on_rollback`) names it.
    #[serde(default, deserialize_with = "crate::document::values::flag")]
    hook: bool,
}

/// `kind = "shell"`: a command; a non-zero exit fails the step.
#[derive(Debug, Clone, PartialEq)]
pub struct ShellStep {
    /// What to run: `command` or `run`, whichever the file gave.
    pub command: CommandLine,
    /// Longest it may run (default 10m); then it is killed and the step fails.
    pub timeout: Option<Period>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Working folder (default: the workflow's folder).
    pub dir: Option<String>,
    /// Run only when a step names it as a hook.
    pub hook: bool,
}

impl StepFile for ShellFile {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        let command = match (self.command, self.run) {
            (Some(_), Some(_)) | (None, None) => return Err(c.step(
                "needs exactly one of `command` (a program and its arguments, run without a shell) or `run` (a line for `sh -c`)",
            )),
            (Some(args), None) if args.first().is_none_or(|p| p.trim().is_empty()) => return Err(c.step(
                "`command` is empty; give the program first, like `[\"runner\", \"sample\", \"chat\"]`",
            )),
            (None, Some(run)) if run.trim().is_empty() => return Err(c.step("`run` is empty")),
            (Some(args), None) => CommandLine::Args(args),
            (None, Some(line)) => CommandLine::Shell(line),
        };
        c.not_zero(self.timeout, "timeout")?;
        Ok(Box::new(ShellStep {
            command,
            timeout: self.timeout,
            env: self.env,
            dir: self.dir,
            hook: self.hook,
        }))
    }
}

impl StepConfig for ShellStep {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self, _setup: &Setup) -> String {
        let what = match &self.command {
            CommandLine::Args(_) => format!("run `{}` (no shell)", self.command.shown()),
            CommandLine::Shell(line) => format!("run `{line}` with sh -c"),
        };
        if self.hook {
            format!("a hook, not run in order: {what} when a step names it")
        } else {
            what
        }
    }

    fn is_hook(&self) -> bool {
        self.hook
    }

    fn uses<'s>(&'s self, uses: &mut Uses<'s>) {
        uses.command();
    }

    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError> {
        run(ctx, id, self)
    }
}

/// A command to run: a program and its arguments, run directly
/// (`["runner", "sample", "chat"]`), or one line run by `sh -c`, in which
/// the runner quotes every `${var}` itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// Run without a shell.
    Args(Vec<String>),
    /// Run with `sh -c`.
    Shell(String),
}

impl CommandLine {
    /// How the command reads in messages.
    pub fn shown(&self) -> String {
        match self {
            CommandLine::Shell(line) => crate::text::one_line(line),
            CommandLine::Args(args) => args
                .iter()
                .map(|a| crate::text::one_line(a))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = CommandLine;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(
                    f,
                    "a list of arguments (`[\"prog\", \"arg\"]`) or a shell command line"
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CommandLine, E> {
                Ok(CommandLine::Shell(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<CommandLine, A::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    args.push(arg);
                }
                Ok(CommandLine::Args(args))
            }
        }
        d.deserialize_any(Either)
    }
}

/// Lines of output quoted when a command fails.
const TAIL: usize = 20;

/// The longest line of a command's output that is kept; the rest of a
/// longer line is skipped, so a command that never prints a newline cannot
/// fill the runner's memory.
const LINE_LIMIT: u64 = 4096;

/// Runs the step's command.
fn run(ctx: &StepContext, id: &str, s: &ShellStep) -> Result<String, StepError> {
    let dir = s
        .dir
        .as_deref()
        .map_or(ctx.setup.dir.clone(), |d| ctx.setup.path(d));
    let timeout = s.timeout.map_or(Duration::from_secs(600), |t| t.0);
    let env: Vec<(String, String)> = s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let elapsed =
        ctx.run_command(|| run_command(&s.command, &dir, &env, timeout, &ctx.cancel, id))?;
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
