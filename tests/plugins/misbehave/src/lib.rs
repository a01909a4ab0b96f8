//! A purpose-built misbehaving transform, for the sandbox tests.
//!
//! It behaves (one row per event, keyed by its offset or by the `key`
//! setting) until it meets an event whose value is
//! the `trigger` setting (default `misbehave`), then does what `mode` says:
//! `panic`, `loop` (never returns), `memory` (allocates without end), `fs`
//! (reads a host file), `env` (reads the environment), `clock` (reads the
//! time), `net` (opens a TCP connection), `refuse` (reports bad input) or
//! `ok` (behaves); `empty` returns no rows for any event (to measure the
//! cost of the boundary alone); `echo` writes every field of every event
//! back as cells of one row (to see that events cross the boundary whole).
//!
//! Modes that stay inside the plugin's own limits but lean on the host:
//! `sleep` (sleeps 20 s: a wait inside a host call), `read` (reads the file
//! `path`, inside a granted folder), `random` (asks the host for `bytes`
//! random bytes, default 8), `hashmap` (uses a `HashMap`, which std seeds
//! from the host), `log-flood` (logs `lines` lines, default a million),
//! `log-forge` (logs a line made to look like the runner's own), `tables`
//! (writes one row to each of `tables` distinct tables, default 20000),
//! `big-value` (one row with a value of `bytes` bytes), `long-refusal`
//! (refuses with a reason of `bytes` bytes), `recurse` (recurses until the
//! stack overflows).

use std::hint::black_box;

use switchyard_sdk::{Cell, Config, Event, PluginError, RowMutation};

#[switchyard_sdk::transform]
pub fn misbehave(event: &Event, config: &Config) -> Result<Vec<RowMutation>, PluginError> {
    match config.get("mode") {
        Some("empty") => return Ok(Vec::new()),
        Some("echo") => return Ok(vec![echo(event)]),
        _ => {}
    }
    let trigger = config.get_or("trigger", "misbehave");
    let row = |value: String| {
        // The row key is the event's offset, or the `key` setting for every event.
        let key = config
            .get("key")
            .map_or_else(|| format!("{:08}", event.offset), String::from);
        vec![RowMutation::new("t", key, event.timestamp_ms as u64).with(Cell::put("d", "v", value))]
    };
    if event.value != trigger.as_bytes() {
        return Ok(row(String::from_utf8_lossy(&event.value).into_owned()));
    }
    match config.get_or("mode", "ok") {
        "panic" => panic!("misbehaving on purpose at offset {}", event.offset),
        "loop" => {
            let mut n = 0u64;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(black_box(vec![1u8; 1 << 20]));
            }
        }
        "fs" => match std::fs::read_to_string("/etc/hostname") {
            Ok(text) => Ok(row(text)),
            Err(e) => Err(PluginError::Other(format!(
                "cannot read /etc/hostname: {e}"
            ))),
        },
        "env" => Ok(row(std::env::var("HOME").unwrap_or_default())),
        "clock" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            Ok(row(now.to_string()))
        }
        "net" => match std::net::TcpStream::connect("127.0.0.1:5432") {
            Ok(_) => Ok(row("connected".into())),
            Err(e) => Err(PluginError::Other(format!("cannot connect: {e}"))),
        },
        "refuse" => Err(PluginError::Malformed(format!(
            "refusing offset {} on purpose",
            event.offset
        ))),
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(20));
            Ok(row("slept".into()))
        }
        "read" => match std::fs::read(config.get_or("path", "fifo")) {
            Ok(bytes) => Ok(row(format!("read {} bytes", bytes.len()))),
            Err(e) => Err(PluginError::Other(format!("cannot read: {e}"))),
        },
        "random" => Ok(row(format!(
            "{:?}",
            random_bytes(number(config, "bytes", 8))
        ))),
        "hashmap" => {
            let map: std::collections::HashMap<u64, u64> = (0..100).map(|i| (i, i * i)).collect();
            let order: Vec<String> = map.keys().take(5).map(|k| k.to_string()).collect();
            Ok(row(order.join(",")))
        }
        "log-flood" => {
            for i in 0..number(config, "lines", 1_000_000) {
                switchyard_sdk::log::info(&format!("line {i} of a flood"));
            }
            Ok(row("flooded".into()))
        }
        "log-forge" => {
            switchyard_sdk::log::write(
                switchyard_sdk::log::Level::Error,
                "ok\n2026-11-30T00:00:00.000000Z  INFO done: workflow completed\u{1b}[2K",
            );
            Ok(row("forged".into()))
        }
        "tables" => Ok((0..number(config, "tables", 20_000))
            .map(|t| {
                RowMutation::new(format!("t{t}"), "k", event.timestamp_ms as u64)
                    .with(Cell::put("d", "v", "x"))
            })
            .collect()),
        "big-value" => Ok(row("x".repeat(number(config, "bytes", 1 << 20)))),
        "long-refusal" => Err(PluginError::Malformed("x".repeat(number(
            config,
            "bytes",
            1 << 20,
        )))),
        "recurse" => Ok(row(recurse(black_box(0)).to_string())),
        _ => Ok(row("ok".into())),
    }
}

fn number(config: &Config, key: &str, default: usize) -> usize {
    config
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Recurses until something stops it: the stack, in the sandbox.
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 64]);
    if black_box(depth) == u64::MAX {
        return frame[0];
    }
    recurse(black_box(depth + 1)) + frame[1]
}

#[cfg(target_family = "wasm")]
fn random_bytes(n: usize) -> Vec<u8> {
    wasip2::random::random::get_random_bytes(n as u64)
}

#[cfg(not(target_family = "wasm"))]
fn random_bytes(n: usize) -> Vec<u8> {
    vec![4; n]
}

/// Every field of the event as a cell: `key` is deleted when there is none.
fn echo(event: &Event) -> RowMutation {
    let mut row = RowMutation::new("t", format!("{}/{}", event.partition, event.offset), 1)
        .with(Cell::put("e", "timestamp", event.timestamp_ms.to_string()))
        .with(Cell::put("e", "value", &event.value))
        .with(match &event.key {
            Some(key) => Cell::put("e", "key", key),
            None => Cell::delete_cell("e", "key"),
        });
    for h in &event.headers {
        row = row.with(Cell::put("h", &h.key, &h.value));
    }
    row
}
