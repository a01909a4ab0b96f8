//! The admin endpoint: shows the routing state and the router's counts,
//! and changes the state (share, stage, mirroring, pins, rollback).
//!
//! Callers on loopback are served; others only with the token, when the
//! workflow names an environment variable that holds one
//! (`admin_token_env`), sent as `Authorization: Bearer TOKEN`. Without a
//! token every caller must be on loopback, whatever address the endpoint
//! listens on. Request bodies are capped at 64 KiB.
//!
//! - `GET /routing`: the state and the counts, as JSON.
//! - `POST /routing` `{"green_percent": 5, "stage": "5%", "mirror": true}`:
//!   any of the three; a share also ends a rollback or a cutover.
//! - `POST /rollback` `{"reason": "…"}`: every read to blue at once.
//! - `POST /pins` `{"key": "user-7", "side": "green"}` (`"side": null`
//!   unpins).
//! - `POST /resume` `{"answer": "pass"}` or `{"answer": "again"}`: answers
//!   a step paused on an inconclusive stage (count it as passed, or hold
//!   it again).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;

use super::forward::{Body, json_answer, own_answer};
use super::metrics::Metrics;
use super::routing::{Answer, Routing, RoutingError, RoutingFile, Side, share_of};

/// The largest admin request body.
pub const MAX_BODY: usize = 64 << 10;

/// What the admin endpoint works with.
pub struct Admin {
    /// The token callers off loopback must send, if one is set.
    pub token: Option<String>,
    /// The routing file.
    pub file: RoutingFile,
    /// The state in force in this router.
    pub routing: Arc<RwLock<Arc<Routing>>>,
    /// The router's counts.
    pub metrics: Arc<Metrics>,
}

/// Whether a caller at `peer` sending `authorization` may use the
/// endpoint: with a token set, only callers who send it; without one,
/// only callers on loopback.
pub fn allowed(peer: IpAddr, authorization: Option<&HeaderValue>, token: Option<&str>) -> bool {
    match token {
        Some(token) => authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .is_some_and(|sent| same(sent.trim().as_bytes(), token.as_bytes())),
        None => peer.is_loopback() || peer.to_canonical().is_loopback(),
    }
}

/// Compares in time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetRouting {
    #[serde(default)]
    green_percent: Option<f64>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    mirror: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rollback {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resume {
    answer: Answer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pin {
    key: String,
    side: Option<Side>,
}

impl Admin {
    /// Serves one admin request from `peer`.
    pub async fn serve(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, Infallible> {
        let token = self.token.as_deref();
        if !allowed(
            peer.ip(),
            request.headers().get(header::AUTHORIZATION),
            token,
        ) {
            tracing::warn!(%peer, "admin request refused: not on loopback and no valid token");
            let why = if token.is_some() {
                "send `Authorization: Bearer TOKEN` with the admin token"
            } else {
                "the admin endpoint serves callers on loopback only; set `[router] admin_token_env` to allow others with a token"
            };
            return Ok(own_answer(StatusCode::FORBIDDEN, why, None));
        }
        // A web page the operator has open may send requests to loopback
        // too: changes must come as JSON, and never from a browser page.
        if request.method() != Method::GET {
            let json_body = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().starts_with("application/json"));
            if request.headers().contains_key(header::ORIGIN) || !json_body {
                return Ok(own_answer(
                    StatusCode::FORBIDDEN,
                    "changes are sent as `Content-Type: application/json`, and not from a web page (no `Origin`)",
                    None,
                ));
            }
        }
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return Ok(own_answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "admin request bodies are at most 64 KiB",
                    None,
                ));
            }
        };
        let who = format!("admin endpoint, from {}", peer.ip());
        let answer = match (&method, path.as_str()) {
            (&Method::GET, "/routing") => Ok(self.show()),
            (&Method::POST, "/routing") => match parse::<SetRouting>(&body) {
                Ok(set) => {
                    self.change(&who, move |r| {
                        // Setting a share is what takes reads off a rollback
                        // or a cutover; the stage or mirroring alone do not.
                        if let Some(p) = set.green_percent {
                            r.set_share(share_of(p)?);
                        }
                        if let Some(stage) = set.stage {
                            r.stage = stage;
                        }
                        if let Some(m) = set.mirror {
                            r.mirror = m;
                        }
                        Ok(())
                    })
                    .await
                }
                Err(e) => Err(e),
            },
            (&Method::POST, "/rollback") => {
                let rollback = if body.is_empty() {
                    Ok(Rollback::default())
                } else {
                    parse::<Rollback>(&body)
                };
                match rollback {
                    Ok(rb) => {
                        let why = match rb.reason {
                            Some(r) => format!("rolled back by the {who}: {r}"),
                            None => format!("rolled back by the {who}"),
                        };
                        self.change(&why, |r| {
                            r.roll_back();
                            Ok(())
                        })
                        .await
                    }
                    Err(e) => Err(e),
                }
            }
            (&Method::POST, "/pins") => match parse::<Pin>(&body) {
                Ok(pin) => {
                    self.change(&who, move |r| {
                        match pin.side {
                            Some(side) => r.pins.insert(pin.key, side),
                            None => r.pins.remove(&pin.key),
                        };
                        Ok(())
                    })
                    .await
                }
                Err(e) => Err(e),
            },
            (&Method::POST, "/resume") => match parse::<Resume>(&body) {
                Ok(resume) => {
                    let why = format!("`{}` answered by the {who}", resume.answer.name());
                    self.change(&why, move |r| r.answer(resume.answer)).await
                }
                Err(e) => Err(e),
            },
            (_, "/routing" | "/rollback" | "/pins" | "/resume") => Err((
                StatusCode::METHOD_NOT_ALLOWED,
                "GET /routing, POST /routing, POST /rollback, POST /pins or POST /resume"
                    .to_string(),
            )),
            _ => Err((
                StatusCode::NOT_FOUND,
                "the admin endpoint serves /routing, /rollback, /pins and /resume".to_string(),
            )),
        };
        Ok(answer.unwrap_or_else(|(status, text)| own_answer(status, &text, None)))
    }

    fn show(&self) -> Response<Body> {
        let routing = self
            .routing
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let body = serde_json::json!({
            "routing": *routing,
            "metrics": self.metrics.snapshot(),
        });
        json_answer(StatusCode::OK, &body)
    }

    async fn change(
        self: &Arc<Self>,
        reason: &str,
        change: impl FnOnce(&mut Routing) -> Result<(), String> + Send + 'static,
    ) -> Result<Response<Body>, (StatusCode, String)> {
        let admin = self.clone();
        let reason = reason.to_string();
        let written = tokio::task::spawn_blocking(move || admin.file.update(&reason, change))
            .await
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| match e {
                RoutingError::Refused(why) => (StatusCode::UNPROCESSABLE_ENTITY, why),
                file => (StatusCode::INTERNAL_SERVER_ERROR, file.to_string()),
            })?;
        tracing::info!("routing changed: {}", written.describe());
        {
            let mut current = self.routing.write().unwrap_or_else(|p| p.into_inner());
            // A later change (a rollback from a shell) may have been
            // picked up meanwhile: never go back to an older state.
            if written.generation > current.generation {
                *current = Arc::new(written);
            }
        }
        Ok(self.show())
    }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a Bytes) -> Result<T, (StatusCode, String)> {
    serde_json::from_slice(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad JSON body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_off_loopback_need_the_token() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: IpAddr = "::1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let far: IpAddr = "10.1.2.3".parse().unwrap();
        let good = HeaderValue::from_static("Bearer s3cret");
        let bad = HeaderValue::from_static("Bearer s3cre7");
        assert!(allowed(lo, None, None) && allowed(lo6, None, None) && allowed(mapped, None, None));
        assert!(!allowed(far, None, None));
        assert!(
            !allowed(far, Some(&good), None),
            "no token set: loopback only"
        );
        assert!(allowed(far, Some(&good), Some("s3cret")));
        assert!(!allowed(far, Some(&bad), Some("s3cret")));
        assert!(
            !allowed(lo, None, Some("s3cret")),
            "a set token is asked of everyone"
        );
    }
}
