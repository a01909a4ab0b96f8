//! A step that reads a store as the truth (`compare`) or switches reads to
//! it (`cutover`) runs only while every background replay keeping that
//! store in sync is running and within its catch-up gate: a green that
//! stopped following the log must never pass a comparison or take the
//! reads. A replay that is catching up again (just restarted by this run)
//! is waited for, up to its `caught_up.timeout`.

use std::time::{Duration, Instant};

use super::background::Freshness;
use super::{Step, StepContext, StepError};
use crate::report::thousands;

/// Waits until every background replay into a store `step` reads runs and
/// is caught up; fails naming the first one that does not.
pub fn require(ctx: &StepContext, step: &Step) -> Result<(), StepError> {
    let stores = step.config.reads();
    if stores.is_empty() {
        return Ok(());
    }
    let kind = step.kind();
    for other in ctx.steps.iter() {
        let Some((into, wait)) = other.config.keeps_current() else {
            continue;
        };
        let id = other.id.get_ref();
        let task = other.kind();
        // Only tasks that keep running and were not stopped on purpose.
        let syncing = ctx.lock_state().data.syncing(id);
        if !stores.contains(&into) || !syncing {
            continue;
        }
        let started = Instant::now();
        let mut told = None::<Instant>;
        loop {
            if ctx.cancel.is_cancelled() {
                return Err(StepError::Interrupted);
            }
            let (lag, max_lag, hold) = match ctx.background.freshness(id) {
                Freshness::CaughtUp => break,
                Freshness::NotRunning => {
                    return Err(StepError::Background(format!(
                        "background {task} `{id}` keeps `{into}` in sync but is not running; `{kind}` reads only a current `{into}` (`runner exec` starts it again)"
                    )));
                }
                Freshness::Behind { lag, max_lag, hold } => (lag, max_lag, hold),
            };
            let behind = lag.map_or("an unknown number of".to_string(), thousands);
            if started.elapsed() >= wait {
                return Err(StepError::Gate(format!(
                    "background {task} `{id}` keeps `{into}` in sync but is not caught up: {behind} messages behind after waiting {} (its gate is at most {max_lag} for {}); `{kind}` reads only a current `{into}`",
                    humantime::format_duration(wait),
                    humantime::format_duration(hold)
                )));
            }
            if told.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                tracing::info!(
                    "waiting for background {task} `{id}` to catch up: {behind} messages behind (at most {max_lag} for {})",
                    humantime::format_duration(hold)
                );
                told = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}
