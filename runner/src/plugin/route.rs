//! The `route` world: which side serves a request.

use super::bindings::route::{Route, RoutePre};
use super::bindings::{ROUTER_INTERFACE, router, types};
use super::error::{Input, PluginFailure};
use super::instance::{Instance, Plugin, world};

pub use router::{Decision, Request, Side};

/// A loaded route plugin.
pub type RoutePlugin = Plugin<Route>;

world!(
    Route,
    RoutePre,
    "route",
    ROUTER_INTERFACE,
    switchyard_plugin_router
);

impl Instance<Route> {
    /// Decides where one request goes.
    pub fn route(
        &mut self,
        request: &Request,
    ) -> Result<Result<Decision, types::PluginError>, PluginFailure> {
        let at = Input::Request {
            what: format!("{} {}", request.method, request.path),
        };
        self.call(&at, |bindings, store| {
            bindings
                .switchyard_plugin_router()
                .call_route(store, request)
        })
    }
}
