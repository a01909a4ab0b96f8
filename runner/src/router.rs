//! The router: an HTTP reverse proxy in front of the blue and green
//! read-apis that moves reads between them.
//!
//! - `config`: `[router]`, checked.
//! - `routing`: where reads go (mode, green share, stage, pins) and the
//!   file in the state folder that holds it; `watch` follows that file.
//! - `bucket`: the stable hash that keeps a sticky key on one side.
//! - `decide`: the side of one request (rollback, rule or plugin, pins,
//!   share).
//! - `forward`: one request sent on and its answer streamed back.
//! - `mirror`: a copy of a read sent to the other side and the answers
//!   compared (`diff`, or a response-check plugin), lag and noise told
//!   apart from mismatches.
//! - `plugin_threads`: the threads plugin calls run on, off the proxy's.
//! - `serve`: connections accepted and served (HTTP/1.1 and HTTP/2).
//! - `admin`: the admin endpoint.
//! - `metrics`: counts and latency per side.
//!
//! A [`Router`] runs on its own thread with its own small tokio runtime,
//! so it serves the same way inside `runner exec` (started by a `route`
//! step and left running) and alone under `runner route`.

pub mod admin;
pub mod bucket;
pub mod config;
pub mod decide;
pub mod diff;
pub mod forward;
pub mod metrics;
pub mod mirror;
pub mod plugin_threads;
pub mod routing;
pub mod serve;
pub mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use tokio::sync::watch as signal;

use crate::plugin::{ResponseCheckPlugin, RoutePlugin};
pub use config::{RouterConfig, RouterSection};
use decide::{Decider, Rule};
use forward::Forwarder;
pub use metrics::{Metrics, MetricsSnapshot};
pub use routing::{Answer, Mode, Paused, Routing, RoutingError, RoutingFile, Side};

/// Threads serving requests: the router shares the machine with the
/// replay and the stores.
const WORKER_THREADS: usize = 2;

/// Why a router could not start.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// An address could not be listened on.
    #[error("cannot listen on {address} ({what}): {message}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// `listen` or `admin`.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The routing file cannot be used.
    #[error(transparent)]
    Routing(#[from] RoutingError),
    /// The admin token's variable is not set.
    #[error(
        "`[router] admin_token_env` names `{0}`, which is not set; set it, or remove the setting to serve loopback callers only"
    )]
    NoToken(String),
    /// The runtime could not be built.
    #[error("cannot start the router's threads: {0}")]
    Runtime(String),
}

/// The plugins a router runs, loaded from its workflow.
#[derive(Default, Clone)]
pub struct RouterPlugins {
    /// The `route` plugin (`[router] plugin`).
    pub route: Option<RoutePlugin>,
    /// The `response-check` plugin (`[router] mirror_plugin`).
    pub response_check: Option<ResponseCheckPlugin>,
}

/// A running router.
pub struct Router {
    stop: signal::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    finished: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    routing: Arc<RwLock<Arc<Routing>>>,
    listening: SocketAddr,
    admin: Option<SocketAddr>,
}

impl Router {
    /// Binds the addresses of `config` and starts serving, with the
    /// routing state of the state folder `state_dir`.
    pub fn start(
        config: &RouterConfig,
        plugins: RouterPlugins,
        state_dir: &Path,
    ) -> Result<Router, RouterError> {
        let token = match &config.admin_token_env {
            Some(var) => match std::env::var(var) {
                Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
                _ => return Err(RouterError::NoToken(var.clone())),
            },
            None => None,
        };
        let file = RoutingFile::new(state_dir);
        let routing = Arc::new(RwLock::new(Arc::new(file.read()?)));
        let bind = |address: SocketAddr, what: &'static str| {
            let listener =
                std::net::TcpListener::bind(address).map_err(|e| RouterError::Listen {
                    address,
                    what,
                    message: e.to_string(),
                })?;
            listener
                .set_nonblocking(true)
                .map_err(|e| RouterError::Listen {
                    address,
                    what,
                    message: e.to_string(),
                })?;
            Ok::<_, RouterError>(listener)
        };
        let proxy_listener = bind(config.listen, "listen")?;
        let admin_listener = config.admin.map(|a| bind(a, "admin")).transpose()?;
        let listening = proxy_listener.local_addr().unwrap_or(config.listen);
        let admin_address = admin_listener.as_ref().and_then(|l| l.local_addr().ok());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("router")
            .enable_all()
            .build()
            .map_err(|e| RouterError::Runtime(e.to_string()))?;
        let metrics = Arc::new(Metrics::default());
        let rule = match plugins.route {
            Some(plugin) => Rule::Plugin {
                plugin,
                headers: config.headers.clone(),
            },
            None => Rule::Header(config.sticky_header.clone()),
        };
        let decider = Decider::new(rule, config.route_timeout, metrics.clone());
        let forwarder = {
            // The mirror's workers start on the router's runtime.
            let _inside = runtime.enter();
            let mirror = mirror::Mirror::start(
                config,
                plugins.response_check,
                state_dir.join(crate::state::MIRROR_SAMPLES_FILE),
                metrics.mirror.clone(),
            );
            Arc::new(Forwarder::new(
                config,
                decider,
                routing.clone(),
                metrics.clone(),
                mirror,
            ))
        };
        let admin = Arc::new(admin::Admin {
            token,
            file: file.clone(),
            routing: routing.clone(),
            metrics: metrics.clone(),
        });
        let (stop, stopped) = signal::channel(false);
        let finished = Arc::new(AtomicBool::new(false));
        let max_connections = config.max_connections;
        let done = finished.clone();
        let routing_now = routing.clone();
        let thread = std::thread::Builder::new()
            .name("router".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(proxy_listener) = tokio::net::TcpListener::from_std(proxy_listener)
                    else {
                        return;
                    };
                    let mut tasks = tokio::task::JoinSet::new();
                    tasks.spawn(watch::follow(file, routing_now, stopped.clone()));
                    if let Some(l) = admin_listener
                        && let Ok(l) = tokio::net::TcpListener::from_std(l)
                    {
                        let admin = admin.clone();
                        // Without a token, callers off loopback are refused
                        // before they can take one of the endpoint's slots.
                        let admit = if admin.token.is_some() {
                            serve::anyone
                        } else {
                            serve::loopback
                        };
                        tasks.spawn(serve::serve(
                            l,
                            64,
                            stopped.clone(),
                            admit,
                            move |req, peer| admin.clone().serve(req, peer),
                        ));
                    }
                    tasks.spawn(serve::serve(
                        proxy_listener,
                        max_connections,
                        stopped,
                        serve::anyone,
                        move |req, peer| forwarder.clone().forward(req, peer),
                    ));
                    while tasks.join_next().await.is_some() {}
                });
                done.store(true, Ordering::SeqCst);
            })
            .map_err(|e| RouterError::Runtime(e.to_string()))?;
        tracing::info!(
            "router listening on {listening} (blue {}, green {}){}; routing: {}",
            config.blue,
            config.green,
            admin_address.map_or(String::new(), |a| format!(", admin on {a}")),
            routing.read().unwrap_or_else(|p| p.into_inner()).describe()
        );
        Ok(Router {
            stop,
            thread: Some(thread),
            finished,
            metrics,
            routing,
            listening,
            admin: admin_address,
        })
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.listening
    }

    /// Where the admin endpoint listens.
    pub fn admin_address(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The routing state in force.
    pub fn routing(&self) -> Arc<Routing> {
        self.routing
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Its counters, live.
    pub fn counts(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The counts as they are now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Asks it to stop: no new connections; open ones finish.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Whether its thread ended.
    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// Waits for its thread; its final counts in one line.
    pub fn join(mut self) -> Result<String, String> {
        self.stop();
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| "the router's thread panicked".to_string())?;
        }
        Ok(summary(&self.metrics.snapshot()))
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The counts in one line.
pub fn summary(m: &MetricsSnapshot) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}ms"));
    format!(
        "served {} requests: blue {} ({} failed, p99 {}), green {} ({} failed, p99 {}); route plugin failed {} times; mirrored {}: {} matched, {} matched once noise was out, {} mismatched, {} lagging, {} dropped, {} the response-check plugin failed on",
        m.blue.requests + m.green.requests,
        m.blue.requests,
        m.blue.failures,
        ms(m.blue.p99_ms),
        m.green.requests,
        m.green.failures,
        ms(m.green.p99_ms),
        m.plugin_failures,
        m.mirror.mirrored,
        m.mirror.matched,
        m.mirror.noisy,
        m.mirror.mismatched,
        m.mirror.lagging,
        m.mirror.dropped,
        m.mirror.unjudged
    )
}
