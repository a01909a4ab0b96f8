//! An example read-api: a store's rows as JSON over HTTP, with the store's
//! watermark on every answer, so that the router's mirror can tell a
//! pair of answers that differ because one side lags from a pair that
//! differs for real. It serves the quickstart and the tests, and shows a
//! service's own read-api what header to set.
//!
//! - `GET /rows/TABLE/KEY`: the row (404 when there is none);
//! - `GET /rows/TABLE?after=K&before=K&limit=N`: rows in key order (at
//!   most 1,000; `next_after` says where the next page starts);
//! - every answer carries `x-switchyard-watermark` (ms since the epoch;
//!   absent while the store has none).
//!
//! Keys are percent-decoded; cell values are shown as text when they are
//! UTF-8, as `value_hex` otherwise. One thread serves; store calls run on
//! a blocking pool, one at a time (a store is one connection).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::model::Row;
use crate::router::forward::Body;
use crate::router::serve::serve;
use crate::store::{KeyRange, Store};

/// The header that carries the store's watermark.
pub const WATERMARK_HEADER: &str = "x-switchyard-watermark";
/// Rows one page may hold.
pub const MAX_PAGE: usize = 1000;
/// Connections served at once.
const MAX_CONNECTIONS: usize = 256;
/// Store scans one page may take (each may find only deleted rows).
const MAX_SCANS: usize = 64;

/// A running read-api.
pub struct ReadApi {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    finished: Arc<AtomicBool>,
    address: SocketAddr,
}

impl ReadApi {
    /// Serves `store` on `listen`, leaving out the cells named in `hide`
    /// (family, qualifier): what a service's read-api does not expose.
    pub fn start(
        store: Box<dyn Store>,
        listen: SocketAddr,
        hide: Vec<(String, Vec<u8>)>,
    ) -> Result<ReadApi, String> {
        let hide = Arc::new(hide);
        let listener = std::net::TcpListener::bind(listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let address = listener.local_addr().unwrap_or(listen);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .thread_name("read-api")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the read-api's threads: {e}"))?;
        let store = Arc::new(Mutex::new(store));
        let (stop, stopped) = watch::channel(false);
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        let thread = std::thread::Builder::new()
            .name("read-api".into())
            .spawn(move || {
                runtime.block_on(async move {
                    if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                        serve(
                            listener,
                            MAX_CONNECTIONS,
                            stopped,
                            crate::router::serve::anyone,
                            move |req, _peer| answer(store.clone(), hide.clone(), req),
                        )
                        .await;
                    }
                });
                done.store(true, Ordering::SeqCst);
            })
            .map_err(|e| format!("cannot start the read-api's thread: {e}"))?;
        Ok(ReadApi {
            stop,
            thread: Some(thread),
            finished,
            address,
        })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Asks it to stop.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Whether its thread ended.
    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// Stops it and waits for its thread.
    pub fn join(mut self) -> Result<(), String> {
        self.stop();
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| "the read-api's thread panicked".to_string()),
            None => Ok(()),
        }
    }
}

impl Drop for ReadApi {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn answer(
    store: Arc<Mutex<Box<dyn Store>>>,
    hide: Arc<Vec<(String, Vec<u8>)>>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(json_answer(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "only GET is served"}),
            None,
        ));
    }
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let work = tokio::task::spawn_blocking(move || {
        let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
        let watermark = store.watermark().ok().flatten();
        let (status, body) = lookup(store.as_mut(), &path, &query, &hide);
        (status, body, watermark)
    })
    .await;
    Ok(match work {
        Ok((status, body, watermark)) => json_answer(status, &body, watermark),
        Err(_) => json_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": "the store call panicked"}),
            None,
        ),
    })
}

/// The answer to `GET path?query`.
fn lookup(
    store: &mut dyn Store,
    path: &str,
    query: &str,
    hide: &[(String, Vec<u8>)],
) -> (StatusCode, Value) {
    let Some(rest) = path.strip_prefix("/rows/") else {
        return (
            StatusCode::NOT_FOUND,
            json!({"error": "rows are served under /rows/TABLE and /rows/TABLE/KEY"}),
        );
    };
    let (table, key) = match rest.split_once('/') {
        Some((t, k)) => (decode(t), Some(decode(k))),
        None => (decode(rest), None),
    };
    let Ok(table) = String::from_utf8(table) else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": "a table name is text"}),
        );
    };
    let failed = |e: crate::store::StoreError| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": crate::text::bounded(&e.to_string(), 1024)}),
        )
    };
    match key {
        Some(key) => match store.get(&table, std::slice::from_ref(&key), None) {
            Ok(mut rows) => match rows.pop().flatten() {
                Some(row) => (StatusCode::OK, row_json(&table, &row, hide)),
                None => (StatusCode::NOT_FOUND, json!({"error": "no such row"})),
            },
            Err(e) => failed(e),
        },
        None => {
            let mut range = KeyRange::default();
            let mut limit = 100;
            for (name, value) in query.split('&').filter_map(|p| p.split_once('=')) {
                match name {
                    "after" => range.after = Some(decode(value)),
                    "before" => range.before = Some(decode(value)),
                    "limit" => limit = value.parse().unwrap_or(limit),
                    _ => {}
                }
            }
            match full_page(store, &table, range, limit.clamp(1, MAX_PAGE)) {
                Ok((rows, next_after)) => (
                    StatusCode::OK,
                    json!({
                        "rows": rows.iter().map(|r| row_json(&table, r, hide)).collect::<Vec<_>>(),
                        "next_after": next_after.map(|k| String::from_utf8_lossy(&k).into_owned()),
                    }),
                ),
                Err(e) => failed(e),
            }
        }
    }
}

/// Scans until `limit` visible rows are found or the range ends. A
/// store's page may hold fewer visible rows than asked (deleted rows
/// count against it in some layouts), so a page of the same data would
/// differ between stores; a read-api answers the same rows whatever the
/// layout. At most [`MAX_SCANS`] scans a request.
fn full_page(
    store: &mut dyn Store,
    table: &str,
    mut range: KeyRange,
    limit: usize,
) -> Result<(Vec<Row>, Option<Vec<u8>>), crate::store::StoreError> {
    let mut rows: Vec<Row> = Vec::new();
    for _ in 0..MAX_SCANS {
        let page = store.scan(table, &range, limit - rows.len(), None)?;
        rows.extend(page.rows);
        match page.next_after {
            None => return Ok((rows, None)),
            Some(_) if rows.len() >= limit => {
                let last = rows.last().map(|r| r.row_key.clone());
                return Ok((rows, last));
            }
            Some(after) => range.after = Some(after),
        }
    }
    let last = range.after.clone();
    Ok((rows, last))
}

fn row_json(table: &str, row: &Row, hide: &[(String, Vec<u8>)]) -> Value {
    json!({
        "table": table,
        "key": String::from_utf8_lossy(&row.row_key),
        "cells": row.cells.iter().filter(|c| !hide.iter().any(|(f, q)| *f == c.family && *q == c.qualifier)).map(|c| {
            let mut cell = json!({
                "family": c.family,
                "qualifier": String::from_utf8_lossy(&c.qualifier),
                "version": c.version,
            });
            match std::str::from_utf8(&c.value) {
                Ok(text) => cell["value"] = json!(text),
                Err(_) => cell["value_hex"] = json!(hex::encode(&c.value)),
            }
            cell
        }).collect::<Vec<_>>(),
    })
}

/// Percent-decoding of one path segment or query value (`+` stays `+`).
fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn json_answer(status: StatusCode, body: &Value, watermark: Option<i64>) -> Response<Body> {
    let mut response = crate::router::forward::json_answer(status, body);
    if let Some(w) = watermark
        && let Ok(v) = HeaderValue::from_str(&w.to_string())
    {
        response.headers_mut().insert(WATERMARK_HEADER, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_decoded() {
        assert_eq!(decode("room%2F1"), b"room/1");
        assert_eq!(decode("a%zzb"), b"a%zzb");
        assert_eq!(decode("end%4"), b"end%4");
        assert_eq!(decode("%ff"), [0xff]);
    }
}
