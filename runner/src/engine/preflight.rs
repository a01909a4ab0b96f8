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

use crate::plugin::contract::Check;
use crate::plugin::contract::Transform;
use crate::steps::Step;
use crate::steps::plugins::PluginRegistry;
use crate::steps::uses::Uses;
use crate::workflow::Workflow;

/// Checks everything `steps` use; returns a line per thing checked, or
/// every problem found.
pub fn check(
    workflow: &Workflow,
    plugins: &PluginRegistry,
    steps: &[&Step],
) -> Result<Vec<String>, Vec<String>> {
    let mut u = Uses::default();
    for step in steps {
        step.config.uses(&mut u);
    }
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
