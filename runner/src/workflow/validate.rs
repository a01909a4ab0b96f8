//! The validation pass: everything that can be checked without a live
//! system — unique ids, references between sections, values in range.
//! What is common to every step is checked here; each kind checks its own
//! settings (`StepFile::check`), in step order, and gives the typed
//! settings the step runs with.

use std::collections::HashSet;

use super::valid_name;
use crate::document::{Errors, WorkflowError};
use crate::setup::Setup;
use crate::source::kafka::config::kafka;
use crate::steps::checking::Checking;
use crate::steps::{Step, StepFile};

/// Checks a parsed workflow; gives its steps, checked.
pub fn validate(
    w: &Setup,
    written: Vec<Step<dyn StepFile>>,
    errors: Errors<'_>,
) -> Result<Vec<Step>, WorkflowError> {
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
    let mut steps: Vec<Step> = Vec::with_capacity(written.len());
    for step in written {
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
        let config = step.config.check(&Checking {
            setup: w,
            earlier: &steps,
            errors,
            id: &step.id,
        })?;
        steps.push(Step {
            id: step.id,
            description: step.description,
            config,
        });
    }
    Ok(steps)
}
