//! `mirror`: turns mirroring on and holds, judging what the mirrored pairs
//! said: more real mismatches than `max_mismatch_rate` of the pairs
//! compared fails the step (lagging and noisy pairs never count); fewer
//! than `min_compared` pairs by the end of the hold is inconclusive
//! (`on_inconclusive`, as in `shift`: by default it pauses and asks an
//! operator, see `pause`). Mirroring stays on afterwards, so
//! a `shift` that follows keeps comparing.

use std::time::{Duration, Instant};

use serde::Deserialize;
use toml::Spanned;

use super::checking::Checking;
use super::shift::{Inconclusive, inconclusive_policy, sleep};
use super::uses::Uses;
use super::{StepConfig, StepContext, StepError, StepFile};
use crate::document::values::{Period, fraction, whole};
use crate::document::{Kind, WorkflowError};
use crate::router::mirror::MirrorSnapshot;
use crate::router::{Answer, Mode, RoutingFile};
use crate::setup::Setup;

/// The kind, for the registration list.
pub const KIND: Kind<dyn StepFile> = Kind {
    name: "mirror",
    read: |table| Ok(Box::new(table.read::<MirrorFile>()?)),
};

/// How long mirroring is held, unless `hold` says.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(60);
/// Pairs that must be compared to judge, unless set.
pub const DEFAULT_MIN_COMPARED: u64 = 100;

/// `kind = "mirror"` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorFile {
    /// How long to mirror before judging.
    #[serde(default)]
    pub hold: Option<Period>,
    /// Real mismatches per compared pair that fail the step (default 0).
    #[serde(default, deserialize_with = "fraction")]
    pub max_mismatch_rate: Option<f64>,
    /// Pairs that must be compared to judge.
    #[serde(default, deserialize_with = "whole")]
    pub min_compared: Option<u64>,
    /// `pause` (default), `pass` or `fail`.
    #[serde(default)]
    pub on_inconclusive: Option<Spanned<String>>,
}

/// `kind = "mirror"`, checked.
#[derive(Debug, Clone)]
pub struct MirrorStep {
    hold: Duration,
    max_mismatch_rate: f64,
    min_compared: u64,
    on_inconclusive: Inconclusive,
}

impl StepFile for MirrorFile {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        super::route::require_earlier(c, "a `mirror` step mirrors reads")?;
        c.not_zero(self.hold, "hold")?;
        let max_mismatch_rate = self.max_mismatch_rate.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&max_mismatch_rate) {
            return Err(c.step("`max_mismatch_rate` is a fraction between 0 and 1"));
        }
        let min_compared = self.min_compared.unwrap_or(DEFAULT_MIN_COMPARED);
        if min_compared == 0 {
            return Err(c.step("`min_compared` must be at least 1"));
        }
        Ok(Box::new(MirrorStep {
            hold: self.hold.map_or(DEFAULT_HOLD, |p| p.0),
            max_mismatch_rate,
            min_compared,
            on_inconclusive: inconclusive_policy(c, self.on_inconclusive.as_ref())?,
        }))
    }
}

impl StepConfig for MirrorStep {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self, _setup: &Setup) -> String {
        format!(
            "mirror reads to the other side for {} and compare the answers; fail above {}% real mismatches of at least {} pairs",
            humantime::format_duration(self.hold),
            self.max_mismatch_rate * 100.0,
            self.min_compared
        )
    }

    fn uses<'s>(&'s self, _uses: &mut Uses<'s>) {}

    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError> {
        let metrics = super::route::counts(ctx)?;
        let file = RoutingFile::new(&ctx.setup.state_dir);
        loop {
            let (window, stage) = self.hold(ctx, id, &file, &metrics)?;
            let line = format!(
                "mirrored {}: {} matched, {} matched once noise was out, {} mismatched, {} lagging, {} dropped, {} not compared",
                window.mirrored,
                window.matched,
                window.noisy,
                window.mismatched,
                window.lagging,
                window.dropped,
                window.failed + window.skipped + window.unjudged
            );
            if window.compared() >= self.min_compared {
                return Ok(line);
            }
            let why = format!(
                "{} pairs compared in {}; at least {} are needed",
                window.compared(),
                humantime::format_duration(self.hold),
                self.min_compared
            );
            match self.on_inconclusive {
                Inconclusive::Pass => return Ok(format!("{line} (inconclusive, passed: {why})")),
                Inconclusive::Fail => {
                    return Err(StepError::Gate(format!("mirroring inconclusive: {why}")));
                }
                Inconclusive::Pause => {
                    let question = format!("mirroring is inconclusive: {why}");
                    match super::pause::ask(ctx, &file, id, &stage, &question)? {
                        Answer::Pass => {
                            return Ok(format!(
                                "{line} (inconclusive, passed by the operator: {why})"
                            ));
                        }
                        Answer::Again => {}
                    }
                }
            }
        }
    }
}

impl MirrorStep {
    /// Mirrors for the hold, failing at once on real mismatches; returns
    /// what the mirror counted and the stage it held.
    fn hold(
        &self,
        ctx: &StepContext,
        id: &str,
        file: &RoutingFile,
        metrics: &crate::router::Metrics,
    ) -> Result<(MirrorSnapshot, String), StepError> {
        let written = file.update(&format!("step `{id}`: mirroring"), |r| {
            r.mirror = true;
            if r.mode == Mode::Shift && r.green_share == 0 {
                r.stage = "mirror".into();
            }
            // A pause left by a run that was stopped is asked anew.
            r.paused = None;
            Ok(())
        })?;
        let before = metrics.snapshot().mirror;
        let started = Instant::now();
        loop {
            sleep(
                ctx,
                Duration::from_millis(250).min(self.hold.saturating_sub(started.elapsed())),
            )?;
            let now = file.read()?;
            if now.generation != written.generation {
                return Err(StepError::Gate(format!(
                    "the routing changed while mirroring ({}); the step stops",
                    now.reason
                )));
            }
            let window = metrics.snapshot().mirror.since(&before);
            let compared = window.compared();
            let rate = window.mismatched as f64 / compared.max(1) as f64;
            if compared >= self.min_compared && rate > self.max_mismatch_rate {
                return Err(StepError::Gate(format!(
                    "{} of {compared} mirrored pairs differ ({:.2}%, more than {}%); samples in {}",
                    window.mismatched,
                    rate * 100.0,
                    self.max_mismatch_rate * 100.0,
                    ctx.setup
                        .state_dir
                        .join(crate::state::MIRROR_SAMPLES_FILE)
                        .display()
                )));
            }
            if started.elapsed() >= self.hold {
                return Ok((window, written.stage));
            }
        }
    }
}
