//! `replay`: source → transform plugin → store, as a three-stage pipeline
//! (reader, transformer, writer) joined by bounded channels, so reading,
//! WebAssembly and writing overlap and memory stays flat (see `pipeline`
//! and `writer`). Here is the step itself: run to the end, or until the
//! catch-up gate (`gate`) holds, and on in the background (`syncing`).
//!
//! The writer applies a batch to the store and only then commits the
//! batch's checkpoint (to the state folder, and to the source), so nothing
//! is ever committed past what the store acknowledged: a runner killed at
//! any point resumes from the last commit, re-applies a little, and — since
//! writes are idempotent — converges to the same store.
//!
//! `until` says when the step is done: at the `end` of the log as it was
//! when the step started; once `caught-up` (the lag gate in `gate` holds);
//! or, with `cutover`, once caught up — after which the pipeline keeps
//! syncing on its own thread while later steps run, until a `stop` or
//! `cutover` step (see `syncing` and `steps::background`).

pub mod board;
pub mod config;
pub mod dead_letter;
pub mod gate;
pub mod in_flight;
pub mod pipeline;
pub mod saved;
pub mod syncing;
pub mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::background::{BackgroundTask, finish};
use super::{StepContext, StepError};
use crate::cancel::Cancel;
use crate::source::Follow;
use board::Board;
use config::{ReplayStep, Until};
use gate::Gate;
use syncing::Syncing;

/// The catch-up gate's defaults: at most this many messages behind …
pub const DEFAULT_MAX_LAG: u64 = 100;
/// … for this long.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(10);

/// A background replay that acknowledges nothing for this long while
/// behind (or while its source cannot be asked) has stalled, by default.
pub const DEFAULT_STALL: Duration = Duration::from_secs(300);

/// Bytes of events per batch, by default: a batch is copied into the
/// plugin's memory (64 MiB by default) and must fit there with its output.
pub const DEFAULT_BATCH_BYTES: u64 = 8 << 20;
/// Runs the step: to the end of the log, or until caught up (and then,
/// for `until = "cutover"`, on in the background).
fn run(ctx: &StepContext, id: &str, r: &ReplayStep) -> Result<String, StepError> {
    let until = r.until;
    if until == Until::End {
        return pipeline::run(
            ctx,
            id,
            r,
            Follow::UntilEnd,
            &Cancel::default(),
            &Board::default(),
        );
    }
    let started = Instant::now();
    let mut running = spawn(ctx, id, r);
    let (max_lag, hold) = running.gate.bounds();
    let timeout = r.caught_up.as_ref().and_then(|g| g.timeout).map(|t| t.0);
    let mut gate = Gate::new(max_lag, hold);
    let mut last_report = Instant::now();
    loop {
        if running.finished() {
            // It only ends by itself on an error or Ctrl-C.
            return finish(Box::new(running)).and_then(|_| {
                Err(if ctx.cancel.is_cancelled() {
                    StepError::Interrupted
                } else {
                    StepError::Background("the replay ended before it caught up".into())
                })
            });
        }
        let lag = running.board.lag();
        if gate.observe(lag, Instant::now()) {
            break;
        }
        // A replay that cannot get on (brokers or store unreachable) fails
        // here as it would in the background, instead of waiting for ever.
        if let Some(why) = running.look(Instant::now()) {
            finish(Box::new(running))?;
            return Err(StepError::Background(why));
        }
        if let Some(limit) = timeout
            && started.elapsed() >= limit
        {
            finish(Box::new(running))?;
            return Err(StepError::Gate(format!(
                "not caught up within {}: {} messages behind (the gate is at most {max_lag} for {})",
                humantime::format_duration(limit),
                lag.map_or("unknown".to_string(), |l| l.to_string()),
                humantime::format_duration(hold)
            )));
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            tracing::info!(
                lag = lag.map_or("unknown".to_string(), |l| l.to_string()),
                "waiting to catch up (at most {max_lag} behind for {})",
                humantime::format_duration(hold)
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let caught_up = format!(
        "caught up after {} (lag {} ≤ {max_lag} for {})",
        crate::report::duration(started.elapsed()),
        running.board.lag().unwrap_or(0),
        humantime::format_duration(hold)
    );
    tracing::info!("{caught_up}");
    if until == Until::CaughtUp {
        return finish(Box::new(running)).map(|summary| format!("{summary}; {caught_up}"));
    }
    {
        let mut state = ctx.lock_state();
        state.step_mut(id, config::KIND.name).background = true;
        state.save()?;
    }
    running.caught_up_since(
        Instant::now()
            .checked_sub(hold)
            .unwrap_or_else(Instant::now),
    );
    ctx.background.add(id, config::KIND.name, Box::new(running));
    Ok(format!(
        "{caught_up}; keeps syncing in the background until cutover"
    ))
}

/// The catch-up gate of a replay and its stall time.
pub fn gate_of(r: &ReplayStep) -> (Gate, Duration) {
    let gate = r.caught_up.clone().unwrap_or_default();
    (
        Gate::new(
            gate.max_lag.unwrap_or(DEFAULT_MAX_LAG),
            gate.hold.map_or(DEFAULT_HOLD, |h| h.0),
        ),
        gate.stall.map_or(DEFAULT_STALL, |s| s.0),
    )
}

/// Starts the pipeline on its own thread, following the live log.
pub fn spawn(ctx: &StepContext, id: &str, r: &ReplayStep) -> Syncing {
    let stop = Cancel::default();
    let board = Arc::new(Board::default());
    let (ctx2, id2, r2, stop2, live2) = (
        ctx.clone(),
        id.to_string(),
        r.clone(),
        stop.clone(),
        board.clone(),
    );
    let span = tracing::Span::current();
    let thread = std::thread::spawn(move || {
        let _enter = span.enter();
        pipeline::run(&ctx2, &id2, &r2, Follow::Tail, &stop2, &live2)
    });
    let (gate, stall) = gate_of(r);
    Syncing::new(id, stop, board, thread, gate, stall)
}
