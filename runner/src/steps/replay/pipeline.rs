//! The pipeline of a replay: source → transform plugin → store, as three
//! stages on their own threads (reader, transformer, writer) joined by
//! bounded channels, so reading, WebAssembly and writing overlap and
//! memory stays flat. The writer is in `writer`; here are the other two,
//! the pipeline's setup (where to start, what to resume from) and the one
//! shutdown signal every stage looks at.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use super::board::Board;
use super::config::{ReplayStep, StartPoint};
use super::dead_letter;
use super::in_flight::InFlight;
use super::saved::ReplayState;
use super::writer::Writer;
use super::{DEFAULT_BATCH_BYTES, Follow};
use crate::cancel::Cancel;
use crate::fault::Fault;
use crate::model::{Event, RowBatch};
use crate::plugin::TransformPlugin;
use crate::plugin::bindings::types;
use crate::plugin::contract::Transform;
use crate::plugin::transform::{Tables, Unpacked};
use crate::report::progress::ProgressLine;
use crate::source::{self, BadRecord, Batch, Checkpoint, SourceError, Start};
use crate::steps::{StepContext, StepError};

/// Batches in flight between two stages.
const IN_FLIGHT: usize = 8;

/// Why the stages stop: the run is stopping (Ctrl-C, SIGTERM, a failed
/// background task), the replay was asked to stop (`stop`, `cutover`),
/// or the writer returned. The reader cannot rely on a closed channel to
/// notice the last: at the end of the log it reads empty batches and sends
/// nothing, waiting for commits that a failed writer never makes.
pub struct Shutdown {
    run: Cancel,
    replay: Cancel,
    /// Set when the writer returns.
    pub writer: Cancel,
}

impl Shutdown {
    /// The signal of one pipeline of a run stopped by `run`, a replay
    /// stopped by `replay`.
    pub fn new(run: &Cancel, replay: &Cancel) -> Self {
        Shutdown {
            run: run.clone(),
            replay: replay.clone(),
            writer: Cancel::default(),
        }
    }

    /// Whether the stages should stop taking new work.
    pub fn is_set(&self) -> bool {
        self.run.is_cancelled() || self.replay.is_cancelled() || self.writer.is_cancelled()
    }

    /// The writer returned.
    pub fn writer_gone(&self) {
        self.writer.cancel();
    }
}

/// A batch after the transform.
pub struct Transformed {
    /// The rows, as the transform returned them (one batch per plugin call).
    pub rows: Vec<RowBatch>,
    pub refused: Vec<(Event, types::PluginError)>,
    pub bad: Vec<BadRecord>,
    pub events: u64,
    /// The watermark once this batch is applied (see `source::Reached`).
    pub watermark: Option<i64>,
    /// What its mutations hold on the host (see `InFlight`).
    pub bytes: u64,
    /// Events per partition in this batch.
    pub counts: BTreeMap<i32, u64>,
    pub checkpoint: Checkpoint,
}

impl Transformed {
    /// Appends the batch that follows this one.
    pub fn absorb(&mut self, next: Transformed) {
        self.rows.extend(next.rows);
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

/// Source → transform → store until the end (with `Follow::UntilEnd`),
/// Ctrl-C or `stop`.
pub fn run(
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
        events: r.batch_size.unwrap_or(crate::steps::DEFAULT_BATCH_SIZE),
        bytes: r.batch_bytes.map_or(DEFAULT_BATCH_BYTES, |s| s.0),
    };
    let checkpoint_every = r.checkpoint_every.map_or(Duration::from_secs(1), |s| s.0);
    let touched = if r.record_touched {
        let path = crate::steps::touched::path(&workflow.state_dir, id);
        ctx.own(std::slice::from_ref(&path))?;
        Some(
            crate::steps::touched::TouchedLog::open(&path)
                .map_err(|e| StepError::Local(format!("cannot open {}: {e}", path.display())))?,
        )
    } else {
        None
    };

    let (start, resume, mut metrics) = {
        let mut state = ctx.lock_state();
        let restore_point = state.data.restore_points.get(r.into.get_ref()).copied();
        let st = state.step_mut(id, super::config::KIND.name);
        let start = match &r.start {
            StartPoint::Earliest => Start::Earliest,
            StartPoint::Latest => Start::Latest,
            StartPoint::At(ms) => Start::Timestamp(*ms),
            StartPoint::Offsets(offsets) => Start::Offsets(offsets.clone()),
            StartPoint::Restore(margin) => {
                let t0 = restore_point.ok_or_else(|| {
                    StepError::Missing(format!(
                        "`start` is relative to the restore point of `{}`, but none is recorded; run the restore step first",
                        r.into.get_ref()
                    ))
                })?;
                Start::Timestamp(
                    t0.saturating_sub(i64::try_from(margin.as_millis()).unwrap_or(i64::MAX)),
                )
            }
        };
        let saved: ReplayState = st.own()?;
        (start, saved.checkpoint, st.metrics.clone())
    };
    match &resume {
        Some(cp) => {
            tracing::info!(line = ?cp.cursor, positions = ?cp.next, "resuming from checkpoint")
        }
        // The engine already said "starting" for the step.
        None => tracing::info!(start = ?start, "no checkpoint yet: reading from the start point"),
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
    let progress = ProgressLine::new(
        ctx.progress && follow == Follow::UntilEnd,
        id,
        source.progress().total,
    );
    let progress_reader = progress.clone();
    let shutdown = Shutdown::new(&ctx.cancel, stop);
    // Twice one batch's allowed output: one being written, one waiting.
    let in_flight = InFlight::new(plugin.limits().output.bytes_per_batch.saturating_mul(2));
    let result = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            read(
                source,
                limit,
                batch_tx,
                commit_rx,
                &shutdown,
                board,
                progress_reader,
            )
        });
        let (in_flight, shutdown) = (&in_flight, &shutdown);
        let transformer =
            scope.spawn(move || transform(plugin, &tables, batch_rx, done_tx, in_flight, shutdown));
        let written = Writer {
            ctx,
            id,
            plugin: r.transform.get_ref(),
            store: &mut *store,
            dead_letter: &mut dead_letter,
            metrics: &mut metrics,
            checkpoint_every,
            progress: &progress,
            board,
            in_flight,
            touched,
        }
        .run(done_rx, commit_tx);
        shutdown.writer_gone();
        let read_result = reader.join().unwrap_or_else(|_| {
            Err(SourceError::new(
                r.source.get_ref(),
                Fault::Refused,
                "the reader thread panicked",
            ))
        });
        // A panicking stage closes its channel like a finished one would;
        // only the join tells the two apart, so check before calling it done.
        let transformed = transformer.join().map_err(|_| {
            StepError::Panicked(
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
    limit: source::BatchLimit,
    out: SyncSender<Result<Batch, SourceError>>,
    commits: Receiver<Checkpoint>,
    shutdown: &Shutdown,
    board: &Board,
    progress: ProgressLine,
) -> Result<(), SourceError> {
    let mut reading = true;
    while reading {
        while let Ok(cp) = commits.try_recv() {
            source.commit(&cp)?;
        }
        if shutdown.is_set() {
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
    shutdown: &Shutdown,
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
                let Unpacked {
                    rows,
                    refused: refusals,
                    ..
                } = answer.unpacked;
                let mut t = Transformed {
                    rows: vec![rows],
                    refused: Vec::with_capacity(refusals.len()),
                    bad: batch.bad,
                    events: batch.events.len() as u64,
                    watermark: batch.watermark,
                    bytes: answer.bytes,
                    counts: BTreeMap::new(),
                    checkpoint: batch.checkpoint,
                };
                let mut refusals = refusals.into_iter().peekable();
                for (i, event) in batch.events.into_iter().enumerate() {
                    *t.counts.entry(event.partition).or_insert(0) += 1;
                    if let Some((_, why)) = refusals.next_if(|(e, _)| *e == i) {
                        t.refused.push((event, why));
                    }
                }
                t
            });
        let failed = outcome.is_err();
        let bytes = outcome.as_ref().map_or(0, |t| t.bytes);
        if !in_flight.take(bytes, &shutdown.writer) || out.send(outcome).is_err() || failed {
            break;
        }
    }
}
