//! `route`: starts the router of `[router]` and leaves it serving in the
//! background, across the steps that follow, until the workflow ends. It
//! starts with the routing state the state folder holds (every read to
//! blue the first time), and later steps, the admin endpoint and
//! `runner rollback` move reads by changing that state. A run that
//! resumes an unfinished workflow starts it again.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::background::{BackgroundTask, Freshness};
use super::checking::Checking;
use super::plugins::PluginRegistry;
use super::uses::Uses;
use super::{StepConfig, StepContext, StepError, StepFile};
use crate::document::{Kind, WorkflowError};
use crate::plugin::LoadError;
use crate::plugin::contract::{ResponseCheck, Route};
use crate::router::config::RouterConfig;
use crate::router::{Router, RouterPlugins};
use crate::setup::Setup;

/// The kind, for the registration list.
pub const KIND: Kind<dyn StepFile> = Kind {
    name: "route",
    read: |table| Ok(Box::new(table.read::<RouteStep>()?)),
};

/// `kind = "route"`: no settings of its own; the router is `[router]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteStep {}

impl StepFile for RouteStep {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        if c.setup.router.is_none() {
            return Err(c.step(
                "a `route` step starts the router, but the workflow has no `[router]` section (listen, blue, green)",
            ));
        }
        if c.earlier.iter().any(|s| s.kind() == KIND.name) {
            return Err(c.step("the router is already started by an earlier `route` step"));
        }
        Ok(self)
    }
}

impl StepConfig for RouteStep {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self, setup: &Setup) -> String {
        match &setup.router {
            Some(r) => format!(
                "route reads on {} between blue {} and green {}{}, until the workflow ends",
                r.listen,
                r.blue,
                r.green,
                r.plugin
                    .as_ref()
                    .map_or(format!(", sticky on `{}`", r.sticky_header), |p| format!(
                        ", decided by plugin `{p}`"
                    ))
            ),
            None => "route reads".into(),
        }
    }

    fn uses<'s>(&'s self, _uses: &mut Uses<'s>) {}

    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError> {
        let task = start(ctx)?;
        let line = format!(
            "routing reads on {}: {}",
            task.router.address(),
            task.router.routing().describe()
        );
        ctx.background.add(id, KIND.name, Box::new(task));
        Ok(line)
    }

    fn leaves_running(&self) -> bool {
        true
    }

    fn restart(&self, ctx: &StepContext, id: &str) -> Option<Box<dyn BackgroundTask>> {
        match start(ctx) {
            Ok(task) => Some(Box::new(task)),
            Err(e) => {
                super::background::fail(ctx, id, e);
                None
            }
        }
    }
}

/// Checks that a step doing `what` comes after the `route` step that
/// starts the router it works through.
pub fn require_earlier(c: &Checking<'_>, what: &str) -> Result<(), WorkflowError> {
    if c.earlier.iter().any(|s| s.kind() == KIND.name) {
        return Ok(());
    }
    Err(c.step(format!(
        "{what} through the router, which an earlier `route` step must start"
    )))
}

/// The counters of the router running in this run (for the gates of
/// `mirror` and `shift`).
pub fn counts(ctx: &StepContext) -> Result<Arc<crate::router::Metrics>, StepError> {
    ctx.background
        .shared::<crate::router::Metrics>()
        .ok_or_else(|| {
            StepError::Missing(
                "no router serves in this run: the `route` step that starts it is not running"
                    .into(),
            )
        })
}

/// The plugins `[router]` names, loaded (for the `route` step and
/// `runner route`).
pub fn load_plugins(
    registry: &PluginRegistry,
    setup: &Setup,
    config: &RouterConfig,
) -> Result<RouterPlugins, LoadError> {
    Ok(RouterPlugins {
        route: config
            .plugin
            .as_ref()
            .map(|name| registry.get::<Route>(setup, name))
            .transpose()?,
        response_check: config
            .mirror_plugin
            .as_ref()
            .map(|name| registry.get::<ResponseCheck>(setup, name))
            .transpose()?,
    })
}

/// The router, as a background task.
struct Routing {
    router: Router,
}

fn start(ctx: &StepContext) -> Result<Routing, StepError> {
    let Some(config) = &ctx.setup.router else {
        return Err(StepError::Missing("the workflow has no `[router]`".into()));
    };
    let plugins = load_plugins(&ctx.plugins, &ctx.setup, config)?;
    let state_dir = &ctx.setup.state_dir;
    ctx.own(&[
        state_dir.join(crate::state::ROUTING_FILE),
        state_dir.join(crate::state::MIRROR_SAMPLES_FILE),
    ])?;
    let router = Router::start(config, plugins, &ctx.setup.state_dir)
        .map_err(|e| StepError::Background(e.to_string()))?;
    Ok(Routing { router })
}

impl BackgroundTask for Routing {
    fn stop(&self) {
        self.router.stop();
    }

    fn finished(&self) -> bool {
        self.router.finished()
    }

    fn join(self: Box<Self>) -> Result<String, StepError> {
        self.router.join().map_err(StepError::Panicked)
    }

    fn look(&mut self, _now: Instant) -> Option<String> {
        None
    }

    fn freshness(&self) -> Freshness {
        // It keeps no store current.
        Freshness::CaughtUp
    }

    fn shared(&self) -> Option<Arc<dyn Any + Send + Sync>> {
        Some(self.router.counts())
    }

    fn status(&self, state: &mut crate::state::StepState) {
        state.set_own_field("served", Some(self.router.metrics()));
    }
}
