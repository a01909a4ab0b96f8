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
use transform::exports::switchyard::plugin::transformer as wit_transform;
/// The host calls every world imports.
pub(crate) use transform::switchyard::plugin::host;
/// The shared WIT types.
pub use transform::switchyard::plugin::types as wit;

static CONFIG: OnceLock<Config> = OnceLock::new();

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

/// Runs a per-event transform function over a batch and packs the
/// mutations for the trip back to the host.
pub fn transform_batch(
    events: Vec<wit::Event>,
    f: impl Fn(&Event, &Config) -> Result<Vec<RowMutation>, PluginError>,
) -> wit_transform::MutationBatch {
    let config = config();
    let mut packer = Packer::new(events.len());
    for (i, e) in events.into_iter().enumerate() {
        let event = event_from_wit(e);
        match f(&event, config) {
            Ok(mutations) => {
                for m in &mutations {
                    packer.row(i as u32, m);
                }
            }
            Err(err) => packer.refused.push(wit_transform::Refusal {
                event: i as u32,
                error: error_to_wit(err),
            }),
        }
    }
    packer.finish()
}

/// Sizes of the previous batch, so the next one allocates its buffers once.
static LAST_SIZES: std::sync::Mutex<(usize, usize, usize)> = std::sync::Mutex::new((0, 0, 0));

/// Builds a `mutation-batch`: names, keys and values appended to one
/// buffer; table and family names that repeat are stored once.
struct Packer {
    bytes: Vec<u8>,
    rows: Vec<wit_transform::PackedRow>,
    cells: Vec<wit_transform::PackedCell>,
    refused: Vec<wit_transform::Refusal>,
    names: Vec<wit_transform::Span>,
}

impl Packer {
    fn new(events: usize) -> Self {
        let (bytes, rows, cells) = *LAST_SIZES.lock().unwrap_or_else(|p| p.into_inner());
        Packer {
            bytes: Vec::with_capacity(bytes.max(events * 64)),
            rows: Vec::with_capacity(rows.max(events)),
            cells: Vec::with_capacity(cells.max(events)),
            refused: Vec::new(),
            names: Vec::new(),
        }
    }

    fn bytes(&mut self, data: &[u8]) -> wit_transform::Span {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(data);
        wit_transform::Span {
            start,
            len: data.len() as u32,
        }
    }

    /// A table or family name, shared with an earlier copy when there is one.
    fn name(&mut self, name: &str) -> wit_transform::Span {
        let found = self.names.iter().copied().find(|s| {
            let start = s.start as usize;
            self.bytes.get(start..start + s.len as usize) == Some(name.as_bytes())
        });
        found.unwrap_or_else(|| {
            let span = self.bytes(name.as_bytes());
            if self.names.len() < 16 {
                self.names.push(span);
            }
            span
        })
    }

    fn row(&mut self, event: u32, m: &RowMutation) {
        let empty = wit_transform::Span { start: 0, len: 0 };
        let table = self.name(&m.table);
        let row_key = self.bytes(&m.row_key);
        let first_cell = self.cells.len() as u32;
        for c in &m.cells {
            let cell = match c {
                Cell::Put {
                    family,
                    qualifier,
                    value,
                } => wit_transform::PackedCell {
                    op: wit_transform::CellOp::Put,
                    family: self.name(family),
                    qualifier: self.bytes(qualifier),
                    value: self.bytes(value),
                },
                Cell::DeleteCell { family, qualifier } => wit_transform::PackedCell {
                    op: wit_transform::CellOp::DeleteCell,
                    family: self.name(family),
                    qualifier: self.bytes(qualifier),
                    value: empty,
                },
                Cell::DeleteFamily { family } => wit_transform::PackedCell {
                    op: wit_transform::CellOp::DeleteFamily,
                    family: self.name(family),
                    qualifier: empty,
                    value: empty,
                },
                Cell::DeleteRow => wit_transform::PackedCell {
                    op: wit_transform::CellOp::DeleteRow,
                    family: empty,
                    qualifier: empty,
                    value: empty,
                },
            };
            self.cells.push(cell);
        }
        self.rows.push(wit_transform::PackedRow {
            event,
            table,
            row_key,
            version: m.version,
            first_cell,
            cell_count: m.cells.len() as u32,
        });
    }

    fn finish(self) -> wit_transform::MutationBatch {
        *LAST_SIZES.lock().unwrap_or_else(|p| p.into_inner()) =
            (self.bytes.len(), self.rows.len(), self.cells.len());
        wit_transform::MutationBatch {
            bytes: self.bytes,
            rows: self.rows,
            cells: self.cells,
            refused: self.refused,
        }
    }
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
