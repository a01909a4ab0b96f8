//! Which version of the contract a plugin was built against, and where its
//! functions are.
//!
//! Every world exports one interface named with the contract's version
//! (`switchyard:plugin/transformer@0.2.0`). The runner reads every version
//! it lists here, so a plugin built against an older SDK keeps working:
//! it finds the interface under each name and calls the two functions
//! every world has, `init` and the world's own. wasmtime checks the
//! component's types against the Rust types of a call structurally, when
//! an instance starts (see [`World::typecheck`]) and again on every call:
//! a `check` or `route` plugin of 0.1 is called with today's records
//! because they did not change.

use wasmtime::component::{Component, ComponentExportIndex, Func, Instance};
use wasmtime::{AsContextMut, Store};

use super::bindings::{checker, response_checker, router, row_mapper, transformer, types, v0_1};
use super::sandbox::HostState;

/// A version of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// Events cross one by one as records; rows come back packed as records.
    V0_1,
    /// A batch crosses as one byte buffer and a list of words, both ways.
    V0_2,
}

impl Contract {
    /// The versions the runner reads, newest first.
    pub const READ: [Contract; 2] = [Contract::V0_2, Contract::V0_1];

    /// `0.2.0`.
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
        }
    }

    /// The full name of one of the contract's interfaces in this version.
    pub fn interface(self, name: &str) -> String {
        format!("switchyard:plugin/{name}@{}", self.version())
    }
}

/// One plugin world as the host sees it.
pub trait World: Send + 'static {
    /// `transform`, `check`, `route`, `response-check` or `row-map`.
    const KIND: &'static str;
    /// The interface the plugin exports, without package and version.
    const INTERFACE: &'static str;
    /// Its function besides `init`.
    const FUNCTION: &'static str;

    /// The interface's name in the newest contract, for messages.
    fn interface() -> String {
        Contract::READ[0].interface(Self::INTERFACE)
    }

    /// Checks that the functions have the types the runner calls them
    /// with, so that a mismatch stops the plugin as it starts rather than
    /// on its first input.
    fn typecheck(exports: &Exports, store: &Store<HostState>) -> wasmtime::Result<()>;

    /// Whether a component that exports `name` is of this world, in a
    /// version the runner reads.
    fn exported_as(name: &str) -> bool {
        Contract::READ
            .iter()
            .any(|c| c.interface(Self::INTERFACE) == name)
    }
}

/// The `transform` world.
pub struct Transform;
/// The `check` world.
pub struct Check;
/// The `route` world.
pub struct Route;
/// The `response-check` world.
pub struct ResponseCheck;
/// The `row-map` world.
pub struct RowMap;

impl World for Transform {
    const KIND: &'static str = "transform";
    const INTERFACE: &'static str = "transformer";
    const FUNCTION: &'static str = "transform";

    fn typecheck(exports: &Exports, store: &Store<HostState>) -> wasmtime::Result<()> {
        match exports.contract {
            Contract::V0_2 => {
                exports.check::<(&transformer::EventBatch,), (transformer::MutationBatch,)>(store)
            }
            Contract::V0_1 => {
                exports.check::<(&[types::Event],), (v0_1::transformer::MutationBatch,)>(store)
            }
        }
    }
}

impl World for Check {
    const KIND: &'static str = "check";
    const INTERFACE: &'static str = "checker";
    const FUNCTION: &'static str = "check";

    fn typecheck(exports: &Exports, store: &Store<HostState>) -> wasmtime::Result<()> {
        exports.check::<(&[checker::Pair],), (Vec<Result<checker::Verdict, types::PluginError>>,)>(
            store,
        )
    }
}

impl World for Route {
    const KIND: &'static str = "route";
    const INTERFACE: &'static str = "router";
    const FUNCTION: &'static str = "route";

    fn typecheck(exports: &Exports, store: &Store<HostState>) -> wasmtime::Result<()> {
        exports.check::<(&router::Request,), (Result<router::Decision, types::PluginError>,)>(store)
    }
}

impl World for ResponseCheck {
    const KIND: &'static str = "response-check";
    const INTERFACE: &'static str = "response-checker";
    const FUNCTION: &'static str = "compare";

    fn typecheck(exports: &Exports, store: &Store<HostState>) -> wasmtime::Result<()> {
        exports.check::<
            (&response_checker::Exchange,),
            (Result<response_checker::Comparison, types::PluginError>,),
        >(store)
    }
}

impl World for RowMap {
    const KIND: &'static str = "row-map";
    const INTERFACE: &'static str = "row-mapper";
    const FUNCTION: &'static str = "map-rows";

    fn typecheck(exports: &Exports, store: &Store<HostState>) -> wasmtime::Result<()> {
        exports.check::<
            (&[row_mapper::SourceRow],),
            (Vec<Result<Vec<types::RowMutation>, types::PluginError>>,),
        >(store)
    }
}

/// Where a component's two functions are, found once when it is loaded.
#[derive(Debug, Clone)]
pub struct ExportIndices {
    contract: Contract,
    init: ComponentExportIndex,
    function: ComponentExportIndex,
}

impl ExportIndices {
    /// The functions of world `W` in `component`, under the newest version
    /// of the contract it exports; `None` when it exports none.
    pub fn find<W: World>(component: &Component) -> Option<Self> {
        Contract::READ.into_iter().find_map(|contract| {
            let name = contract.interface(W::INTERFACE);
            let (_, interface) = component.get_export(None, &name)?;
            let (_, init) = component.get_export(Some(&interface), "init")?;
            let (_, function) = component.get_export(Some(&interface), W::FUNCTION)?;
            Some(ExportIndices {
                contract,
                init,
                function,
            })
        })
    }

    /// The functions in one instance of the component.
    pub fn exports(
        &self,
        instance: &Instance,
        mut store: impl AsContextMut<Data = HostState>,
    ) -> wasmtime::Result<Exports> {
        let missing = || wasmtime::format_err!("the component lost an export it was loaded with");
        Ok(Exports {
            contract: self.contract,
            init: instance
                .get_func(&mut store, self.init)
                .ok_or_else(missing)?,
            function: instance
                .get_func(&mut store, self.function)
                .ok_or_else(missing)?,
        })
    }
}

/// A running instance's two functions.
pub struct Exports {
    /// The version of the contract they follow.
    pub contract: Contract,
    init: Func,
    function: Func,
}

impl Exports {
    /// Calls `init` with the plugin's configuration.
    pub fn init(
        &self,
        store: &mut Store<HostState>,
        config: &[types::ConfigEntry],
    ) -> wasmtime::Result<Result<(), types::PluginError>> {
        let init = self
            .init
            .typed::<(&[types::ConfigEntry],), (Result<(), types::PluginError>,)>(&*store)?;
        Ok(init.call(store, (config,))?.0)
    }

    /// Whether `init` and the world's function have the types `P -> R`.
    fn check<P, R>(&self, store: &Store<HostState>) -> wasmtime::Result<()>
    where
        P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
        R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
    {
        self.init
            .typed::<(&[types::ConfigEntry],), (Result<(), types::PluginError>,)>(store)?;
        self.function.typed::<P, R>(store)?;
        Ok(())
    }

    /// Calls the world's function, typed as `P -> R`; a component whose
    /// function has another type fails here, named by wasmtime.
    pub fn call<P, R>(&self, store: &mut Store<HostState>, params: P) -> wasmtime::Result<R>
    where
        P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
        R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
    {
        let function = self.function.typed::<P, R>(&*store)?;
        function.call(store, params)
    }
}
