//! Serving connections: accept on a listener, at most `max_connections`
//! at once (the rest wait in the kernel's backlog), each connection served
//! by hyper as HTTP/1.1 or HTTP/2 (told apart by the client's first
//! bytes), with a limit on the time a client takes to send its headers.
//! On stop: no new connections, and those open get a few seconds to
//! finish what they are answering.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::config::HEADER_READ_TIMEOUT;
use super::forward::Body;
use super::watch::stopped;

/// How long open connections get to finish when the router stops.
const DRAIN: Duration = Duration::from_secs(5);

/// HTTP/2 streams one client connection may have open at once.
const STREAMS_PER_CONNECTION: u32 = 100;
/// How often an idle HTTP/2 connection is pinged, and how long the
/// client has to answer before it is closed.
const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Serves `listener` with `handle` until `stop` turns true; connections
/// from peers `admit` refuses are closed at once, before they take a slot.
pub async fn serve<H, F>(
    listener: TcpListener,
    max_connections: usize,
    mut stop: watch::Receiver<bool>,
    admit: fn(&SocketAddr) -> bool,
    handle: H,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(STREAMS_PER_CONNECTION)
        .keep_alive_interval(KEEP_ALIVE)
        .keep_alive_timeout(KEEP_ALIVE);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(max_connections));
    let graceful = GracefulShutdown::new();
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            _ = stopped(&mut stop) => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it
                    // was accepted: wait a moment rather than spin.
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        if !admit(&peer) {
            tracing::warn!(%peer, "connection refused: not on loopback");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        let service = service_fn(move |request| handle(request, peer));
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(%peer, "connection ended: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("connections still open after {DRAIN:?}; closing them");
    }
}

/// Admits every peer.
pub fn anyone(_: &SocketAddr) -> bool {
    true
}

/// Admits peers on loopback only.
pub fn loopback(peer: &SocketAddr) -> bool {
    peer.ip().is_loopback() || peer.ip().to_canonical().is_loopback()
}
