//! # Switchyard SDK
//!
//! Write the parts of a migration that are specific to one service as small
//! WebAssembly plugins: how an event becomes rows (`transform`), which
//! differences between the old and the new store matter (`check`), which
//! requests may go to the new store (`route`), where two answers to one
//! mirrored read differ (`response_check`), and what a row of the old store
//! becomes in the new one for the initial copy (`row_map`).
//!
//! A plugin is one plain function with an attribute:
//!
//! ```
//! use switchyard_sdk::{Cell, Config, Event, PluginError, RowMutation};
//!
//! #[switchyard_sdk::transform]
//! fn to_rows(event: &Event, config: &Config) -> Result<Vec<RowMutation>, PluginError> {
//!     let table = config.get_or("table", "events");
//!     let text = event.value_str()?;
//!     let key = format!("{:04}/{:012}", event.partition, event.offset);
//!     Ok(vec![RowMutation::new(table, key, event.timestamp_ms as u64)
//!         .with(Cell::put("d", "text", text))])
//! }
//!
//! // Natively the function is just a function: unit-test it with `cargo test`.
//! let rows = to_rows(&Event::new(0, 1, 10, b"hi"), &Config::default()).unwrap();
//! assert_eq!(rows[0].row_key, b"0000/000000000001");
//! ```
//!
//! Point a workflow's `[plugin.NAME]` at the crate (the runner builds it)
//! or build it yourself with `runner plugin build DIR`, which builds it for
//! wasm32-wasip2 with link-time optimisation and prints the `.wasm` and its
//! sha256. (A plain `cargo build --target wasm32-wasip2 --release` makes a
//! working, slower component.)
//!
//! ## Layout
//!
//! - [`types`](crate::Event): the contract's data as plain Rust types, with no
//!   WebAssembly dependency.
//! - [`Config`]: the settings a workflow passes to the plugin.
//! - [`log`]: lines into the runner's log.
//! - the attribute macros [`transform`], [`check`], [`route`],
//!   [`response_check`], [`row_map`]: they check the
//!   function's signature at compile time and, when building for WebAssembly,
//!   generate the component exports, the batching loop and the conversions.
//! - [`EventView`] and [`Rows`]: the fast form of a transform, which reads
//!   events where the host put them and writes cells straight into the
//!   packed answer.
//! - `sdk/wit/plugin.wit`: the contract itself, `switchyard:plugin@0.2.0`.
#![deny(missing_docs)]

#[cfg(any(test, all(target_family = "wasm", not(target_feature = "atomics"))))]
mod alloc;
mod batch;
mod config;
pub mod log;
mod rows;
mod types;
mod view;
#[cfg(target_family = "wasm")]
mod wasm;

/// Small blocks from size classes inside the sandbox (see `alloc.rs`); a
/// plugin that wants the default allocator turns off the SDK's
/// `size-classes` feature.
#[cfg(all(
    target_family = "wasm",
    not(target_feature = "atomics"),
    feature = "size-classes"
))]
#[global_allocator]
static ALLOCATOR: alloc::SizeClasses = alloc::SizeClasses::new();

pub use config::Config;
pub use rows::{RowWriter, Rows};
pub use types::{
    Cell, Comparison, Decision, Event, Exchange, Header, Pair, PluginError, Request, Response, Row,
    RowMutation, Side, SourceRow, StoredCell, Verdict,
};
pub use view::EventView;

/// Marks `fn(&Event[, &Config]) -> Result<Vec<RowMutation>, PluginError>` as
/// the plugin's transform. `#[transform(init = f)]` also runs
/// `fn f(&Config) -> Result<(), PluginError>` once before the first event,
/// to reject bad configuration early.
///
/// Where speed matters, the fast form reads a borrowed [`EventView`] and
/// writes its rows into [`Rows`] instead of returning owned mutations:
/// `fn(&EventView[, &Config], &mut Rows) -> Result<(), PluginError>`. Rows
/// written for an event that is then refused are dropped.
///
/// ```
/// use switchyard_sdk::{EventView, PluginError, Rows};
/// #[switchyard_sdk::transform]
/// fn to_rows(event: &EventView, rows: &mut Rows) -> Result<(), PluginError> {
///     let text = event.value_str()?;
///     let key = format!("{:04}/{:012}", event.partition, event.offset);
///     rows.row("events", key, event.timestamp_ms as u64).put("d", "text", text);
///     Ok(())
/// }
/// let mut rows = Rows::new();
/// to_rows(&switchyard_sdk::Event::new(0, 1, 10, b"hi").view(), &mut rows).unwrap();
/// assert_eq!(rows.mutations()[0].row_key, b"0000/000000000001");
/// ```
///
/// Only the output is taken by `&mut`, and the fast form returns `()`;
/// the error says so, on the offending tokens:
///
/// ```compile_fail
/// #[switchyard_sdk::transform]
/// fn changes_its_input(event: &mut switchyard_sdk::EventView, rows: &mut switchyard_sdk::Rows) -> Result<(), switchyard_sdk::PluginError> {
///     Ok(())
/// }
/// ```
///
/// ```compile_fail
/// #[switchyard_sdk::transform]
/// fn returns_rows_too(event: &switchyard_sdk::EventView, rows: &mut switchyard_sdk::Rows) -> Result<Vec<switchyard_sdk::RowMutation>, switchyard_sdk::PluginError> {
///     Ok(vec![])
/// }
/// ```
///
/// ```
/// use switchyard_sdk::{Event, PluginError, RowMutation};
/// #[switchyard_sdk::transform]
/// fn nothing(_event: &Event) -> Result<Vec<RowMutation>, PluginError> {
///     Ok(vec![])
/// }
/// assert!(nothing(&Event::default()).unwrap().is_empty());
/// ```
///
/// Misuse is a compile error pointing at the offending tokens, for example
/// an argument taken by value (`takes its arguments by reference; expected
/// fn(&Event) -> …`) or an `async fn`:
///
/// ```compile_fail
/// #[switchyard_sdk::transform]
/// fn by_value(event: switchyard_sdk::Event) -> Result<Vec<switchyard_sdk::RowMutation>, switchyard_sdk::PluginError> {
///     Ok(vec![])
/// }
/// ```
///
/// ```compile_fail
/// #[switchyard_sdk::transform]
/// async fn later(event: &switchyard_sdk::Event) -> Result<Vec<switchyard_sdk::RowMutation>, switchyard_sdk::PluginError> {
///     Ok(vec![])
/// }
/// ```
///
/// A wrong return type is refused natively too (`cargo test`), not only in
/// the wasm build:
///
/// ```compile_fail,E0308
/// #[switchyard_sdk::transform]
/// fn one_row(event: &switchyard_sdk::Event) -> Result<switchyard_sdk::RowMutation, switchyard_sdk::PluginError> {
///     Err(switchyard_sdk::PluginError::Other("no".into()))
/// }
/// ```
///
/// One plugin function per crate, wherever the second one is: the error
/// names `switchyard_sdk_allows_one_plugin_function_per_crate_and_this_crate_has_two`.
///
/// ```compile_fail,E0428
/// use switchyard_sdk::{Event, PluginError, RowMutation};
/// #[switchyard_sdk::transform]
/// fn one(event: &Event) -> Result<Vec<RowMutation>, PluginError> { Ok(vec![]) }
/// mod inner {
///     use switchyard_sdk::{Event, PluginError, RowMutation};
///     #[switchyard_sdk::transform]
///     fn two(event: &Event) -> Result<Vec<RowMutation>, PluginError> { Ok(vec![]) }
/// }
/// ```
pub use switchyard_sdk_macros::transform;

/// Marks `fn(&Pair[, &Config]) -> Result<Verdict, PluginError>` as the
/// plugin's check.
///
/// ```
/// use switchyard_sdk::{Pair, PluginError, Verdict};
/// #[switchyard_sdk::check]
/// fn same_keys(pair: &Pair) -> Result<Verdict, PluginError> {
///     Ok(if pair.blue.is_some() == pair.green.is_some() { Verdict::Equal } else { Verdict::Different("missing".into()) })
/// }
/// ```
pub use switchyard_sdk_macros::check;

/// Marks `fn(&Request[, &Config]) -> Result<Decision, PluginError>` as the
/// plugin's router.
///
/// ```
/// use switchyard_sdk::{Decision, PluginError, Request, Side};
/// #[switchyard_sdk::route]
/// fn by_user(request: &Request) -> Result<Decision, PluginError> {
///     Ok(Decision { side: Side::Shift, sticky_key: request.header("x-user").map(String::from), mirror: false })
/// }
/// ```
pub use switchyard_sdk_macros::route;

/// Marks `fn(&Exchange[, &Config]) -> Result<Comparison, PluginError>` as
/// the plugin that compares the two answers to a mirrored read. It
/// normalises what it knows to be equal and names the places that still
/// differ; the runner takes out noise (places that differ between two
/// reads of one side) and tells lag from damage by the answers'
/// watermarks.
///
/// ```
/// use switchyard_sdk::{Comparison, Exchange, PluginError};
/// #[switchyard_sdk::response_check]
/// fn same_status(exchange: &Exchange) -> Result<Comparison, PluginError> {
///     Ok(if exchange.first.status == exchange.second.status {
///         Comparison::Same
///     } else {
///         Comparison::Differ(vec!["status".into()])
///     })
/// }
/// assert_eq!(same_status(&Exchange::default()).unwrap(), Comparison::Same);
/// ```
pub use switchyard_sdk_macros::response_check;

/// Marks `fn(&SourceRow[, &Config]) -> Result<Vec<RowMutation>, PluginError>`
/// as the plugin that maps rows of the old store to rows of the new one
/// during the initial `copy`. Give the mapped rows the source row's newest
/// version ([`SourceRow::newest_version`]), so the log replayed after the
/// copy overlaps it idempotently.
///
/// ```
/// use switchyard_sdk::{Cell, PluginError, RowMutation, SourceRow};
/// #[switchyard_sdk::row_map]
/// fn texts_only(source: &SourceRow) -> Result<Vec<RowMutation>, PluginError> {
///     let Some(text) = source.row.cell("d", "text") else { return Ok(vec![]) };
///     let version = source.newest_version().unwrap_or(0);
///     Ok(vec![RowMutation::new("texts", source.row.row_key.clone(), version)
///         .with(Cell::put("d", "text", &text.value))])
/// }
/// ```
pub use switchyard_sdk_macros::row_map;

/// What the attribute macros expand to. Not part of the public API.
#[doc(hidden)]
#[cfg(target_family = "wasm")]
pub mod __private {
    pub use crate::wasm::*;
}

/// The batch loop of a transform, natively: the runner's benchmarks time
/// the same path as the sandbox's without it. Not part of the public API.
#[doc(hidden)]
pub mod __native {
    pub use crate::batch::{Answer, transform, transform_into};
}
