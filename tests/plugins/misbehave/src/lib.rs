//! A purpose-built misbehaving transform, for the sandbox tests.
//!
//! It behaves (one row per event) until it meets an event whose value is
//! the `trigger` setting (default `misbehave`), then does what `mode` says:
//! `panic`, `loop` (never returns), `memory` (allocates without end), `fs`
//! (reads a host file), `env` (reads the environment), `clock` (reads the
//! time), `net` (opens a TCP connection), `refuse` (reports bad input) or
//! `ok` (behaves); `empty` returns no rows for any event (to measure the
//! cost of the boundary alone).

use std::hint::black_box;

use switchyard_sdk::{Cell, Config, Event, PluginError, RowMutation};

#[switchyard_sdk::transform]
pub fn misbehave(event: &Event, config: &Config) -> Result<Vec<RowMutation>, PluginError> {
    let trigger = config.get_or("trigger", "misbehave");
    let row = |value: String| {
        vec![
            RowMutation::new(
                "t",
                format!("{:08}", event.offset),
                event.timestamp_ms as u64,
            )
            .with(Cell::put("d", "v", value)),
        ]
    };
    if config.get("mode") == Some("empty") {
        return Ok(Vec::new());
    }
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
        _ => Ok(row("ok".into())),
    }
}
