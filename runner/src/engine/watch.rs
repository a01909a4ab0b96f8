//! The watch: a thread that runs beside the steps for the whole run. It
//! looks at the background tasks four times a second (a failed or stalled
//! one is logged at once, recorded as failed in the state, and stops the
//! run) and writes a heartbeat with every task's figures into the state
//! every two seconds, so `runner status` can tell a working runner's
//! fresh figures from a dead one's.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use crate::state::now_ms;
use crate::steps::StepContext;
use crate::steps::background::fail;

/// How often the background tasks are looked at.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// How often the heartbeat is written.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// The running watch.
pub struct Watch {
    stop: Cancel,
    thread: JoinHandle<()>,
}

impl Watch {
    /// Starts watching the run of `ctx`.
    pub fn start(ctx: &StepContext) -> Watch {
        let stop = Cancel::default();
        let (ctx, stop2) = (ctx.clone(), stop.clone());
        let thread = std::thread::spawn(move || watch(&ctx, &stop2));
        Watch { stop, thread }
    }

    /// Stops it.
    pub fn stop(self) {
        self.stop.cancel();
        let _ = self.thread.join();
    }
}

fn watch(ctx: &StepContext, stop: &Cancel) {
    let mut last_beat: Option<Instant> = None;
    while !stop.is_cancelled() {
        for (id, error) in ctx.background.look(ctx.cancel.is_cancelled()) {
            fail(ctx, &id, error);
        }
        if last_beat.is_none_or(|t| t.elapsed() >= HEARTBEAT_EVERY) {
            beat(ctx);
            last_beat = Some(Instant::now());
        }
        std::thread::sleep(LOOK_EVERY);
    }
}

/// The heartbeat, with each background task's figures as they are now.
fn beat(ctx: &StepContext) {
    ctx.background.status(&ctx.state);
    let mut sf = ctx.lock_state();
    sf.data.heartbeat_ms = Some(now_ms());
    sf.data.runner_pid = Some(std::process::id());
    if let Err(e) = sf.save() {
        tracing::warn!("cannot write the heartbeat to the state folder: {e}");
    }
}
