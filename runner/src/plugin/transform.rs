//! The `transform` world: a batch of events in, row mutations out.

use std::time::{Duration, Instant};

use super::bindings::types::Event;
use super::bindings::{transformer, v0_1};
use super::contract::{Contract, Transform};
use super::error::{Input, PluginFailure};
use super::instance::{Instance, Plugin};
pub use super::unpack::{Outcome, Tables, Unpacked};
use super::unpack::{Packed, Tally, unpack};

/// A loaded transform plugin.
pub type TransformPlugin = Plugin<Transform>;

/// What a batch became.
#[derive(Debug)]
pub struct Answer {
    /// The rows and refusals of the batch.
    pub unpacked: Unpacked,
    /// What it holds on the host, counted as the output limits count it.
    pub bytes: u64,
}

impl Answer {
    /// One outcome per event, in order.
    pub fn outcomes(self) -> Vec<Outcome> {
        self.unpacked.outcomes()
    }
}

impl Instance<Transform> {
    /// Transforms a batch: its rows in event order, and the events refused. With `tables`,
    /// a row for any other table breaks the contract.
    ///
    /// When the sandbox stops the plugin on a batch, the events are run again
    /// one at a time so that the error names the very event that caused it:
    /// within one more `timeout` in all, and within the batch's output limits
    /// in all (each event alone does not get a fresh budget).
    pub fn transform(
        &mut self,
        events: &[Event],
        tables: Option<&Tables>,
    ) -> Result<Answer, PluginFailure> {
        let at = batch_input(events);
        let mut tally = Tally::new(self.limits().output, self.name(), tables);
        let timeout = self.limits().timeout;
        match self.transform_once(&at, events, &mut tally, timeout) {
            Ok(unpacked) => Ok(Answer {
                unpacked,
                bytes: tally.spent(),
            }),
            Err(failure) if events.len() > 1 => self.single_out(events, failure, tables),
            Err(failure) => Err(failure),
        }
    }

    fn transform_once(
        &mut self,
        at: &Input,
        events: &[Event],
        tally: &mut Tally<'_>,
        timeout: Duration,
    ) -> Result<Unpacked, PluginFailure> {
        let batch: Packed = self.call_within(at, timeout, |exports, store| {
            Ok(match exports.contract {
                Contract::V0_2 => exports
                    .call::<_, (transformer::MutationBatch,)>(store, (&pack(events),))?
                    .0
                    .into(),
                Contract::V0_1 => exports
                    .call::<_, (v0_1::transformer::MutationBatch,)>(store, (events,))?
                    .0
                    .into(),
            })
        })?;
        unpack(batch, events.len(), tally).map_err(|broken| PluginFailure::Contract {
            plugin: self.name().to_string(),
            what: broken.what,
            at: broken
                .event
                .and_then(|i| events.get(i))
                .map_or_else(|| at.clone(), event_input),
        })
    }

    fn single_out(
        &mut self,
        events: &[Event],
        batch_failure: PluginFailure,
        tables: Option<&Tables>,
    ) -> Result<Answer, PluginFailure> {
        // Only a limit the batch as a whole may have hit is worth running
        // again event by event; a stop, a refused configuration or an
        // answer already pinned on one event is final.
        let retry = match &batch_failure {
            PluginFailure::Deadline { .. }
            | PluginFailure::Memory { .. }
            | PluginFailure::Trap { .. }
            | PluginFailure::Output { .. }
            | PluginFailure::StackOverflow { .. }
            | PluginFailure::Denied { .. } => true,
            PluginFailure::Contract { at, .. } => !matches!(at, Input::Event { .. }),
            PluginFailure::Config { .. } | PluginFailure::Interrupted { .. } => false,
        };
        if !retry {
            return Err(batch_failure);
        }
        let limits = *self.limits();
        let started = Instant::now();
        let mut tally = Tally::new(limits.output, self.name(), tables);
        let mut all = Unpacked::default();
        for event in events {
            let left = limits.timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                // Event by event would take far longer than the batch was
                // allowed: say so of the batch.
                return Err(batch_failure);
            }
            tally.next_call();
            let one = std::slice::from_ref(event);
            all.append(self.transform_once(&event_input(event), one, &mut tally, left)?);
        }
        tracing::warn!(
            plugin = self.name(),
            "{batch_failure}; each event alone succeeded, so the batch was too large for the plugin's limits: lower the step's `batch_size` or raise the limits"
        );
        Ok(Answer {
            unpacked: all,
            bytes: tally.spent(),
        })
    }
}

/// The key length that says an event has none.
const NO_KEY: u64 = u64::MAX;

/// A batch of events as contract 0.2 carries it: every key, value and
/// header in one buffer, the rest as words (see `event-batch` in
/// `sdk/wit/plugin.wit`).
pub fn pack(events: &[Event]) -> transformer::EventBatch {
    let (mut size, mut words) = (0, 0);
    for e in events {
        size += e.key.as_ref().map_or(0, Vec::len) + e.value.len();
        size += e
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.len())
            .sum::<usize>();
        words += 6 + 2 * e.headers.len();
    }
    let mut batch = transformer::EventBatch {
        bytes: Vec::with_capacity(size),
        words: Vec::with_capacity(words),
    };
    for e in events {
        batch.words.extend([
            e.partition as u64,
            e.offset as u64,
            e.timestamp_ms as u64,
            e.key.as_ref().map_or(NO_KEY, |k| k.len() as u64),
            e.value.len() as u64,
            e.headers.len() as u64,
        ]);
        if let Some(key) = &e.key {
            batch.bytes.extend_from_slice(key);
        }
        batch.bytes.extend_from_slice(&e.value);
        for h in &e.headers {
            batch
                .words
                .extend([h.key.len() as u64, h.value.len() as u64]);
            batch.bytes.extend_from_slice(h.key.as_bytes());
            batch.bytes.extend_from_slice(&h.value);
        }
    }
    batch
}

fn event_input(event: &Event) -> Input {
    Input::Event {
        partition: event.partition,
        offset: event.offset,
    }
}

fn batch_input(events: &[Event]) -> Input {
    match events {
        [one] => event_input(one),
        _ => Input::Events {
            partition: events.first().map_or(0, |e| e.partition),
            first: events.first().map_or(0, |e| e.offset),
            count: events.len(),
        },
    }
}
