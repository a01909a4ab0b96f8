//! The router against going direct, and against nginx doing the same 50%
//! split, in one run: `cargo bench -p switchyard-tests --bench router`.
//!
//! Two read-api stand-ins (hyper, a 240-byte JSON answer) serve as blue
//! and green. Each variant is measured the same way, interleaved over
//! rounds, the best round kept:
//!
//! - capacity: 32 keep-alive connections, closed loop, for 2 s;
//! - latency: open loop at a fixed rate for 2 s (each request leaves at
//!   its time; latency from that time, so a stall is not hidden);
//! - the proxy's CPU per request (its own threads, or nginx's processes).
//!
//! Variants: direct to blue; the router bucketing on a header; the router
//! asking the WASM route hook (`tests/plugins/misroute`) per request; the
//! router with mirroring on (every read copied to the other side and
//! compared); nginx (Debian's package, unpacked under `target/` when
//! `nginx` is not installed) with `split_clients` on the same header.
//! Separately, the route hook's own CPU per decision. No timing asserts:
//! figures only. `SWITCHYARD_BENCH_RATE` sets the open-loop rate (default
//! 2000/s), `SWITCHYARD_BENCH_ROUNDS` the rounds (default 3).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use switchyard_runner::cancel::Cancel;
use switchyard_runner::plugin::contract::Route;
use switchyard_runner::router::decide::{Decider, Rule};
use switchyard_runner::router::routing::share_of;
use switchyard_runner::router::{Metrics, Router, RouterPlugins, RoutingFile};
use switchyard_runner::steps::plugins::PluginRegistry;
use switchyard_runner::workflow::{self, LoadOptions};
use switchyard_tests::cpu::thread_cpu;
use switchyard_tests::http::free_port;
use switchyard_tests::plugins::{repo_root, wasm};

const BODY: &str = r#"{"table":"messages","key":"room-0042#1767226281740#m-000000226","cells":[{"family":"d","qualifier":"text","value":"deploy green canary review merge done","version":1767226281740},{"family":"d","qualifier":"user","value":"user-00750","version":1767226281740}]}"#;
const CONNECTIONS: usize = 32;
/// The router's threads: those serving requests, and those calling the
/// route plugin.
const ROUTER_THREADS: &[&str] = &["router", "route-plugin"];
const PHASE: Duration = Duration::from_secs(2);

fn main() {
    let rate = env_u64("SWITCHYARD_BENCH_RATE", 2000) as f64;
    let rounds = env_u64("SWITCHYARD_BENCH_ROUNDS", 3) as usize;
    let blue = backend();
    let green = backend();
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(dir.path(), blue, green);
    let routers = Routers::start(dir.path(), blue, green);
    let variants: Vec<(&str, SocketAddr, Cpu)> = vec![
        ("direct", blue, Cpu::None),
        (
            "router, header rule",
            routers.plain.address(),
            Cpu::Threads(ROUTER_THREADS),
        ),
        (
            "router, WASM route hook",
            routers.hooked.address(),
            Cpu::Threads(ROUTER_THREADS),
        ),
        (
            "router, mirroring on",
            routers.mirrored.address(),
            Cpu::Threads(ROUTER_THREADS),
        ),
        (
            "nginx split_clients",
            nginx.address,
            Cpu::Process(nginx.pid()),
        ),
    ];
    let client = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_max_idle_per_host(CONNECTIONS * 2)
        .build_http::<Empty<Bytes>>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut results: Vec<Figures> = variants.iter().map(|_| Figures::default()).collect();
    for round in 0..rounds {
        for (i, (name, address, cpu)) in variants.iter().enumerate() {
            // Different routers share the process: count only the threads
            // of the router under test by measuring it alone.
            let cpu_before = cpu.read();
            let (done, took) = runtime.block_on(capacity(&client, *address));
            let cpu_used = cpu.read().saturating_sub(cpu_before);
            let latencies = runtime.block_on(open_loop(&client, *address, rate));
            let f = Figures {
                throughput: done as f64 / took.as_secs_f64(),
                cpu_per_request: cpu_used.as_secs_f64() * 1e6 / done.max(1) as f64,
                p50: quantile(&latencies, 0.5),
                p99: quantile(&latencies, 0.99),
                answered: latencies.len(),
            };
            eprintln!(
                "round {round} {name}: {:.0}/s, p50 {:.2}ms p99 {:.2}ms",
                f.throughput,
                f.p50 * 1e3,
                f.p99 * 1e3
            );
            results[i] = results[i].best(&f);
        }
    }
    let direct = results[0].clone();
    println!(
        "\n## Router: {rounds} interleaved rounds, best of each (capacity: {CONNECTIONS} connections, closed loop; latency: open loop at {rate}/s)\n"
    );
    println!(
        "| variant | capacity | vs direct | p50 | p99 | added p50 | added p99 | proxy CPU per request |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for ((name, _, cpu), f) in variants.iter().zip(&results) {
        println!(
            "| {name} | {:.0}/s | {:.2} | {:.2} ms | {:.2} ms | {} | {} | {} |",
            f.throughput,
            f.throughput / direct.throughput,
            f.p50 * 1e3,
            f.p99 * 1e3,
            if *name == "direct" {
                "—".into()
            } else {
                format!("{:+.2} ms", (f.p50 - direct.p50) * 1e3)
            },
            if *name == "direct" {
                "—".into()
            } else {
                format!("{:+.2} ms", (f.p99 - direct.p99) * 1e3)
            },
            match cpu {
                Cpu::None => "—".to_string(),
                _ => format!("{:.1} µs", f.cpu_per_request),
            }
        );
    }
    let answered: Vec<String> = variants
        .iter()
        .zip(&results)
        .map(|((n, _, _), f)| format!("{n} {}", f.answered))
        .collect();
    println!(
        "\nanswered in the open-loop phase (of {:.0} asked): {}",
        rate * PHASE.as_secs_f64(),
        answered.join(", ")
    );
    let m = routers.mirrored.metrics().mirror;
    println!(
        "mirror: {} mirrored, {} matched, {} mismatched, {} dropped (queue full)",
        m.mirrored, m.matched, m.mismatched, m.dropped
    );
    hook_cost(&routers.registry, &routers.setup);
}

#[derive(Debug, Clone, Default)]
struct Figures {
    throughput: f64,
    cpu_per_request: f64,
    p50: f64,
    p99: f64,
    answered: usize,
}

impl Figures {
    /// The better of two rounds: each figure's best.
    fn best(&self, other: &Figures) -> Figures {
        if self.answered == 0 {
            return other.clone();
        }
        Figures {
            throughput: self.throughput.max(other.throughput),
            cpu_per_request: self.cpu_per_request.min(other.cpu_per_request),
            p50: self.p50.min(other.p50),
            p99: self.p99.min(other.p99),
            answered: self.answered.max(other.answered),
        }
    }
}

/// Whose CPU time a variant spends.
enum Cpu {
    None,
    /// This process's threads with these names.
    Threads(&'static [&'static str]),
    /// Another process and its children.
    Process(u32),
}

impl Cpu {
    fn read(&self) -> Duration {
        match self {
            Cpu::None => Duration::ZERO,
            Cpu::Threads(names) => tasks_cpu(Path::new("/proc/self/task"), Some(names)),
            Cpu::Process(pid) => {
                let mut total = tasks_cpu(&PathBuf::from(format!("/proc/{pid}/task")), None);
                for child in children(*pid) {
                    total += tasks_cpu(&PathBuf::from(format!("/proc/{child}/task")), None);
                }
                total
            }
        }
    }
}

/// CPU time of the threads under `tasks` (named one of `names`, or all).
fn tasks_cpu(tasks: &Path, names: Option<&[&str]>) -> Duration {
    let mut ns = 0u64;
    for task in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if names.is_some_and(|n| !n.contains(&comm.trim())) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(ns)
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn request(address: SocketAddr, user: u64) -> hyper::Request<Empty<Bytes>> {
    hyper::Request::get(format!(
        "http://{address}/rows/messages/room-{:04}",
        user % 200
    ))
    .header("x-user-id", format!("user-{user:05}"))
    .body(Empty::new())
    .unwrap()
}

/// Closed loop: requests answered by `CONNECTIONS` loops in `PHASE`.
async fn capacity(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    address: SocketAddr,
) -> (u64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for c in 0..CONNECTIONS as u64 {
        let (client, done, stop) = (client.clone(), done.clone(), stop.clone());
        loops.spawn(async move {
            let mut n = c;
            while !stop.load(Ordering::Relaxed) {
                n += CONNECTIONS as u64;
                if let Ok(r) = client.request(request(address, n)).await
                    && r.into_body().collect().await.is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    tokio::time::sleep(PHASE).await;
    stop.store(true, Ordering::Relaxed);
    let took = started.elapsed();
    let counted = done.load(Ordering::Relaxed);
    while loops.join_next().await.is_some() {}
    (counted, took)
}

/// Open loop: latency of each answered request from its scheduled time.
async fn open_loop(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    address: SocketAddr,
    rate: f64,
) -> Vec<f64> {
    let gap = Duration::from_secs_f64(1.0 / rate);
    let total = (rate * PHASE.as_secs_f64()) as u64;
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..total {
        let due = start + gap.mul_f64(n as f64);
        tokio::time::sleep_until(due).await;
        let client = client.clone();
        tasks.spawn(async move {
            let r = client.request(request(address, n)).await.ok()?;
            r.into_body().collect().await.ok()?;
            Some(due.elapsed().as_secs_f64())
        });
    }
    let mut latencies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(Some(l)) = r {
            latencies.push(l);
        }
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// A read-api stand-in: one thread, a fixed JSON answer.
fn backend() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(BODY.as_bytes()),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    address
}

/// The three routers under test, each with its own state folder.
struct Routers {
    plain: Router,
    hooked: Router,
    mirrored: Router,
    registry: PluginRegistry,
    setup: Arc<switchyard_runner::setup::Setup>,
}

impl Routers {
    fn start(dir: &Path, blue: SocketAddr, green: SocketAddr) -> Routers {
        let plugin = wasm("tests/plugins/misroute");
        let load = |name: &str, router: &str| {
            let folder = dir.join(name);
            std::fs::create_dir_all(&folder).unwrap();
            let text = format!(
                "[workflow]\nname = \"{name}\"\n\n[router]\nlisten = \"127.0.0.1:{}\"\nblue = \"http://{blue}\"\ngreen = \"http://{green}\"\n{router}\n\n[plugin.hook]\nwasm = \"{}\"\n",
                free_port(),
                plugin.display()
            );
            let file = folder.join("w.toml");
            std::fs::write(&file, text).unwrap();
            workflow::load(&file, &LoadOptions::default()).unwrap()
        };
        let half = |w: &workflow::Workflow, mirror: bool| {
            RoutingFile::new(&w.state_dir)
                .update("bench", |r| {
                    r.green_share = share_of(50.0)?;
                    r.mirror = mirror;
                    Ok(())
                })
                .unwrap();
        };
        let registry = PluginRegistry::new(Cancel::default());
        let plain_w = load("plain", "");
        half(&plain_w, false);
        let hooked_w = load("hooked", "plugin = \"hook\"\nheaders = [\"x-user-id\"]");
        half(&hooked_w, false);
        let mirrored_w = load("mirrored", "");
        half(&mirrored_w, true);
        let hook = registry.get::<Route>(&hooked_w.setup, "hook").unwrap();
        let start = |w: &workflow::Workflow, route| {
            let plugins = RouterPlugins {
                route,
                ..Default::default()
            };
            Router::start(w.router.as_ref().unwrap(), plugins, &w.state_dir).unwrap()
        };
        Routers {
            plain: start(&plain_w, None),
            hooked: start(&hooked_w, Some(hook)),
            mirrored: start(&mirrored_w, None),
            registry,
            setup: hooked_w.setup.clone(),
        }
    }
}

/// The route hook's own cost: CPU time of this thread per decision, the
/// WASM plugin against the built-in header rule.
fn hook_cost(registry: &PluginRegistry, setup: &switchyard_runner::setup::Setup) {
    let plugin = registry.get::<Route>(setup, "hook").unwrap();
    let header = hyper::header::HeaderName::from_static("x-user-id");
    let hooked = Decider::new(
        Rule::Plugin {
            plugin,
            headers: vec![header.clone()],
        },
        Duration::from_millis(20),
        Arc::new(Metrics::default()),
    );
    let plain = Decider::new(
        Rule::Header(header),
        Duration::from_millis(20),
        Arc::new(Metrics::default()),
    );
    let parts: Vec<_> = (0..1000u64)
        .map(|n| request("127.0.0.1:1".parse().unwrap(), n).into_parts().0)
        .collect();
    let routing = switchyard_runner::router::Routing {
        green_share: 5000,
        ..Default::default()
    };
    let mut best = [f64::MAX; 2];
    for _ in 0..5 {
        for (i, d) in [&hooked, &plain].iter().enumerate() {
            let before = thread_cpu();
            for _ in 0..10 {
                for p in &parts {
                    std::hint::black_box(d.decide(p, &routing));
                }
            }
            let per = (thread_cpu() - before).as_secs_f64() * 1e6 / 10_000.0;
            best[i] = best[i].min(per);
        }
    }
    println!(
        "\nroute decision, CPU per request (best of 5 interleaved rounds of 10,000): WASM route hook {:.2} µs, built-in header rule {:.3} µs",
        best[0], best[1]
    );
}

/// nginx with the same split, started for the run.
struct Nginx {
    child: Child,
    address: SocketAddr,
}

impl Nginx {
    fn start(dir: &Path, blue: SocketAddr, green: SocketAddr) -> Nginx {
        let binary = nginx_binary();
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let conf = prefix.join("nginx.conf");
        let p = prefix.display();
        std::fs::write(
            &conf,
            format!(
                "worker_processes 2;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log warn;\nevents {{ worker_connections 4096; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n  fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
                 upstream blue {{ server {blue}; keepalive 64; }}\n  upstream green {{ server {green}; keepalive 64; }}\n\
                 split_clients \"${{http_x_user_id}}\" $side {{ 50% blue; * green; }}\n\
                 server {{\n    listen {address};\n    location / {{\n      proxy_pass http://$side;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
            ),
        )
        .unwrap();
        let child = Command::new(&binary)
            .args([
                "-p",
                &prefix.display().to_string(),
                "-c",
                &conf.display().to_string(),
                "-g",
                "daemon off; user root;",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(address).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {address}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { child, address }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `nginx` from PATH, or Debian's package unpacked under `target/`
/// (downloaded with apt, not installed: nothing runs as a service).
fn nginx_binary() -> PathBuf {
    if let Ok(out) = Command::new("sh").args(["-c", "command -v nginx"]).output()
        && out.status.success()
    {
        return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    }
    let root = repo_root().join("target/bench-nginx");
    let binary = root.join("root/usr/sbin/nginx");
    if binary.is_file() {
        return binary;
    }
    std::fs::create_dir_all(&root).unwrap();
    let fetched = Command::new("apt-get")
        .args(["download", "nginx"])
        .current_dir(&root)
        .status()
        .expect("apt-get runs");
    assert!(fetched.success(), "apt-get download nginx failed");
    let deb = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("the nginx package");
    let unpacked = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root.join("root"))
        .status()
        .expect("dpkg-deb runs");
    assert!(
        unpacked.success() && binary.is_file(),
        "unpacking nginx failed"
    );
    binary
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
