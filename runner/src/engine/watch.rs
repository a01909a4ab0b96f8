//! The watch: a thread that runs beside the steps for the whole run. It
//! looks at the background replays four times a second (a failed or
//! stalled one is logged at once, recorded as failed in the state, and
//! stops the run) and writes a heartbeat with every replay's figures into
//! the state every two seconds, so `runner status` can tell a working
//! runner's fresh figures from a dead one's.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::state::{Status, now_ms};
use crate::cancel::{Cancel, Signal};
use crate::steps::{StepContext, StepError};
use crate::text::{STEP_TEXT_LIMIT, bounded};

/// How often the background replays are looked at.
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

/// A background replay failed: said at once, recorded, and the run stops.
/// Its first error is the one kept (stopping a stalled replay may fail
/// too, and must not hide why it stalled).
pub fn fail(ctx: &StepContext, id: &str, error: StepError) {
    if ctx.background.failed_id().as_deref() == Some(id) {
        tracing::warn!(step = %id, "background replay, after it failed: {error}");
        return;
    }
    tracing::error!(step = %id, "background replay failed: {error}");
    {
        let mut sf = ctx.lock_state();
        let st = sf.step_mut(id, "replay");
        st.status = Status::Failed;
        st.live = false;
        st.finished_at_ms = Some(now_ms());
        st.error = Some(bounded(&error.to_string(), STEP_TEXT_LIMIT));
        if let Err(e) = sf.save() {
            tracing::error!("cannot record the failure in the state folder: {e}");
        }
    }
    ctx.background.failed(id, error);
    ctx.cancel.signal(Signal::Failed);
}

/// The heartbeat, with each background replay's figures as they are now.
fn beat(ctx: &StepContext) {
    let boards = ctx.background.boards();
    let mut sf = ctx.lock_state();
    sf.data.heartbeat_ms = Some(now_ms());
    sf.data.runner_pid = Some(std::process::id());
    for (id, live) in boards {
        sf.step_mut(&id, "replay").partitions = live.partitions();
    }
    if let Err(e) = sf.save() {
        tracing::warn!("cannot write the heartbeat to the state folder: {e}");
    }
}
