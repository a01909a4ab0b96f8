//! Two services share `workflows/templates/kafka-blue-green.toml`: each
//! names itself, its topic, tables and plugins, and runs the template's
//! migration end to end against one broker and one pair of clusters.

use switchyard_runner::sample::ChatSample;
use switchyard_tests::cli::Test;
use switchyard_tests::plugins::repo_root;
use switchyard_tests::site::Site;

/// 2026-01-01T00:00:00Z, where the chat sample starts.
const T: i64 = 1_767_225_600_000;

#[test]
fn two_services_run_from_one_template() {
    let site = Site::new();
    site.broker.create_topic("support-events", 4);
    site.produce(3_000, 7, T);
    site.broker.produce_chat(
        "support-events",
        &ChatSample {
            events: 2_000,
            seed: 11,
            start_ms: T,
            ..ChatSample::default()
        },
    );
    site.feed_blue();
    site.feed_blue_of("support-events", "tickets", "support-rmu");

    for (service, table) in [("chat", "messages"), ("support", "tickets")] {
        let workflow = repo_root().join(format!("workflows/services/{service}.toml"));
        let state = site.state(service).display().to_string();
        let brokers = format!("brokers={}", site.broker.addr());
        let blue = format!("blue_thrift={}", site.blue.addr());
        let green = format!("green_thrift={}", site.green.addr());
        let mut args = vec![
            "exec",
            workflow.to_str().unwrap(),
            "--state",
            &state,
            "--no-progress",
            "--var",
            "caught_up_for=1s",
        ];
        for var in [&brokers, &blue, &green] {
            args.extend(["--var", var]);
        }
        let run = Test::new().args(&args).run().success();
        let out = run.stdout();
        assert!(
            out.contains(" 0 mismatched, 0 only in blue, 0 only in green"),
            "{service}: {out}"
        );
        assert!(
            out.contains("switched from `blue` to `green`"),
            "{service}: {out}"
        );
        assert!(
            site.green.dump(table).lines().count() > 100,
            "{service}: green's `{table}` is nearly empty"
        );
    }
    // Each service kept to its own table and topic.
    assert!(!site.green.dump("messages").contains("support-rmu2"));
    assert!(site.green.dump("tickets").contains("support-rmu2"));
}

#[test]
fn the_resolved_workflow_says_where_each_value_comes_from() {
    let support = repo_root().join("workflows/services/support.toml");
    let run = Test::new()
        .args(&[
            "plan",
            support.to_str().unwrap(),
            "--resolved",
            "--var",
            "smoke=/bin/true",
        ])
        .run()
        .success();
    let out = run.stdout();
    let line = |start: &str| {
        out.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting `{start}` in\n{out}"))
            .to_string()
    };
    // The service's own value, the template's, and an override.
    assert!(
        line("name = \"support\"").contains("services/support.toml:"),
        "{out}"
    );
    assert!(line("topic = ").contains("services/support.toml:"), "{out}");
    assert!(
        line("evaluate = ").contains("templates/kafka-blue-green.toml:"),
        "{out}"
    );
    assert!(line("smoke = \"/bin/true\"").ends_with("# --var"), "{out}");
    // Steps keep the template's order, the service's step in its place,
    // and a merged step keeps the template's settings beside its own.
    let ids: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("id = \""))
        .map(|l| &l[..l.find('"').unwrap()])
        .collect();
    assert_eq!(
        ids,
        [
            "restore-green",
            "replay-green",
            "evaluate",
            "smoke",
            "compare",
            "cutover"
        ]
    );
    assert!(
        line("batch_size = 500").contains("services/support.toml:"),
        "{out}"
    );
    assert!(
        line("start = \"restore - 10m\"").contains("templates/kafka-blue-green.toml:"),
        "{out}"
    );
    assert!(
        line("tables = [\"tickets\"]").contains("templates/kafka-blue-green.toml:"),
        "{out}"
    );

    // `runner plan` shows the same steps.
    let plan = Test::new()
        .args(&["plan", support.to_str().unwrap()])
        .run()
        .success();
    assert!(
        plan.stdout().contains(" 4. smoke (shell)"),
        "{}",
        plan.stdout()
    );
}
