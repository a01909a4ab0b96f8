//! The preflight: before any step writes (and before background replays
//! start again), every source, store and plugin the steps still to run use
//! is checked: brokers answer and topics exist with partitions, consumer
//! groups are free, Thrift servers answer and tables have their families,
//! plugins load. A wrong address or a missing topic is refused in seconds
//! with what was wrong, instead of after green was half written or a
//! catch-up gate timed out. `runner validate --connect` runs the same checks.

use std::collections::BTreeSet;

use super::plugins::PluginRegistry;
use crate::workflow::{Step, StepKind, Workflow};

/// What the steps use, each once.
#[derive(Default)]
struct Uses<'w> {
    /// Source, extra topics, whether a command step runs before it.
    sources: Vec<(&'w str, Vec<&'w str>, bool)>,
    stores: BTreeSet<&'w str>,
    transforms: BTreeSet<&'w str>,
    checks: BTreeSet<&'w str>,
}

fn uses<'w>(steps: &[&'w Step]) -> Uses<'w> {
    let mut u = Uses::default();
    let mut command_before = false;
    for step in steps {
        match &step.kind {
            StepKind::Shell(_) => command_before = true,
            StepKind::Restore(r) => {
                command_before |= r.command.is_some();
                u.stores.insert(r.into.get_ref());
                if let Some(from) = &r.from {
                    u.stores.insert(from.get_ref());
                }
            }
            StepKind::Replay(r) => {
                let topics: Vec<&str> = r
                    .dead_letter_topic
                    .iter()
                    .map(|t| t.get_ref().as_str())
                    .collect();
                let name = r.source.get_ref().as_str();
                match u.sources.iter_mut().find(|(n, _, _)| *n == name) {
                    Some((_, more, _)) => more.extend(topics),
                    None => u.sources.push((name, topics, command_before)),
                }
                u.stores.insert(r.into.get_ref());
                u.transforms.insert(r.transform.get_ref());
            }
            StepKind::Compare(c) => {
                u.stores.insert(c.blue.get_ref());
                u.stores.insert(c.green.get_ref());
                if let Some(check) = &c.check {
                    u.checks.insert(check.get_ref());
                }
            }
            StepKind::Cutover(_) | StepKind::Stop(_) => {}
        }
    }
    u
}

/// Checks everything `steps` use; returns a line per thing checked, or
/// every problem found.
pub fn check(
    workflow: &Workflow,
    plugins: &PluginRegistry,
    steps: &[&Step],
) -> Result<Vec<String>, Vec<String>> {
    let u = uses(steps);
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (name, topics, made_earlier) in &u.sources {
        match crate::source::probe(workflow, name, topics, *made_earlier) {
            Ok(line) => found.push(format!("source `{name}`: {line}")),
            Err(e) => problems.push(e.to_string()),
        }
    }
    for name in &u.stores {
        match crate::store::probe(workflow, name) {
            Ok(line) => found.push(format!("store `{name}`: {line}")),
            Err(e) => problems.push(e.to_string()),
        }
    }
    for name in &u.transforms {
        match plugins.transform(workflow, name) {
            Ok(_) => found.push(format!("plugin `{name}`: loads")),
            Err(e) => problems.push(e.to_string()),
        }
    }
    for name in &u.checks {
        match plugins.check(workflow, name) {
            Ok(_) => found.push(format!("plugin `{name}`: loads")),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(problems)
    }
}
