//! The `route` world: which side serves a request.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::bindings::route::{Route, RoutePre};
use super::bindings::{ROUTER_INTERFACE, router, types};
use super::error::{Input, PluginFailure};
use super::instance::{Instance, Plugin, World};
use super::sandbox::HostState;

pub use router::{Decision, Request, Side};

/// A loaded route plugin.
pub type RoutePlugin = Plugin<Route>;

impl World for Route {
    type Pre = RoutePre<HostState>;
    const KIND: &'static str = "route";
    const INTERFACE: &'static str = ROUTER_INTERFACE;

    fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        RoutePre::new(pre)
    }

    fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
        pre.instantiate(store)
    }

    fn init(
        &self,
        store: &mut Store<HostState>,
        config: &[types::ConfigEntry],
    ) -> wasmtime::Result<Result<(), types::PluginError>> {
        self.switchyard_plugin_router().call_init(store, config)
    }
}

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
