//! Forwarding one request: decide the side, rewrite the head for the
//! read-api (its address; hop-by-hop headers dropped; the client's address
//! in `x-forwarded-for`), send it over a pooled keep-alive connection with
//! the body streamed, and stream the answer back with the side that
//! served it in `x-switchyard-side`. A read-api that does not answer in
//! time or cannot be reached gets the client a 504 or 502, counted against
//! that side.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::config::{Backend, RouterConfig};
use super::decide::Decider;
use super::decide::is_safe;
use super::metrics::Metrics;
use super::mirror::{MIRROR_HEADER, Mirror, Tee};
use super::routing::{Routing, Side};

/// A response body: the read-api's, streamed, or the router's own.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// The header that names the side that answered.
pub const SIDE_HEADER: &str = "x-switchyard-side";

/// Idle connections kept per read-api.
const IDLE_PER_BACKEND: usize = 256;

/// Headers that belong to one connection, not to the request (RFC 9110
/// §7.6.1), plus the old proxy ones.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Sends requests on to the read-apis.
pub struct Forwarder {
    client: Client<HttpConnector, Incoming>,
    blue: Backend,
    green: Backend,
    timeout: Duration,
    decider: Decider,
    routing: Arc<RwLock<Arc<Routing>>>,
    metrics: Arc<Metrics>,
    mirror: Mirror,
    watermark: HeaderName,
}

impl Forwarder {
    /// A forwarder for `config`, deciding with `decider` under the routing
    /// state in `routing`, mirroring through `mirror`. Call it inside the
    /// router's runtime.
    pub fn new(
        config: &RouterConfig,
        decider: Decider,
        routing: Arc<RwLock<Arc<Routing>>>,
        metrics: Arc<Metrics>,
        mirror: Mirror,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(IDLE_PER_BACKEND)
            .build(connector);
        Forwarder {
            client,
            blue: config.blue.clone(),
            green: config.green.clone(),
            timeout: config.timeout,
            decider,
            routing,
            metrics,
            mirror,
            watermark: config.watermark_header.clone(),
        }
    }

    /// The routing state in force.
    pub fn routing(&self) -> Arc<Routing> {
        self.routing
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Serves one client request from `peer`.
    pub async fn forward(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, Infallible> {
        let routing = self.routing();
        let (mut parts, body) = request.into_parts();
        let choice = self.decider.decide_async(&parts, &routing).await;
        let side = choice.side;
        let backend = match side {
            Side::Blue => &self.blue,
            Side::Green => &self.green,
        };
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let Ok(uri) = Uri::builder()
            .scheme(backend.scheme.clone())
            .authority(backend.authority.clone())
            .path_and_query(path)
            .build()
        else {
            self.metrics
                .refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(own_answer(
                StatusCode::BAD_REQUEST,
                "the request's target cannot be forwarded",
                None,
            ));
        };
        let host = parts.headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        // Only the router marks a request as a mirror's copy.
        parts.headers.remove(MIRROR_HEADER);
        if let Some(host) = host {
            parts
                .headers
                .insert(HeaderName::from_static("x-forwarded-host"), host);
        }
        append_forwarded_for(&mut parts.headers, peer);
        parts.headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static("http"),
        );
        parts.uri = uri;
        // The pooled client speaks HTTP/1.1 to read-apis whatever the
        // client spoke to the router.
        parts.version = Version::HTTP_11;
        // Only reads are mirrored, whatever a plugin says: safe methods
        // without a body.
        let mirrored = (choice.mirror && is_safe(&parts.method) && body.is_end_stream())
            .then(|| self.mirror.offer(&parts, side))
            .flatten();
        let started = Instant::now();
        let sent = tokio::time::timeout(
            self.timeout,
            self.client.request(Request::from_parts(parts, body)),
        )
        .await;
        let counts = self.metrics.side(side);
        match sent {
            Ok(Ok(response)) => {
                counts.answered(started.elapsed(), response.status().is_server_error());
                let (mut head, body) = response.into_parts();
                strip_hop_by_hop(&mut head.headers);
                head.headers.insert(
                    HeaderName::from_static(SIDE_HEADER),
                    HeaderValue::from_static(side.name()),
                );
                let body = match mirrored {
                    Some(tell) => Tee::new(
                        body,
                        head.status.as_u16(),
                        head.headers.clone(),
                        self.mirror.capture(),
                        self.watermark.clone(),
                        tell,
                    )
                    .boxed(),
                    None => body.boxed(),
                };
                Ok(Response::from_parts(head, body))
            }
            Ok(Err(e)) => {
                counts.unreachable(started.elapsed());
                tracing::debug!("read-api on {} failed: {e}", side.name());
                Ok(own_answer(
                    StatusCode::BAD_GATEWAY,
                    "the read-api could not be reached",
                    Some(side),
                ))
            }
            Err(_) => {
                counts.unreachable(started.elapsed());
                Ok(own_answer(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the read-api did not answer in time",
                    Some(side),
                ))
            }
        }
    }
}

/// Drops the headers that belong to one connection, including those the
/// `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

fn append_forwarded_for(headers: &mut HeaderMap, peer: SocketAddr) {
    let name = HeaderName::from_static("x-forwarded-for");
    let ip = peer.ip().to_string();
    let value = match headers.get(&name).and_then(|v| v.to_str().ok()) {
        Some(before) => format!("{before}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(name, v);
    }
}

/// A JSON answer of the router's own (the admin endpoint's, the example
/// read-api's).
pub fn json_answer(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let text = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut response = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An answer of the router's own, with a one-line text body.
pub fn own_answer(status: StatusCode, text: &str, side: Option<Side>) -> Response<Body> {
    let body = Full::new(Bytes::from(format!("{text}\n")))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(side) = side {
        response.headers_mut().insert(
            HeaderName::from_static(SIDE_HEADER),
            HeaderValue::from_static(side.name()),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_headers_stay_on_their_connection() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("x-user-id", HeaderValue::from_static("u1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-user-id"));
        append_forwarded_for(&mut h, "10.0.0.2:5000".parse().unwrap());
        append_forwarded_for(&mut h, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(h["x-forwarded-for"], "10.0.0.2, 127.0.0.1");
    }
}
