//! Purpose-built misbehaving plugins are stopped by the sandbox with a named
//! error, and the runner (this process) stays up and can go on.

use std::time::Duration;

use switchyard_runner::model::Event;
use switchyard_runner::plugin::{
    Grants, Limits, OutputLimits, PluginEngine, PluginFailure, PluginSource, PluginSpec,
    TransformPlugin,
};
use switchyard_tests::plugins::wasm;

fn spec(mode: &str, limits: Limits, grants: Grants) -> PluginSpec {
    PluginSpec {
        name: format!("misbehave-{mode}"),
        source: PluginSource::Wasm(wasm("tests/plugins/misbehave")),
        sha256: None,
        limits,
        grants,
        config: vec![("mode".into(), mode.into())],
    }
}

fn events(values: &[&str]) -> Vec<Event> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Event {
            partition: 3,
            offset: 1040 + i as i64,
            timestamp_ms: 1_000 + i as i64,
            key: None,
            value: v.as_bytes().to_vec(),
            headers: vec![],
        })
        .collect()
}

fn run(mode: &str, limits: Limits, grants: Grants) -> Result<usize, PluginFailure> {
    let engine = PluginEngine::new().unwrap();
    let plugin = TransformPlugin::load(&engine, &spec(mode, limits, grants)).unwrap();
    let mut instance = plugin.instance();
    let batch = events(&["a", "b", "misbehave", "c"]);
    let result = instance.transform(&batch, None).map(|a| a.outcomes().len());
    // Whatever happened, the same plugin keeps serving good batches.
    let after = instance.transform(&events(&["a", "b"]), None).unwrap();
    assert_eq!(
        after.outcomes().len(),
        2,
        "instance recovers after `{mode}`"
    );
    result
}

fn quick() -> Limits {
    Limits {
        memory_bytes: 16 << 20,
        timeout: Duration::from_millis(300),
        output: OutputLimits::for_memory(16 << 20),
    }
}

#[test]
fn a_panic_is_a_trap_that_quotes_the_panic_message() {
    let err = run("panic", quick(), Grants::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("plugin `misbehave-panic` trapped on event partition 3 offset 1042: "),
        "{text}"
    );
    assert!(
        text.contains("misbehaving on purpose at offset 1042"),
        "{text}"
    );
}

#[test]
fn an_endless_loop_hits_the_deadline() {
    let err = run("loop", quick(), Grants::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `misbehave-loop` exceeded its time limit of 300ms on event partition 3 offset 1042; raise `timeout` in [plugin.misbehave-loop] if the work is legitimate"
    );
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let err = run("memory", quick(), Grants::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `misbehave-memory` exceeded its memory limit of 16 MiB on event partition 3 offset 1042; raise `memory_limit` in [plugin.misbehave-memory] if the work is legitimate"
    );
}

#[test]
fn reading_the_clock_is_denied_unless_granted() {
    let err = run("clock", quick(), Grants::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `misbehave-clock` tried to use the clock on event partition 3 offset 1042, which the workflow does not grant; grant it with `clock = true` in the plugin's section"
    );
    let granted = Grants {
        clock: true,
        ..Grants::default()
    };
    assert_eq!(run("clock", quick(), granted).unwrap(), 4);
}

#[test]
fn reading_the_environment_is_denied_unless_granted() {
    let err = run("env", quick(), Grants::default()).unwrap_err();
    assert!(
        matches!(
            err,
            PluginFailure::Denied {
                capability: "environment",
                ..
            }
        ),
        "{err}"
    );
    let granted = Grants {
        env: vec![("HOME".into(), "/nowhere".into())],
        ..Grants::default()
    };
    assert_eq!(run("env", quick(), granted).unwrap(), 4);
}

#[test]
fn reading_a_file_is_denied() {
    let err = run("fs", quick(), Grants::default()).unwrap_err();
    assert!(
        matches!(
            err,
            PluginFailure::Denied {
                capability: "filesystem",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn opening_a_connection_is_denied() {
    let err = run("net", quick(), Grants::default()).unwrap_err();
    assert!(
        matches!(
            err,
            PluginFailure::Denied {
                capability: "network",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn random_numbers_are_denied_but_a_hash_map_works_and_is_the_same_every_time() {
    let err = run("random", quick(), Grants::default()).unwrap_err();
    assert!(
        matches!(
            err,
            PluginFailure::Denied {
                capability: "random",
                ..
            }
        ),
        "{err}"
    );
    let granted = Grants {
        random: true,
        ..Grants::default()
    };
    assert_eq!(run("random", quick(), granted).unwrap(), 4);
    // A hash map's seed is fixed, not denied: the same rows every time.
    let rows = || {
        let engine = PluginEngine::new().unwrap();
        let plugin =
            TransformPlugin::load(&engine, &spec("hashmap", quick(), Grants::default())).unwrap();
        format!(
            "{:?}",
            plugin
                .instance()
                .transform(&events(&["misbehave"]), None)
                .unwrap()
        )
    };
    assert_eq!(rows(), rows());
}
