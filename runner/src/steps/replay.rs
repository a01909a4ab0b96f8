//! `replay`: source → transform plugin → store, as a three-stage pipeline
//! (reader, transformer, writer) joined by bounded channels, so reading,
//! WebAssembly and writing overlap and memory stays flat.
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
pub mod saved;
pub mod syncing;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use super::background::{BackgroundTask, finish};
use super::{StepContext, StepError};
use crate::cancel::Cancel;
use crate::document::values::Point;
use crate::model::{Event, RowMutation};
use crate::plugin::TransformPlugin;
use crate::plugin::bindings::transform::Transform;
use crate::plugin::bindings::types;
use crate::plugin::error::describe;
use crate::plugin::transform::Tables;
use crate::report::progress::ProgressLine;
use crate::source::{self, BadRecord, Batch, Checkpoint, Follow, SourceError, Start};
use crate::store;
use config::{ReplayStep, Until};

use board::Board;
use dead_letter::DeadLetter;
use gate::Gate;
use in_flight::InFlight;
use saved::ReplayState;
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
    /// The watermark once this batch is applied (see `source::Reached`).
    watermark: Option<i64>,
    /// What its mutations hold on the host (see `InFlight`).
    bytes: u64,
    /// Events per partition in this batch.
    counts: BTreeMap<i32, u64>,
    checkpoint: Checkpoint,
}

impl Transformed {
    /// Appends the batch that follows this one.
    fn absorb(&mut self, next: Transformed) {
        self.mutations.extend(next.mutations);
        self.refused.extend(next.refused);
        self.bad.extend(next.bad);
        self.events += next.events;
        self.bytes += next.bytes;
        self.watermark = self.watermark.max(next.watermark);
        for (p, n) in next.counts {
            *self.counts.entry(p).or_insert(0) += n;
        }
        self.checkpoint = next.checkpoint;
    }
}

/// Runs the step: to the end of the log, or until caught up (and then,
/// for `until = "cutover"`, on in the background).
fn run(ctx: &StepContext, id: &str, r: &ReplayStep) -> Result<String, StepError> {
    let until = r.until();
    if until == Until::End {
        return pipeline(
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
                    StepError::Other("the replay ended before it caught up".into())
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
            return Err(StepError::Other(why));
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
        state.step_mut(id, "replay").background = true;
        state.save()?;
    }
    running.caught_up_since(
        Instant::now()
            .checked_sub(hold)
            .unwrap_or_else(Instant::now),
    );
    ctx.background.add(id, "replay", Box::new(running));
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
        pipeline(&ctx2, &id2, &r2, Follow::Tail, &stop2, &live2)
    });
    let (gate, stall) = gate_of(r);
    Syncing::new(id, stop, board, thread, gate, stall)
}

/// Source → transform → store until the end (with `Follow::UntilEnd`),
/// Ctrl-C or `stop`.
fn pipeline(
    ctx: &StepContext,
    id: &str,
    r: &ReplayStep,
    follow: Follow,
    stop: &Cancel,
    board: &Board,
) -> Result<String, StepError> {
    let workflow = &ctx.setup;
    let plugin = ctx
        .plugins
        .get::<Transform>(workflow, r.transform.get_ref())?;
    let tables = tables_of(workflow, r.into.get_ref());
    let mut store = ctx.store(r.into.get_ref())?;
    let mut source =
        workflow
            .sources
            .open(&workflow.home(), r.source.get_ref(), follow, &ctx.cancel)?;
    let limit = source::BatchLimit {
        events: r.batch_size.unwrap_or(super::DEFAULT_BATCH_SIZE),
        bytes: r.batch_bytes.map_or(DEFAULT_BATCH_BYTES, |s| s.0),
    };
    let checkpoint_every = r.checkpoint_every.map_or(Duration::from_secs(1), |s| s.0);

    let (start, resume, mut metrics) = {
        let mut state = ctx.lock_state();
        let restore_point = state.data.restore_points.get(r.into.get_ref()).copied();
        let st = state.step_mut(id, "replay");
        let start = match &r.start {
            _ if !r.start_offsets.is_empty() => Start::Offsets(
                r.start_offsets
                    .iter()
                    .filter_map(|(p, o)| Some((p.parse().ok()?, *o)))
                    .collect(),
            ),
            None | Some(Point::Earliest) => Start::Earliest,
            Some(Point::Latest) => Start::Latest,
            Some(Point::At(ms)) => Start::Timestamp(*ms),
            Some(Point::Restore(margin)) => {
                let t0 = restore_point.ok_or_else(|| {
                    StepError::Other(format!(
                        "`start` is relative to the restore point of `{}`, but none is recorded; run the restore step first",
                        r.into.get_ref()
                    ))
                })?;
                Start::Timestamp(
                    t0.saturating_sub(i64::try_from(margin.as_millis()).unwrap_or(i64::MAX)),
                )
            }
            Some(other) => {
                return Err(StepError::Other(format!(
                    "`start = \"{other}\"` is not a replay start"
                )));
            }
        };
        let saved: ReplayState = st.own()?;
        (start, saved.checkpoint, st.metrics.clone())
    };
    match &resume {
        Some(cp) => {
            tracing::info!(line = ?cp.cursor, positions = ?cp.next, "resuming from checkpoint")
        }
        None => tracing::info!(start = ?start, "starting"),
    }
    source.seek(&start, resume.as_ref())?;
    if let Some(file) = &r.dead_letter {
        ctx.own(&[workflow.path(file.get_ref())])?;
    }
    let mut dead_letter = dead_letter::open(workflow, r)?;

    let started = Instant::now();
    let (batch_tx, batch_rx) = sync_channel::<Result<Batch, SourceError>>(IN_FLIGHT);
    let (done_tx, done_rx) = sync_channel::<Result<Transformed, StepError>>(IN_FLIGHT);
    let (commit_tx, commit_rx) = sync_channel::<Checkpoint>(IN_FLIGHT * 2);
    let cancel = ctx.cancel.clone();
    let progress = ProgressLine::new(
        ctx.progress && follow == Follow::UntilEnd,
        id,
        source.progress().total,
    );
    let progress_reader = progress.clone();
    // Set when the writer returns. The reader cannot rely on a closed
    // channel to notice: at the end of the log it reads empty batches and
    // sends nothing, waiting for commits that a failed writer never makes.
    let writer_gone = Cancel::default();
    // Twice one batch's allowed output: one being written, one waiting.
    let in_flight = InFlight::new(plugin.limits().output.bytes_per_batch.saturating_mul(2));
    let result = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            read(
                source,
                limit,
                batch_tx,
                commit_rx,
                [&cancel, stop, &writer_gone],
                board,
                progress_reader,
            )
        });
        let (in_flight, writer_gone) = (&in_flight, &writer_gone);
        let transformer = scope
            .spawn(move || transform(plugin, &tables, batch_rx, done_tx, in_flight, writer_gone));
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
            board,
            in_flight,
        );
        writer_gone.cancel();
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
#[allow(clippy::too_many_arguments)]
fn read(
    mut source: Box<dyn source::Source>,
    limit: source::BatchLimit,
    out: SyncSender<Result<Batch, SourceError>>,
    commits: Receiver<Checkpoint>,
    stops: [&Cancel; 3],
    board: &Board,
    progress: ProgressLine,
) -> Result<(), SourceError> {
    let mut reading = true;
    while reading {
        while let Ok(cp) = commits.try_recv() {
            source.commit(&cp)?;
        }
        if stops.iter().any(|s| s.is_cancelled()) {
            break;
        }
        match source.next_batch(limit) {
            Ok(Some(batch)) => {
                board.set_ends(source.ends());
                progress.source(source.progress());
                // A quiet live log gives empty batches: nothing to pass on.
                let empty = batch.events.is_empty() && batch.bad.is_empty();
                if !empty && out.send(Ok(batch)).is_err() {
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
    source.close()
}

/// The tables a replay may write: those the workflow declares for its
/// store (validation makes sure there are some).
fn tables_of(workflow: &crate::setup::Setup, store: &str) -> Tables {
    Tables {
        store: store.to_string(),
        names: workflow
            .store(store)
            .and_then(|s| s.declared_tables())
            .unwrap_or_default()
            .into_iter()
            .collect(),
    }
}

/// Stage 2: runs the transform plugin on each batch.
fn transform(
    plugin: TransformPlugin,
    tables: &Tables,
    input: Receiver<Result<Batch, SourceError>>,
    out: SyncSender<Result<Transformed, StepError>>,
    in_flight: &InFlight,
    writer_gone: &Cancel,
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
            .transform(&batch.events, Some(tables))
            .map_err(StepError::from)
            .map(|answer| {
                let mut t = Transformed {
                    mutations: Vec::with_capacity(batch.events.len()),
                    refused: Vec::new(),
                    bad: batch.bad,
                    events: batch.events.len() as u64,
                    watermark: batch.watermark,
                    bytes: answer.bytes,
                    counts: BTreeMap::new(),
                    checkpoint: batch.checkpoint,
                };
                for (event, outcome) in batch.events.into_iter().zip(answer.outcomes) {
                    *t.counts.entry(event.partition).or_insert(0) += 1;
                    match outcome {
                        Ok(ms) => t.mutations.extend(ms),
                        Err(e) => t.refused.push((event, e)),
                    }
                }
                t
            });
        let failed = outcome.is_err();
        let bytes = outcome.as_ref().map_or(0, |t| t.bytes);
        if !in_flight.take(bytes, writer_gone) || out.send(outcome).is_err() || failed {
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
    dead_letter: &mut Option<Box<dyn DeadLetter>>,
    metrics: &mut BTreeMap<String, u64>,
    checkpoint_every: Duration,
    progress: &ProgressLine,
    board: &Board,
    in_flight: &InFlight,
) -> Result<(), StepError> {
    let plugin = r.transform.get_ref();
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
                ReplayState::update(state.step_mut(id, "replay"), |s| {
                    s.partitions = board.partitions()
                })?;
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
        store.apply(&batch.mutations, watermark)?;
        in_flight.give(batch.bytes);
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
        board.acknowledged(&batch.checkpoint.next, &batch.counts);
        {
            let mut state = ctx.lock_state();
            let st = state.step_mut(id, "replay");
            st.metrics = metrics.clone();
            let save = last_save.elapsed() >= checkpoint_every;
            ReplayState::update(st, |s| {
                s.checkpoint = Some(batch.checkpoint.clone());
                if save {
                    s.partitions = board.partitions();
                }
            })?;
            pending = true;
            if save {
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
