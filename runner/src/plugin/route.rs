//! The `route` world: which side serves a request.

use super::bindings::{router, types};
use super::contract::Route;
use super::error::{Input, PluginFailure};
use super::instance::{Instance, Plugin};

pub use router::{Decision, Request, Side};

/// A loaded route plugin.
pub type RoutePlugin = Plugin<Route>;

impl Instance<Route> {
    /// Decides where one request goes, within `timeout` (at most the
    /// plugin's own): a router cannot hold a request for seconds.
    pub fn route(
        &mut self,
        request: &Request,
        timeout: std::time::Duration,
    ) -> Result<Result<Decision, types::PluginError>, PluginFailure> {
        let at = Input::Request {
            what: crate::text::bounded(&format!("{} {}", request.method, request.path), 200),
        };
        self.call_within(&at, timeout, |exports, store| {
            exports
                .call::<_, (Result<Decision, types::PluginError>,)>(store, (request,))
                .map(|(decision,)| decision)
        })
    }
}
