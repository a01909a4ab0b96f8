//! The writer of a replay's pipeline: applies each transformed batch to
//! the store (merging batches already waiting into one transaction), sets
//! refused events aside or fails naming them, and only then records the
//! batch's checkpoint in the state and hands it back to the reader to
//! commit to the source, so nothing is committed past what the store
//! acknowledged.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use super::board::Board;
use super::dead_letter::DeadLetter;
use super::in_flight::InFlight;
use super::pipeline::Transformed;
use super::saved::ReplayState;
use crate::model::Mutations;
use crate::plugin::error::describe;
use crate::report::progress::ProgressLine;
use crate::source::Checkpoint;
use crate::steps::touched::TouchedLog;
use crate::steps::{StepContext, StepError};
use crate::store::Store;

/// The writer merges batches that are already waiting into one store
/// transaction, up to this many events: a store pays per transaction (an
/// fsync, the pages a random insert touches), not per row.
const COALESCE_EVENTS: u64 = 10_000;

/// The writer of one pipeline and what it works with.
pub struct Writer<'a> {
    /// The step's context.
    pub ctx: &'a StepContext,
    /// The step's id.
    pub id: &'a str,
    /// The transform plugin's name, for messages.
    pub plugin: &'a str,
    /// The store written.
    pub store: &'a mut dyn Store,
    /// Where refused events go, if the policy is to set them aside.
    pub dead_letter: &'a mut Option<Box<dyn DeadLetter>>,
    /// The step's counters, kept across resumes.
    pub metrics: &'a mut BTreeMap<String, u64>,
    /// How often positions are saved.
    pub checkpoint_every: Duration,
    /// The progress line.
    pub progress: &'a ProgressLine,
    /// Where the replay stands, for the gate and `runner status`.
    pub board: &'a Board,
    /// Output bytes between the transformer and the writer.
    pub in_flight: &'a InFlight,
    /// Where the keys it writes are recorded, if they are.
    pub touched: Option<TouchedLog>,
}

impl Writer<'_> {
    /// Applies each batch, then hands its checkpoint back to the reader to
    /// commit, until the transformer is done.
    pub fn run(
        self,
        input: Receiver<Result<Transformed, StepError>>,
        commits: SyncSender<Checkpoint>,
    ) -> Result<(), StepError> {
        let Writer {
            ctx,
            id,
            plugin,
            store,
            dead_letter,
            metrics,
            checkpoint_every,
            progress,
            board,
            in_flight,
            mut touched,
        } = self;
        let mut watermark = None;
        let mut last_save = Instant::now();
        metrics.insert("events_this_run".into(), 0);
        let mut pending = false;
        loop {
            let first = match input.recv_timeout(checkpoint_every) {
                Ok(first) => first,
                Err(RecvTimeoutError::Timeout) => {
                    // Quiet log: still show lag and rates as they are now.
                    let mut state = ctx.lock_state();
                    ReplayState::set_partitions(
                        state.step_mut(id, super::config::KIND.name),
                        &board.partitions(),
                    );
                    state.save()?;
                    last_save = Instant::now();
                    pending = false;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = first?;
            while batch.events < COALESCE_EVENTS {
                match input.try_recv() {
                    Ok(next) => batch.absorb(next?),
                    Err(_) => break,
                }
            }
            if let Some((event, error)) = batch.refused.first() {
                match dead_letter {
                    None => {
                        return Err(StepError::Refused(format!(
                            "event partition {} offset {} was refused by plugin `{plugin}`: {}; nothing of its batch was written (set `on_error = \"dead-letter\"` to set such events aside)",
                            event.partition,
                            event.offset,
                            describe(error)
                        )));
                    }
                    Some(dl) => {
                        for (event, error) in &batch.refused {
                            dl.refused(id, plugin, event, error)?;
                        }
                    }
                }
            }
            if let Some(bad) = batch.bad.first() {
                match dead_letter {
                    None => {
                        return Err(StepError::Refused(format!(
                            "{} is not an event: {}; nothing of its batch was written (set `on_error = \"dead-letter\"` to set such records aside)",
                            bad.place, bad.error
                        )));
                    }
                    Some(dl) => {
                        for bad in &batch.bad {
                            dl.unreadable(id, bad)?;
                        }
                    }
                }
            }
            if let Some(dl) = dead_letter {
                dl.sync()?;
            }
            // The source says what every partition has reached with this batch.
            watermark = watermark.max(batch.watermark);
            store.write(Mutations::Packed(&batch.rows), watermark)?;
            // Recorded before the position can be committed: a key the
            // source will not send again is never missing from the log.
            if let Some(log) = &mut touched {
                log.record(Mutations::Packed(&batch.rows)).map_err(|e| {
                    StepError::Local(format!(
                        "cannot record the keys written in {}: {e}",
                        super::super::touched::path(&ctx.setup.state_dir, id).display()
                    ))
                })?;
            }
            in_flight.give(batch.bytes);
            // Acknowledged: from here on the batch may be committed.
            for (name, n) in [
                ("events", batch.events),
                ("events_this_run", batch.events),
                ("mutations", Mutations::Packed(&batch.rows).len() as u64),
                ("refused", batch.refused.len() as u64),
                ("unreadable", batch.bad.len() as u64),
            ] {
                *metrics.entry(name.to_string()).or_insert(0) += n;
            }
            progress.events(metrics["events_this_run"]);
            board.acknowledged(&batch.checkpoint.next, &batch.counts);
            {
                let mut state = ctx.lock_state();
                let st = state.step_mut(id, super::config::KIND.name);
                st.metrics = metrics.clone();
                let save = last_save.elapsed() >= checkpoint_every;
                ReplayState::set_checkpoint(st, &batch.checkpoint);
                pending = !save;
                if save {
                    ReplayState::set_partitions(st, &board.partitions());
                    state.save()?;
                    last_save = Instant::now();
                }
            }
            let _ = commits.send(batch.checkpoint);
        }
        if pending {
            ctx.lock_state().save()?;
        }
        Ok(())
    }
}
