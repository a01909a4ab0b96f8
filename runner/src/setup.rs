//! What a workflow's steps work with, apart from the steps themselves:
//! where the workflow lives and keeps its state, its `[vars]`, and its
//! named sources, stores and plugins. Steps see the workflow through this
//! (and the list of steps), so they need not know how the file is read.

use std::path::PathBuf;

use crate::document::Home;
use crate::document::read::resolve_path;
use crate::document::vars::Vars;
use crate::plugin::PluginSpec;
use crate::router::RouterConfig;
use crate::source::{SourceConfig, Sources};
use crate::store::{Store, StoreConfig, StoreError, Stores};

/// A workflow's surroundings, as its file declares them.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The file it was read from.
    pub file: PathBuf,
    /// The folder relative paths are resolved against.
    pub dir: PathBuf,
    /// `[workflow] name`.
    pub name: String,
    /// Where state is kept.
    pub state_dir: PathBuf,
    /// Every variable, expanded.
    pub vars: Vars,
    /// `[source.NAME]`, in file order.
    pub sources: Sources,
    /// `[store.NAME]`, in file order.
    pub stores: Stores,
    /// `[plugin.NAME]`, in file order.
    pub plugins: Vec<PluginSpec>,
    /// `[router]`: the proxy in front of the read-apis, if the workflow
    /// moves reads.
    pub router: Option<RouterConfig>,
}

impl Setup {
    /// The source named `name`.
    pub fn source(&self, name: &str) -> Option<&dyn SourceConfig> {
        self.sources.get(name)
    }

    /// The store named `name`.
    pub fn store(&self, name: &str) -> Option<&dyn StoreConfig> {
        self.stores.get(name)
    }

    /// The plugin named `name`.
    pub fn plugin(&self, name: &str) -> Option<&PluginSpec> {
        self.plugins.iter().find(|p| p.name == name)
    }

    /// A path from the file, resolved against the workflow's folder.
    pub fn path(&self, text: &str) -> PathBuf {
        resolve_path(&self.dir, text)
    }

    /// Where it lives: its folder and name.
    pub fn home(&self) -> Home {
        Home {
            dir: self.dir.clone(),
            workflow: self.name.clone(),
        }
    }

    /// Opens the store `name`.
    pub fn open_store(&self, name: &str) -> Result<Box<dyn Store>, StoreError> {
        self.stores.open(&self.home(), name, &self.sources)
    }

    /// The store `name` as the plan shows it: "`green` (sqlite /x.db)".
    pub fn store_text(&self, name: &str) -> String {
        let Some(store) = self.store(name) else {
            return format!("`{name}`");
        };
        let fed_by = store.fed_by().map_or(String::new(), |f| {
            format!(
                ", written by consumer group `{}` of `{}`",
                f.group,
                f.source.get_ref()
            )
        });
        format!("`{name}` ({}{fed_by})", store.describe(&self.home()))
    }

    /// The source `name` as the plan shows it.
    pub fn source_text(&self, name: &str) -> String {
        match self.source(name) {
            Some(source) => format!("`{name}` ({})", source.describe(&self.home(), name)),
            None => format!("`{name}`"),
        }
    }
}
