//! A transform written against the raw plugin contract, without the SDK,
//! as an attacker would: its answer stays small inside the sandbox but
//! describes far more than it holds, to make the host build it.
//!
//! For the first event of a batch it returns `cells` cells and `rows`
//! rows that all share the one range of cells. With `op = "delete-row"`
//! (the default) each cell is a row delete, which names no bytes at all;
//! with `op = "put"` each is a put of the same `value` bytes. Other events
//! get nothing. With `batches = "trap"` it traps on any batch of more than
//! one event, so the host runs the events again one at a time.
//!
//! Built for wasm32-wasip2 only; natively the crate is empty.
#![cfg(target_family = "wasm")]
#![expect(
    unsafe_code,
    reason = "wit-bindgen's generated export glue; this crate's own code has none"
)]

use std::sync::OnceLock;

wit_bindgen::generate!({
    world: "transform",
    path: "../../../sdk/wit-0.1",
});

use exports::switchyard::plugin::transformer::{
    CellOp, Guest, MutationBatch, PackedCell, PackedRow, Span,
};
use switchyard::plugin::types::{ConfigEntry, Event, PluginError};

struct Amplify;

static CONFIG: OnceLock<Vec<(String, String)>> = OnceLock::new();

fn setting(key: &str, default: u32) -> u32 {
    CONFIG
        .get()
        .and_then(|c| c.iter().find(|(k, _)| k == key))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(default)
}

impl Guest for Amplify {
    fn init(config: Vec<ConfigEntry>) -> Result<(), PluginError> {
        let _ = CONFIG.set(config.into_iter().map(|e| (e.key, e.value)).collect());
        Ok(())
    }

    fn transform(events: Vec<Event>) -> MutationBatch {
        let trap = CONFIG
            .get()
            .is_some_and(|c| c.iter().any(|(k, v)| k == "batches" && v == "trap"));
        if trap && events.len() > 1 {
            panic!("only one event at a time");
        }
        let (rows, cells, value) = (
            setting("rows", 200_000),
            setting("cells", 200_000),
            setting("value", 1024),
        );
        let put = CONFIG
            .get()
            .is_some_and(|c| c.iter().any(|(k, v)| k == "op" && v == "put"));
        // "t", "d", "k", then `value` bytes.
        let mut bytes = b"tdk".to_vec();
        bytes.resize(3 + value as usize, b'v');
        let span = |start, len| Span { start, len };
        let cell = PackedCell {
            op: if put { CellOp::Put } else { CellOp::DeleteRow },
            family: span(1, 1),
            qualifier: span(2, 1),
            value: span(3, value),
        };
        let row = PackedRow {
            event: 0,
            table: span(0, 1),
            row_key: span(2, 1),
            version: 1,
            first_cell: 0,
            cell_count: cells,
        };
        let empty = events.is_empty();
        MutationBatch {
            bytes,
            rows: if empty {
                Vec::new()
            } else {
                vec![row; rows as usize]
            },
            cells: vec![cell; cells as usize],
            refused: Vec::new(),
        }
    }
}

export!(Amplify);
