//! `serve`: serves a store as an example read-api (see `read_api`) and
//! leaves it serving until the workflow ends, so a workflow without a
//! service of its own (the quickstart) has read-apis for the router to
//! move reads between. A run that resumes the workflow starts it again.

use std::net::SocketAddr;
use std::time::Instant;

use serde::Deserialize;
use toml::Spanned;

use super::background::{BackgroundTask, Freshness};
use super::checking::Checking;
use super::uses::Uses;
use super::{StepConfig, StepContext, StepError, StepFile};
use crate::document::{Kind, WorkflowError};
use crate::read_api::ReadApi;
use crate::setup::Setup;

/// The kind, for the registration list.
pub const KIND: Kind<dyn StepFile> = Kind {
    name: "serve",
    read: |table| Ok(Box::new(table.read::<ServeFile>()?)),
};

/// `kind = "serve"` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    /// The store to serve.
    pub store: Spanned<String>,
    /// Where (`127.0.0.1:9001`).
    pub listen: Spanned<String>,
    /// Cells not shown, as `family:qualifier` (what a service's read-api
    /// does not expose, such as who wrote a row).
    #[serde(default)]
    pub hide: Vec<Spanned<String>>,
}

/// `kind = "serve"`, checked.
#[derive(Debug, Clone)]
pub struct ServeStep {
    store: String,
    listen: SocketAddr,
    hide: Vec<(String, Vec<u8>)>,
}

impl StepFile for ServeFile {
    fn check(self: Box<Self>, c: &Checking<'_>) -> Result<Box<dyn StepConfig>, WorkflowError> {
        c.store(&self.store)?;
        let listen = self.listen.get_ref().parse().map_err(|_| {
            c.at(
                self.listen.span(),
                format!(
                    "`listen` = `{}` is not an address; write an IP and a port, like `127.0.0.1:9001`",
                    self.listen.get_ref()
                ),
            )
        })?;
        let hide = self
            .hide
            .iter()
            .map(|h| match h.get_ref().split_once(':') {
                Some((f, q)) if !f.is_empty() => Ok((f.to_string(), q.as_bytes().to_vec())),
                _ => Err(c.at(
                    h.span(),
                    format!(
                        "`hide` = `{}`: write cells as `family:qualifier`",
                        h.get_ref()
                    ),
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok(Box::new(ServeStep {
            store: self.store.into_inner(),
            listen,
            hide,
        }))
    }
}

impl StepConfig for ServeStep {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self, setup: &Setup) -> String {
        format!(
            "serve {} as a read-api on {}, until the workflow ends",
            setup.store_text(&self.store),
            self.listen
        )
    }

    fn uses<'s>(&'s self, uses: &mut Uses<'s>) {
        uses.store(&self.store);
    }

    fn run(&self, ctx: &StepContext, id: &str) -> Result<String, StepError> {
        let task = start(ctx, self)?;
        let line = format!(
            "serving `{}` as a read-api on {}",
            self.store,
            task.api.address()
        );
        ctx.background.add(id, KIND.name, Box::new(task));
        Ok(line)
    }

    fn leaves_running(&self) -> bool {
        true
    }

    fn restart(&self, ctx: &StepContext, id: &str) -> Option<Box<dyn BackgroundTask>> {
        match start(ctx, self) {
            Ok(task) => Some(Box::new(task)),
            Err(e) => {
                super::background::fail(ctx, id, e);
                None
            }
        }
    }
}

/// The read-api, as a background task.
struct Serving {
    api: ReadApi,
}

fn start(ctx: &StepContext, step: &ServeStep) -> Result<Serving, StepError> {
    let store = ctx.store(&step.store)?;
    let api =
        ReadApi::start(store, step.listen, step.hide.clone()).map_err(StepError::Background)?;
    Ok(Serving { api })
}

impl BackgroundTask for Serving {
    fn stop(&self) {
        self.api.stop();
    }

    fn finished(&self) -> bool {
        self.api.finished()
    }

    fn join(self: Box<Self>) -> Result<String, StepError> {
        let address = self.api.address();
        self.api.join().map_err(StepError::Panicked)?;
        Ok(format!("stopped serving on {address}"))
    }

    fn look(&mut self, _now: Instant) -> Option<String> {
        None
    }

    fn freshness(&self) -> Freshness {
        Freshness::CaughtUp
    }

    fn status(&self, _state: &mut crate::state::StepState) {}
}
