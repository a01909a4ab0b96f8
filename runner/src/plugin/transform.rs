//! The `transform` world: a batch of events in, row mutations out.

use super::bindings::{
    TRANSFORMER_INTERFACE, transform::Transform, transform::TransformPre, types,
};
use super::error::{Input, PluginFailure};
use super::instance::{Instance, Plugin, world};
use crate::model::{Event, RowMutation};

/// What the plugin made of one event: its mutations, or why it refused it.
pub type Outcome = Result<Vec<RowMutation>, types::PluginError>;

/// A loaded transform plugin.
pub type TransformPlugin = Plugin<Transform>;

world!(
    Transform,
    TransformPre,
    "transform",
    TRANSFORMER_INTERFACE,
    switchyard_plugin_transformer
);

impl Instance<Transform> {
    /// Transforms a batch: one outcome per event, in order.
    ///
    /// When the sandbox stops the plugin on a batch, the events are run again
    /// one at a time so that the error names the very event that caused it.
    pub fn transform(&mut self, events: &[Event]) -> Result<Vec<Outcome>, PluginFailure> {
        let at = batch_input(events);
        match self.transform_once(&at, events) {
            Ok(outcomes) => Ok(outcomes),
            Err(failure) if events.len() > 1 => self.single_out(events, failure),
            Err(failure) => Err(failure),
        }
    }

    fn transform_once(
        &mut self,
        at: &Input,
        events: &[Event],
    ) -> Result<Vec<Outcome>, PluginFailure> {
        let batch = self.call(at, |bindings, store| {
            bindings
                .switchyard_plugin_transformer()
                .call_transform(store, events)
        })?;
        let limits = self.limits().output;
        super::unpack::unpack(batch, events.len(), &limits, self.name()).map_err(|broken| {
            PluginFailure::Contract {
                plugin: self.name().to_string(),
                what: broken.what,
                at: broken
                    .event
                    .and_then(|i| events.get(i))
                    .map_or_else(|| at.clone(), event_input),
            }
        })
    }

    fn single_out(
        &mut self,
        events: &[Event],
        batch_failure: PluginFailure,
    ) -> Result<Vec<Outcome>, PluginFailure> {
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
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            outcomes.extend(self.transform_once(&event_input(event), std::slice::from_ref(event))?);
        }
        tracing::warn!(
            plugin = self.name(),
            "{batch_failure}; each event alone succeeded, so the batch was too large for the plugin's limits: lower the step's `batch_size` or raise the limits"
        );
        Ok(outcomes)
    }
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
