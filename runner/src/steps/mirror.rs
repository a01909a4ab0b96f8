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
use super::pause::{self, Asked};
use super::shift::{Inconclusive, inconclusive_policy, sleep};
use super::uses::Uses;
use super::{StepConfig, StepContext, StepError, StepFile};
use crate::document::values::{Period, fraction, whole};
use crate::document::{Kind, WorkflowError};
use crate::router::mirror::MirrorSnapshot;
use crate::router::{Answer, Mode, Routing, RoutingFile};
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
        // The generation this step wrote last, once it wrote one.
        let mut ours = None;
        loop {
            let (window, written, before) = self.hold(ctx, id, &file, &metrics, ours)?;
            let line = format!(
                "mirrored {}: {} matched, {} matched once noise was out, {} mismatched, {} lagging, {} dropped, {} the response-check plugin could not judge, {} not compared",
                window.mirrored,
                window.matched,
                window.noisy,
                window.mismatched,
                window.lagging,
                window.dropped,
                window.unjudged,
                window.failed + window.skipped
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
                    let watch = || self.failed(ctx, &metrics.snapshot().mirror.since(&before));
                    match pause::ask(
                        ctx,
                        &file,
                        id,
                        &written.stage,
                        &question,
                        written.generation,
                        watch,
                    )? {
                        Asked::Answered(Answer::Pass, _) => {
                            return Ok(format!(
                                "{line} (inconclusive, passed by the operator: {why})"
                            ));
                        }
                        Asked::Answered(Answer::Again, generation) => ours = Some(generation),
                        Asked::Failed(why) => return Err(StepError::Gate(why)),
                    }
                }
            }
        }
    }
}

impl MirrorStep {
    /// Mirrors for the hold, failing at once on real mismatches; returns
    /// what the mirror counted and the stage it held.
    /// Mirrors for the hold, failing at once on real mismatches; returns
    /// what the mirror counted, the routing the step wrote and the counts
    /// before. `ours` is the generation the step wrote last, if it did:
    /// the routing is changed only over it.
    fn hold(
        &self,
        ctx: &StepContext,
        id: &str,
        file: &RoutingFile,
        metrics: &crate::router::Metrics,
        ours: Option<u64>,
    ) -> Result<(MirrorSnapshot, Routing, MirrorSnapshot), StepError> {
        let expected = match ours {
            Some(g) => g,
            None => {
                let now = file.read()?;
                if now.mode == Mode::AllBlue {
                    return Err(StepError::Gate(format!(
                        "every read was sent back to blue ({}), and nothing is mirrored then: end the rollback by setting a share (`runner share {} 0`, or POST /routing on the admin endpoint), then `runner exec` again",
                        crate::text::foreign(&now.reason),
                        ctx.setup.file.display()
                    )));
                }
                now.generation
            }
        };
        let written = file
            .update_if(&format!("step `{id}`: mirroring"), expected, |r| {
                r.mirror = true;
                if r.mode == Mode::Shift && r.green_share == 0 {
                    r.stage = "mirror".into();
                }
                // A pause left by a run that was stopped is asked anew.
                r.paused = None;
                Ok(())
            })?
            .map_err(|now| {
                StepError::Gate(format!(
                    "the routing changed before mirroring ({}); the step stops",
                    crate::text::foreign(&now.reason)
                ))
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
                    crate::text::foreign(&now.reason)
                )));
            }
            let window = metrics.snapshot().mirror.since(&before);
            if let Some(why) = self.failed(ctx, &window) {
                return Err(StepError::Gate(why));
            }
            if started.elapsed() >= self.hold {
                return Ok((window, written, before));
            }
        }
    }

    /// Why mirroring fails on what `window` counted, if it does: pairs
    /// that differ for real, and pairs the response-check plugin could
    /// not judge (a check that cannot judge proves nothing), above
    /// `max_mismatch_rate` once `min_compared` were judged or not.
    fn failed(&self, ctx: &StepContext, window: &MirrorSnapshot) -> Option<String> {
        let judged = window.compared() + window.unjudged;
        let bad = window.mismatched + window.unjudged;
        let rate = bad as f64 / judged.max(1) as f64;
        if judged < self.min_compared || rate <= self.max_mismatch_rate {
            return None;
        }
        Some(format!(
            "{} of {judged} mirrored pairs differ ({} differ, {} the response-check plugin could not judge: {:.2}%, more than {}%); samples in {}",
            bad,
            window.mismatched,
            window.unjudged,
            rate * 100.0,
            self.max_mismatch_rate * 100.0,
            ctx.setup
                .state_dir
                .join(crate::state::MIRROR_SAMPLES_FILE)
                .display()
        ))
    }
}
