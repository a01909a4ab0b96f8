//! `kind = "replay"`: a replay's settings, how they are checked and
//! described, and what the engine may ask of a replay that keeps syncing
//! in the background.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::saved::ReplayState;
use super::{DEFAULT_HOLD, DEFAULT_MAX_LAG};
use crate::document::values::{Period, Point, Size, whole, whole_values};
use crate::document::{Kind, WorkflowError};
use crate::plugin::contract::Transform;
use crate::setup::Setup;
use crate::state::{StateError, StepState};
use crate::steps::background::BackgroundTask;
use crate::steps::checking::Checking;
use crate::steps::uses::Uses;
use crate::steps::{DEFAULT_BATCH_SIZE, StepConfig, StepContext, StepError, StepFile};
use crate::text::quoted;

/// The kind, for the registration list.
pub const KIND: Kind<dyn StepFile> = Kind {
    name: "replay",
    read: |table| Ok(Box::new(table.read::<ReplayFile>()?)),
};

/// How long `compare` and `cutover` wait for a background replay to catch
/// up again, unless its `caught_up.timeout` says otherwise.
const DEFAULT_WAIT: Duration = Duration::from_secs(600);

/// `kind = "replay"` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayFile {
    /// The `[source.NAME]` to read.
    source: Spanned<String>,
    /// The `[plugin.NAME]` that turns events into rows.
    transform: Spanned<String>,
    /// The `[store.NAME]` to write.
    into: Spanned<String>,
    /// Where to start (default `earliest`): `restore - 10m`, a time, …
    #[serde(default)]
    start: Option<Point>,
    /// Start at these offsets, by partition (instead of `start`).
    #[serde(default, deserialize_with = "whole_values")]
    start_offsets: BTreeMap<String, i64>,
    /// When to stop: `end` of the input as it was when the step started
    /// (the only choice for file sources), `caught-up` (once the catch-up
    /// gate holds), or `cutover` (pass the gate, then keep syncing in the
    /// background while later steps run, until a `cutover` or `stop` step).
    #[serde(default)]
    until: Option<Spanned<String>>,
    /// The catch-up gate of `until = "caught-up"` and `"cutover"`.
    #[serde(default)]
    caught_up: Option<CaughtUp>,
    /// Events per batch (default 1000).
    #[serde(default, deserialize_with = "whole")]
    batch_size: Option<usize>,
    /// Bytes of events per batch (default 8MiB); a batch ends at whichever
    /// of `batch_size` and this comes first.
    #[serde(default)]
    batch_bytes: Option<Size>,
    /// How often positions are saved (default 1s).
    #[serde(default)]
    checkpoint_every: Option<Period>,
    /// What to do with an event the transform refuses.
    #[serde(default)]
    on_error: OnError,
    /// Where refused events go with `on_error = "dead-letter"`: an NDJSON
    /// file …
    #[serde(default)]
    dead_letter: Option<Spanned<String>>,
    /// … or a topic of the (kafka) source's cluster, which must exist.
    #[serde(default)]
    dead_letter_topic: Option<Spanned<String>>,
    /// Record the keys it writes (`touched-ID.ndjson`), for a `compare`
    /// in `touched` mode.
    #[serde(default, deserialize_with = "crate::document::values::flag")]
    record_touched: bool,
}

/// `kind = "replay"`: events of a source through a transform into a store.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayStep {
    /// The `[source.NAME]` to read.
    pub source: Spanned<String>,
    /// The `[plugin.NAME]` that turns events into rows.
    pub transform: Spanned<String>,
    /// The `[store.NAME]` to write.
    pub into: Spanned<String>,
    /// Where to start.
    pub start: StartPoint,
    /// When to stop: `end` of the input as it was when the step started
    /// (the only choice for file sources), `caught-up` (once the catch-up
    /// gate holds), or `cutover` (pass the gate, then keep syncing in the
    /// background while later steps run, until a `cutover` or `stop` step).
    pub until: Until,
    /// The catch-up gate of `until = "caught-up"` and `"cutover"`.
    pub caught_up: Option<CaughtUp>,
    /// Events per batch (default 1000).
    pub batch_size: Option<usize>,
    /// Bytes of events per batch (default 8MiB); a batch ends at whichever
    /// of `batch_size` and this comes first.
    pub batch_bytes: Option<Size>,
    /// How often positions are saved (default 1s).
    pub checkpoint_every: Option<Period>,
    /// What to do with an event the transform refuses.
    pub on_error: OnError,
    /// Where refused events go with `on_error = "dead-letter"`: an NDJSON
    /// file …
    pub dead_letter: Option<Spanned<String>>,
    /// … or a topic of the (kafka) source's cluster, which must exist.
    pub dead_letter_topic: Option<Spanned<String>>,
    /// Records the keys it writes.
    pub record_touched: bool,
}

/// Where a replay starts, as validation accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPoint {
    /// The start of the log (the default).
    Earliest,
    /// The end of the log (kafka only).
    Latest,
    /// The first event at or after this time.
    At(i64),
    /// The restore point of the step's store, minus a margin.
    Restore(Duration),
    /// These offsets, by partition (kafka only).
    Offsets(BTreeMap<i32, i64>),
}

impl fmt::Display for StartPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartPoint::Earliest => Point::Earliest.fmt(f),
            StartPoint::Latest => Point::Latest.fmt(f),
            StartPoint::At(ms) => Point::At(*ms).fmt(f),
            StartPoint::Restore(margin) => Point::Restore(*margin).fmt(f),
            StartPoint::Offsets(offsets) => {
                let written: BTreeMap<String, i64> =
                    offsets.iter().map(|(p, o)| (p.to_string(), *o)).collect();
                write!(f, "offsets {written:?}")
            }
        }
    }
}

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

impl StepFile for ReplayFile {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        let source = c.source(&self.source)?;
        c.plugin(&self.transform)?;
        c.world::<Transform>(&self.transform)?;
        c.store(&self.into)?;
        if c.setup
            .store(self.into.get_ref())
            .is_some_and(|s| s.declared_tables().is_none_or(|t| t.is_empty()))
        {
            return Err(c.at(
                self.into.span(),
                format!(
                    "store `{}` declares no `tables`; list the tables the plugin writes in `[store.{}]` (`tables = [\"messages\"]`): a plugin writes only to tables the workflow declares",
                    self.into.get_ref(),
                    self.into.get_ref()
                ),
            ));
        }
        let kafka = source.can_follow();
        let mut start = match &self.start {
            None | Some(Point::Earliest) => StartPoint::Earliest,
            Some(Point::At(ms)) => StartPoint::At(*ms),
            Some(Point::Restore(margin)) => {
                if !c
                    .earlier
                    .iter()
                    .any(|s| s.config.restores() == Some(self.into.get_ref()))
                {
                    return Err(c.step(format!(
                        "`start` is relative to the restore point, but no earlier `restore` step loads `{}`",
                        self.into.get_ref()
                    )));
                }
                StartPoint::Restore(*margin)
            }
            Some(Point::Latest) if !kafka => {
                return Err(
                    c.step("`start = \"latest\"` needs a kafka source; a file has no live end")
                );
            }
            Some(Point::Latest) => StartPoint::Latest,
            Some(Point::Watermark(_)) => {
                return Err(c.step(
                    "`start` must be `earliest`, `latest`, `restore - …`, a time or milliseconds",
                ));
            }
        };
        if !self.start_offsets.is_empty() {
            if !kafka {
                return Err(c.step("`start_offsets` needs a kafka source"));
            }
            if self.start.is_some() {
                return Err(c.step("give `start` or `start_offsets`, not both"));
            }
            let mut offsets = BTreeMap::new();
            for (partition, offset) in &self.start_offsets {
                match partition.parse::<u16>() {
                    Ok(p) if *offset >= 0 => offsets.insert(i32::from(p), *offset),
                    _ => {
                        return Err(c.step(format!(
                            "`start_offsets` maps partition numbers to offsets, both 0 or more; got `{partition} = {offset}`"
                        )));
                    }
                };
            }
            start = StartPoint::Offsets(offsets);
        }
        let allowed: &[&str] = if kafka {
            &["end", "caught-up", "cutover"]
        } else {
            &["end"]
        };
        let until = match &self.until {
            None => Until::End,
            Some(written) => match written.get_ref().as_str() {
                w if !allowed.contains(&w) => {
                    return Err(c.at(
                        written.span(),
                        format!(
                            "unknown `until` = `{w}` for this source; expected {}",
                            quoted(allowed)
                        ),
                    ));
                }
                "caught-up" => Until::CaughtUp,
                "cutover" => Until::Cutover,
                _ => Until::End,
            },
        };
        if self.caught_up.is_some() && until == Until::End {
            return Err(
                c.step("`caught_up` is the gate of `until = \"caught-up\"` or `\"cutover\"`")
            );
        }
        c.not_zero(
            self.caught_up.as_ref().and_then(|g| g.timeout),
            "caught_up.timeout",
        )?;
        c.not_zero(
            self.caught_up.as_ref().and_then(|g| g.stall),
            "caught_up.stall",
        )?;
        c.positive(self.batch_size, "batch_size")?;
        if self.batch_bytes.is_some_and(|b| b.0 == 0) {
            return Err(c.step("`batch_bytes` must be at least 1"));
        }
        if let (Some(_), Some(topic)) = (&self.dead_letter, &self.dead_letter_topic) {
            return Err(c.at(
                topic.span(),
                "give `dead_letter` (a file) or `dead_letter_topic`, not both",
            ));
        }
        if let Some(topic) = &self.dead_letter_topic {
            if !kafka {
                return Err(c.at(
                    topic.span(),
                    "`dead_letter_topic` is a topic of the source's cluster, so it needs a kafka source; use `dead_letter` (a file) with this one",
                ));
            }
            if topic.get_ref().trim().is_empty() {
                return Err(c.at(topic.span(), "`dead_letter_topic` is empty"));
            }
        }
        if self.on_error == OnError::DeadLetter
            && self.dead_letter.is_none()
            && self.dead_letter_topic.is_none()
        {
            return Err(c.step("`on_error = \"dead-letter\"` needs `dead_letter` (the file refused events go to) or `dead_letter_topic` (a topic of the source's cluster)"));
        }
        Ok(Box::new(ReplayStep {
            start,
            until,
            source: self.source,
            transform: self.transform,
            into: self.into,
            caught_up: self.caught_up,
            batch_size: self.batch_size,
            batch_bytes: self.batch_bytes,
            checkpoint_every: self.checkpoint_every,
            on_error: self.on_error,
            dead_letter: self.dead_letter,
            dead_letter_topic: self.dead_letter_topic,
            record_touched: self.record_touched,
        }))
    }
}

impl StepConfig for ReplayStep {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn records_touched(&self) -> bool {
        self.record_touched
    }

    fn describe(&self, setup: &Setup) -> String {
        format!(
            "replay {} from {} through plugin `{}` into {}, until {}, {} events a batch, refused events: {}",
            setup.source_text(self.source.get_ref()),
            self.start,
            self.transform.get_ref(),
            setup.store_text(self.into.get_ref()),
            match self.until {
                Until::End => "the end of the log as it is when the step starts".to_string(),
                gated => {
                    let gate = self.caught_up.clone().unwrap_or_default();
                    format!(
                        "caught up (lag ≤ {} for {}){}",
                        gate.max_lag.unwrap_or(DEFAULT_MAX_LAG),
                        humantime::format_duration(gate.hold.map_or(DEFAULT_HOLD, |h| h.0)),
                        if gated == Until::Cutover {
                            ", then keep syncing in the background until cutover"
                        } else {
                            ""
                        }
                    )
                }
            },
            self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
            match (&self.on_error, &self.dead_letter, &self.dead_letter_topic) {
                (OnError::DeadLetter, Some(d), _) => format!("dead-letter to `{}`", d.get_ref()),
                (OnError::DeadLetter, None, Some(t)) =>
                    format!("dead-letter to topic `{}`", t.get_ref()),
                _ => "fail the step".into(),
            }
        )
    }

    fn uses<'s>(&'s self, uses: &mut Uses<'s>) {
        let topics = self
            .dead_letter_topic
            .iter()
            .map(|t| t.get_ref().as_str())
            .collect();
        uses.source(self.source.get_ref(), topics);
        uses.store(self.into.get_ref());
        uses.transform(self.transform.get_ref());
    }

    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError> {
        super::run(ctx, id, self)
    }

    fn leaves_running(&self) -> bool {
        self.until == Until::Cutover
    }

    fn keeps_current(&self) -> Option<(&str, Duration)> {
        let wait = self
            .caught_up
            .as_ref()
            .and_then(|g| g.timeout)
            .map_or(DEFAULT_WAIT, |t| t.0);
        self.leaves_running()
            .then_some((self.into.get_ref().as_str(), wait))
    }

    fn saved(&self, state: &StepState) -> Result<(), StateError> {
        state.own::<ReplayState>().map(drop)
    }

    fn restart(&self, ctx: &StepContext, id: &str) -> Option<Box<dyn BackgroundTask>> {
        Some(Box::new(super::spawn(ctx, id, self)))
    }
}
