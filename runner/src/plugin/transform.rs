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
        super::unpack::unpack(batch, events.len()).map_err(|what| PluginFailure::Contract {
            plugin: self.name().to_string(),
            what,
            at: at.clone(),
        })
    }

    fn single_out(
        &mut self,
        events: &[Event],
        batch_failure: PluginFailure,
    ) -> Result<Vec<Outcome>, PluginFailure> {
        if matches!(batch_failure, PluginFailure::Config { .. }) {
            return Err(batch_failure);
        }
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let at = Input::Event {
                partition: event.partition,
                offset: event.offset,
            };
            outcomes.extend(self.transform_once(&at, std::slice::from_ref(event))?);
        }
        tracing::warn!(
            plugin = self.name(),
            "{batch_failure}; each event alone succeeded, so the batch was too large for the plugin's limits: lower the step's `batch_size` or raise the limits"
        );
        Ok(outcomes)
    }
}

fn batch_input(events: &[Event]) -> Input {
    match events {
        [one] => Input::Event {
            partition: one.partition,
            offset: one.offset,
        },
        _ => Input::Events {
            partition: events.first().map_or(0, |e| e.partition),
            first: events.first().map_or(0, |e| e.offset),
            count: events.len(),
        },
    }
}
