//! Where `on_error = "dead-letter"` sets refused events and unreadable
//! records aside: an NDJSON file (`dead_letter`) or a Kafka topic
//! (`dead_letter_topic`). Either way a batch's letters are durable — synced
//! to disk, or acknowledged by the brokers — before the batch is applied
//! and its positions committed, so a letter is never lost to a crash.

mod file;
mod topic;

use super::StepError;
use super::config::{OnError, ReplayStep};
use crate::model::Event;
use crate::plugin::bindings::types;
use crate::setup::Setup;
use crate::source::BadRecord;
use crate::source::kafka::config::kafka;

/// A place for refused events and unreadable records.
pub trait DeadLetter: Send {
    /// Sets aside an event the transform refused.
    fn refused(
        &mut self,
        step: &str,
        plugin: &str,
        event: &Event,
        error: &types::PluginError,
    ) -> Result<(), StepError>;

    /// Sets aside a record the source could not read as an event.
    fn unreadable(&mut self, step: &str, bad: &BadRecord) -> Result<(), StepError>;

    /// Returns once everything set aside so far is durable.
    fn sync(&mut self) -> Result<(), StepError>;
}

/// The step's dead letter, if its policy is to set events aside.
pub fn open(workflow: &Setup, r: &ReplayStep) -> Result<Option<Box<dyn DeadLetter>>, StepError> {
    if r.on_error != OnError::DeadLetter {
        return Ok(None);
    }
    if let Some(path) = &r.dead_letter {
        return Ok(Some(Box::new(file::FileLetters::open(
            &workflow.path(path.get_ref()),
        )?)));
    }
    if let Some(topic) = &r.dead_letter_topic {
        let source = r.source.get_ref();
        return match workflow.source(source).and_then(kafka) {
            Some(k) => Ok(Some(Box::new(topic::TopicLetters::open(
                source,
                k,
                topic.get_ref(),
            )?))),
            // Validation refuses this; kept as an error, not a panic.
            _ => Err(StepError::DeadLetter(format!(
                "`dead_letter_topic` needs a kafka source; `{source}` is not one"
            ))),
        };
    }
    Err(StepError::DeadLetter(
        "`on_error = \"dead-letter\"` without `dead_letter` or `dead_letter_topic`".into(),
    ))
}
