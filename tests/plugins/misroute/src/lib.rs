//! A purpose-built misbehaving route plugin, for the router's tests.
//!
//! It routes like a plain one (follow the shift, sticky on `x-user-id`)
//! unless the request's `x-misbehave` header says otherwise: `panic`
//! (traps), `loop` (never returns), `memory` (allocates without end),
//! `refuse` (returns an error), `green` or `blue` (names a side).

use std::hint::black_box;

use switchyard_sdk::{Decision, PluginError, Request, Side};

#[switchyard_sdk::route]
pub fn misroute(request: &Request) -> Result<Decision, PluginError> {
    let sticky_key = request.header("x-user-id").map(String::from);
    let side = match request.header("x-misbehave") {
        Some("panic") => panic!("misbehaving on purpose for {}", request.path),
        Some("loop") => {
            let mut n = 0u64;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        Some("memory") => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(black_box(vec![1u8; 1 << 20]));
            }
        }
        Some("refuse") => return Err(PluginError::Malformed("refused on purpose".into())),
        Some("green") => Side::Green,
        Some("blue") => Side::Blue,
        _ => Side::Shift,
    };
    Ok(Decision {
        side,
        sticky_key,
        mirror: false,
    })
}
