//! The router: sticky shares, rollback from any shell, the admin
//! endpoint's guard, route plugins that misbehave, read-apis that fail or
//! die under load, HTTP/2 clients, and the `route` and `cutover` steps.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use switchyard_runner::cancel::Cancel;
use switchyard_runner::plugin::contract::Route;
use switchyard_runner::router::routing::share_of;
use switchyard_runner::router::{Mode, Router, RouterPlugins, RoutingFile};
use switchyard_runner::steps::plugins::PluginRegistry;
use switchyard_runner::workflow::{self, LoadOptions, Workflow};
use switchyard_tests::cli::runner_bin;
use switchyard_tests::http::{Backend, free_port, get_as, request};
use switchyard_tests::plugins::wasm;

/// A workflow routing between `blue` and `green`, with `router` lines
/// added to `[router]` and `rest` after it.
fn workflow_text(blue: &Backend, green: &Backend, listen: u16, router: &str, rest: &str) -> String {
    format!(
        "[workflow]\nname = \"routed\"\n\n[router]\nlisten = \"127.0.0.1:{listen}\"\nblue = \"{}\"\ngreen = \"{}\"\n{router}\n{rest}",
        blue.url(),
        green.url()
    )
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let file = dir.join("workflow.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn load(file: &Path) -> Workflow {
    workflow::load(file, &LoadOptions::default()).unwrap()
}

/// Waits until `router` serves the routing state of `generation`.
fn until_serving(router: &Router, generation: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while router.routing().generation < generation {
        assert!(
            Instant::now() < deadline,
            "the router did not pick up the routing change"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until something accepts connections on `address`.
fn until_listening(address: SocketAddr, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(address).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("`runner route` ended before it listened: {status}");
        }
        assert!(Instant::now() < deadline, "nothing listens on {address}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// This machine's address off loopback, which admin callers come from.
fn address_off_loopback() -> IpAddr {
    // Connecting a UDP socket sends nothing; it only picks the route.
    for probe in ["192.0.2.1:9", "10.255.255.255:9", "8.8.8.8:53"] {
        if let Ok(s) = UdpSocket::bind("0.0.0.0:0")
            && s.connect(probe).is_ok()
            && let Ok(a) = s.local_addr()
            && !a.ip().is_loopback()
            && !a.ip().is_unspecified()
        {
            return a.ip();
        }
    }
    panic!("this machine has no address off loopback to call the admin endpoint from");
}

fn stop_gently(mut child: Child) -> std::process::Output {
    // SIGINT, as Ctrl-C.
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`runner route` did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_user_moved_to_green_stays_there_as_the_share_grows() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let dir = tempfile::tempdir().unwrap();
    let w = load(&write(dir.path(), &workflow_text(&blue, &green, 0, "", "")));
    let router = Router::start(
        w.router.as_ref().unwrap(),
        RouterPlugins::default(),
        &w.state_dir,
    )
    .unwrap();
    let file = RoutingFile::new(&w.state_dir);
    let users: Vec<String> = (0..400).map(|i| format!("user-{i}")).collect();
    let mut on_green: HashSet<&str> = HashSet::new();
    for percent in [0.0, 1.0, 5.0, 25.0, 50.0, 100.0] {
        let r = file
            .update("ramp", |r| {
                r.green_share = share_of(percent)?;
                Ok(())
            })
            .unwrap();
        until_serving(&router, r.generation);
        for user in &users {
            let a = get_as(router.address(), "/rooms/7/messages", user).expect("an answer");
            assert_eq!(a.status, 200, "{a:?}");
            let side = a.side().expect("the side is named");
            assert_eq!(a.body, side, "the side named is the side that answered");
            if on_green.contains(user.as_str()) {
                assert_eq!(side, "green", "{user} went back to blue at {percent}%");
            }
            if side == "green" {
                on_green.insert(user);
            }
        }
        let expected = percent / 100.0 * users.len() as f64;
        let slack = (expected * 0.3).max(10.0);
        assert!(
            (on_green.len() as f64 - expected).abs() <= slack,
            "{} of {} users on green at {percent}%",
            on_green.len(),
            users.len()
        );
    }
    assert_eq!(on_green.len(), users.len());
    let m = router.metrics();
    assert_eq!(m.blue.requests + m.green.requests, 6 * 400);
    assert_eq!(m.blue.failures + m.green.failures, 0);
}

#[test]
fn runner_rollback_sends_every_read_to_blue_within_a_second() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let dir = tempfile::tempdir().unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let file = write(
        dir.path(),
        &workflow_text(
            &blue,
            &green,
            port,
            &format!("admin = \"127.0.0.1:{admin_port}\""),
            "",
        ),
    );
    let router: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
    let mut child = Command::new(runner_bin())
        .arg("route")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until_listening(admin, &mut child);

    // Everything to green through the admin endpoint.
    let set = request(
        admin,
        "POST",
        "/routing",
        &[("content-type", "application/json")],
        r#"{"green_percent": 100, "stage": "all green"}"#,
    )
    .unwrap();
    assert_eq!(set.status, 200, "{set:?}");
    assert!(set.body.contains("\"green_share\": 10000"), "{}", set.body);
    for u in 0..20 {
        let a = get_as(router, "/", &format!("u{u}")).unwrap();
        assert_eq!(a.side(), Some("green"));
    }

    // Back to blue from another shell.
    let out = Command::new(runner_bin())
        .args([
            "rollback",
            file.to_str().unwrap(),
            "--reason",
            "green is slow",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("rolled back") && said.contains("green is slow"),
        "{said}"
    );
    let asked = Instant::now();
    let mut all_blue_since: Option<Instant> = None;
    loop {
        let a = get_as(router, "/", "u1").unwrap();
        assert_eq!(a.status, 200);
        if a.side() == Some("blue") {
            let since = *all_blue_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_millis(300) {
                break;
            }
        } else {
            assert!(
                all_blue_since.is_none(),
                "a read went back to green after the rollback took effect"
            );
        }
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "the rollback did not take effect"
        );
    }
    let took = all_blue_since.unwrap() - asked;
    assert!(took < Duration::from_secs(1), "the rollback took {took:?}");
    for u in 0..20 {
        assert_eq!(
            get_as(router, "/", &format!("u{u}")).unwrap().side(),
            Some("blue")
        );
    }

    let routing = RoutingFile::new(&dir.path().join(".switchyard/routed"))
        .read()
        .unwrap();
    assert_eq!(routing.mode, Mode::AllBlue);
    let shown = request(admin, "GET", "/routing", &[], "").unwrap();
    assert!(
        shown.body.contains("\"mode\": \"all-blue\""),
        "{}",
        shown.body
    );

    let out = stop_gently(child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("router stopped: served"), "{said}");
}

#[test]
fn the_admin_endpoint_refuses_callers_off_loopback_without_the_token() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let far = address_off_loopback();
    for token in [None, Some("s3cret-token")] {
        let dir = tempfile::tempdir().unwrap();
        let (port, admin_port) = (free_port(), free_port());
        let token_line = if token.is_some() {
            "admin_token_env = \"SWITCHYARD_TEST_ADMIN_TOKEN\""
        } else {
            ""
        };
        let file = write(
            dir.path(),
            &workflow_text(
                &blue,
                &green,
                port,
                &format!("admin = \"0.0.0.0:{admin_port}\"\n{token_line}"),
                "",
            ),
        );
        let mut command = Command::new(runner_bin());
        command
            .arg("route")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(t) = token {
            command.env("SWITCHYARD_TEST_ADMIN_TOKEN", t);
        }
        let mut child = command.spawn().unwrap();
        let near: SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
        let far = SocketAddr::new(far, admin_port);
        until_listening(near, &mut child);
        let rollback = |at: SocketAddr, headers: &[(&str, &str)]| {
            let mut headers = headers.to_vec();
            headers.push(("content-type", "application/json"));
            request(at, "POST", "/rollback", &headers, "")
                .unwrap()
                .status
        };
        match token {
            None => {
                // Off loopback, the connection is closed before any answer.
                assert!(request(far, "GET", "/routing", &[], "").is_none());
                // A browser page on the operator's machine is refused, and
                // so is a change not sent as JSON.
                let from_page = [
                    ("origin", "http://evil.example"),
                    ("content-type", "application/json"),
                ];
                let status = |headers: &[(&str, &str)]| {
                    request(near, "POST", "/rollback", headers, "")
                        .unwrap()
                        .status
                };
                assert_eq!(status(&from_page), 403);
                assert_eq!(status(&[]), 403);
                assert_eq!(
                    request(near, "GET", "/routing", &[], "").unwrap().status,
                    200
                );
            }
            Some(t) => {
                let good = format!("Bearer {t}");
                assert_eq!(
                    request(far, "GET", "/routing", &[], "").unwrap().status,
                    403
                );
                assert_eq!(
                    rollback(far, &[("authorization", "Bearer s3cret-tokeN")]),
                    403
                );
                // With a token set, loopback callers need it too.
                assert_eq!(rollback(near, &[]), 403);
                assert_eq!(rollback(far, &[("authorization", &good)]), 200);
            }
        }
        let routing = RoutingFile::new(&dir.path().join(".switchyard/routed"))
            .read()
            .unwrap();
        let expected = if token.is_some() {
            Mode::AllBlue
        } else {
            Mode::Shift
        };
        assert_eq!(
            routing.mode, expected,
            "only an allowed caller changes the routing"
        );
        stop_gently(child);
    }
}

#[test]
fn a_route_plugin_that_traps_hangs_or_refuses_sends_that_request_to_blue() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let dir = tempfile::tempdir().unwrap();
    let plugin = wasm("tests/plugins/misroute");
    let text = workflow_text(
        &blue,
        &green,
        0,
        "plugin = \"misroute\"\nheaders = [\"x-user-id\", \"x-misbehave\"]\nroute_timeout = \"30ms\"",
        &format!(
            "[plugin.misroute]\nwasm = \"{}\"\nmemory_limit = \"16MiB\"\n",
            plugin.display()
        ),
    );
    let w = load(&write(dir.path(), &text));
    let plugins = PluginRegistry::new(Cancel::default());
    let plugin = plugins.get::<Route>(&w.setup, "misroute").unwrap();
    let router = Router::start(
        w.router.as_ref().unwrap(),
        RouterPlugins {
            route: Some(plugin),
            ..Default::default()
        },
        &w.state_dir,
    )
    .unwrap();
    let r = RoutingFile::new(&w.state_dir)
        .update("all green", |r| {
            r.green_share = share_of(100.0)?;
            Ok(())
        })
        .unwrap();
    until_serving(&router, r.generation);
    let ask = |how: &str| {
        let started = Instant::now();
        let a = request(
            router.address(),
            "GET",
            "/rooms/1",
            &[("x-user-id", "u1"), ("x-misbehave", how)],
            "",
        )
        .expect("the client is always answered");
        assert_eq!(a.status, 200, "{how}: {a:?}");
        (a.side().unwrap().to_string(), started.elapsed())
    };
    assert_eq!(ask("none").0, "green");
    for how in ["panic", "loop", "memory", "refuse"] {
        let (side, took) = ask(how);
        assert_eq!(
            side, "blue",
            "a plugin that does `{how}` sends the request to blue"
        );
        assert!(
            took < Duration::from_secs(2),
            "`{how}` held the request {took:?}"
        );
        // The next request is decided by a fresh instance, as usual.
        assert_eq!(ask("none").0, "green", "after `{how}`");
    }
    assert_eq!(router.metrics().plugin_failures, 4);

    // Failing again and again, it rests: requests go to blue unasked.
    for _ in 0..5 {
        assert_eq!(ask("loop").0, "blue");
    }
    assert_eq!(ask("none").0, "blue");
    assert!(router.metrics().plugin_skipped >= 1);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(ask("none").0, "green", "asked again after its rest");
    assert_eq!(router.metrics().plugin_failures, 9);
    assert_eq!(green.requests.load(Ordering::Relaxed), 6);
}

#[test]
fn a_read_api_killed_under_load_costs_only_its_own_requests() {
    let blue = Backend::start("blue");
    let mut green = Backend::start("green");
    let dir = tempfile::tempdir().unwrap();
    let w = load(&write(
        dir.path(),
        &workflow_text(
            &blue,
            &green,
            0,
            "timeout = \"2s\"\nconnect_timeout = \"500ms\"",
            "",
        ),
    ));
    let router = Arc::new(
        Router::start(
            w.router.as_ref().unwrap(),
            RouterPlugins::default(),
            &w.state_dir,
        )
        .unwrap(),
    );
    let r = RoutingFile::new(&w.state_dir)
        .update("half", |r| {
            r.green_share = share_of(50.0)?;
            Ok(())
        })
        .unwrap();
    until_serving(&router, r.generation);
    // Users on each side, by asking once.
    let mut on = (Vec::new(), Vec::new());
    for i in 0..60 {
        let user = format!("user-{i}");
        match get_as(router.address(), "/", &user).unwrap().side() {
            Some("blue") => on.0.push(user),
            _ => on.1.push(user),
        }
    }
    assert!(!on.0.is_empty() && !on.1.is_empty());
    let done = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|t| {
            let (router, done) = (router.address(), done.clone());
            let users: Vec<String> = if t == 0 { on.0.clone() } else { on.1.clone() };
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    for u in &users {
                        let a = get_as(router, "/", u).expect("the router answers");
                        statuses.push((a.status, a.side().map(String::from)));
                    }
                }
                statuses
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    green.kill();
    std::thread::sleep(Duration::from_millis(700));
    done.store(true, Ordering::Relaxed);
    let mut answers: Vec<Vec<(u16, Option<String>)>> =
        load.into_iter().map(|t| t.join().unwrap()).collect();
    let on_green = answers.pop().unwrap();
    let on_blue = answers.pop().unwrap();
    assert!(
        on_blue
            .iter()
            .all(|(s, side)| *s == 200 && side.as_deref() == Some("blue"))
    );
    assert!(on_green.iter().any(|(s, _)| *s == 200));
    let failed: Vec<_> = on_green.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        !failed.is_empty(),
        "green was killed, yet every request succeeded"
    );
    assert!(
        failed
            .iter()
            .all(|(s, side)| [502, 504].contains(s) && side.as_deref() == Some("green")),
        "{failed:?}"
    );
    let m = router.metrics();
    assert!(m.green.unreachable >= failed.len() as u64);
    assert_eq!(m.blue.failures, 0);
}

#[test]
fn http2_clients_are_served_and_failures_counted_per_side() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let dir = tempfile::tempdir().unwrap();
    let w = load(&write(dir.path(), &workflow_text(&blue, &green, 0, "", "")));
    let router = Router::start(
        w.router.as_ref().unwrap(),
        RouterPlugins::default(),
        &w.state_dir,
    )
    .unwrap();
    let r = RoutingFile::new(&w.state_dir)
        .update("all green", |r| {
            r.green_share = share_of(100.0)?;
            Ok(())
        })
        .unwrap();
    until_serving(&router, r.generation);
    green.set_failing(true);
    let address = router.address();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answers = runtime.block_on(async move {
        use http_body_util::{BodyExt, Empty};
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build_http::<Empty<bytes::Bytes>>();
        let mut answers = Vec::new();
        for i in 0..10 {
            let request = hyper::Request::get(format!("http://{address}/rooms/{i}?page=2"))
                .header("x-user-id", format!("user-{i}"))
                .body(Empty::new())
                .unwrap();
            let response = client.request(request).await.unwrap();
            let version = response.version();
            let status = response.status().as_u16();
            let path = response.headers()["x-seen-path"]
                .to_str()
                .unwrap()
                .to_string();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            answers.push((version, status, path, body));
        }
        answers
    });
    for (i, (version, status, path, body)) in answers.iter().enumerate() {
        assert_eq!(*version, hyper::Version::HTTP_2);
        assert_eq!(*status, 500);
        assert_eq!(path, &format!("/rooms/{i}"));
        assert_eq!(&body[..], b"green");
    }
    let m = router.metrics();
    assert_eq!(
        (m.green.requests, m.green.failures, m.green.unreachable),
        (10, 10, 0)
    );
    // The client's address reaches the read-api.
    green.set_failing(false);
    let a = get_as(address, "/", "u").unwrap();
    assert_eq!(a.header("x-seen-forwarded-for"), Some("127.0.0.1"));
}

#[test]
fn a_workflow_routes_from_its_route_step_and_cuts_over_to_green() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let steps = "[[step]]\nid = \"announce\"\nkind = \"shell\"\nhook = true\nrun = \"echo cut over >> hooks.txt\"\n\n\
                 [[step]]\nid = \"start-routing\"\nkind = \"route\"\n\n\
                 [[step]]\nid = \"switch\"\nkind = \"cutover\"\nto = \"green\"\non_cutover = [\"announce\"]\n\n\
                 [store.green]\nkind = \"null\"\n";
    let file = write(dir.path(), &workflow_text(&blue, &green, port, "", steps));
    let plan = Command::new(runner_bin())
        .arg("plan")
        .arg(&file)
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains(&format!("route reads on 127.0.0.1:{port} between blue")),
        "{plan}"
    );
    let out = Command::new(runner_bin())
        .arg("exec")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = Command::new(runner_bin())
        .arg("status")
        .arg(&file)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("routing: stage `cut over`: every read to green"),
        "{status}"
    );
    assert!(status.contains("announce         hook"), "{status}");
    // The hook ran once, at the cutover, and not in order.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hooks.txt")).unwrap(),
        "cut over\n"
    );
    // The router stopped with the workflow.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn a_store_served_as_a_read_api_answers_rows_with_its_watermark() {
    use switchyard_runner::model::{Cell, RowMutation};
    use switchyard_runner::read_api::ReadApi;
    use switchyard_runner::store::Store;
    use switchyard_runner::store::sqlite::{SqliteStore, SqliteSync};

    let dir = tempfile::tempdir().unwrap();
    let mut store =
        SqliteStore::open("blue", &dir.path().join("blue.sqlite"), SqliteSync::Normal).unwrap();
    let rows: Vec<RowMutation> = ["room-1/0001", "room-1/0002", "room-2/0001"]
        .iter()
        .map(|k| RowMutation {
            table: "messages".into(),
            row_key: k.as_bytes().to_vec().into(),
            cells: vec![
                Cell::put("d", &b"text"[..], format!("hello from {k}").into_bytes()),
                Cell::put("d", &b"raw"[..], vec![0xff, 0x00]),
            ],
            version: 7,
        })
        .collect();
    store.apply(&rows, Some(1_700_000_000_000)).unwrap();
    let api = ReadApi::start(Box::new(store), "127.0.0.1:0".parse().unwrap(), Vec::new()).unwrap();
    let at = api.address();

    let one = request(at, "GET", "/rows/messages/room-1%2F0002", &[], "").unwrap();
    assert_eq!(one.status, 200, "{one:?}");
    assert_eq!(one.header("x-switchyard-watermark"), Some("1700000000000"));
    let row: serde_json::Value = serde_json::from_str(&one.body).unwrap();
    assert_eq!(row["key"], "room-1/0002");
    let cells = row["cells"].as_array().unwrap();
    assert!(
        cells
            .iter()
            .any(|c| c["value"] == "hello from room-1/0002" && c["version"] == 7)
    );
    assert!(cells.iter().any(|c| c["value_hex"] == "ff00"));

    let page = request(
        at,
        "GET",
        "/rows/messages?after=room-1%2F0001&limit=1",
        &[],
        "",
    )
    .unwrap();
    let page: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(page["rows"][0]["key"], "room-1/0002");
    assert_eq!(page["next_after"], "room-1/0002");

    assert_eq!(
        request(at, "GET", "/rows/messages/nobody", &[], "")
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        request(at, "POST", "/rows/messages", &[], "x")
            .unwrap()
            .status,
        405
    );
    api.join().unwrap();
}

/// Runs `runner exec` on a routed workflow while a client reads through
/// the router, until the run ends: its output and every answer, in order,
/// with when it came.
fn exec_under_load(
    file: &Path,
    router: SocketAddr,
) -> (std::process::Output, Vec<(Instant, u16, String)>) {
    let mut child = Command::new(runner_bin())
        .arg("exec")
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until_listening(router, &mut child);
    let mut answers = Vec::new();
    let mut i = 0u64;
    while child.try_wait().unwrap().is_none() {
        i += 1;
        if let Some(a) = get_as(router, "/rooms/1", &format!("user-{}", i % 50)) {
            answers.push((
                Instant::now(),
                a.status,
                a.side().unwrap_or("-").to_string(),
            ));
        }
    }
    (child.wait_with_output().unwrap(), answers)
}

fn shift_workflow(blue: &Backend, green: &Backend, port: u16, shift: &str) -> String {
    shift_workflow_with(blue, green, port, "", shift)
}

/// [`shift_workflow`] with `router` lines added to `[router]`.
fn shift_workflow_with(
    blue: &Backend,
    green: &Backend,
    port: u16,
    router: &str,
    shift: &str,
) -> String {
    let steps = format!(
        "[store.green]\nkind = \"null\"\n\n\
         [[step]]\nid = \"page\"\nkind = \"shell\"\nhook = true\nrun = \"echo rolled back >> page.txt\"\n\n\
         [[step]]\nid = \"routing\"\nkind = \"route\"\n\n\
         [[step]]\nid = \"ramp\"\nkind = \"shift\"\n{shift}\n\n\
         [[step]]\nid = \"switch\"\nkind = \"cutover\"\nto = \"green\"\n"
    );
    workflow_text(blue, green, port, router, &steps)
}

#[test]
fn a_healthy_green_is_ramped_to_every_read_and_cut_over() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write(
        dir.path(),
        &shift_workflow(
            &blue,
            &green,
            port,
            "stages = [20, \"100%\"]\nhold = \"1s\"\nmin_requests = 5\ncheck_every = \"100ms\"\n# The machine is shared by the tests: latency is not judged here.\np99_slack = \"10s\"",
        ),
    );
    let (out, answers) = exec_under_load(&file, format!("127.0.0.1:{port}").parse().unwrap());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("reads shifted: 20%: green"), "{said}");
    assert!(answers.iter().all(|(_, status, _)| *status == 200));
    assert!(answers.iter().any(|(_, _, side)| side == "green"));
    let routing = RoutingFile::new(&dir.path().join(".switchyard/routed"))
        .read()
        .unwrap();
    assert_eq!(routing.mode, Mode::AllGreen);
    assert!(
        !dir.path().join("page.txt").exists(),
        "no rollback, no hook"
    );
}

#[test]
fn an_inconclusive_stage_pauses_until_an_operator_answers_from_the_admin_endpoint_or_a_shell() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let file = write(
        dir.path(),
        &shift_workflow_with(
            &blue,
            &green,
            port,
            &format!("admin = \"127.0.0.1:{admin}\""),
            "stages = [20, 100]\nhold = \"300ms\"\nmin_requests = 1000\ncheck_every = \"100ms\"",
        ),
    );
    let router: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    let mut child = Command::new(runner_bin())
        .arg("exec")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until_listening(router, &mut child);
    let routing = RoutingFile::new(&dir.path().join(".switchyard/routed"));
    let mut paused_at = |stage: &str, after: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = routing.read().unwrap();
            if r.generation > after
                && r.stage == format!("{stage}, paused")
                && r.paused.as_ref().is_some_and(|p| p.answer.is_none())
            {
                return r;
            }
            assert!(Instant::now() < deadline, "never paused at {stage}: {r:?}");
            assert!(child.try_wait().unwrap().is_none(), "the run ended");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let resume = |answer: &str| {
        Command::new(runner_bin())
            .args(["resume", file.to_str().unwrap(), answer])
            .output()
            .unwrap()
    };
    let first = paused_at("20%", 0);
    let asked = first.paused.as_ref().unwrap();
    assert_eq!(asked.step, "ramp");
    assert!(asked.question.contains("inconclusive"), "{asked:?}");
    // Reads are served as they were while the step waits.
    assert_eq!(get_as(router, "/rooms/1", "u1").unwrap().status, 200);
    assert_eq!(first.green_share, share_of(20.0).unwrap());

    // `again` from the admin endpoint holds the stage anew, which asks
    // again.
    let json = [("content-type", "application/json")];
    let answered = request(admin, "POST", "/resume", &json, r#"{"answer": "again"}"#).unwrap();
    assert_eq!(answered.status, 200, "{}", answered.body);
    let second = paused_at("20%", first.generation);
    // `pass` from a shell goes on to the next stage.
    let out = resume("pass");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let third = paused_at("100%", second.generation);
    assert_eq!(third.green_share, share_of(100.0).unwrap());
    let answered = request(admin, "POST", "/resume", &json, r#"{"answer": "pass"}"#).unwrap();
    assert_eq!(answered.status, 200, "{}", answered.body);

    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("20%: inconclusive, passed by the operator"),
        "{said}"
    );
    let last = routing.read().unwrap();
    assert_eq!((last.mode, last.paused), (Mode::AllGreen, None));
    // Nothing waits now: an answer is refused, and says why.
    let out = resume("again");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no step waits"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_paused_stage_still_sends_a_failing_green_back_and_a_rerun_does_not_undo_that() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write(
        dir.path(),
        &shift_workflow(
            &blue,
            &green,
            port,
            "stages = [50, 100]\nhold = \"300ms\"\nmin_requests = 30\nmax_error_rate = 0.05\ncheck_every = \"100ms\"",
        ),
    );
    let router: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let exec = || {
        Command::new(runner_bin())
            .arg("exec")
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut child = exec();
    until_listening(router, &mut child);
    let routing = RoutingFile::new(&dir.path().join(".switchyard/routed"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while routing.read().unwrap().paused.is_none() {
        assert!(Instant::now() < deadline, "never paused");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Paused, green starts failing under load: the gates still watch.
    green.set_failing(true);
    for i in 0..200 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        get_as(router, "/rooms/1", &format!("user-{i}"));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("stage 50% failed: green failed"), "{err}");
    let r = routing.read().unwrap();
    assert_eq!((r.mode, r.paused), (Mode::AllBlue, None));

    // A rerun does not undo the rollback; setting a share by hand ends it.
    let out = exec().wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("does not undo a rollback"), "{err}");
    assert_eq!(routing.read().unwrap().mode, Mode::AllBlue);
    let out = Command::new(runner_bin())
        .args(["share", file.to_str().unwrap(), "0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = routing.read().unwrap();
    assert_eq!((r.mode, r.green_share), (Mode::Shift, 0));
    assert_eq!(r.stage, "0% (set by hand)");
}

#[test]
fn a_green_that_starts_failing_is_sent_back_at_once_with_no_error_answered_from_blue() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    green.set_failing(true);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = write(
        dir.path(),
        &shift_workflow(
            &blue,
            &green,
            port,
            "stages = [50, 100]\nhold = \"20s\"\nmin_requests = 10\nmax_error_rate = 0.05\non_rollback = [\"page\"]",
        ),
    );
    let (out, answers) = exec_under_load(&file, format!("127.0.0.1:{port}").parse().unwrap());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("stage 50% failed: green failed"), "{err}");
    // Blue never answered with an error; green's errors stopped soon
    // after the gate could judge (10 requests), long before the hold.
    assert!(
        answers
            .iter()
            .filter(|(_, _, side)| side == "blue")
            .all(|(_, s, _)| *s == 200)
    );
    let green_errors: Vec<&Instant> = answers
        .iter()
        .filter(|(_, s, side)| side == "green" && *s == 500)
        .map(|(t, _, _)| t)
        .collect();
    assert!(green_errors.len() >= 10, "{}", green_errors.len());
    let first = answers.first().unwrap().0;
    let last_error = **green_errors.last().unwrap();
    assert!(
        last_error - first < Duration::from_secs(5),
        "green kept answering for {:?}",
        last_error - first
    );
    let routing = RoutingFile::new(&dir.path().join(".switchyard/routed"))
        .read()
        .unwrap();
    assert_eq!(routing.mode, Mode::AllBlue);
    assert!(
        routing.reason.contains("rolled back by step `ramp`"),
        "{}",
        routing.reason
    );
    // The rollback hook ran once, after the rollback.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("page.txt")).unwrap(),
        "rolled back\n"
    );
}

/// A read-api stand-in answering JSON for a room: `text`, and a
/// `served_at` that changes on every answer (noise); `watermark` is what
/// it reports for `path`.
fn json_backend(
    salt: u64,
    text_for: fn(&str) -> &'static str,
    watermark_for: fn(&str) -> &'static str,
) -> Backend {
    Backend::start_with(Arc::new(
        move |path: &str, headers: &hyper::HeaderMap, n: u64| {
            let mirrored = headers.contains_key("x-switchyard-mirror");
            (
                200,
                vec![
                    ("content-type".to_string(), "application/json".to_string()),
                    (
                        "x-switchyard-watermark".to_string(),
                        watermark_for(path).to_string(),
                    ),
                    ("x-was-mirrored".to_string(), mirrored.to_string()),
                ],
                format!(
                    r#"{{"room": "{path}", "text": "{}", "served_at": {}}}"#,
                    text_for(path),
                    n + salt
                ),
            )
        },
    ))
}

#[test]
fn mirrored_reads_count_real_mismatches_only_never_noise_or_lag() {
    let blue = json_backend(0, |_| "hello", |_| "100");
    let green = json_backend(
        1000,
        |path| {
            if path == "/rooms/bad" {
                "HELLO"
            } else {
                "hello"
            }
        },
        |path| if path == "/rooms/lag" { "90" } else { "100" },
    );
    let dir = tempfile::tempdir().unwrap();
    let w = load(&write(
        dir.path(),
        &workflow_text(&blue, &green, 0, "mirror_recheck_after = \"50ms\"", ""),
    ));
    let router = Router::start(
        w.router.as_ref().unwrap(),
        RouterPlugins::default(),
        &w.state_dir,
    )
    .unwrap();
    let r = RoutingFile::new(&w.state_dir)
        .update("mirror", |r| {
            r.mirror = true;
            Ok(())
        })
        .unwrap();
    until_serving(&router, r.generation);
    let mut asked = 0;
    for (path, times) in [("/rooms/ok", 10), ("/rooms/bad", 3), ("/rooms/lag", 2)] {
        for i in 0..times {
            let a = get_as(router.address(), path, &format!("user-{i}")).unwrap();
            assert_eq!(
                (a.status, a.side()),
                (200, Some("blue")),
                "the client is answered by blue"
            );
            assert_eq!(a.header("x-was-mirrored"), Some("false"));
            assert!(a.body.contains("\"text\": \"hello\""), "{}", a.body);
            asked += 1;
        }
    }
    // A POST is not mirrored.
    request(
        router.address(),
        "POST",
        "/rooms/ok",
        &[("x-user-id", "u")],
        "{}",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = router.metrics().mirror;
        if m.compared() + m.lagging + m.failed + m.skipped >= asked {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "mirrored pairs not all judged: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(m.mirrored, asked);
    // `served_at` differs between any two answers: noise, measured on
    // blue's second read and taken out.
    assert_eq!(
        (m.matched, m.noisy, m.mismatched, m.lagging),
        (0, 10, 3, 2),
        "{m:?}"
    );
    assert_eq!((m.dropped, m.failed, m.skipped), (0, 0, 0));
    let samples = std::fs::read_to_string(w.state_dir.join("mirror-samples.ndjson")).unwrap();
    let samples: Vec<serde_json::Value> = samples
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(samples.len(), 3);
    for s in &samples {
        assert_eq!(s["path"], "/rooms/bad");
        assert_eq!(s["differences"], serde_json::json!(["/text"]));
        assert_eq!(s["noise"], serde_json::json!(["/served_at"]));
        assert_eq!(s["primary"]["side"], "blue");
        assert_eq!(s["other"]["watermark"], "100");
    }
}

/// A read-api stand-in answering one row per path in the example
/// read-api's shape, its value written as `value`, or (`base64`) as
/// `value_base64` with a cell blue does not serve; `served_at` changes on
/// every answer. For `/rows/t/bad` the value differs; for
/// `/rows/t/broken` a `base64` side answers JSON that is not; for
/// `/rows/t/huge` a `base64` side answers a row of 15,000 cells.
fn row_backend(base64: bool) -> Backend {
    Backend::start_with(Arc::new(move |path: &str, _: &hyper::HeaderMap, n: u64| {
        let json = ("content-type".to_string(), "application/json".to_string());
        let body = match (base64, path) {
            (false, _) => format!(
                r#"{{"key": "{path}", "cells": [{{"family": "d", "qualifier": "text", "version": 1, "value": "hello"}}], "served_at": {n}}}"#
            ),
            (true, "/rows/t/broken") => "{oops".to_string(),
            (true, "/rows/t/huge") => format!(
                r#"{{"key": "{path}", "cells": [{}]}}"#,
                (0..15_000)
                    .map(|i| format!(
                        r#"{{"family": "d", "qualifier": "q{i:05}", "version": 1, "value": "x"}}"#
                    ))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            (true, _) => format!(
                r#"{{"served_at": {}, "key": "{path}", "cells": [{{"family": "m", "qualifier": "writer", "version": 1, "value": "green"}}, {{"family": "d", "qualifier": "text", "version": 1, "value_base64": "{}"}}]}}"#,
                n + 1000,
                if path == "/rows/t/bad" {
                    "SEVMTE8="
                } else {
                    "aGVsbG8="
                }
            ),
        };
        (200, vec![json], body)
    }))
}

#[test]
fn a_response_check_plugin_compares_mirrored_answers_in_its_own_normal_form() {
    let (blue, green) = (row_backend(false), row_backend(true));
    let dir = tempfile::tempdir().unwrap();
    let text = workflow_text(
        &blue,
        &green,
        0,
        "mirror_plugin = \"read-check\"",
        &format!(
            "[plugin.read-check]\nwasm = \"{}\"\nmemory_limit = \"4MiB\"\n[plugin.read-check.config]\nignore_cells = \"m:writer\"\n",
            wasm("plugins/read-check").display()
        ),
    );
    let w = load(&write(dir.path(), &text));
    let plugins = PluginRegistry::new(Cancel::default());
    let config = w.router.as_ref().unwrap();
    let loaded = switchyard_runner::steps::route::load_plugins(&plugins, &w.setup, config).unwrap();
    let router = Router::start(config, loaded, &w.state_dir).unwrap();
    let r = RoutingFile::new(&w.state_dir)
        .update("mirror", |r| {
            r.mirror = true;
            Ok(())
        })
        .unwrap();
    until_serving(&router, r.generation);
    let mut asked = 0;
    let paths = [
        ("/rows/t/ok", 6),
        ("/rows/t/bad", 2),
        ("/rows/t/broken", 2),
        ("/rows/t/huge", 1),
    ];
    for (path, times) in paths {
        for i in 0..times {
            let a = get_as(router.address(), path, &format!("user-{i}")).unwrap();
            assert_eq!((a.status, a.side()), (200, Some("blue")), "{path}");
            assert!(a.body.contains("\"value\": \"hello\""), "{path}");
            asked += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let m = loop {
        let m = router.metrics().mirror;
        if m.compared() + m.unjudged + m.failed + m.skipped >= asked {
            break m;
        }
        assert!(Instant::now() < deadline, "pairs not all judged: {m:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Text against base64 and a cell blue does not serve are the same in
    // the plugin's normal form; `served_at` is noise; the changed value
    // and the broken answer are found; the answer too large for the
    // plugin's memory leaves its pair unjudged, and the client served.
    assert_eq!(
        (m.matched, m.noisy, m.mismatched, m.unjudged, m.lagging),
        (0, 6, 4, 1, 0),
        "{m:?}"
    );
    let samples = std::fs::read_to_string(w.state_dir.join("mirror-samples.ndjson")).unwrap();
    let mut found: Vec<(String, serde_json::Value)> = samples
        .lines()
        .map(|line| {
            let s: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(s["noise"], serde_json::json!(["/served_at"]));
            (
                s["path"].as_str().unwrap().to_string(),
                s["differences"].clone(),
            )
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let bad = serde_json::json!(["/cells/d:text/bytes"]);
    let broken = serde_json::json!(["body"]);
    assert_eq!(
        found,
        vec![
            ("/rows/t/bad".to_string(), bad.clone()),
            ("/rows/t/bad".to_string(), bad),
            ("/rows/t/broken".to_string(), broken.clone()),
            ("/rows/t/broken".to_string(), broken),
        ]
    );
}

#[test]
fn a_slow_mirror_never_slows_the_client_its_jobs_are_dropped_and_counted() {
    let blue = Backend::start("blue");
    let green = Backend::start_with(Arc::new(|_: &str, _: &hyper::HeaderMap, _: u64| {
        // A stand-in serving one request at a time, slowly.
        std::thread::sleep(Duration::from_millis(300));
        (200, Vec::new(), "green".to_string())
    }));
    let dir = tempfile::tempdir().unwrap();
    let w = load(&write(
        dir.path(),
        &workflow_text(&blue, &green, 0, "mirror_queue = 2", ""),
    ));
    let router = Router::start(
        w.router.as_ref().unwrap(),
        RouterPlugins::default(),
        &w.state_dir,
    )
    .unwrap();
    let r = RoutingFile::new(&w.state_dir)
        .update("mirror", |r| {
            r.mirror = true;
            Ok(())
        })
        .unwrap();
    until_serving(&router, r.generation);
    for i in 0..60 {
        let started = Instant::now();
        let a = get_as(router.address(), "/", &format!("u{i}")).unwrap();
        assert_eq!((a.status, a.side()), (200, Some("blue")));
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "request {i} waited {:?} for the mirror",
            started.elapsed()
        );
    }
    let m = router.metrics().mirror;
    assert_eq!(m.mirrored + m.dropped, 60);
    assert!(m.dropped > 0, "{m:?}");
}

#[test]
fn a_mirror_step_fails_on_real_mismatches_and_keeps_samples() {
    let blue = json_backend(0, |_| "hello", |_| "100");
    let green = json_backend(
        1000,
        |path| if path == "/rooms/1" { "HELLO" } else { "hello" },
        |_| "100",
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let steps = "[[step]]\nid = \"routing\"\nkind = \"route\"\n\n\
                 [[step]]\nid = \"compare-reads\"\nkind = \"mirror\"\nhold = \"10s\"\nmin_compared = 5\n";
    let file = write(dir.path(), &workflow_text(&blue, &green, port, "", steps));
    let (out, answers) = exec_under_load(&file, format!("127.0.0.1:{port}").parse().unwrap());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("mirrored pairs differ"), "{err}");
    assert!(
        answers
            .iter()
            .all(|(_, s, side)| *s == 200 && side == "blue")
    );
    let samples =
        std::fs::read_to_string(dir.path().join(".switchyard/routed/mirror-samples.ndjson"))
            .unwrap();
    assert!(samples.lines().count() >= 5, "{samples}");
    assert!(samples.contains("\"differences\":[\"/text\"]"), "{samples}");
}

#[test]
fn a_traffic_step_sends_a_request_log_at_its_rate_and_reports_each_side() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log: String = (0..60)
        .map(|i| format!("{{\"method\": \"GET\", \"path\": \"/rooms/{i}\", \"headers\": {{\"x-user-id\": \"user-{i}\"}}}}\n"))
        .collect();
    std::fs::write(dir.path().join("reads.ndjson"), log).unwrap();
    std::fs::write(
        dir.path().join("bad.ndjson"),
        "{\"path\": \"/ok\"}\n{\"path\": \"no-slash\"}\n",
    )
    .unwrap();
    let steps = |file: &str| {
        format!(
            "[[step]]\nid = \"routing\"\nkind = \"route\"\n\n\
             [[step]]\nid = \"load\"\nkind = \"traffic\"\nrequests = \"{file}\"\nrate = 200\n"
        )
    };
    let file = write(
        dir.path(),
        &workflow_text(&blue, &green, port, "", &steps("reads.ndjson")),
    );
    let out = Command::new(runner_bin())
        .arg("exec")
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("sent 60 requests in "), "{said}");
    assert!(said.contains("blue 60 (0 failed"), "{said}");
    assert!(said.contains("0 unanswered, 0 missed"), "{said}");
    assert_eq!(blue.requests.load(Ordering::Relaxed), 60);
    // Sent open loop at 200/s: 60 requests take about 0.3 s, not less.
    let took: f64 = said
        .split("sent 60 requests in ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(took >= 0.25, "{said}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.ndjson"),
        "{\"path\": \"/ok\"}\n{\"path\": \"no-slash\"}\n",
    )
    .unwrap();
    let file = write(
        dir.path(),
        &workflow_text(&blue, &green, free_port(), "", &steps("bad.ndjson")),
    );
    let out = Command::new(runner_bin())
        .arg("exec")
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`bad.ndjson` line 2: `no-slash` is not a path"),
        "{err}"
    );
}

#[test]
fn a_ramp_stops_on_mirrored_mismatches_while_green_answers_without_errors() {
    let blue = json_backend(0, |_| "hello", |_| "100");
    let green = json_backend(1000, |_| "HELLO", |_| "100");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let steps = "[[step]]\nid = \"routing\"\nkind = \"route\"\n\n\
                 [[step]]\nid = \"look\"\nkind = \"mirror\"\nhold = \"300ms\"\nmin_compared = 1\nmax_mismatch_rate = 1\n\n\
                 [[step]]\nid = \"ramp\"\nkind = \"shift\"\nstages = [50, 100]\nhold = \"20s\"\nmin_requests = 10\n";
    let file = write(dir.path(), &workflow_text(&blue, &green, port, "", steps));
    let (out, answers) = exec_under_load(&file, format!("127.0.0.1:{port}").parse().unwrap());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("stage 50% failed: ") && err.contains("mirrored pairs differ"),
        "{err}"
    );
    assert!(answers.iter().all(|(_, s, _)| *s == 200));
    let routing = RoutingFile::new(&dir.path().join(".switchyard/routed"))
        .read()
        .unwrap();
    assert_eq!(routing.mode, Mode::AllBlue);
}
