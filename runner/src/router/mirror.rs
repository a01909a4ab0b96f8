//! Mirroring: a copy of a read goes to the other side, and the two
//! answers are compared — without ever slowing the client's answer.
//!
//! The client is answered by the primary side as usual; its answer's body
//! is copied as it streams past (up to `mirror_body_limit`). A job then
//! waits in a bounded queue (full: the job is dropped and counted) for a
//! worker that sends the same request to the other side, marked with
//! `x-switchyard-mirror: 1`, and compares — with the built-in comparison
//! (`diff`), or with the workflow's `response-check` plugin
//! (`mirror_plugin`), which names the places two answers differ in its
//! own terms:
//!
//! 1. the answers differ and both report the store's watermark, and the
//!    watermarks differ: the sides have applied different parts of the
//!    log, so both are asked again after `mirror_recheck_after`; still at
//!    different watermarks, the pair is counted as lagging, never as a
//!    mismatch (answers that agree are matched whatever the watermarks);
//! 2. the answers still differ: the primary side is asked a second time, and
//!    what differs between its own two answers is noise (timestamps, a
//!    random order), not counted against the other side;
//! 3. what is left is a mismatch, kept as a sample (the request, both
//!    answers, the watermarks and what differs) in `mirror-samples.ndjson`
//!    in the state folder, at most `mirror_samples` of them.
//!
//! Only requests without a body are mirrored (reads: the decider marks
//! only safe methods, or what the route plugin says). A response-check
//! plugin runs on its own thread; one that fails or says `ignore` leaves
//! the pair uncounted either way (`unjudged`, `skipped`), never a
//! mismatch.

use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::{Body as HttpBody, Frame, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::config::{Backend, RouterConfig};
use super::diff::{self, Answer, Differences};
use super::plugin_threads::{PluginThreads, Unanswered};
use super::routing::Side;
use crate::plugin::ResponseCheckPlugin;
use crate::plugin::response_check::{Comparison, Exchange, Response};

/// The header that marks a mirrored request.
pub const MIRROR_HEADER: &str = "x-switchyard-mirror";
/// Mirror requests in flight at once.
const IN_FLIGHT: usize = 32;
/// Differences named in one sample.
const SAMPLE_PATHS: usize = 50;
/// A body shown in a sample.
const SAMPLE_BODY: usize = 16 << 10;
/// Comparisons waiting for the response-check plugin's thread (each
/// holds two answers; more are unjudged, counted).
const PLUGIN_QUEUE: usize = 4;
/// Answers the mirror may hold at once besides its queue's, each up to
/// `mirror_body_limit`: up to four per pair compared (primary, other, and
/// both again after a lag) and two per comparison waiting for or in the
/// plugin. `config` bounds the sum.
pub const HELD_BESIDES_QUEUE: usize = 4 * IN_FLIGHT + 2 * (PLUGIN_QUEUE + 1);
/// Plugin failures told at `warn`; the rest at `debug` (all are counted).
const FAILURES_TOLD: u64 = 3;

/// How mirrored pairs fared.
#[derive(Debug, Default)]
pub struct MirrorCounts {
    /// Jobs taken into the queue.
    pub mirrored: AtomicU64,
    /// Jobs dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Pairs not compared: an answer too large, the primary failed, or the
    /// response-check plugin said to ignore the read.
    pub skipped: AtomicU64,
    /// Pairs the response-check plugin could not judge (it failed).
    pub unjudged: AtomicU64,
    /// The other side did not answer.
    pub failed: AtomicU64,
    /// Pairs that agree.
    pub matched: AtomicU64,
    /// Pairs that agree once noise is taken out.
    pub noisy: AtomicU64,
    /// Pairs that differ for real.
    pub mismatched: AtomicU64,
    /// Pairs whose sides had applied different parts of the log.
    pub lagging: AtomicU64,
}

/// The mirror's counts at one moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MirrorSnapshot {
    /// Jobs taken.
    pub mirrored: u64,
    /// Jobs dropped (queue full).
    pub dropped: u64,
    /// Pairs not compared.
    pub skipped: u64,
    /// Pairs the response-check plugin failed on.
    #[serde(default)]
    pub unjudged: u64,
    /// The other side did not answer.
    pub failed: u64,
    /// Pairs that agree.
    pub matched: u64,
    /// Pairs that agree once noise is out.
    pub noisy: u64,
    /// Pairs that differ.
    pub mismatched: u64,
    /// Pairs apart by lag.
    pub lagging: u64,
}

impl MirrorSnapshot {
    /// Pairs compared to a verdict (agreeing, noisy or differing).
    pub fn compared(&self) -> u64 {
        self.matched + self.noisy + self.mismatched
    }

    /// What happened between `earlier` and this one.
    pub fn since(&self, earlier: &MirrorSnapshot) -> MirrorSnapshot {
        MirrorSnapshot {
            mirrored: self.mirrored.saturating_sub(earlier.mirrored),
            dropped: self.dropped.saturating_sub(earlier.dropped),
            skipped: self.skipped.saturating_sub(earlier.skipped),
            unjudged: self.unjudged.saturating_sub(earlier.unjudged),
            failed: self.failed.saturating_sub(earlier.failed),
            matched: self.matched.saturating_sub(earlier.matched),
            noisy: self.noisy.saturating_sub(earlier.noisy),
            mismatched: self.mismatched.saturating_sub(earlier.mismatched),
            lagging: self.lagging.saturating_sub(earlier.lagging),
        }
    }
}

impl MirrorCounts {
    /// The counts as they are now.
    pub fn snapshot(&self) -> MirrorSnapshot {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MirrorSnapshot {
            mirrored: l(&self.mirrored),
            dropped: l(&self.dropped),
            skipped: l(&self.skipped),
            unjudged: l(&self.unjudged),
            failed: l(&self.failed),
            matched: l(&self.matched),
            noisy: l(&self.noisy),
            mismatched: l(&self.mismatched),
            lagging: l(&self.lagging),
        }
    }
}

fn add(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// One request to mirror, with the primary side's answer to come.
pub struct Job {
    request: Asked,
    primary: Side,
    answer: oneshot::Receiver<Option<Answer>>,
}

/// What is asked of each side.
struct Asked {
    method: Method,
    path: String,
    headers: HeaderMap,
}

/// The mirror of one router: its queue and its settings.
pub struct Mirror {
    queue: mpsc::Sender<Job>,
    counts: Arc<MirrorCounts>,
    compared: Vec<HeaderName>,
    body_limit: usize,
}

/// What the workers work with.
struct Worker {
    client: Client<HttpConnector, Empty<Bytes>>,
    blue: Backend,
    green: Backend,
    timeout: Duration,
    compared: Vec<HeaderName>,
    watermark: HeaderName,
    comparer: Comparer,
    body_limit: usize,
    recheck_after: Duration,
    counts: Arc<MirrorCounts>,
    samples: Samples,
}

/// How two answers are compared.
enum Comparer {
    /// The built-in comparison, leaving out these JSON fields.
    BuiltIn(Vec<String>),
    /// A response-check plugin on its own thread.
    Plugin {
        name: String,
        threads: PluginThreads<Exchange, Result<Comparison, String>>,
        /// Places in the plugin's queue: a comparison waits for one, so
        /// the queue is never full and a burst is judged, not refused.
        places: Semaphore,
        /// The longest a comparison may wait for the plugin once queued.
        wait: Duration,
        failures: AtomicU64,
    },
}

/// Why a pair got no verdict.
enum Unjudged {
    /// The plugin said not to compare this read.
    Ignored,
    /// The plugin failed.
    Failed,
}

impl Comparer {
    fn new(config: &RouterConfig, plugin: Option<ResponseCheckPlugin>) -> Comparer {
        let Some(plugin) = plugin else {
            return Comparer::BuiltIn(config.mirror_ignore.clone());
        };
        // Everything ahead of it in the queue, and its own call.
        let wait = plugin.limits().timeout * (PLUGIN_QUEUE as u32 + 1) + Duration::from_millis(100);
        Comparer::Plugin {
            name: plugin.name().to_string(),
            threads: PluginThreads::start(
                &plugin,
                "mirror-plugin",
                1,
                PLUGIN_QUEUE,
                |instance, exchange| match instance.compare(exchange) {
                    Ok(Ok(comparison)) => Ok(comparison),
                    Ok(Err(refusal)) => Err(format!(
                        "refused the answers: {}",
                        crate::plugin::error::describe(&refusal)
                    )),
                    Err(failure) => Err(failure.to_string()),
                },
            ),
            places: Semaphore::new(PLUGIN_QUEUE),
            wait,
            failures: AtomicU64::new(0),
        }
    }

    /// Where `a` and `b`, two answers to `job`, differ.
    async fn differences(
        &self,
        job: &Asked,
        a: &Answer,
        b: &Answer,
    ) -> Result<Differences, Unjudged> {
        let (name, threads, places, wait, failures) = match self {
            Comparer::BuiltIn(ignore) => return Ok(diff::differences(a, b, ignore)),
            Comparer::Plugin {
                name,
                threads,
                places,
                wait,
                failures,
            } => (name, threads, places, *wait, failures),
        };
        let Ok(_place) = places.acquire().await else {
            return Err(Unjudged::Failed);
        };
        let why = match threads.ask(exchange(job, a, b), wait).await {
            Ok(Ok(Comparison::Same)) => return Ok(Differences::new()),
            Ok(Ok(Comparison::Differ(places))) => {
                let mut named = Differences::new();
                for place in &places {
                    diff::note(&mut named, place);
                }
                return Ok(named);
            }
            Ok(Ok(Comparison::Ignore)) => return Err(Unjudged::Ignored),
            Ok(Err(why)) => why,
            Err(Unanswered::Busy) => "its queue was full".to_string(),
            Err(Unanswered::Late) => "it did not answer in time".to_string(),
        };
        let told = failures.fetch_add(1, Ordering::Relaxed);
        if told < FAILURES_TOLD {
            tracing::warn!(
                plugin = name.as_str(),
                "the mirror's response-check plugin could not compare the answers to {} {} (the pair is counted as unjudged{}): {}",
                job.method,
                crate::text::bounded(&job.path, 200),
                if told + 1 == FAILURES_TOLD {
                    "; further failures are only counted"
                } else {
                    ""
                },
                crate::text::bounded(&why, 300)
            );
        } else {
            tracing::debug!(
                plugin = name.as_str(),
                "response-check failed: {}",
                crate::text::bounded(&why, 300)
            );
        }
        Err(Unjudged::Failed)
    }
}

/// What a response-check plugin is shown of a request and two answers.
fn exchange(job: &Asked, a: &Answer, b: &Answer) -> Exchange {
    let (path, query) = job.path.split_once('?').unwrap_or((&job.path, ""));
    let response = |x: &Answer| Response {
        status: x.status,
        headers: x
            .headers
            .iter()
            .filter_map(|(n, v)| v.as_ref().map(|v| (n.clone(), v.clone())))
            .collect(),
        body: x.body.clone(),
    };
    Exchange {
        method: job.method.as_str().to_string(),
        path: path.to_string(),
        query: query.to_string(),
        first: response(a),
        second: response(b),
    }
}

/// How one mirrored pair ended.
enum Outcome {
    Matched,
    Noisy,
    Lagging,
    /// The other side did not answer (or not again).
    Failed,
    Skipped,
    Unjudged,
    Mismatched(Box<Mismatch>),
}

/// A pair that differs for real, as its sample shows it.
struct Mismatch {
    primary: Answer,
    other: Answer,
    real: Differences,
    noise: Differences,
}

impl From<Unjudged> for Outcome {
    fn from(u: Unjudged) -> Outcome {
        match u {
            Unjudged::Ignored => Outcome::Skipped,
            Unjudged::Failed => Outcome::Unjudged,
        }
    }
}

impl Mirror {
    /// Starts the mirror's workers on the current runtime, comparing with
    /// `plugin` when there is one; samples go to `samples` (kept to
    /// `config.mirror_samples`).
    pub fn start(
        config: &RouterConfig,
        plugin: Option<ResponseCheckPlugin>,
        samples: PathBuf,
        counts: Arc<MirrorCounts>,
    ) -> Mirror {
        let (queue, jobs) = mpsc::channel(config.mirror_queue);
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let worker = Arc::new(Worker {
            client: Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(connector),
            blue: config.blue.clone(),
            green: config.green.clone(),
            timeout: config.timeout,
            compared: config.mirror_headers.clone(),
            watermark: config.watermark_header.clone(),
            comparer: Comparer::new(config, plugin),
            body_limit: config.mirror_body_limit,
            recheck_after: config.mirror_recheck_after,
            counts: counts.clone(),
            samples: Samples {
                // Whoever wrote samples before (this router started
                // again, another router of the workflow) counts too.
                left: AtomicU64::new(
                    (config.mirror_samples as u64).saturating_sub(samples_in(&samples)),
                ),
                path: samples,
                most_bytes: config.mirror_samples as u64 * SAMPLE_BYTES,
            },
        });
        tokio::spawn(work(worker, jobs));
        Mirror {
            queue,
            counts,
            compared: config.mirror_headers.clone(),
            body_limit: config.mirror_body_limit,
        }
    }

    /// Offers the request with head `parts` (already rewritten for the
    /// primary side) for mirroring; the primary's answer is to be sent on
    /// the returned channel. `None` when the queue is full (counted).
    pub fn offer(
        &self,
        parts: &hyper::http::request::Parts,
        primary: Side,
    ) -> Option<oneshot::Sender<Option<Answer>>> {
        let (tell, answer) = oneshot::channel();
        let mut headers = parts.headers.clone();
        headers.insert(MIRROR_HEADER, HeaderValue::from_static("1"));
        let job = Job {
            request: Asked {
                method: parts.method.clone(),
                path: parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string(),
                headers,
            },
            primary,
            answer,
        };
        match self.queue.try_send(job) {
            Ok(()) => {
                add(&self.counts.mirrored);
                Some(tell)
            }
            Err(_) => {
                add(&self.counts.dropped);
                None
            }
        }
    }

    /// The headers compared, and the most of a body that is kept.
    pub fn capture(&self) -> (Vec<HeaderName>, usize) {
        (self.compared.clone(), self.body_limit)
    }
}

async fn work(worker: Arc<Worker>, mut jobs: mpsc::Receiver<Job>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(job) = jobs.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let worker = worker.clone();
        tokio::spawn(async move {
            worker.compare(job).await;
            drop(slot);
        });
    }
}

impl Worker {
    fn backend(&self, side: Side) -> &Backend {
        match side {
            Side::Blue => &self.blue,
            Side::Green => &self.green,
        }
    }

    /// Asks `side` the job's request; `None` if it did not answer in full.
    async fn ask(&self, job: &Asked, side: Side) -> Option<Answer> {
        let backend = self.backend(side);
        let uri = hyper::Uri::builder()
            .scheme(backend.scheme.clone())
            .authority(backend.authority.clone())
            .path_and_query(job.path.as_str())
            .build()
            .ok()?;
        let mut request = Request::new(Empty::new());
        *request.method_mut() = job.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = job.headers.clone();
        let asked = async {
            let response = self.client.request(request).await.ok()?;
            let (head, body) = response.into_parts();
            let body = Limited::new(body, self.body_limit)
                .collect()
                .await
                .ok()?
                .to_bytes();
            let mut answer = answer_of(
                head.status.as_u16(),
                &head.headers,
                &self.compared,
                body.to_vec(),
            );
            answer.watermark = head
                .headers
                .get(&self.watermark)
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            Some(answer)
        };
        tokio::time::timeout(self.timeout, asked)
            .await
            .ok()
            .flatten()
    }

    async fn compare(&self, job: Job) {
        let Job {
            request: job,
            primary: primary_side,
            answer,
        } = job;
        // The client may read its answer slowly (or it never ends): the
        // worker waits no longer than for a read-api.
        let outcome = match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(Some(primary))) => self.judge(&job, primary_side, primary).await,
            _ => Outcome::Skipped,
        };
        let c = &self.counts;
        match outcome {
            Outcome::Matched => add(&c.matched),
            Outcome::Noisy => add(&c.noisy),
            Outcome::Lagging => add(&c.lagging),
            Outcome::Failed => add(&c.failed),
            Outcome::Skipped => add(&c.skipped),
            Outcome::Unjudged => add(&c.unjudged),
            Outcome::Mismatched(m) => {
                add(&c.mismatched);
                self.samples
                    .keep(&job, primary_side, &m.primary, &m.other, &m.real, &m.noise)
                    .await;
            }
        }
    }

    /// Asks the other side and compares its answer with the primary's.
    async fn judge(&self, job: &Asked, primary_side: Side, primary: Answer) -> Outcome {
        let other_side = primary_side.other();
        let Some(other) = self.ask(job, other_side).await else {
            return Outcome::Failed;
        };
        let (mut primary, mut other) = (primary, other);
        let mut found = match self.comparer.differences(job, &primary, &other).await {
            Ok(found) => found,
            Err(u) => return u.into(),
        };
        if found.is_empty() {
            return Outcome::Matched;
        }
        // 1. Lag: answers that differ while the sides report different
        // watermarks are asked again; still apart, the pair is lagging.
        if let (Some(p), Some(o)) = (marked(&primary), marked(&other))
            && p != o
        {
            tokio::time::sleep(self.recheck_after).await;
            let (again_p, again_o) =
                tokio::join!(self.ask(job, primary_side), self.ask(job, other_side));
            match (again_p, again_o) {
                (Some(p2), Some(o2)) if marked(&p2) == marked(&o2) => {
                    primary = p2;
                    other = o2;
                }
                (Some(_), Some(_)) => return Outcome::Lagging,
                _ => return Outcome::Failed,
            }
            found = match self.comparer.differences(job, &primary, &other).await {
                Ok(found) => found,
                Err(u) => return u.into(),
            };
            if found.is_empty() {
                return Outcome::Matched;
            }
        }

        // 2. Noise: what the primary side changes by itself. Not known (the
        // side or the plugin failed), nothing is taken out: a difference
        // found stays one.
        let noise = match self.ask(job, primary_side).await {
            Some(again) => self
                .comparer
                .differences(job, &primary, &again)
                .await
                .unwrap_or_default(),
            None => Differences::new(),
        };
        let real = diff::without_noise(&found, &noise);
        if real.is_empty() {
            return Outcome::Noisy;
        }
        Outcome::Mismatched(Box::new(Mismatch {
            primary,
            other,
            real,
            noise,
        }))
    }
}

/// The watermark an answer reports.
fn marked(a: &Answer) -> Option<&str> {
    a.watermark.as_deref()
}

/// An answer as the mirror keeps it.
pub fn answer_of(
    status: u16,
    headers: &HeaderMap,
    compared: &[HeaderName],
    body: Vec<u8>,
) -> Answer {
    Answer {
        status,
        headers: compared
            .iter()
            .map(|n| {
                (
                    n.as_str().to_string(),
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(String::from),
                )
            })
            .collect(),
        body,
        watermark: None,
    }
}

/// Mismatch samples, appended to one file.
struct Samples {
    path: PathBuf,
    left: AtomicU64,
    /// The file's largest size, whoever wrote it before (a router
    /// started again, another router of the workflow).
    most_bytes: u64,
}

/// What one sample may take in the file, at most: two bodies, headers,
/// paths.
const SAMPLE_BYTES: u64 = 64 << 10;

impl Samples {
    async fn keep(
        &self,
        job: &Asked,
        primary_side: Side,
        primary: &Answer,
        other: &Answer,
        real: &Differences,
        noise: &Differences,
    ) {
        let taken = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if taken.is_err() {
            return;
        }
        let side = |a: &Answer, s: Side| {
            serde_json::json!({
                "side": s.name(),
                "status": a.status,
                "headers": a.headers,
                "watermark": a.watermark,
                "body": shown(&a.body),
            })
        };
        let line = serde_json::json!({
            "at_ms": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            "method": job.method.as_str(),
            "path": crate::text::bounded(&job.path, 2048),
            "primary": side(primary, primary_side),
            "other": side(other, primary_side.other()),
            "differences": real.iter().take(SAMPLE_PATHS).collect::<Vec<_>>(),
            "noise": noise.iter().take(SAMPLE_PATHS).collect::<Vec<_>>(),
        });
        let (path, most) = (self.path.clone(), self.most_bytes);
        let _ = tokio::task::spawn_blocking(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            if f.metadata()?.len() >= most {
                return Ok(());
            }
            let mut text = serde_json::to_vec(&line).unwrap_or_default();
            text.push(b'\n');
            f.write_all(&text)
        })
        .await;
    }
}

/// The samples a file holds already (its lines).
fn samples_in(path: &std::path::Path) -> u64 {
    use std::io::Read;
    let Ok(file) = std::fs::File::open(path) else {
        return 0;
    };
    let mut lines = 0;
    let mut buf = [0u8; 64 << 10];
    let mut reader = std::io::BufReader::new(file);
    while let Ok(n) = reader.read(&mut buf) {
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
    lines
}

/// A body for a sample: its text when UTF-8, else hex; cut to 16 KiB.
fn shown(body: &[u8]) -> serde_json::Value {
    let cut = &body[..body.len().min(SAMPLE_BODY)];
    match std::str::from_utf8(cut) {
        Ok(t) => serde_json::json!(t),
        Err(_) => serde_json::json!({"hex": hex::encode(cut)}),
    }
}

/// A response body that copies what streams past (up to a limit) and,
/// when it ends, sends the primary side's answer to the mirror.
pub struct Tee {
    inner: Incoming,
    status: u16,
    headers: HeaderMap,
    compared: Vec<HeaderName>,
    watermark: HeaderName,
    copy: Vec<u8>,
    limit: usize,
    over: bool,
    tell: Option<oneshot::Sender<Option<Answer>>>,
}

impl Tee {
    /// Wraps `inner`, the body of an answer with `status` and `headers`.
    pub fn new(
        inner: Incoming,
        status: u16,
        headers: HeaderMap,
        (compared, limit): (Vec<HeaderName>, usize),
        watermark: HeaderName,
        tell: oneshot::Sender<Option<Answer>>,
    ) -> Tee {
        Tee {
            inner,
            status,
            headers,
            compared,
            watermark,
            copy: Vec::new(),
            limit,
            over: false,
            tell: Some(tell),
        }
    }

    fn finish(&mut self, whole: bool) {
        if let Some(tell) = self.tell.take() {
            let answer = (whole && !self.over).then(|| {
                let mut a = answer_of(
                    self.status,
                    &self.headers,
                    &self.compared,
                    std::mem::take(&mut self.copy),
                );
                a.watermark = self
                    .headers
                    .get(&self.watermark)
                    .and_then(|v| v.to_str().ok())
                    .map(String::from);
                a
            });
            let _ = tell.send(answer);
        }
    }
}

impl HttpBody for Tee {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && !this.over
                {
                    if this.copy.len() + data.len() > this.limit {
                        this.over = true;
                        this.copy = Vec::new();
                    } else {
                        this.copy.extend_from_slice(data);
                    }
                }
            }
            Poll::Ready(None) => this.finish(true),
            Poll::Ready(Some(Err(_))) => this.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        // An empty body may end without being polled; a client that went
        // away before the end leaves nothing to compare.
        let whole = self.inner.is_end_stream();
        self.finish(whole);
    }
}
