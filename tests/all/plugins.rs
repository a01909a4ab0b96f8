//! Loading plugins: pins, the wrong kind of plugin, bytes that are not a
//! component, and a misbehaving plugin inside a whole `runner exec`.

use switchyard_runner::plugin::{
    CheckPlugin, Grants, Limits, LoadError, PluginEngine, PluginSource, PluginSpec, TransformPlugin,
};
use switchyard_tests::cli::Test;
use switchyard_tests::plugins::wasm;

fn spec(name: &str, source: PluginSource, sha256: Option<&str>) -> PluginSpec {
    PluginSpec {
        name: name.into(),
        source,
        sha256: sha256.map(String::from),
        limits: Limits::default(),
        grants: Grants::default(),
        config: vec![],
    }
}

#[test]
fn a_pinned_plugin_loads_only_with_its_hash() {
    let engine = PluginEngine::new().unwrap();
    let path = wasm("plugins/chat-transform");
    let good =
        TransformPlugin::load(&engine, &spec("t", PluginSource::Wasm(path.clone()), None)).unwrap();
    let pinned = TransformPlugin::load(
        &engine,
        &spec("t", PluginSource::Wasm(path.clone()), Some(good.sha256())),
    );
    assert!(pinned.is_ok());
    let wrong = "0".repeat(64);
    let err = TransformPlugin::load(
        &engine,
        &spec("t", PluginSource::Wasm(path.clone()), Some(&wrong)),
    )
    .err()
    .unwrap();
    assert!(matches!(err, LoadError::Sha256 { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "plugin `t`: `{}` has sha256 {}, but the workflow pins {wrong}; rebuild the plugin or update `sha256`",
            path.display(),
            good.sha256()
        )
    );
}

#[test]
fn a_plugin_of_another_world_is_refused_by_name() {
    let engine = PluginEngine::new().unwrap();
    let err = TransformPlugin::load(
        &engine,
        &spec("c", PluginSource::Wasm(wasm("plugins/chat-check")), None),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "plugin `c` is not a transform plugin: it exports `switchyard:plugin/checker@0.1.0`; expected `switchyard:plugin/transformer@0.1.0` (build it with `#[switchyard_sdk::transform]`)"
    );
    assert!(
        CheckPlugin::load(
            &engine,
            &spec("c", PluginSource::Wasm(wasm("plugins/chat-check")), None)
        )
        .is_ok()
    );
}

#[test]
fn bytes_that_are_not_a_component_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"not wasm at all").unwrap();
    let engine = PluginEngine::new().unwrap();
    let err = TransformPlugin::load(&engine, &spec("j", PluginSource::Wasm(path.clone()), None))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "plugin `j`: `{}` is not a valid WebAssembly component: it is not WebAssembly at all (15 bytes that do not start with `\\0asm`); point `wasm` at the `.wasm` a plugin build produced",
            path.display()
        )
    );
}

/// A core module (the output of `--target wasm32-unknown-unknown`, say) and
/// a component cut short each say what they are and what to do.
#[test]
fn a_core_module_and_a_truncated_component_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new().unwrap();
    let load = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        TransformPlugin::load(&engine, &spec("p", PluginSource::Wasm(path), None))
            .err()
            .unwrap()
            .to_string()
    };
    let module = load("module.wasm", b"\0asm\x01\0\0\0");
    assert!(
        module.ends_with("is not a valid WebAssembly component: it is a core WebAssembly module, not a component; build the plugin with `cargo build --release --target wasm32-wasip2` (which makes a component), or wrap the module with `wasm-tools component new`"),
        "{module}"
    );
    let whole = std::fs::read(wasm("tests/plugins/misbehave")).unwrap();
    let cut = load("cut.wasm", &whole[..whole.len() / 2]);
    assert!(
        cut.contains(&format!(
            "is not a valid WebAssembly component: it is cut short ({} bytes; ",
            whole.len() / 2
        )) && cut.ends_with("); build it again or copy it whole"),
        "{cut}"
    );
}

#[test]
fn a_plugin_crate_that_does_not_compile_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2024\"\n[lib]\ncrate-type = [\"cdylib\"]\n[workspace]\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "fn oops( {}").unwrap();
    let engine = PluginEngine::new().unwrap();
    let err = TransformPlugin::load(
        &engine,
        &spec("b", PluginSource::Crate(dir.path().to_path_buf()), None),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "plugin `b`: `cargo rustc --release --target wasm32-wasip2 --crate-type cdylib` failed in `{}` (see the compiler output above)",
            dir.path().display()
        )
    );
}

#[test]
fn a_memory_bomb_in_a_workflow_fails_the_step_with_its_name_and_the_runner_exits_cleanly() {
    let plugin = wasm("tests/plugins/misbehave");
    let events: String = (0..5)
        .map(|i| {
            let v = if i == 3 { "misbehave" } else { "fine" };
            format!("{{\"partition\":1,\"offset\":{i},\"timestamp\":{i},\"value\":\"{v}\"}}\n")
        })
        .collect();
    let run = Test::new()
        .workflow(&format!(
            r#"[workflow]
name = "bomb"
[source.log]
kind = "file"
path = "events.ndjson"
[store.green]
kind = "sqlite"
path = "green.sqlite"
tables = ["t"]
[plugin.bomb]
wasm = "{}"
memory_limit = "8MiB"
config = {{ mode = "memory" }}
[[step]]
id = "replay"
kind = "replay"
source = "log"
transform = "bomb"
into = "green"
"#,
            plugin.display()
        ))
        .file("events.ndjson", &events)
        .args(&["exec", "workflow.toml", "--no-progress"])
        .run()
        .expect_code(1);
    assert_eq!(
        run.stderr(),
        "error: step `replay` (replay) failed: plugin `bomb` exceeded its memory limit of 8 MiB on event partition 1 offset 3; raise `memory_limit` in [plugin.bomb] if the work is legitimate\n"
    );
}
