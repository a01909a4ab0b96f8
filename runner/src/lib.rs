//! # Switchyard runner
//!
//! Runs a blue-green migration of an event-sourced read model, described in
//! one TOML workflow: restore the new (green) store, replay the event log
//! into it through a WebAssembly transform, compare it with the old (blue)
//! store, and cut over.
//!
//! How the pieces fit:
//!
//! ```text
//! cli ──► workflow (parse, ${vars}, validate, plan)
//!          │
//!          ▼
//!        engine (step loop, state folder, resume, background replays) ──► steps
//!                                                    │
//!   source (file, kafka) ─► replay ─► plugin (wasmtime sandbox) ─► store (sqlite, hbase)
//!                           compare ◄── store × 2, check plugin
//! ```
//!
//! - [`workflow`]: the TOML schema, variables, validation and the plan.
//! - [`engine`]: runs steps in order, resumes after a crash.
//! - [`state`]: the state folder: each step's outcome, checkpoints, the lock.
//! - [`steps`]: restore, replay, compare, shell, stop, cutover.
//! - [`plugin`]: the wasmtime host: sandbox, limits, one wrapper per world.
//! - [`source`], [`store`]: where events come from and rows go.
//! - [`model`]: the data moved between them (the plugin contract's types).
//! - [`report`]: progress and the final summary. [`sample`]: demo data.
//! - [`text`]: outside text (plugin messages, row keys) bounded and kept on one line.
//! - [`cli`]: the `runner` commands; `main.rs` only calls into it.
//! - [`cancel`]: the stop signal (Ctrl-C, SIGTERM) every long task checks.
//! - [`process`]: commands in their own process group, never outliving the runner.

pub mod cancel;
pub mod cli;
pub mod document;
pub mod engine;
pub mod model;
pub mod plugin;
pub mod process;
pub mod report;
pub mod sample;
pub mod setup;
pub mod source;
pub mod state;
pub mod steps;
pub mod store;
pub mod text;
pub mod workflow;
