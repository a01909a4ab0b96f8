//! `[router]`: where the router listens, the two read-apis it sends to,
//! how it decides (a `route` plugin, or one header to bucket on), its
//! admin endpoint and its limits. Read with spans, so every refused value
//! names its line.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use hyper::Uri;
use hyper::header::HeaderName;
use serde::Deserialize;
use toml::Spanned;

use crate::document::values::{Period, Size, whole};
use crate::document::{Errors, WorkflowError};

/// Time to answer with a response head, unless `timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to open a connection to a read-api.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Time one call of the route plugin may take before the request goes to
/// blue; a plugin call blocks the thread serving the request.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_millis(20);
/// Client connections served at once; more wait to be accepted.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Time a client has to send a request's headers (slow clients hold a
/// connection otherwise).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The header bucketed on when neither a plugin nor `sticky_header` says.
pub const DEFAULT_STICKY_HEADER: &str = "x-user-id";
/// The header a read-api reports its store's watermark in.
pub const DEFAULT_WATERMARK_HEADER: &str = "x-switchyard-watermark";
/// The most of one answer's body the mirror keeps, unless set.
pub const DEFAULT_MIRROR_BODY_LIMIT: u64 = 1 << 20;
/// The most `mirror_body_limit` may be (with the smallest queue, what the
/// mirror holds stays under [`MAX_MIRROR_HELD`]).
pub const MAX_MIRROR_BODY_LIMIT: u64 = 4 << 20;
/// Mirror jobs waiting at once, unless set.
pub const DEFAULT_MIRROR_QUEUE: usize = 256;
/// The most the mirror may hold of answers waiting to be compared or
/// being compared: (`mirror_queue` + what is in flight) ×
/// `mirror_body_limit`.
pub const MAX_MIRROR_HELD: u64 = 1 << 30;
/// The most `max_connections` may be.
pub const MAX_CONNECTIONS: usize = 100_000;
/// The most `mirror_queue` may be.
pub const MAX_MIRROR_QUEUE: usize = 100_000;
/// Mismatch samples kept, unless set.
pub const DEFAULT_MIRROR_SAMPLES: usize = 100;
/// Wait before asking both sides again when their watermarks differ.
pub const DEFAULT_MIRROR_RECHECK_AFTER: Duration = Duration::from_millis(200);
/// Headers a route plugin may be shown.
pub const MAX_PASSED_HEADERS: usize = 32;

/// `[router]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterSection {
    /// Address the router serves clients on (`127.0.0.1:8080`).
    pub listen: Spanned<String>,
    /// Base URL of the read-api on blue (`http://127.0.0.1:9001`).
    pub blue: Spanned<String>,
    /// Base URL of the read-api on green.
    pub green: Spanned<String>,
    /// Address of the admin endpoint; none without it.
    #[serde(default)]
    pub admin: Option<Spanned<String>>,
    /// Environment variable holding the admin token; without one, only
    /// callers on loopback are served.
    #[serde(default)]
    pub admin_token_env: Option<Spanned<String>>,
    /// A `route` plugin that decides per request.
    #[serde(default)]
    pub plugin: Option<Spanned<String>>,
    /// The header holding the sticky key when no plugin decides.
    #[serde(default)]
    pub sticky_header: Option<Spanned<String>>,
    /// Headers the route plugin is shown (default: the sticky header).
    #[serde(default)]
    pub headers: Vec<Spanned<String>>,
    /// Time a read-api has to answer with a response head.
    #[serde(default)]
    pub timeout: Option<Spanned<Period>>,
    /// Time to connect to a read-api.
    #[serde(default)]
    pub connect_timeout: Option<Spanned<Period>>,
    /// Time one route plugin call may take.
    #[serde(default)]
    pub route_timeout: Option<Spanned<Period>>,
    /// Client connections served at once.
    #[serde(default, deserialize_with = "whole")]
    pub max_connections: Option<usize>,
    /// Headers compared between mirrored answers (default `content-type`).
    #[serde(default)]
    pub mirror_headers: Option<Vec<Spanned<String>>>,
    /// JSON fields left out of the comparison (a name anywhere, or a path
    /// such as `/meta/served_at`).
    #[serde(default)]
    pub mirror_ignore: Vec<String>,
    /// A `response-check` plugin that compares mirrored answers in place of
    /// the built-in comparison.
    #[serde(default)]
    pub mirror_plugin: Option<Spanned<String>>,
    /// The most of one answer's body kept for comparing.
    #[serde(default)]
    pub mirror_body_limit: Option<Size>,
    /// Mirror jobs waiting at once; more are dropped and counted.
    #[serde(default, deserialize_with = "whole")]
    pub mirror_queue: Option<usize>,
    /// Mismatch samples kept in the state folder.
    #[serde(default, deserialize_with = "whole")]
    pub mirror_samples: Option<usize>,
    /// How long to wait before asking both sides again when their
    /// watermarks differ.
    #[serde(default)]
    pub mirror_recheck_after: Option<Period>,
    /// The header read-apis report their store's watermark in.
    #[serde(default)]
    pub watermark_header: Option<Spanned<String>>,
}

/// A read-api: where requests for one side go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// `http`.
    pub scheme: hyper::http::uri::Scheme,
    /// `host:port`.
    pub authority: hyper::http::uri::Authority,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// `[router]`, checked.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// Where the admin endpoint listens.
    pub admin: Option<SocketAddr>,
    /// The environment variable holding the admin token.
    pub admin_token_env: Option<String>,
    /// The read-api on blue.
    pub blue: Backend,
    /// The read-api on green.
    pub green: Backend,
    /// The route plugin's name.
    pub plugin: Option<String>,
    /// The header with the sticky key, without a plugin.
    pub sticky_header: HeaderName,
    /// Headers shown to the plugin.
    pub headers: Vec<HeaderName>,
    /// Time to a response head.
    pub timeout: Duration,
    /// Time to connect.
    pub connect_timeout: Duration,
    /// Time of one plugin call.
    pub route_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Headers compared between mirrored answers.
    pub mirror_headers: Vec<HeaderName>,
    /// JSON fields left out of comparisons.
    pub mirror_ignore: Vec<String>,
    /// The response-check plugin's name.
    pub mirror_plugin: Option<String>,
    /// The most of a body kept for comparing.
    pub mirror_body_limit: usize,
    /// Mirror jobs waiting at once.
    pub mirror_queue: usize,
    /// Mismatch samples kept.
    pub mirror_samples: usize,
    /// Wait before asking again when watermarks differ.
    pub mirror_recheck_after: Duration,
    /// The watermark header.
    pub watermark_header: HeaderName,
}

impl RouterSection {
    /// Checks every value; `plugin_exists` says whether a plugin is
    /// declared.
    pub fn check(
        self,
        span: Range<usize>,
        errors: Errors<'_>,
        plugin_exists: impl Fn(&str) -> bool,
    ) -> Result<RouterConfig, WorkflowError> {
        let address = |s: &Spanned<String>, what: &str| {
            s.get_ref().parse::<SocketAddr>().map_err(|_| {
                errors.at(
                    s.span(),
                    format!(
                        "`[router] {what}` = `{}` is not an address; write an IP and a port, like `127.0.0.1:8080`",
                        s.get_ref()
                    ),
                )
            })
        };
        let listen = address(&self.listen, "listen")?;
        let admin = self
            .admin
            .as_ref()
            .map(|a| address(a, "admin"))
            .transpose()?;
        if admin == Some(listen) {
            return Err(errors.at(
                self.admin.as_ref().map_or(span.clone(), |a| a.span()),
                "`[router] admin` must differ from `listen`",
            ));
        }
        let blue = backend(&self.blue, "blue", errors)?;
        let green = backend(&self.green, "green", errors)?;
        if let Some(p) = &self.mirror_plugin
            && !self.mirror_ignore.is_empty()
        {
            return Err(errors.at(
                p.span(),
                "`[router] mirror_ignore` applies to the built-in comparison; with `mirror_plugin` the plugin decides what to leave out (give it the fields in its `config`)",
            ));
        }
        for (setting, p) in [
            ("plugin", &self.plugin),
            ("mirror_plugin", &self.mirror_plugin),
        ] {
            if let Some(p) = p
                && !plugin_exists(p.get_ref())
            {
                return Err(errors.at(
                    p.span(),
                    format!(
                        "`[router] {setting}` = `{}`: no `[plugin.{}]` is declared",
                        p.get_ref(),
                        p.get_ref()
                    ),
                ));
            }
        }
        let header = |s: &Spanned<String>| {
            HeaderName::from_bytes(s.get_ref().trim().as_bytes())
                .map_err(|_| errors.at(s.span(), format!("`{}` is not a header name", s.get_ref())))
        };
        let sticky_header = match &self.sticky_header {
            Some(h) => header(h)?,
            None => HeaderName::from_static(DEFAULT_STICKY_HEADER),
        };
        let mut headers = self
            .headers
            .iter()
            .map(header)
            .collect::<Result<Vec<_>, _>>()?;
        if headers.is_empty() {
            headers.push(sticky_header.clone());
        }
        if headers.len() > MAX_PASSED_HEADERS {
            return Err(errors.at(
                span,
                format!(
                    "`[router] headers` lists {} headers; at most {MAX_PASSED_HEADERS}",
                    headers.len()
                ),
            ));
        }
        let period = |p: &Option<Spanned<Period>>, default: Duration, what: &str| {
            let Some(p) = p else { return Ok(default) };
            let d = p.get_ref().0;
            if d.is_zero() {
                return Err(errors.at(p.span(), format!("`[router] {what}` must be more than 0s")));
            }
            Ok(d)
        };
        let max_connections = self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if max_connections == 0 || max_connections > MAX_CONNECTIONS {
            return Err(errors.at(
                span,
                format!("`[router] max_connections` must be between 1 and {MAX_CONNECTIONS}"),
            ));
        }
        if let Some(env) = &self.admin_token_env
            && env.get_ref().trim().is_empty()
        {
            return Err(errors.at(env.span(), "`[router] admin_token_env` names no variable"));
        }
        let mirror_headers = match &self.mirror_headers {
            Some(list) => list.iter().map(header).collect::<Result<Vec<_>, _>>()?,
            None => vec![hyper::header::CONTENT_TYPE],
        };
        let watermark_header = match &self.watermark_header {
            Some(h) => header(h)?,
            None => HeaderName::from_static(DEFAULT_WATERMARK_HEADER),
        };
        let mirror_body_limit = self
            .mirror_body_limit
            .map_or(DEFAULT_MIRROR_BODY_LIMIT, |s| s.0);
        if mirror_body_limit == 0 || mirror_body_limit > MAX_MIRROR_BODY_LIMIT {
            return Err(errors.at(
                span,
                "`[router] mirror_body_limit` must be between 1 byte and 4MiB",
            ));
        }
        let mirror_queue = self.mirror_queue.unwrap_or(DEFAULT_MIRROR_QUEUE);
        if mirror_queue == 0 || mirror_queue > MAX_MIRROR_QUEUE {
            return Err(errors.at(
                span,
                format!("`[router] mirror_queue` must be between 1 and {MAX_MIRROR_QUEUE}"),
            ));
        }
        let held = (mirror_queue + super::mirror::HELD_BESIDES_QUEUE) as u64;
        if held * mirror_body_limit > MAX_MIRROR_HELD {
            return Err(errors.at(
                span.clone(),
                format!(
                    "(`[router] mirror_queue` + {}) × `mirror_body_limit` is more than 1GiB of answers held for comparing; lower one of them",
                    super::mirror::HELD_BESIDES_QUEUE
                ),
            ));
        }
        Ok(RouterConfig {
            listen,
            admin,
            admin_token_env: self.admin_token_env.map(|e| e.into_inner()),
            blue,
            green,
            plugin: self.plugin.map(|p| p.into_inner()),
            sticky_header,
            headers,
            timeout: period(&self.timeout, DEFAULT_TIMEOUT, "timeout")?,
            connect_timeout: period(
                &self.connect_timeout,
                DEFAULT_CONNECT_TIMEOUT,
                "connect_timeout",
            )?,
            route_timeout: period(&self.route_timeout, DEFAULT_ROUTE_TIMEOUT, "route_timeout")?,
            max_connections,
            mirror_headers,
            mirror_ignore: self.mirror_ignore,
            mirror_plugin: self.mirror_plugin.map(|p| p.into_inner()),
            mirror_body_limit: mirror_body_limit as usize,
            mirror_queue,
            mirror_samples: self.mirror_samples.unwrap_or(DEFAULT_MIRROR_SAMPLES),
            mirror_recheck_after: self
                .mirror_recheck_after
                .map_or(DEFAULT_MIRROR_RECHECK_AFTER, |p| p.0),
            watermark_header,
        })
    }
}

fn backend(s: &Spanned<String>, side: &str, errors: Errors<'_>) -> Result<Backend, WorkflowError> {
    let refuse = |why: &str| {
        errors.at(
            s.span(),
            format!("`[router] {side}` = `{}`: {why}", s.get_ref()),
        )
    };
    let uri: Uri = s
        .get_ref()
        .parse()
        .map_err(|_| refuse("not a URL; write one like `http://127.0.0.1:9001`"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(refuse(
                "TLS to read-apis is not supported; run the router beside them and use `http://`",
            ));
        }
        _ => return Err(refuse("write the URL with `http://`")),
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(refuse(
            "a read-api is given as scheme, host and port only; requests keep their own path",
        ));
    }
    let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned()) else {
        return Err(refuse("no host"));
    };
    Ok(Backend { scheme, authority })
}
