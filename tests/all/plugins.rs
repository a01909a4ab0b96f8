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
        "plugin `c` is not a transform plugin: it exports `switchyard:plugin/checker@0.2.0`; expected `switchyard:plugin/transformer@0.2.0` (build it with `#[switchyard_sdk::transform]`)"
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

/// A component built against contract 0.1 (kept under `tests/fixtures/`,
/// built from the example plugins before 0.2) loads and gives what its
/// 0.2 build gives: the same rows, refusals and verdicts.
#[test]
fn plugins_built_against_contract_0_1_still_load_and_agree_with_their_0_2_builds() {
    use switchyard_runner::model::{Event, Header, Row, StoredCell};
    use switchyard_runner::plugin::check::{Pair, Verdict};
    let engine = PluginEngine::new().unwrap();
    let fixture = |name: &str| {
        PluginSource::Wasm(
            switchyard_tests::plugins::repo_root()
                .join(format!("tests/fixtures/contract-0.1/{name}.wasm")),
        )
    };
    let load_transform = |source| TransformPlugin::load(&engine, &spec("t", source, None)).unwrap();
    let old = load_transform(fixture("chat-transform"));
    let new = load_transform(PluginSource::Wasm(wasm("plugins/chat-transform")));
    let event = |offset: i64, json: &str| Event {
        partition: 1,
        offset,
        timestamp_ms: 1_000 + offset,
        key: (offset % 2 == 0).then(|| b"room-1".to_vec()),
        value: json.as_bytes().to_vec(),
        headers: vec![Header {
            key: "type".into(),
            value: b"chat".to_vec(),
        }],
    };
    let events = [
        event(
            0,
            r#"{"type":"message_posted","room":"r1","message_id":"m1","user":"u1","text":"hi","posted_at":1000}"#,
        ),
        event(1, "not json"),
        event(
            2,
            r#"{"type":"message_edited","room":"r1","message_id":"m1","text":"hey","posted_at":1000}"#,
        ),
        event(
            3,
            r#"{"type":"message_deleted","room":"r1","message_id":"m1","posted_at":1000}"#,
        ),
    ];
    let old_rows = old.instance().transform(&events, None).unwrap().outcomes();
    let new_rows = new.instance().transform(&events, None).unwrap().outcomes();
    assert_eq!(old_rows, new_rows);
    assert_eq!(old_rows.len(), 4);
    assert!(old_rows[1].is_err());
    assert_eq!(old_rows[0].as_ref().unwrap()[0].cells.len(), 5);

    let load_check = |source| CheckPlugin::load(&engine, &spec("c", source, None)).unwrap();
    let old = load_check(fixture("chat-check"));
    let new = load_check(PluginSource::Wasm(wasm("plugins/chat-check")));
    let row = |text: &str| Row {
        row_key: b"k".to_vec(),
        cells: vec![StoredCell {
            family: "d".into(),
            qualifier: b"text".to_vec(),
            value: text.as_bytes().to_vec(),
            version: 1,
        }],
    };
    let pair = |blue: &str, green: Option<&str>| Pair {
        table: "messages".into(),
        row_key: b"k".to_vec(),
        blue: Some(row(blue)),
        green: green.map(row),
    };
    let pairs = [
        pair("hi", Some("hi")),
        pair("hi", Some("ho")),
        pair("hi", None),
    ];
    let old_verdicts = old.instance().check(&pairs).unwrap();
    assert_eq!(old_verdicts, new.instance().check(&pairs).unwrap());
    assert_eq!(old_verdicts[0], Ok(Verdict::Equal));
    assert!(matches!(old_verdicts[1], Ok(Verdict::Different(_))));
}

/// Keys (none, empty, binary), values (empty, binary), headers (several,
/// empty, non-ASCII names) and signed numbers reach the plugin as they
/// were, through the packed batch of contract 0.2.
#[test]
fn every_field_of_an_event_crosses_the_boundary_whole() {
    use switchyard_runner::model::{Cell, Event, Header};
    let engine = PluginEngine::new().unwrap();
    let mut echo = spec(
        "echo",
        PluginSource::Wasm(wasm("tests/plugins/misbehave")),
        None,
    );
    echo.config = vec![("mode".into(), "echo".into())];
    let plugin = TransformPlugin::load(&engine, &echo).unwrap();
    let header = |key: &str, value: &[u8]| Header {
        key: key.into(),
        value: value.to_vec(),
    };
    let events = vec![
        Event {
            partition: 7,
            offset: 0,
            timestamp_ms: -5,
            key: None,
            value: vec![],
            headers: vec![],
        },
        Event {
            partition: 0,
            offset: i64::MAX,
            timestamp_ms: 1,
            key: Some(vec![]),
            value: vec![0, 0xff, b'\n'],
            headers: vec![header("été", b""), header("b", &[1, 2, 3])],
        },
        Event {
            partition: i32::MAX,
            offset: 3,
            timestamp_ms: i64::MIN,
            key: Some(vec![0xfe, 0]),
            value: b"v".to_vec(),
            headers: vec![header("", b"x")],
        },
    ];
    let answer = plugin.instance().transform(&events, None).unwrap();
    for (event, outcome) in events.iter().zip(&answer.outcomes()) {
        let row = &outcome.as_ref().unwrap()[0];
        assert_eq!(
            &row.row_key[..],
            format!("{}/{}", event.partition, event.offset).as_bytes()
        );
        let mut expected = vec![
            Cell::put("e", "timestamp", event.timestamp_ms.to_string()),
            Cell::put("e", "value", event.value.clone()),
            match &event.key {
                Some(key) => Cell::put("e", "key", key.clone()),
                None => Cell::DeleteCell {
                    family: "e".into(),
                    qualifier: "key".into(),
                },
            },
        ];
        for h in &event.headers {
            expected.push(Cell::put("h", h.key.clone(), h.value.clone()));
        }
        assert_eq!(row.cells, expected);
    }
}
