//! The `route` world: which side serves a request.

use super::bindings::{router, types};
use super::contract::Route;
use super::error::{Input, PluginFailure};
use super::instance::{Instance, Plugin};

pub use router::{Decision, Request, Side};

/// A loaded route plugin.
pub type RoutePlugin = Plugin<Route>;

impl Instance<Route> {
    /// Decides where one request goes.
    pub fn route(
        &mut self,
        request: &Request,
    ) -> Result<Result<Decision, types::PluginError>, PluginFailure> {
        let at = Input::Request {
            what: format!("{} {}", request.method, request.path),
        };
        self.call(&at, |exports, store| {
            exports
                .call::<_, (Result<Decision, types::PluginError>,)>(store, (request,))
                .map(|(decision,)| decision)
        })
    }
}
