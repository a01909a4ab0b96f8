//! The host side of the plugin contract, generated from the SDK's
//! `sdk/wit/` so runner and plugins cannot drift. The `transform` world
//! owns the shared `types` and `host` interfaces; the other worlds reuse
//! them. The runner calls a plugin's functions itself (see `contract`), so
//! only the types and the `host` import are used from here.

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

/// Bindings of the `response-check` world.
pub mod response_check {
    wasmtime::component::bindgen!({
        world: "response-check",
        path: "../sdk/wit",
        additional_derives: [PartialEq, Eq],
        with: {
            "switchyard:plugin/types": super::transform::switchyard::plugin::types,
            "switchyard:plugin/host": super::transform::switchyard::plugin::host,
        },
    });
}

/// Bindings of the `row-map` world.
pub mod row_map {
    wasmtime::component::bindgen!({
        world: "row-map",
        path: "../sdk/wit",
        additional_derives: [PartialEq, Eq],
        with: {
            "switchyard:plugin/types": super::transform::switchyard::plugin::types,
            "switchyard:plugin/host": super::transform::switchyard::plugin::host,
        },
    });
}

/// Bindings of the previous contract's `transform` world
/// (`sdk/wit-0.1/`): its batch records and its own `host` import. Its
/// `types` are the same records as today's, so they are today's Rust
/// types; the `check` and `route` worlds did not change at all.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        world: "transform",
        path: "../sdk/wit-0.1",
        additional_derives: [PartialEq, Eq],
        with: {
            "switchyard:plugin/types": super::transform::switchyard::plugin::types,
        },
    });

    pub use exports::switchyard::plugin::transformer;
    pub use switchyard::plugin::host;
}

pub use check::exports::switchyard::plugin::checker;
pub use response_check::exports::switchyard::plugin::response_checker;
pub use route::exports::switchyard::plugin::router;
pub use row_map::exports::switchyard::plugin::row_mapper;
pub use transform::exports::switchyard::plugin::transformer;
pub use transform::switchyard::plugin::{host, types};
