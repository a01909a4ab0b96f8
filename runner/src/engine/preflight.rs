//! The preflight: before any step writes (and before background replays
//! start again), every source, store and plugin the steps still to run use
//! is checked: brokers answer and topics exist with partitions, consumer
//! groups are free, Thrift servers answer and tables have their families,
//! plugins load. A wrong address or a missing topic is refused in seconds
//! with what was wrong, instead of after green was half written or a
//! catch-up gate timed out. What a command step that runs first may
//! provide (a file it writes, a server it starts, a topic it creates, a
//! table it alters) is only warned about. `runner validate --connect` runs
//! the same checks.

use std::collections::{BTreeMap, BTreeSet};

use crate::plugin::bindings::check::Check;
use crate::plugin::bindings::transform::Transform;
use crate::steps::plugins::PluginRegistry;
use crate::workflow::{Step, StepKind, Workflow};

/// What the steps use, each once.
#[derive(Default)]
struct Uses<'w> {
    /// Source, extra topics, whether a command step runs before it.
    sources: Vec<(&'w str, Vec<&'w str>, bool)>,
    /// Store, whether a command step runs before its first use.
    stores: BTreeMap<&'w str, bool>,
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
                u.stores.entry(r.into.get_ref()).or_insert(command_before);
                if let Some(from) = &r.from {
                    u.stores.entry(from.get_ref()).or_insert(command_before);
                }
                command_before |= r.command.is_some();
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
                u.stores.entry(r.into.get_ref()).or_insert(command_before);
                u.transforms.insert(r.transform.get_ref());
            }
            StepKind::Compare(c) => {
                u.stores.entry(c.blue.get_ref()).or_insert(command_before);
                u.stores.entry(c.green.get_ref()).or_insert(command_before);
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
    // A problem with what an earlier command step may provide is a warning.
    let mut judge =
        |what: String, result: Result<String, String>, provided_earlier: bool| match result {
            Ok(line) => found.push(format!("{what}: {line}")),
            Err(e) if provided_earlier => {
                tracing::warn!("preflight: {e} (a command step runs first and may provide it)");
                found.push(format!(
                    "{what}: not ready yet; a command step runs first ({e})"
                ));
            }
            Err(e) => problems.push(e),
        };
    for (name, topics, made_earlier) in &u.sources {
        let result = workflow
            .sources
            .probe(&workflow.home(), name, topics, *made_earlier);
        judge(
            format!("source `{name}`"),
            result.map_err(|e| e.to_string()),
            *made_earlier,
        );
    }
    for (name, made_earlier) in &u.stores {
        let result = workflow.stores.probe(&workflow.home(), name);
        judge(
            format!("store `{name}`"),
            result.map_err(|e| e.to_string()),
            *made_earlier,
        );
    }
    for name in &u.transforms {
        match plugins.get::<Transform>(workflow, name) {
            Ok(_) => found.push(format!("plugin `{name}`: loads")),
            Err(e) => problems.push(e.to_string()),
        }
    }
    for name in &u.checks {
        match plugins.get::<Check>(workflow, name) {
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
