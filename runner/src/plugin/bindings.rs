//! The host side of the plugin contract: one `bindgen!` per world, all
//! generated from the SDK's `sdk/wit/` so runner and plugins cannot drift.
//! The `transform` world owns the shared `types` and `host` interfaces; the
//! other worlds reuse them.

/// Bindings of the `transform` world.
pub mod transform {
    wasmtime::component::bindgen!({
        world: "transform",
        path: "../sdk/wit",
        additional_derives: [PartialEq, Eq],
    });
}

/// Bindings of the `check` world.
pub mod check {
    wasmtime::component::bindgen!({
        world: "check",
        path: "../sdk/wit",
        additional_derives: [PartialEq, Eq],
        with: {
            "switchyard:plugin/types": super::transform::switchyard::plugin::types,
            "switchyard:plugin/host": super::transform::switchyard::plugin::host,
        },
    });
}

/// Bindings of the `route` world.
pub mod route {
    wasmtime::component::bindgen!({
        world: "route",
        path: "../sdk/wit",
        additional_derives: [PartialEq, Eq],
        with: {
            "switchyard:plugin/types": super::transform::switchyard::plugin::types,
            "switchyard:plugin/host": super::transform::switchyard::plugin::host,
        },
    });
}

pub use check::exports::switchyard::plugin::checker;
pub use route::exports::switchyard::plugin::router;
pub use transform::switchyard::plugin::{host, types};

/// The exported interface each world's plugins must provide, as a component
/// names it.
pub const TRANSFORMER_INTERFACE: &str = "switchyard:plugin/transformer@0.1.0";
/// See [`TRANSFORMER_INTERFACE`].
pub const CHECKER_INTERFACE: &str = "switchyard:plugin/checker@0.1.0";
/// See [`TRANSFORMER_INTERFACE`].
pub const ROUTER_INTERFACE: &str = "switchyard:plugin/router@0.1.0";
