//! HTTP for the router's tests: a stand-in read-api that answers with its
//! own name (and can be told to fail or be stopped), and a plain HTTP/1.1
//! client on std sockets, one connection per request, so each request is
//! routed afresh.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;

/// A free port on 127.0.0.1 (bound, then let go).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A stand-in read-api on 127.0.0.1.
pub struct Backend {
    /// Where it listens.
    pub address: SocketAddr,
    /// Requests it received.
    pub requests: Arc<AtomicU64>,
    failing: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How a stand-in answers: from the request's path and its headers, and
/// how many requests it received before, a status, headers and a body.
pub type Handler =
    Arc<dyn Fn(&str, &hyper::HeaderMap, u64) -> (u16, Vec<(String, String)>, String) + Send + Sync>;

impl Backend {
    /// Starts one that answers `200 NAME` with the request's
    /// `x-forwarded-for` and path echoed in headers.
    pub fn start(name: &'static str) -> Backend {
        Self::start_on(name, "127.0.0.1:0".parse().expect("address"))
    }

    /// Starts one that answers as `handler` says (500 while failing).
    pub fn start_with(handler: Handler) -> Backend {
        Self::serve(
            "127.0.0.1:0".parse().expect("address"),
            Some(handler),
            "custom",
        )
    }

    /// Like [`Backend::start`], on `address`.
    pub fn start_on(name: &'static str, address: SocketAddr) -> Backend {
        Self::serve(address, None, name)
    }

    fn serve(address: SocketAddr, handler: Option<Handler>, name: &'static str) -> Backend {
        let listener = TcpListener::bind(address).expect("backend binds");
        listener.set_nonblocking(true).expect("nonblocking");
        let address = listener.local_addr().expect("address");
        let requests = Arc::new(AtomicU64::new(0));
        let failing = Arc::new(AtomicBool::new(false));
        let (stop, mut stopped) = watch::channel(false);
        let (count, fail) = (requests.clone(), failing.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let mut connections = tokio::task::JoinSet::new();
                loop {
                    let (stream, _) = tokio::select! {
                        a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                        _ = stopped.wait_for(|s| *s) => break,
                    };
                    let (count, fail, handler) = (count.clone(), fail.clone(), handler.clone());
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let before = count.fetch_add(1, Ordering::Relaxed);
                        let failing = fail.load(Ordering::Relaxed);
                        let forwarded = req
                            .headers()
                            .get("x-forwarded-for")
                            .cloned()
                            .unwrap_or_else(|| hyper::header::HeaderValue::from_static("-"));
                        let (status, headers, body) = match &handler {
                            Some(h) => h(req.uri().path(), req.headers(), before),
                            None => (200, Vec::new(), name.to_string()),
                        };
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() =
                            StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                        for (n, v) in headers {
                            if let (Ok(n), Ok(v)) = (
                                hyper::header::HeaderName::from_bytes(n.as_bytes()),
                                hyper::header::HeaderValue::from_str(&v),
                            ) {
                                response.headers_mut().insert(n, v);
                            }
                        }
                        if failing {
                            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        response
                            .headers_mut()
                            .insert("x-seen-forwarded-for", forwarded);
                        if let Ok(v) = req.uri().path().parse() {
                            response.headers_mut().insert("x-seen-path", v);
                        }
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    });
                    connections.spawn(async move {
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // Stopped: open connections are cut, as a killed process's are.
                connections.abort_all();
            });
        });
        Backend {
            address,
            requests,
            failing,
            stop,
            thread: Some(thread),
        }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Makes it answer 500 to everything (or stop doing so).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    /// Stops it at once: it refuses new connections and cuts open ones.
    pub fn kill(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An answer read by [`get`].
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Answer {
    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The side the router says served it.
    pub fn side(&self) -> Option<&str> {
        self.header("x-switchyard-side")
    }
}

/// One request on a fresh connection to `address`: `method path` with
/// `headers` and `body`; `None` if the connection failed.
pub fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<Answer> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .ok()?;
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        text.push_str(&format!("{n}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Some(Answer {
        status,
        headers,
        body,
    })
}

/// `GET path` as user `user` (in `x-user-id`).
pub fn get_as(address: SocketAddr, path: &str, user: &str) -> Option<Answer> {
    request(address, "GET", path, &[("x-user-id", user)], "")
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}
