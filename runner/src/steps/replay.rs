//! `replay`: source → transform plugin → store, as a three-stage pipeline
//! (reader, transformer, writer) joined by bounded channels, so reading,
//! WebAssembly and writing overlap and memory stays flat.
//!
//! The writer applies a batch to the store and only then commits the
//! batch's checkpoint (to the state folder, and to the source), so nothing
//! is ever committed past what the store acknowledged: a runner killed at
//! any point resumes from the last commit, re-applies a little, and — since
//! writes are idempotent — converges to the same store.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use super::{StepContext, StepError};
use crate::model::{Event, RowMutation};
use crate::plugin::TransformPlugin;
use crate::plugin::bindings::types;
use crate::plugin::error::describe;
use crate::report::progress::ProgressLine;
use crate::source::{self, BadRecord, Batch, Checkpoint, SourceError, Start};
use crate::store;
use crate::workflow::steps::{OnError, ReplayStep};
use crate::workflow::values::Point;

/// Batches in flight between two stages.
const IN_FLIGHT: usize = 8;

/// The writer merges batches that are already waiting into one store
/// transaction, up to this many events: a store pays per transaction (an
/// fsync, the pages a random insert touches), not per row.
const COALESCE_EVENTS: u64 = 10_000;

/// A batch after the transform.
struct Transformed {
    mutations: Vec<RowMutation>,
    refused: Vec<(Event, types::PluginError)>,
    bad: Vec<BadRecord>,
    events: u64,
    /// Latest event time per partition in this batch.
    times: BTreeMap<i32, i64>,
    checkpoint: Checkpoint,
}

impl Transformed {
    /// Appends the batch that follows this one.
    fn absorb(&mut self, next: Transformed) {
        self.mutations.extend(next.mutations);
        self.refused.extend(next.refused);
        self.bad.extend(next.bad);
        self.events += next.events;
        for (p, t) in next.times {
            let e = self.times.entry(p).or_insert(i64::MIN);
            *e = (*e).max(t);
        }
        self.checkpoint = next.checkpoint;
    }
}

/// Runs the replay until the end of input (or Ctrl-C).
pub fn run(ctx: &StepContext, id: &str, r: &ReplayStep) -> Result<String, StepError> {
    let workflow = &ctx.workflow;
    let plugin = ctx.plugins.transform(workflow, r.transform.get_ref())?;
    let mut store = store::open(workflow, r.into.get_ref())?;
    let mut source = source::open(workflow, r.source.get_ref())?;
    let batch_size = r.batch_size.unwrap_or(1000);
    let checkpoint_every = r.checkpoint_every.map_or(Duration::from_secs(1), |s| s.0);

    let (start, mut metrics) = {
        let mut state = ctx.lock_state();
        let restore_point = state.state.restore_points.get(r.into.get_ref()).copied();
        let st = state.step_mut(id, "replay");
        let start = match (&st.checkpoint, &r.start) {
            (Some(cp), _) => Start::Checkpoint(cp.clone()),
            (None, None | Some(Point::Earliest)) => Start::Earliest,
            (None, Some(Point::At(ms))) => Start::Timestamp(*ms),
            (None, Some(Point::Restore(margin))) => {
                let t0 = restore_point.ok_or_else(|| {
                    StepError::Other(format!(
                        "`start` is relative to the restore point of `{}`, but none is recorded; run the restore step first",
                        r.into.get_ref()
                    ))
                })?;
                Start::Timestamp(t0 - margin.as_millis() as i64)
            }
            (None, Some(other)) => {
                return Err(StepError::Other(format!(
                    "`start = \"{other}\"` is not a replay start"
                )));
            }
        };
        (start, st.metrics.clone())
    };
    match &start {
        Start::Checkpoint(cp) => {
            tracing::info!(line = ?cp.cursor, positions = ?cp.next, "resuming from checkpoint")
        }
        other => tracing::info!(start = ?other, "starting"),
    }
    source.seek(&start)?;
    let mut dead_letter = match (&r.on_error, &r.dead_letter) {
        (OnError::DeadLetter, Some(path)) => {
            Some(DeadLetter::open(&workflow.path(path.get_ref()))?)
        }
        _ => None,
    };

    let started = Instant::now();
    let (batch_tx, batch_rx) = sync_channel::<Result<Batch, SourceError>>(IN_FLIGHT);
    let (done_tx, done_rx) = sync_channel::<Result<Transformed, StepError>>(IN_FLIGHT);
    let (commit_tx, commit_rx) = sync_channel::<Checkpoint>(IN_FLIGHT * 2);
    let cancel = ctx.cancel.clone();
    let progress = ProgressLine::new(ctx.progress, id, source.progress().total);
    let progress_reader = progress.clone();
    let result = std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            read(
                source,
                batch_size,
                batch_tx,
                commit_rx,
                cancel,
                progress_reader,
            )
        });
        let transformer = scope.spawn(move || transform(plugin, batch_rx, done_tx));
        let written = write(
            ctx,
            id,
            r,
            &mut *store,
            done_rx,
            commit_tx,
            &mut dead_letter,
            &mut metrics,
            checkpoint_every,
            &progress,
        );
        let read_result = reader.join().unwrap_or_else(|_| {
            Err(SourceError {
                source_name: r.source.get_ref().clone(),
                message: "the reader thread panicked".into(),
            })
        });
        // A panicking stage closes its channel like a finished one would;
        // only the join tells the two apart, so check before calling it done.
        let transformed = transformer.join().map_err(|_| {
            StepError::Other(
                "the transform thread panicked; nothing after the last checkpoint was committed"
                    .into(),
            )
        });
        written
            .and(transformed)
            .and(read_result.map_err(StepError::from))
    });
    progress.finish();
    result?;
    if ctx.cancel.is_cancelled() {
        return Err(StepError::Interrupted);
    }
    let events = metrics.get("events").copied().unwrap_or(0);
    let elapsed = started.elapsed();
    let run_events = metrics.get("events_this_run").copied().unwrap_or(0);
    Ok(format!(
        "{events} events → {} row mutations into `{}`; {} refused, {} unreadable; {}",
        metrics.get("mutations").copied().unwrap_or(0),
        r.into.get_ref(),
        metrics.get("refused").copied().unwrap_or(0),
        metrics.get("unreadable").copied().unwrap_or(0),
        crate::report::rate(run_events, elapsed, "events"),
    ))
}

/// Stage 1: reads batches; applies commits handed back by the writer.
fn read(
    mut source: Box<dyn source::Source>,
    batch_size: usize,
    out: SyncSender<Result<Batch, SourceError>>,
    commits: Receiver<Checkpoint>,
    cancel: crate::engine::Cancel,
    progress: ProgressLine,
) -> Result<(), SourceError> {
    let mut reading = true;
    while reading {
        while let Ok(cp) = commits.try_recv() {
            source.commit(&cp)?;
        }
        if cancel.is_cancelled() {
            break;
        }
        match source.next_batch(batch_size) {
            Ok(Some(batch)) => {
                progress.source(source.progress());
                if out.send(Ok(batch)).is_err() {
                    reading = false;
                }
            }
            Ok(None) => reading = false,
            Err(e) => {
                let _ = out.send(Err(e));
                reading = false;
            }
        }
    }
    drop(out);
    // Commits of the batches still in flight.
    for cp in commits {
        source.commit(&cp)?;
    }
    Ok(())
}

/// Stage 2: runs the transform plugin on each batch.
fn transform(
    plugin: TransformPlugin,
    input: Receiver<Result<Batch, SourceError>>,
    out: SyncSender<Result<Transformed, StepError>>,
) {
    let mut instance = plugin.instance();
    for batch in input {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                let _ = out.send(Err(e.into()));
                break;
            }
        };
        let outcome = instance
            .transform(&batch.events)
            .map_err(StepError::from)
            .map(|outcomes| {
                let mut t = Transformed {
                    mutations: Vec::with_capacity(batch.events.len()),
                    refused: Vec::new(),
                    bad: batch.bad,
                    events: batch.events.len() as u64,
                    times: BTreeMap::new(),
                    checkpoint: batch.checkpoint,
                };
                for (event, outcome) in batch.events.into_iter().zip(outcomes) {
                    let time = t.times.entry(event.partition).or_insert(i64::MIN);
                    *time = (*time).max(event.timestamp_ms);
                    match outcome {
                        Ok(ms) => t.mutations.extend(ms),
                        Err(e) => t.refused.push((event, e)),
                    }
                }
                t
            });
        let failed = outcome.is_err();
        if out.send(outcome).is_err() || failed {
            break;
        }
    }
}

/// Stage 3: applies, then commits.
#[allow(clippy::too_many_arguments)]
fn write(
    ctx: &StepContext,
    id: &str,
    r: &ReplayStep,
    store: &mut dyn store::Store,
    input: Receiver<Result<Transformed, StepError>>,
    commits: SyncSender<Checkpoint>,
    dead_letter: &mut Option<DeadLetter>,
    metrics: &mut BTreeMap<String, u64>,
    checkpoint_every: Duration,
    progress: &ProgressLine,
) -> Result<(), StepError> {
    let plugin = r.transform.get_ref();
    // Resume the per-partition event times, so the watermark is the same
    // as an uninterrupted run's.
    let mut times: BTreeMap<i32, i64> = ctx
        .lock_state()
        .step_mut(id, "replay")
        .checkpoint
        .as_ref()
        .map(|cp| cp.event_times.clone())
        .unwrap_or_default();
    let mut last_save = Instant::now();
    metrics.insert("events_this_run".into(), 0);
    let mut pending = false;
    while let Ok(first) = input.recv() {
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
        for (p, t) in &batch.times {
            let e = times.entry(*p).or_insert(i64::MIN);
            *e = (*e).max(*t);
        }
        let watermark = times.values().min().copied().filter(|t| *t != i64::MIN);
        store.apply(&batch.mutations, watermark)?;
        // Acknowledged: from here on the batch may be committed.
        for (name, n) in [
            ("events", batch.events),
            ("events_this_run", batch.events),
            ("mutations", batch.mutations.len() as u64),
            ("refused", batch.refused.len() as u64),
            ("unreadable", batch.bad.len() as u64),
        ] {
            *metrics.entry(name.to_string()).or_insert(0) += n;
        }
        progress.events(metrics["events_this_run"]);
        {
            let mut state = ctx.lock_state();
            let st = state.step_mut(id, "replay");
            let mut checkpoint = batch.checkpoint.clone();
            checkpoint.event_times = times.clone();
            st.checkpoint = Some(checkpoint);
            st.metrics = metrics.clone();
            pending = true;
            if last_save.elapsed() >= checkpoint_every {
                state.save()?;
                last_save = Instant::now();
                pending = false;
            }
        }
        let _ = commits.send(batch.checkpoint);
    }
    if pending {
        ctx.lock_state().save()?;
    }
    Ok(())
}

/// The dead-letter file: one JSON object per refused event or unreadable
/// record, with the reason, flushed to disk before the batch is committed.
struct DeadLetter {
    file: File,
    path: std::path::PathBuf,
    dirty: bool,
}

impl DeadLetter {
    fn open(path: &std::path::Path) -> Result<Self, StepError> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                StepError::Other(format!(
                    "cannot open dead-letter file `{}`: {e}",
                    path.display()
                ))
            })?;
        Ok(DeadLetter {
            file,
            path: path.to_path_buf(),
            dirty: false,
        })
    }

    fn line(&mut self, value: serde_json::Value) -> Result<(), StepError> {
        let mut text = value.to_string();
        text.push('\n');
        self.dirty = true;
        self.file.write_all(text.as_bytes()).map_err(|e| {
            StepError::Other(format!(
                "cannot write dead-letter file `{}`: {e}",
                self.path.display()
            ))
        })
    }

    fn refused(
        &mut self,
        step: &str,
        plugin: &str,
        event: &Event,
        error: &types::PluginError,
    ) -> Result<(), StepError> {
        self.line(serde_json::json!({
            "step": step,
            "plugin": plugin,
            "error": describe(error),
            "partition": event.partition,
            "offset": event.offset,
            "timestamp": event.timestamp_ms,
            "key": event.key.as_ref().map(|k| String::from_utf8_lossy(k)),
            "value": String::from_utf8_lossy(&event.value),
        }))
    }

    fn unreadable(&mut self, step: &str, bad: &BadRecord) -> Result<(), StepError> {
        self.line(serde_json::json!({
            "step": step,
            "error": bad.error,
            "place": bad.place,
            "raw": String::from_utf8_lossy(&bad.raw),
        }))
    }

    fn sync(&mut self) -> Result<(), StepError> {
        if !std::mem::take(&mut self.dirty) {
            return Ok(());
        }
        self.file.sync_data().map_err(|e| {
            StepError::Other(format!(
                "cannot sync dead-letter file `{}`: {e}",
                self.path.display()
            ))
        })
    }
}
