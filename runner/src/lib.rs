//! # Switchyard runner
//!
//! Runs a blue-green migration of an event-sourced read model, described in
//! one TOML workflow: restore the new (green) store, replay the event log
//! into it through a WebAssembly transform, compare it with the old (blue)
//! store, and cut over.
//!
//! The rooms, from the top down; each imports only rooms below it:
//!
//! ```text
//! cli ─► engine ─► workflow ─► steps ─► setup ─► router, store ─► state, source
//!                                                  │
//!        document (the file as a document), model ─► plugin ─► text, report, cancel, process, fault
//! ```
//!
//! - [`cli`]: the `runner` commands and what they print; `main.rs` only calls into it.
//! - [`engine`]: runs steps in order, resumes after a crash, watches what
//!   steps leave running; it knows no step kind by name.
//! - [`workflow`]: the whole file put together: reading, validation, the plan.
//! - [`steps`]: one file per step kind (restore, replay, compare, shell,
//!   route, stop, cutover), each with its settings, and `steps::KINDS`; what a
//!   step leaves running is a `BackgroundTask`.
//! - [`setup`]: what steps work with: folders, vars, sources, stores, plugins.
//! - [`store`], [`source`]: one file per kind, each with its settings, and
//!   one registration list per axis (`store::KINDS`, `source::KINDS`).
//! - [`read_api`]: an example read-api serving a store's rows as JSON.
//! - [`router`]: the HTTP proxy in front of the blue and green read-apis:
//!   sticky shares, rollback, pins, route plugins, the admin endpoint.
//! - [`state`]: the state folder: each step's outcome and its kind's own part.
//! - [`document`]: TOML with spans, `${vars}`, typed values, errors with
//!   file, line and column; kinds read their own tables through it.
//! - [`model`]: the data moved between rooms (the plugin contract's types).
//! - [`plugin`]: the wasmtime host: sandbox, limits, one wrapper per world.
//! - [`report`]: progress lines and formatting. [`sample`]: demo data.
//! - [`text`]: outside text (plugin messages, row keys) bounded and kept on one line.
//! - [`fault`]: whether a store's or source's failure is transient, refused or I/O.
//! - [`cancel`]: the stop signal (Ctrl-C, SIGTERM) every long task checks.
//! - [`process`]: commands in their own process group, never outliving the runner.
//!
//! A new store, source or step kind is one new file and one line in its
//! axis's `KINDS` (see the README's "Where a new kind goes").

pub mod cancel;
pub mod cli;
pub mod document;
pub mod engine;
pub mod fault;
pub mod model;
pub mod plugin;
pub mod process;
pub mod read_api;
pub mod report;
pub mod router;
pub mod sample;
pub mod setup;
pub mod source;
pub mod state;
pub mod steps;
pub mod store;
pub mod text;
pub mod workflow;
