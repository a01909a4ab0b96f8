//! The validation pass: everything that can be checked without a live
//! system — unique ids, references between sections, values in range.
//! What is common to every step is checked here; each kind checks its own
//! settings (`StepConfig::check`), in step order.

use std::collections::HashSet;

use super::{Workflow, valid_name};
use crate::document::{Errors, WorkflowError};
use crate::source::kafka::config::kafka;
use crate::steps::checking::Checking;

/// Checks a parsed workflow.
pub fn validate(w: &Workflow, errors: Errors<'_>) -> Result<(), WorkflowError> {
    let mut ids = HashSet::new();
    for (name, store) in w.stores.iter() {
        if let Some(fed) = store.fed_by() {
            let source = fed.source.get_ref();
            if w.source(source).and_then(kafka).is_none() {
                return Err(errors.at(
                    fed.source.span(),
                    format!(
                        "store `{name}`: `fed_by.source` must name a kafka source; there is no `[source.{source}]` of kind `kafka`"
                    ),
                ));
            }
        }
    }
    for (at, step) in w.steps.iter().enumerate() {
        let id = step.id.get_ref();
        if !valid_name(id) {
            return Err(errors.at(
                step.id.span(),
                format!("invalid step id `{id}`; use letters, digits, `-` and `_`"),
            ));
        }
        if !ids.insert(id.clone()) {
            return Err(errors.at(
                step.id.span(),
                format!("duplicate step id `{id}`; every step needs its own id"),
            ));
        }
        step.config.check(&Checking {
            setup: &w.setup,
            earlier: &w.steps[..at],
            errors,
            id: &step.id,
        })?;
    }
    Ok(())
}
