//! `traffic`: replays a recorded request log through the router at a set
//! rate, open loop (each request leaves at its time, whether or not the
//! ones before were answered), so green can be loaded with production's
//! reads before any user sees it, and reports latency per side.
//!
//! The log has one request per line, as JSON: `{"method": "GET", "path":
//! "/rows/…", "headers": {"x-user-id": "u1"}}` (`runner sample chat-reads`
//! writes one). With `until = "end"` (the default) the step sends the log
//! once and reports; with `until = "cutover"` it keeps sending it, from
//! the top again when it ends, in the background until the workflow ends,
//! so the `mirror` and `shift` steps after it have reads to judge.
//! Requests that would pass `max_in_flight` are not sent and are counted
//! as missed: an open loop never slows down to suit the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;
use toml::Spanned;

use super::background::{BackgroundTask, Freshness};
use super::checking::Checking;
use super::uses::Uses;
use super::{StepConfig, StepContext, StepError, StepFile};
use crate::document::values::{Period, fraction, whole};
use crate::document::{Kind, WorkflowError};
use crate::router::Side;
use crate::router::metrics::SideMetrics;
use crate::setup::Setup;

/// The kind, for the registration list.
pub const KIND: Kind<dyn StepFile> = Kind {
    name: "traffic",
    read: |table| Ok(Box::new(table.read::<TrafficFile>()?)),
};

/// Requests in flight at once, unless set.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// The most requests one log may hold.
pub const MAX_REQUESTS: usize = 1_000_000;
/// The longest line of a log.
pub const MAX_LINE: usize = 64 << 10;
/// The largest log: it is held in memory whole, so that requests go out
/// at the rate without waiting for the disk.
pub const MAX_LOG_BYTES: u64 = 256 << 20;
/// The highest rate.
pub const MAX_RATE: f64 = 100_000.0;
/// Time one request has to be answered, unless set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `kind = "traffic"` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficFile {
    /// The request log.
    pub requests: Spanned<String>,
    /// Requests per second.
    #[serde(deserialize_with = "rate")]
    pub rate: f64,
    /// `end` (default): once through; `cutover`: again and again, in the
    /// background, until the workflow ends.
    #[serde(default)]
    pub until: Option<Spanned<String>>,
    /// Requests in flight at once.
    #[serde(default, deserialize_with = "whole")]
    pub max_in_flight: Option<usize>,
    /// Time one request has to be answered.
    #[serde(default)]
    pub timeout: Option<Period>,
}

fn rate<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    fraction(d).map(|r| r.unwrap_or(0.0))
}

/// `kind = "traffic"`, checked.
#[derive(Debug, Clone)]
pub struct TrafficStep {
    requests: PathBuf,
    written: String,
    rate: f64,
    background: bool,
    max_in_flight: usize,
    timeout: Duration,
    target: SocketAddr,
}

impl StepFile for TrafficFile {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        let Some(router) = &c.setup.router else {
            return Err(c.step("a `traffic` step sends its requests through the router: the workflow has no `[router]`"));
        };
        if !(self.rate > 0.0 && self.rate <= MAX_RATE) {
            return Err(c.step(format!(
                "`rate` must be above 0 and at most {MAX_RATE} requests a second"
            )));
        }
        let background = match self.until.as_ref().map(|u| u.get_ref().as_str()) {
            None | Some("end") => false,
            Some("cutover") => {
                super::route::require_earlier(c, "`until = \"cutover\"` keeps sending")?;
                true
            }
            Some(other) => {
                return Err(c.at(
                    self.until.as_ref().map_or(0..0, |u| u.span()),
                    format!("`until` = `{other}`; expected `end` or `cutover`"),
                ));
            }
        };
        let max_in_flight = self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        if max_in_flight == 0 || max_in_flight > 10_000 {
            return Err(c.step("`max_in_flight` must be between 1 and 10000"));
        }
        c.not_zero(self.timeout, "timeout")?;
        // A router listening on every address is reached on loopback.
        let mut target = router.listen;
        if target.ip().is_unspecified() {
            target.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        Ok(Box::new(TrafficStep {
            requests: c.setup.path(self.requests.get_ref()),
            written: self.requests.into_inner(),
            rate: self.rate,
            background,
            max_in_flight,
            timeout: self.timeout.map_or(DEFAULT_TIMEOUT, |p| p.0),
            target,
        }))
    }
}

impl StepConfig for TrafficStep {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self, _setup: &Setup) -> String {
        format!(
            "send the requests of `{}` through the router on {} at {}/s{}",
            self.written,
            self.target,
            self.rate,
            if self.background {
                ", again and again in the background until the workflow ends"
            } else {
                ", once"
            }
        )
    }

    fn uses<'s>(&'s self, _uses: &mut Uses<'s>) {}

    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError> {
        let log = Arc::new(read_log(&self.requests, &self.written)?);
        let load = Load::start(self, log, !self.background)?;
        if self.background {
            let line = format!(
                "sending {} requests through {} at {}/s, again and again, until the workflow ends",
                load.requests, self.target, self.rate
            );
            ctx.background.add(id, KIND.name, Box::new(load));
            return Ok(line);
        }
        while !load.finished() {
            if ctx.cancel.is_cancelled() {
                load.stop();
                let _ = Box::new(load).join();
                return Err(StepError::Interrupted);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Box::new(load).join()
    }

    fn leaves_running(&self) -> bool {
        self.background
    }

    fn restart(&self, ctx: &StepContext, id: &str) -> Option<Box<dyn BackgroundTask>> {
        let started = read_log(&self.requests, &self.written)
            .and_then(|log| Load::start(self, Arc::new(log), false));
        match started {
            Ok(load) => Some(Box::new(load)),
            Err(e) => {
                super::background::fail(ctx, id, e);
                None
            }
        }
    }
}

/// One request of the log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Logged {
    #[serde(default = "get")]
    method: String,
    path: String,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

fn get() -> String {
    "GET".into()
}

/// A request ready to send.
struct Prepared {
    method: hyper::Method,
    path: String,
    headers: hyper::HeaderMap,
}

fn read_log(path: &std::path::Path, written: &str) -> Result<Vec<Prepared>, StepError> {
    use std::io::BufRead;
    let bad =
        |line: usize, why: String| StepError::Refused(format!("`{written}` line {line}: {why}"));
    let file = std::fs::File::open(path)
        .map_err(|e| StepError::Missing(format!("cannot read the request log `{written}`: {e}")))?;
    let too_large = || {
        StepError::Refused(format!(
            "the request log `{written}` is larger than {} MiB; split it, or sample it",
            MAX_LOG_BYTES >> 20
        ))
    };
    if file.metadata().is_ok_and(|m| m.len() > MAX_LOG_BYTES) {
        return Err(too_large());
    }
    // A file that grows while it is read (or a pipe) is counted as read.
    let mut total: u64 = 0;
    let mut out = Vec::new();
    let mut reader = std::io::BufReader::new(file);
    let mut line = String::new();
    let mut n = 0;
    loop {
        line.clear();
        let read = std::io::Read::take(&mut reader, MAX_LINE as u64 + 1)
            .read_line(&mut line)
            .map_err(|e| StepError::Missing(format!("cannot read `{written}`: {e}")))?;
        if read == 0 {
            break;
        }
        total += read as u64;
        if total > MAX_LOG_BYTES {
            return Err(too_large());
        }
        n += 1;
        if line.len() > MAX_LINE {
            return Err(bad(n, format!("longer than {} KiB", MAX_LINE >> 10)));
        }
        if line.trim().is_empty() {
            continue;
        }
        if out.len() == MAX_REQUESTS {
            return Err(bad(
                n,
                format!("a log holds at most {MAX_REQUESTS} requests"),
            ));
        }
        let logged: Logged = serde_json::from_str(&line).map_err(|e| bad(n, e.to_string()))?;
        let method = hyper::Method::from_bytes(logged.method.as_bytes())
            .map_err(|_| bad(n, format!("`{}` is not a method", logged.method)))?;
        if !logged.path.starts_with('/') || logged.path.parse::<hyper::Uri>().is_err() {
            return Err(bad(
                n,
                format!(
                    "`{}` is not a path",
                    crate::text::bounded(&logged.path, 200)
                ),
            ));
        }
        let mut headers = hyper::HeaderMap::new();
        for (k, v) in logged.headers {
            let (Ok(k), Ok(v)) = (
                hyper::header::HeaderName::from_bytes(k.as_bytes()),
                hyper::header::HeaderValue::from_str(&v),
            ) else {
                return Err(bad(
                    n,
                    format!("header `{}` cannot be sent", crate::text::bounded(&k, 100)),
                ));
            };
            headers.insert(k, v);
        }
        out.push(Prepared {
            method,
            path: logged.path,
            headers,
        });
    }
    if out.is_empty() {
        return Err(StepError::Refused(format!(
            "the request log `{written}` holds no request"
        )));
    }
    Ok(out)
}

/// What the load counted.
#[derive(Default)]
struct Counts {
    blue: SideMetrics,
    green: SideMetrics,
    sent: AtomicU64,
    unanswered: AtomicU64,
    missed: AtomicU64,
}

/// The load, running on its own thread.
struct Load {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    counts: Arc<Counts>,
    requests: usize,
    rate: f64,
    started: Instant,
}

impl Load {
    fn start(step: &TrafficStep, log: Arc<Vec<Prepared>>, once: bool) -> Result<Load, StepError> {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("traffic")
            .enable_all()
            .build()
            .map_err(|e| {
                StepError::Background(format!("cannot start the traffic's threads: {e}"))
            })?;
        let requests = log.len();
        let (rate, target, timeout, max_in_flight) =
            (step.rate, step.target, step.timeout, step.max_in_flight);
        let (halt, tally) = (stop.clone(), counts.clone());
        let thread = std::thread::Builder::new()
            .name("traffic".into())
            .spawn(move || {
                runtime.block_on(send(
                    log,
                    rate,
                    target,
                    timeout,
                    max_in_flight,
                    once,
                    halt,
                    tally,
                ));
            })
            .map_err(|e| {
                StepError::Background(format!("cannot start the traffic's thread: {e}"))
            })?;
        Ok(Load {
            stop,
            thread,
            counts,
            requests,
            rate,
            started: Instant::now(),
        })
    }
}

/// What the load did, in one line.
fn summary(counts: &Counts, rate: f64, started: Instant) -> String {
    let side = |name: &str, m: &SideMetrics| {
        let s = m.snapshot();
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}ms"));
        format!(
            "{name} {} ({} failed, p50 {}, p99 {})",
            s.requests,
            s.failures,
            ms(s.p50_ms),
            ms(s.p99_ms)
        )
    };
    let elapsed = started.elapsed().as_secs_f64().max(1e-3);
    let sent = counts.sent.load(Ordering::Relaxed);
    format!(
        "sent {sent} requests in {:.1}s ({:.0}/s of {}/s asked): {}, {}; {} unanswered, {} missed (more than the in-flight cap)",
        elapsed,
        sent as f64 / elapsed,
        rate,
        side("blue", &counts.blue),
        side("green", &counts.green),
        counts.unanswered.load(Ordering::Relaxed),
        counts.missed.load(Ordering::Relaxed)
    )
}

#[allow(clippy::too_many_arguments)]
async fn send(
    log: Arc<Vec<Prepared>>,
    rate: f64,
    target: SocketAddr,
    timeout: Duration,
    max_in_flight: usize,
    once: bool,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .build_http();
    let client = Arc::new(client);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let gap = Duration::from_secs_f64(1.0 / rate);
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut n: u64 = 0;
    'outer: loop {
        for request in log.iter() {
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            tokio::time::sleep_until(start + gap.mul_f64(n as f64)).await;
            n += 1;
            let Ok(slot) = in_flight.clone().try_acquire_owned() else {
                counts.missed.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let Ok(uri) = format!("http://{target}{}", request.path).parse::<hyper::Uri>() else {
                continue;
            };
            let mut r = Request::new(Empty::new());
            *r.method_mut() = request.method.clone();
            *r.uri_mut() = uri;
            *r.headers_mut() = request.headers.clone();
            let (client, counts) = (client.clone(), counts.clone());
            counts.sent.fetch_add(1, Ordering::Relaxed);
            tasks.spawn(async move {
                let asked = Instant::now();
                let answered = tokio::time::timeout(timeout, async {
                    let response = client.request(r).await.ok()?;
                    let side = match response
                        .headers()
                        .get(crate::router::forward::SIDE_HEADER)
                        .map(|v| v.as_bytes())
                    {
                        Some(b"green") => Side::Green,
                        _ => Side::Blue,
                    };
                    let failed = response.status().is_server_error();
                    // Read the whole answer: the latency is the client's.
                    response.into_body().collect().await.ok()?;
                    Some((side, failed))
                })
                .await
                .ok()
                .flatten();
                match answered {
                    Some((Side::Blue, failed)) => counts.blue.answered(asked.elapsed(), failed),
                    Some((Side::Green, failed)) => counts.green.answered(asked.elapsed(), failed),
                    None => {
                        counts.unanswered.fetch_add(1, Ordering::Relaxed);
                    }
                }
                drop(slot);
            });
            while tasks.try_join_next().is_some() {}
        }
        if once {
            break;
        }
    }
    while tasks.join_next().await.is_some() {}
}

impl BackgroundTask for Load {
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn finished(&self) -> bool {
        self.thread.is_finished()
    }

    fn join(self: Box<Self>) -> Result<String, StepError> {
        self.stop.store(true, Ordering::Relaxed);
        let Load {
            thread,
            counts,
            rate,
            started,
            ..
        } = *self;
        thread
            .join()
            .map_err(|_| StepError::Panicked("the traffic's thread panicked".into()))?;
        // Counted once every request in flight has ended.
        Ok(summary(&counts, rate, started))
    }

    fn look(&mut self, _now: Instant) -> Option<String> {
        None
    }

    fn freshness(&self) -> Freshness {
        Freshness::CaughtUp
    }

    fn status(&self, state: &mut crate::state::StepState) {
        state.set_own_field("load", Some(summary(&self.counts, self.rate, self.started)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_too_large_to_hold_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.ndjson");
        let line = "{\"path\": \"/rows/messages/k\"}\n";
        std::fs::write(&path, line.repeat(3)).unwrap();
        assert_eq!(read_log(&path, "requests.ndjson").unwrap().len(), 3);
        // Sparse: as large as it says, without taking the disk.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(MAX_LOG_BYTES + 1).unwrap();
        let e = read_log(&path, "requests.ndjson")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("larger than 256 MiB"), "{e}");
    }
}
