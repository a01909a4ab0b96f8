//! The `[[step]]` kinds as the workflow file spells them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::document::values::{Period, Point, fraction, whole};

/// One `[[step]]`: what is common to every kind, and the kind's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Unique name of the step, used in state and logs.
    pub id: Spanned<String>,
    /// What it is for.
    pub description: Option<String>,
    /// The kind and its settings.
    pub kind: StepKind,
}

/// The step kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Run a command.
    Shell(ShellStep),
    /// Load the green store.
    Restore(RestoreStep),
    /// Source → transform → store.
    Replay(ReplayStep),
    /// Blue and green, key by key.
    Compare(CompareStep),
    /// Record the switch to green.
    Cutover(CutoverStep),
    /// Stop background replays.
    Stop(StopStep),
}

impl StepKind {
    /// The kind's name in the file.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Shell(_) => "shell",
            StepKind::Restore(_) => "restore",
            StepKind::Replay(_) => "replay",
            StepKind::Compare(_) => "compare",
            StepKind::Cutover(_) => "cutover",
            StepKind::Stop(_) => "stop",
        }
    }
}

/// Every kind, for error messages.
pub const KINDS: &[&str] = &["restore", "replay", "compare", "shell", "cutover", "stop"];

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

/// `kind = "shell"`: a command, run directly (`command = ["prog", "arg"]`)
/// or with `sh -c` (`run = "…"`); a non-zero exit fails the step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellStep {
    /// A command line for `sh -c`; every `${var}` in it is quoted by the runner.
    #[serde(default)]
    pub run: Option<String>,
    /// A program and its arguments, run without a shell.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Longest it may run (default 10m); then it is killed and the step fails.
    #[serde(default)]
    pub timeout: Option<Period>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working folder (default: the workflow's folder).
    #[serde(default)]
    pub dir: Option<String>,
}

/// `kind = "restore"`: copy `from` into `into` as of a point, or run the
/// operator's own restore `command`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreStep {
    /// The store to copy from.
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// The store to load.
    pub into: Spanned<String>,
    /// The restore point T0 (default `latest`); recorded for later steps.
    #[serde(default)]
    pub as_of: Option<Point>,
    /// Tables to copy (default: every table of `from`).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Instead of copying: a snapshot/restore command (a list of arguments,
    /// or a line for `sh -c`).
    #[serde(default)]
    pub command: Option<CommandLine>,
    /// Extra environment variables for `command`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Longest `command` may run (default 1h).
    #[serde(default)]
    pub timeout: Option<Period>,
    /// Rows per write batch (default 1000).
    #[serde(default, deserialize_with = "whole")]
    pub batch_size: Option<usize>,
}

/// `kind = "replay"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayStep {
    /// The `[source.NAME]` to read.
    pub source: Spanned<String>,
    /// The `[plugin.NAME]` that turns events into rows.
    pub transform: Spanned<String>,
    /// The `[store.NAME]` to write.
    pub into: Spanned<String>,
    /// Where to start (default `earliest`): `restore - 10m`, a time, …
    #[serde(default)]
    pub start: Option<Point>,
    /// Start at these offsets, by partition (instead of `start`).
    #[serde(default, deserialize_with = "crate::document::values::whole_values")]
    pub start_offsets: BTreeMap<String, i64>,
    /// When to stop: `end` of the input as it was when the step started
    /// (the only choice for file sources), `caught-up` (once the catch-up
    /// gate holds), or `cutover` (pass the gate, then keep syncing in the
    /// background while later steps run, until a `cutover` or `stop` step).
    #[serde(default)]
    pub until: Option<Spanned<String>>,
    /// The catch-up gate of `until = "caught-up"` and `"cutover"`.
    #[serde(default)]
    pub caught_up: Option<CaughtUp>,
    /// Events per batch (default 1000).
    #[serde(default, deserialize_with = "whole")]
    pub batch_size: Option<usize>,
    /// Bytes of events per batch (default 8MiB); a batch ends at whichever
    /// of `batch_size` and this comes first.
    #[serde(default)]
    pub batch_bytes: Option<crate::document::values::Size>,
    /// How often positions are saved (default 1s).
    #[serde(default)]
    pub checkpoint_every: Option<Period>,
    /// What to do with an event the transform refuses.
    #[serde(default)]
    pub on_error: OnError,
    /// Where refused events go with `on_error = "dead-letter"`: an NDJSON
    /// file …
    #[serde(default)]
    pub dead_letter: Option<Spanned<String>>,
    /// … or a topic of the (kafka) source's cluster, which must exist.
    #[serde(default)]
    pub dead_letter_topic: Option<Spanned<String>>,
}

/// Events a replay batch holds, rows a restore copies and keys a compare
/// reads at a time, unless the step sets `batch_size`.
pub const DEFAULT_BATCH_SIZE: usize = 1000;

/// When a replay is done: `until`, as validation accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// At the end of the log as it was when the step started (the default).
    End,
    /// Once the catch-up gate holds.
    CaughtUp,
    /// Once caught up, and then on in the background until a `stop` or
    /// `cutover` step.
    Cutover,
}

impl ReplayStep {
    /// `until`, read once: validation refused anything else.
    pub fn until(&self) -> Until {
        match self.until.as_ref().map(|u| u.get_ref().as_str()) {
            Some("caught-up") => Until::CaughtUp,
            Some("cutover") => Until::Cutover,
            _ => Until::End,
        }
    }
}

/// `caught_up = { max_lag = 100, for = "10s", timeout = "1h", stall = "5m" }`:
/// the replay has caught up once its lag (messages behind the log end, over
/// all partitions) stays at or below `max_lag` for `for`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaughtUp {
    /// Most messages behind (default 100).
    #[serde(default, deserialize_with = "whole")]
    pub max_lag: Option<u64>,
    /// How long the lag must stay low (default 10s).
    #[serde(default, rename = "for")]
    pub hold: Option<Period>,
    /// Fail the step if not caught up by then (default: wait forever);
    /// also how long `compare` and `cutover` wait for a background
    /// replay to be caught up again (default 10 minutes).
    #[serde(default)]
    pub timeout: Option<Period>,
    /// In the background, no event acknowledged for this long while
    /// behind (or while the source cannot be asked) is a stall that fails
    /// the run (default 5 minutes).
    #[serde(default)]
    pub stall: Option<Period>,
}

/// The error policy for refused events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Stop the step, naming the event.
    #[default]
    Fail,
    /// Set the event aside with the reason (`dead_letter` or
    /// `dead_letter_topic`) and go on.
    DeadLetter,
}

/// `kind = "compare"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareStep {
    /// The old store.
    pub blue: Spanned<String>,
    /// The new store.
    pub green: Spanned<String>,
    /// Tables to compare.
    pub tables: Vec<String>,
    /// A `[plugin.NAME]` of the check world that decides equality.
    #[serde(default)]
    pub check: Option<Spanned<String>>,
    /// Compare as of this version (default `watermark`: what both stores
    /// have passed, so lag is not reported as mismatch).
    #[serde(default)]
    pub as_of: Option<Point>,
    /// Re-read a mismatching key after this delay before counting it
    /// (default 1s; 0 counts at once).
    #[serde(default)]
    pub recheck_after: Option<Period>,
    /// Before the recheck, wait at most this long for the side that was
    /// behind to reach where the other stood (default 1m); a key that
    /// still differs while it has not is "lagging", not a mismatch.
    #[serde(default)]
    pub recheck_wait: Option<Period>,
    /// The gate: most mismatching keys allowed (default 0).
    #[serde(default, deserialize_with = "whole")]
    pub max_mismatches: Option<u64>,
    /// The gate as a fraction of keys compared, if set.
    #[serde(default, deserialize_with = "fraction")]
    pub max_mismatch_ratio: Option<f64>,
    /// Example differences kept for the report (default 100); the counts
    /// stay exact.
    #[serde(default, deserialize_with = "whole")]
    pub examples: Option<usize>,
    /// The longest text kept of one difference (default 1KiB).
    #[serde(default)]
    pub example_text: Option<crate::document::values::Size>,
    /// Keys per read batch (default 1000).
    #[serde(default, deserialize_with = "whole")]
    pub batch_size: Option<usize>,
}

/// `kind = "cutover"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutoverStep {
    /// The store that becomes the primary.
    pub to: Spanned<String>,
    /// The store being retired.
    #[serde(default)]
    pub from: Option<Spanned<String>>,
}

/// `kind = "stop"`: stops background replays (`until = "cutover"`) before
/// the cutover: each finishes what it has in flight and commits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopStep {
    /// The replay steps to stop (default: every one still running).
    #[serde(default)]
    pub replays: Vec<Spanned<String>>,
}
