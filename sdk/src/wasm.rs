//! The generated bindings and the glue between them and the plain types.
//! Compiled only for WebAssembly; the attribute macros expand to calls into
//! the `__private` items re-exported from here.

use std::sync::OnceLock;

use crate::{Cell, Config, Decision, Event, Header, Pair, PluginError, Request, Row, RowMutation};
use crate::{Side, StoredCell, Verdict};

/// Bindings of the `transform` world; they also own the shared `types` and
/// `host` interfaces, which the other two worlds reuse.
#[allow(missing_docs)]
pub mod transform {
    wit_bindgen::generate!({
        world: "transform",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_transform",
        default_bindings_module: "::switchyard_sdk::__private::transform",
    });
}

/// Bindings of the `check` world.
#[allow(missing_docs)]
pub mod check {
    wit_bindgen::generate!({
        world: "check",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_check",
        default_bindings_module: "::switchyard_sdk::__private::check",
        with: {
            "switchyard:plugin/types@0.1.0": crate::wasm::transform::switchyard::plugin::types,
            "switchyard:plugin/host@0.1.0": crate::wasm::transform::switchyard::plugin::host,
        },
    });
}

/// Bindings of the `route` world.
#[allow(missing_docs)]
pub mod route {
    wit_bindgen::generate!({
        world: "route",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_route",
        default_bindings_module: "::switchyard_sdk::__private::route",
        with: {
            "switchyard:plugin/types@0.1.0": crate::wasm::transform::switchyard::plugin::types,
            "switchyard:plugin/host@0.1.0": crate::wasm::transform::switchyard::plugin::host,
        },
    });
}

use check::exports::switchyard::plugin::checker as wit_check;
use route::exports::switchyard::plugin::router as wit_route;
use transform::switchyard::plugin::host;
/// The shared WIT types.
pub use transform::switchyard::plugin::types as wit;

static CONFIG: OnceLock<Config> = OnceLock::new();

pub(crate) fn log(level: crate::log::Level, message: &str) {
    use crate::log::Level as L;
    let level = match level {
        L::Trace => host::Level::Trace,
        L::Debug => host::Level::Debug,
        L::Info => host::Level::Info,
        L::Warn => host::Level::Warn,
        L::Error => host::Level::Error,
    };
    host::log(level, message);
}

/// The configuration the host gave at `init` (empty before it).
pub fn config() -> &'static Config {
    CONFIG.get_or_init(Config::default)
}

/// Stores the configuration, installs the panic hook and runs the plugin's
/// own `init` function, if it has one.
pub fn init(
    entries: Vec<wit::ConfigEntry>,
    user_init: Option<fn(&Config) -> Result<(), PluginError>>,
) -> Result<(), wit::PluginError> {
    // std's default hook reads RUST_BACKTRACE, which would ask the host for
    // the environment; this one only writes the message to stderr, where the
    // runner captures it for the trap report.
    std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    let config = Config::from_pairs(entries.into_iter().map(|e| (e.key, e.value)));
    let config = CONFIG.get_or_init(|| config);
    match user_init {
        Some(f) => f(config).map_err(error_to_wit),
        None => Ok(()),
    }
}

/// Runs a per-event transform function over a batch.
pub fn transform_batch(
    events: Vec<wit::Event>,
    f: impl Fn(&Event, &Config) -> Result<Vec<RowMutation>, PluginError>,
) -> Vec<Result<Vec<wit::RowMutation>, wit::PluginError>> {
    let config = config();
    events
        .into_iter()
        .map(|e| {
            let event = event_from_wit(e);
            match f(&event, config) {
                Ok(ms) => Ok(ms.into_iter().map(mutation_to_wit).collect()),
                Err(err) => Err(error_to_wit(err)),
            }
        })
        .collect()
}

/// Runs a per-pair check function over a batch.
pub fn check_batch(
    pairs: Vec<wit_check::Pair>,
    f: impl Fn(&Pair, &Config) -> Result<Verdict, PluginError>,
) -> Vec<Result<wit_check::Verdict, wit::PluginError>> {
    let config = config();
    pairs
        .into_iter()
        .map(|p| {
            let pair = Pair {
                table: p.table,
                row_key: p.row_key,
                blue: p.blue.map(row_from_wit),
                green: p.green.map(row_from_wit),
            };
            match f(&pair, config) {
                Ok(Verdict::Equal) => Ok(wit_check::Verdict::Equal),
                Ok(Verdict::Different(why)) => Ok(wit_check::Verdict::Different(why)),
                Ok(Verdict::Ignore) => Ok(wit_check::Verdict::Ignore),
                Err(err) => Err(error_to_wit(err)),
            }
        })
        .collect()
}

/// Runs a route function on one request.
pub fn route_one(
    r: wit_route::Request,
    f: impl Fn(&Request, &Config) -> Result<Decision, PluginError>,
) -> Result<wit_route::Decision, wit::PluginError> {
    let request = Request {
        method: r.method,
        path: r.path,
        query: r.query,
        headers: r.headers,
    };
    let d = f(&request, config()).map_err(error_to_wit)?;
    Ok(wit_route::Decision {
        side: match d.side {
            Side::Blue => wit_route::Side::Blue,
            Side::Green => wit_route::Side::Green,
            Side::Shift => wit_route::Side::Shift,
        },
        sticky_key: d.sticky_key,
        mirror: d.mirror,
    })
}

fn event_from_wit(e: wit::Event) -> Event {
    Event {
        partition: e.partition,
        offset: e.offset,
        timestamp_ms: e.timestamp_ms,
        key: e.key,
        value: e.value,
        headers: e
            .headers
            .into_iter()
            .map(|h| Header {
                key: h.key,
                value: h.value,
            })
            .collect(),
    }
}

fn mutation_to_wit(m: RowMutation) -> wit::RowMutation {
    wit::RowMutation {
        table: m.table,
        row_key: m.row_key,
        version: m.version,
        cells: m
            .cells
            .into_iter()
            .map(|c| match c {
                Cell::Put {
                    family,
                    qualifier,
                    value,
                } => wit::Cell::Put(wit::Put {
                    family,
                    qualifier,
                    value,
                }),
                Cell::DeleteCell { family, qualifier } => {
                    wit::Cell::DeleteCell(wit::CellRef { family, qualifier })
                }
                Cell::DeleteFamily { family } => wit::Cell::DeleteFamily(family),
                Cell::DeleteRow => wit::Cell::DeleteRow,
            })
            .collect(),
    }
}

fn row_from_wit(r: wit::Row) -> Row {
    Row {
        row_key: r.row_key,
        cells: r
            .cells
            .into_iter()
            .map(|c| StoredCell {
                family: c.family,
                qualifier: c.qualifier,
                value: c.value,
                version: c.version,
            })
            .collect(),
    }
}

fn error_to_wit(e: PluginError) -> wit::PluginError {
    match e {
        PluginError::Malformed(m) => wit::PluginError::Malformed(m),
        PluginError::Unsupported(m) => wit::PluginError::Unsupported(m),
        PluginError::Config(m) => wit::PluginError::Config(m),
        PluginError::Other(m) => wit::PluginError::Other(m),
    }
}
