//! Which side serves one request. In order: a rollback or a cutover
//! overrides everything; then the rule — the `route` plugin, or without
//! one the sticky header — names a side or says "follow the shift" and
//! gives the sticky key; a key the operator pinned goes where the pin
//! says; the rest follow the share by the key's bucket (see `bucket`).
//!
//! A plugin that traps, runs out of time or returns an error sends that
//! request to blue and is counted; after several failures in a row it is
//! not asked for a second, so a broken plugin cannot hold every request
//! for its whole deadline.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::Method;
use hyper::header::HeaderName;
use hyper::http::request::Parts;

use super::bucket::{BUCKETS, bucket};
use super::metrics::Metrics;
use super::plugin_threads::{PluginThreads, Unanswered};
use super::routing::{MAX_TEXT, Mode, Routing, Side};
use crate::plugin::RoutePlugin;
use crate::plugin::contract::Route;
use crate::plugin::instance::Instance;
use crate::plugin::route::{self as world, Request};

/// Failures in a row after which the plugin rests.
const FAILURES_BEFORE_REST: u32 = 5;
/// How long a failing plugin rests.
const REST: Duration = Duration::from_secs(1);

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// The side that answers the client.
    pub side: Side,
    /// Whether a copy goes to the other side.
    pub mirror: bool,
}

/// How requests are sorted before the share applies.
pub enum Rule {
    /// Bucket on this header; no side named, nothing mirrored unless the
    /// routing state turns mirroring on (safe methods only).
    Header(HeaderName),
    /// Ask the plugin, showing it these headers.
    Plugin {
        /// The plugin.
        plugin: RoutePlugin,
        /// The headers it sees.
        headers: Vec<HeaderName>,
    },
}

/// Threads that run route plugin calls for the proxy (see
/// `plugin_threads`).
const PLUGIN_THREADS: usize = 2;
/// Requests waiting for a plugin thread; more go to blue unasked.
const PLUGIN_QUEUE: usize = 1024;

/// What the rule said of one request, before pins and the share.
struct Hint {
    named: Option<Side>,
    key: Option<Vec<u8>>,
    mirror: bool,
}

/// Decides for every request of one router.
pub struct Decider {
    rule: Rule,
    timeout: Duration,
    metrics: Arc<Metrics>,
    /// Idle plugin instances for calls on the caller's thread.
    idle: Mutex<Vec<Instance<Route>>>,
    /// The plugin threads, for calls from the proxy.
    pool: Option<PluginThreads<Request, Result<world::Decision, String>>>,
    failures_in_a_row: AtomicU32,
    resting_until: Mutex<Option<Instant>>,
    /// Spreads requests without a sticky key over the buckets.
    keyless: AtomicU64,
}

impl Decider {
    /// Decides by `rule`, giving a plugin `timeout` per call; a plugin's
    /// threads start here.
    pub fn new(rule: Rule, timeout: Duration, metrics: Arc<Metrics>) -> Self {
        let pool = match &rule {
            Rule::Plugin { plugin, .. } => Some(PluginThreads::start(
                plugin,
                "route-plugin",
                PLUGIN_THREADS,
                PLUGIN_QUEUE,
                move |instance, request| call(instance, request, timeout),
            )),
            Rule::Header(_) => None,
        };
        Decider {
            rule,
            timeout,
            metrics,
            idle: Mutex::new(Vec::new()),
            pool,
            failures_in_a_row: AtomicU32::new(0),
            resting_until: Mutex::new(None),
            keyless: AtomicU64::new(0),
        }
    }

    /// Where the request with head `parts` goes under `routing`, a plugin
    /// asked on this thread.
    pub fn decide(&self, parts: &Parts, routing: &Routing) -> Choice {
        if let Some(choice) = fixed(routing) {
            return choice;
        }
        let hint = match &self.rule {
            Rule::Header(name) => Some(header_hint(name, parts)),
            Rule::Plugin { plugin, headers } => {
                if self.resting() {
                    None
                } else {
                    let request = request_of(parts, headers);
                    let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
                    let mut instance = taken.unwrap_or_else(|| plugin.instance());
                    let answer = call(&mut instance, &request, self.timeout);
                    self.idle
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(instance);
                    self.judge(answer)
                }
            }
        };
        self.choose(hint, routing)
    }

    /// Like [`Decider::decide`], a plugin asked on the plugin threads:
    /// the proxy's way.
    pub async fn decide_async(&self, parts: &Parts, routing: &Routing) -> Choice {
        if let Some(choice) = fixed(routing) {
            return choice;
        }
        let hint = match (&self.rule, &self.pool) {
            (Rule::Plugin { headers, .. }, Some(pool)) => {
                if self.resting() {
                    None
                } else {
                    // The call's own deadline, and time in the queue.
                    let wait = self.timeout * 2 + Duration::from_millis(100);
                    match pool.ask(request_of(parts, headers), wait).await {
                        Err(Unanswered::Busy) => {
                            self.metrics.plugin_skipped.fetch_add(1, Ordering::Relaxed);
                            None
                        }
                        Err(Unanswered::Late) => {
                            self.judge(Err("no plugin thread answered in time".to_string()))
                        }
                        Ok(answer) => self.judge(answer),
                    }
                }
            }
            (Rule::Header(name), _) => Some(header_hint(name, parts)),
            (Rule::Plugin { .. }, None) => None,
        };
        self.choose(hint, routing)
    }

    /// A plugin's answer as a hint, its failures counted.
    fn judge(&self, answer: Result<world::Decision, String>) -> Option<Hint> {
        match answer {
            Ok(d) => {
                self.failures_in_a_row.store(0, Ordering::Relaxed);
                Some(Hint {
                    named: match d.side {
                        world::Side::Blue => Some(Side::Blue),
                        world::Side::Green => Some(Side::Green),
                        world::Side::Shift => None,
                    },
                    // A key longer than any pin is a plugin's mistake: the
                    // request follows the share without one.
                    key: d
                        .sticky_key
                        .filter(|k| k.len() <= MAX_TEXT)
                        .map(String::into_bytes),
                    mirror: d.mirror,
                })
            }
            Err(why) => {
                self.failed(&why);
                None
            }
        }
    }

    /// The side for `hint` (blue without one: the rule failed).
    fn choose(&self, hint: Option<Hint>, routing: &Routing) -> Choice {
        let Some(Hint { named, key, mirror }) = hint else {
            return Choice {
                side: Side::Blue,
                mirror: false,
            };
        };
        let pinned = key.as_deref().and_then(|k| {
            std::str::from_utf8(k)
                .ok()
                .and_then(|k| routing.pins.get(k).copied())
        });
        let side = pinned.or(named).unwrap_or_else(|| {
            let b = match &key {
                Some(k) => bucket(k),
                None => (self.keyless.fetch_add(1, Ordering::Relaxed) % u64::from(BUCKETS)) as u32,
            };
            if b < routing.green_share {
                Side::Green
            } else {
                Side::Blue
            }
        });
        Choice {
            side,
            mirror: mirror && routing.mirror,
        }
    }

    /// Whether the plugin rests after failing; a request that skips it is
    /// counted.
    fn resting(&self) -> bool {
        let mut until = self.resting_until.lock().unwrap_or_else(|p| p.into_inner());
        let resting = match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        };
        if resting {
            self.metrics.plugin_skipped.fetch_add(1, Ordering::Relaxed);
        }
        resting
    }

    fn failed(&self, why: &str) {
        self.metrics.plugin_failures.fetch_add(1, Ordering::Relaxed);
        let in_a_row = self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        if in_a_row >= FAILURES_BEFORE_REST {
            self.failures_in_a_row.store(0, Ordering::Relaxed);
            *self.resting_until.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(Instant::now() + REST);
            tracing::warn!(
                "route plugin failed {in_a_row} times in a row (last: {}); requests go to blue without asking it for {}",
                crate::text::bounded(why, 300),
                humantime::format_duration(REST)
            );
        } else {
            tracing::debug!(
                "route plugin failed; the request goes to blue: {}",
                crate::text::bounded(why, 300)
            );
        }
    }
}

/// A rollback or a cutover: the side whatever the request.
fn fixed(routing: &Routing) -> Option<Choice> {
    let side = match routing.mode {
        Mode::AllBlue => Side::Blue,
        Mode::AllGreen => Side::Green,
        Mode::Shift => return None,
    };
    Some(Choice {
        side,
        mirror: false,
    })
}

/// The built-in rule: the sticky key from one header; safe methods may
/// be mirrored.
fn header_hint(name: &HeaderName, parts: &Parts) -> Hint {
    Hint {
        named: None,
        key: parts.headers.get(name).map(|v| v.as_bytes().to_vec()),
        mirror: is_safe(&parts.method),
    }
}

/// What the plugin is shown of a request.
fn request_of(parts: &Parts, headers: &[HeaderName]) -> Request {
    Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: headers
            .iter()
            .flat_map(|name| {
                parts.headers.get_all(name).iter().filter_map(move |v| {
                    v.to_str()
                        .ok()
                        .map(|v| (name.as_str().to_string(), v.to_string()))
                })
            })
            .collect(),
    }
}

/// One call of the plugin, its failures in words.
fn call(
    instance: &mut Instance<Route>,
    request: &Request,
    timeout: Duration,
) -> Result<world::Decision, String> {
    match instance.route(request, timeout) {
        Ok(Ok(decision)) => Ok(decision),
        Ok(Err(refusal)) => Err(format!(
            "refused the request: {}",
            crate::plugin::error::describe(&refusal)
        )),
        Err(failure) => Err(failure.to_string()),
    }
}

/// Methods that read only (RFC 9110 §9.2.1): the only ones mirrored.
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(user: Option<&str>) -> Parts {
        let mut b = hyper::Request::builder().uri("/rooms/1");
        if let Some(u) = user {
            b = b.header("x-user-id", u);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn pins_beat_the_share_and_a_rollback_beats_everything() {
        let d = Decider::new(
            Rule::Header(HeaderName::from_static("x-user-id")),
            Duration::from_millis(20),
            Arc::default(),
        );
        let mut routing = Routing::default();
        assert_eq!(d.decide(&parts(Some("u1")), &routing).side, Side::Blue);
        routing.green_share = BUCKETS;
        assert_eq!(d.decide(&parts(Some("u1")), &routing).side, Side::Green);
        routing.pins.insert("u1".into(), Side::Blue);
        assert_eq!(d.decide(&parts(Some("u1")), &routing).side, Side::Blue);
        assert_eq!(d.decide(&parts(Some("u2")), &routing).side, Side::Green);
        routing.mode = Mode::AllBlue;
        assert_eq!(d.decide(&parts(Some("u2")), &routing).side, Side::Blue);
        routing.mode = Mode::AllGreen;
        assert_eq!(d.decide(&parts(Some("u1")), &routing).side, Side::Green);
    }

    #[test]
    fn requests_without_a_key_spread_by_the_share() {
        let d = Decider::new(
            Rule::Header(HeaderName::from_static("x-user-id")),
            Duration::from_millis(20),
            Arc::default(),
        );
        let routing = Routing {
            green_share: 2500,
            ..Routing::default()
        };
        let green = (0..10_000)
            .filter(|_| d.decide(&parts(None), &routing).side == Side::Green)
            .count();
        assert!((2400..=2600).contains(&green), "{green}");
    }
}
