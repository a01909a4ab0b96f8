//! `shift`: moves reads to green in stages (for example 1%, 5%, 25%,
//! 50%, 100%), holding each stage and judging it by what the router
//! counted during it:
//!
//! - green's failure rate (5xx, or no answer) above `max_error_rate`;
//! - green's p99 above `max_p99_ratio` times blue's and more than
//!   `p99_slack` above it (blue's in the same stage when it served enough
//!   requests, else over the router's life), judged once each side has
//!   100 requests (below that a p99 is only the slowest one);
//!
//! - real mismatches of mirrored pairs above `max_mismatch_rate` (default
//!   0) of those compared in the stage, when mirroring is on;
//!
//! each once green has served (or the mirror compared) `min_requests` in
//! the stage. The gates are
//! looked at every `check_every` through the hold, so a failing green is
//! sent back at once, not at the end of the stage: every read goes to
//! blue (the routing state says so; routers follow within 100 ms), and
//! the step fails, or with `on_failure = "wait"` waits until an operator
//! sets a share again (the admin endpoint) and holds the stage anew. A
//! stage that ends with too few requests to judge is inconclusive: by
//! default the ramp pauses there and asks an operator (see `pause`:
//! reads stay as they are until the answer, `pass` or `again`);
//! `on_inconclusive = "pass"` or `"fail"` decide without asking.
//!
//! Someone else's change to the routing during a stage (a rollback from
//! any shell, a share set by hand) stops the ramp: the step does not
//! fight an operator. Stages passed are saved, so a run that resumes the
//! step starts at the first stage not passed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::checking::Checking;
use super::pause::{self, Asked};
use super::uses::Uses;
use super::{StepConfig, StepContext, StepError, StepFile};
use crate::document::values::{Period, fraction, whole};
use crate::document::{Kind, WorkflowError};
use crate::router::metrics::{MetricsSnapshot, SideSnapshot};
use crate::router::routing::share_of;
use crate::router::{Answer, Metrics, Mode, Routing, RoutingFile};
use crate::setup::Setup;

/// The kind, for the registration list.
pub const KIND: Kind<dyn StepFile> = Kind {
    name: "shift",
    read: |table| Ok(Box::new(table.read::<ShiftFile>()?)),
};

/// How long each stage is held, unless `hold` says.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(60);
/// Green's failure rate that fails a stage, unless set.
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.01;
/// Green's p99 against blue's that fails a stage, unless set.
pub const DEFAULT_MAX_P99_RATIO: f64 = 2.0;
/// Requests green must serve in a stage before it is judged.
pub const DEFAULT_MIN_REQUESTS: u64 = 100;
/// How often the gates are looked at.
pub const DEFAULT_CHECK_EVERY: Duration = Duration::from_millis(250);
/// How much slower than blue's green's p99 may be, whatever the ratio:
/// at a few milliseconds a ratio measures noise (a new connection).
pub const DEFAULT_P99_SLACK: Duration = Duration::from_millis(5);
/// Requests on each side below which a p99 is only the slowest request,
/// and the latency gate does not judge.
pub const P99_MIN_SAMPLES: u64 = 100;

/// A share of reads, written `5`, `0.5` or `"5%"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(pub f64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(f64),
            Text(String),
        }
        let value = match Written::deserialize(d)? {
            Written::Number(n) => n,
            Written::Text(t) => t.trim().trim_end_matches('%').trim().parse().map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{t}` is not a percentage; write `5` or `\"5%\"`"
                ))
            })?,
        };
        Ok(Percent(value))
    }
}

/// `kind = "shift"` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftFile {
    /// The shares of green, in order.
    pub stages: Spanned<Vec<Percent>>,
    /// How long each stage is held.
    #[serde(default)]
    pub hold: Option<Period>,
    /// Green's failure rate that fails a stage (a fraction: 0.01 is 1%).
    #[serde(default, deserialize_with = "fraction")]
    pub max_error_rate: Option<f64>,
    /// Green's p99 over blue's that fails a stage.
    #[serde(default, deserialize_with = "fraction")]
    pub max_p99_ratio: Option<f64>,
    /// Requests green must serve in a stage to judge it.
    #[serde(default, deserialize_with = "whole")]
    pub min_requests: Option<u64>,
    /// `pause` (default), `pass` or `fail`.
    #[serde(default)]
    pub on_inconclusive: Option<Spanned<String>>,
    /// `fail` (default) or `wait`.
    #[serde(default)]
    pub on_failure: Option<Spanned<String>>,
    /// How often the gates are looked at.
    #[serde(default)]
    pub check_every: Option<Period>,
    /// How much slower green's p99 may be than blue's, whatever the ratio.
    #[serde(default)]
    pub p99_slack: Option<Period>,
    /// Real mismatches per mirrored pair compared in the stage that fail
    /// it (default 0), judged once `min_requests` pairs were compared.
    #[serde(default, deserialize_with = "fraction")]
    pub max_mismatch_rate: Option<f64>,
    /// Hooks to run once a failed gate sent every read back to blue.
    #[serde(default)]
    pub on_rollback: Vec<Spanned<String>>,
}

/// What an inconclusive stage does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inconclusive {
    /// Reads stay; the step ends; `runner exec` holds the stage again.
    Pause,
    /// Go on.
    Pass,
    /// Roll back, as a failed gate.
    Fail,
}

/// `on_inconclusive` as written: `pause` (default), `pass` or `fail`.
pub fn inconclusive_policy(
    c: &Checking<'_>,
    written: Option<&Spanned<String>>,
) -> Result<Inconclusive, WorkflowError> {
    match written.map(|s| s.get_ref().as_str()) {
        None | Some("pause") => Ok(Inconclusive::Pause),
        Some("pass") => Ok(Inconclusive::Pass),
        Some("fail") => Ok(Inconclusive::Fail),
        Some(other) => Err(c.at(
            written.map_or(0..0, |s| s.span()),
            format!("`on_inconclusive` = `{other}`; expected `pause`, `pass` or `fail`"),
        )),
    }
}

/// What a failed gate does after the rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// The step fails.
    Fail,
    /// The step waits for an operator to set a share again.
    Wait,
}

/// `kind = "shift"`, checked.
#[derive(Debug, Clone)]
pub struct ShiftStep {
    stages: Vec<f64>,
    hold: Duration,
    max_error_rate: f64,
    max_p99_ratio: f64,
    min_requests: u64,
    on_inconclusive: Inconclusive,
    on_failure: OnFailure,
    check_every: Duration,
    p99_slack: Duration,
    max_mismatch_rate: f64,
    on_rollback: Vec<Spanned<String>>,
}

impl StepFile for ShiftFile {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        super::route::require_earlier(c, "a `shift` step moves reads")?;
        let stages: Vec<f64> = self.stages.get_ref().iter().map(|p| p.0).collect();
        if stages.is_empty() {
            return Err(c.at(self.stages.span(), "`stages` lists no share"));
        }
        for pair in stages.windows(2) {
            if pair[1] <= pair[0] {
                return Err(c.at(
                    self.stages.span(),
                    format!(
                        "`stages` must rise: {}% comes after {}%; a ramp only moves reads towards green",
                        pair[1], pair[0]
                    ),
                ));
            }
        }
        if let Some(bad) = stages.iter().find(|s| share_of(**s).is_err() || **s <= 0.0) {
            return Err(c.at(
                self.stages.span(),
                format!("`stages`: {bad}% is not above 0% and at most 100%"),
            ));
        }
        c.not_zero(self.hold, "hold")?;
        c.not_zero(self.check_every, "check_every")?;
        let max_error_rate = self.max_error_rate.unwrap_or(DEFAULT_MAX_ERROR_RATE);
        if !(0.0..=1.0).contains(&max_error_rate) {
            return Err(c.step("`max_error_rate` is a fraction between 0 and 1 (0.01 is 1%)"));
        }
        let max_p99_ratio = self.max_p99_ratio.unwrap_or(DEFAULT_MAX_P99_RATIO);
        if max_p99_ratio.is_nan() || max_p99_ratio < 1.0 {
            return Err(c.step("`max_p99_ratio` must be at least 1 (green as fast as blue)"));
        }
        super::hooks::check(c, &self.on_rollback, "on_rollback")?;
        let max_mismatch_rate = self.max_mismatch_rate.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&max_mismatch_rate) {
            return Err(c.step("`max_mismatch_rate` is a fraction between 0 and 1"));
        }
        let min_requests = self.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS);
        if min_requests == 0 {
            return Err(c.step("`min_requests` must be at least 1: a stage is judged on requests"));
        }
        let on_inconclusive = inconclusive_policy(c, self.on_inconclusive.as_ref())?;
        let on_failure = match self.on_failure.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("fail") => OnFailure::Fail,
            Some("wait") => OnFailure::Wait,
            Some(other) => {
                return Err(c.at(
                    self.on_failure.as_ref().map_or(0..0, |s| s.span()),
                    format!("`on_failure` = `{other}`; expected `fail` or `wait`"),
                ));
            }
        };
        Ok(Box::new(ShiftStep {
            stages,
            hold: self.hold.map_or(DEFAULT_HOLD, |p| p.0),
            max_error_rate,
            max_p99_ratio,
            min_requests,
            on_inconclusive,
            on_failure,
            check_every: self.check_every.map_or(DEFAULT_CHECK_EVERY, |p| p.0),
            p99_slack: self.p99_slack.map_or(DEFAULT_P99_SLACK, |p| p.0),
            max_mismatch_rate,
            on_rollback: self.on_rollback,
        }))
    }
}

impl StepConfig for ShiftStep {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self, _setup: &Setup) -> String {
        let stages: Vec<String> = self.stages.iter().map(|s| format!("{s}%")).collect();
        format!(
            "shift reads to green in stages {}, holding each {}; back to blue at once if green fails more than {}% of at least {} requests or its p99 passes {}× blue's",
            stages.join(" → "),
            humantime::format_duration(self.hold),
            self.max_error_rate * 100.0,
            self.min_requests,
            self.max_p99_ratio
        )
    }

    fn uses<'s>(&'s self, _uses: &mut Uses<'s>) {}

    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError> {
        run(ctx, id, self)
    }
}

/// How a stage ended.
enum Judged {
    /// Held through, gates passed.
    Passed(Box<MetricsSnapshot>),
    /// Too few requests to judge: why, and the counts when the stage
    /// began.
    Inconclusive {
        why: String,
        before: Box<MetricsSnapshot>,
    },
    /// A gate failed: why.
    Failed(String),
}

fn run(ctx: &StepContext, id: &str, s: &ShiftStep) -> Result<String, StepError> {
    let metrics = super::route::counts(ctx)?;
    let file = RoutingFile::new(&ctx.setup.state_dir);
    let passed: usize = {
        let state = ctx.lock_state();
        state
            .data
            .steps
            .get(id)
            .and_then(|st| st.own.get("passed_stages"))
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as usize
    };
    let mut lines = Vec::new();
    let mut stage = passed;
    // The generation this step wrote last: a stage is set only over the
    // step's own state, never over someone else's change (a rollback).
    let mut ours: Option<u64> = None;
    while stage < s.stages.len() {
        let percent = s.stages[stage];
        let expected = match ours {
            Some(g) => g,
            None => {
                let now = file.read()?;
                if now.mode == Mode::AllBlue {
                    return Err(StepError::Gate(format!(
                        "every read was sent back to blue ({}); the ramp does not undo a rollback: end it by setting a share (`runner share {} 0`, or POST /routing on the admin endpoint), then `runner exec` again",
                        crate::text::foreign(&now.reason),
                        ctx.setup.file.display()
                    )));
                }
                now.generation
            }
        };
        let set = file.update_if(&format!("step `{id}`: stage {percent}%"), expected, |r| {
            r.mode = Mode::Shift;
            r.green_share = share_of(percent)?;
            r.stage = format!("{percent}%");
            // A pause left by a run that was stopped is asked anew.
            r.paused = None;
            Ok(())
        })?;
        let written = set.map_err(|now| changed_under(&now, "before the stage"))?;
        ours = Some(written.generation);
        tracing::info!(step = %id, "stage {percent}%: {}", written.describe());
        let failed = match hold(ctx, s, &file, &written, &metrics)? {
            Judged::Passed(window) => {
                lines.push(format!(
                    "{percent}%: green {} requests, {:.2}% failed, p99 {}",
                    window.green.requests,
                    window.green.failure_rate() * 100.0,
                    ms(window.green.p99_ms)
                ));
                stage += 1;
                save_passed(ctx, id, stage)?;
                continue;
            }
            Judged::Failed(why) => why,
            Judged::Inconclusive { why, before } => match s.on_inconclusive {
                Inconclusive::Pass => {
                    tracing::warn!(step = %id, "stage {percent}% inconclusive ({why}); going on as configured");
                    lines.push(format!("{percent}%: inconclusive, passed ({why})"));
                    stage += 1;
                    continue;
                }
                Inconclusive::Fail => {
                    roll_back(&file, id, &format!("stage {percent}% inconclusive: {why}"))?;
                    super::hooks::run(ctx, &s.on_rollback, "rollback");
                    return Err(StepError::Gate(format!(
                        "stage {percent}% inconclusive ({why}); every read sent back to blue"
                    )));
                }
                Inconclusive::Pause => {
                    // Green keeps serving its share while the step waits:
                    // its gates are still watched, over the whole stage.
                    let watch = || failed_gate(s, &metrics.snapshot().since(&before), &before);
                    let question = format!("stage {percent}% is inconclusive: {why}");
                    let stage_name = format!("{percent}%");
                    match pause::ask(
                        ctx,
                        &file,
                        id,
                        &stage_name,
                        &question,
                        written.generation,
                        watch,
                    )? {
                        Asked::Answered(Answer::Pass, generation) => {
                            ours = Some(generation);
                            lines.push(format!(
                                "{percent}%: inconclusive, passed by the operator ({why})"
                            ));
                            stage += 1;
                            save_passed(ctx, id, stage)?;
                            continue;
                        }
                        Asked::Answered(Answer::Again, generation) => {
                            ours = Some(generation);
                            continue;
                        }
                        Asked::Failed(why) => why,
                    }
                }
            },
        };
        roll_back(&file, id, &format!("stage {percent}%: {failed}"))?;
        super::hooks::run(ctx, &s.on_rollback, "rollback");
        match s.on_failure {
            OnFailure::Fail => {
                return Err(StepError::Gate(format!(
                    "stage {percent}% failed: {failed}; every read sent back to blue"
                )));
            }
            OnFailure::Wait => {
                tracing::warn!(step = %id, "stage {percent}% failed ({failed}); every read is on blue; waiting for a share to be set again (admin endpoint, `runner share`) to hold the stage anew");
                wait_for_operator(ctx, &file)?;
                // The operator's share is the state the stage starts from.
                ours = None;
            }
        }
    }
    Ok(format!("reads shifted: {}", lines.join("; ")))
}

/// The error for a routing someone else changed `when`.
fn changed_under(now: &Routing, when: &str) -> StepError {
    let what = match now.mode {
        Mode::AllBlue => "rolled back",
        Mode::AllGreen => "cut over",
        Mode::Shift => "changed",
    };
    StepError::Gate(format!(
        "the routing was {what} {when} ({}); the ramp stops",
        crate::text::foreign(&now.reason)
    ))
}

/// Saves that the first `stages` stages passed, so a resumed run starts
/// after them.
fn save_passed(ctx: &StepContext, id: &str, stages: usize) -> Result<(), StepError> {
    let mut state = ctx.lock_state();
    state
        .step_mut(id, KIND.name)
        .set_own_field("passed_stages", Some(stages));
    state.save()?;
    Ok(())
}

/// Holds one stage, looking at the gates.
fn hold(
    ctx: &StepContext,
    s: &ShiftStep,
    file: &RoutingFile,
    written: &Routing,
    metrics: &Arc<Metrics>,
) -> Result<Judged, StepError> {
    let before = metrics.snapshot();
    let started = Instant::now();
    loop {
        let left = s.hold.saturating_sub(started.elapsed());
        sleep(ctx, s.check_every.min(left))?;
        let now = file.read()?;
        if now.generation != written.generation {
            return Err(changed_under(&now, "during the stage"));
        }
        let window = metrics.snapshot().since(&before);
        if let Some(why) = failed_gate(s, &window, &before) {
            return Ok(Judged::Failed(why));
        }
        if started.elapsed() >= s.hold {
            if window.green.requests < s.min_requests {
                return Ok(Judged::Inconclusive {
                    why: format!(
                        "green served {} requests in {}; at least {} are needed to judge it",
                        window.green.requests,
                        humantime::format_duration(s.hold),
                        s.min_requests
                    ),
                    before: Box::new(before),
                });
            }
            return Ok(Judged::Passed(Box::new(window)));
        }
    }
}

/// Why the stage fails now, if it does: `window` is the stage so far,
/// `before` the router's whole life before it (blue's baseline when blue
/// served too little in the stage).
fn failed_gate(
    s: &ShiftStep,
    window: &MetricsSnapshot,
    before: &MetricsSnapshot,
) -> Option<String> {
    // A pair the response-check plugin could not judge proves nothing:
    // it counts as one that differs.
    let mirror = &window.mirror;
    let judged = mirror.compared() + mirror.unjudged;
    let bad = mirror.mismatched + mirror.unjudged;
    if judged >= s.min_requests && bad as f64 / judged as f64 > s.max_mismatch_rate {
        return Some(format!(
            "{bad} of {judged} mirrored pairs differ ({} unjudged; more than {}%)",
            mirror.unjudged,
            s.max_mismatch_rate * 100.0
        ));
    }
    let green = &window.green;
    if green.requests < s.min_requests {
        return None;
    }
    if green.failure_rate() > s.max_error_rate {
        return Some(format!(
            "green failed {} of {} requests ({:.1}%, more than {}%)",
            green.failures,
            green.requests,
            green.failure_rate() * 100.0,
            s.max_error_rate * 100.0
        ));
    }
    let enough = s.min_requests.max(P99_MIN_SAMPLES);
    let baseline: Option<&SideSnapshot> = [&window.blue, &before.blue]
        .into_iter()
        .find(|b| b.requests >= enough);
    if green.requests >= enough
        && let (Some(blue), Some(green_p99)) = (baseline, green.p99_ms)
        && let Some(blue_p99) = blue.p99_ms
        && green_p99 > blue_p99 * s.max_p99_ratio
        && green_p99 - blue_p99 > s.p99_slack.as_secs_f64() * 1000.0
    {
        return Some(format!(
            "green's p99 is {} against blue's {} (more than {}×)",
            ms(Some(green_p99)),
            ms(Some(blue_p99)),
            s.max_p99_ratio
        ));
    }
    None
}

fn roll_back(file: &RoutingFile, id: &str, why: &str) -> Result<(), StepError> {
    let routing = file.update(&format!("rolled back by step `{id}`: {why}"), |r| {
        r.roll_back();
        Ok(())
    })?;
    tracing::error!(step = %id, "{}", routing.describe());
    Ok(())
}

/// Waits until the routing leaves the rolled-back mode.
fn wait_for_operator(ctx: &StepContext, file: &RoutingFile) -> Result<(), StepError> {
    loop {
        sleep(ctx, Duration::from_millis(250))?;
        if file.read()?.mode != Mode::AllBlue {
            return Ok(());
        }
    }
}

/// Sleeps `d`, waking for Ctrl-C.
pub fn sleep(ctx: &StepContext, d: Duration) -> Result<(), StepError> {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if ctx.cancel.is_cancelled() {
            return Err(StepError::Interrupted);
        }
        std::thread::sleep(
            until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(50)),
        );
    }
    if ctx.cancel.is_cancelled() {
        return Err(StepError::Interrupted);
    }
    Ok(())
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}ms"))
}
