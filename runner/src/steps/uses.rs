//! What the steps still to run use, each once, for the preflight: each
//! kind notes its sources, stores and plugins here (see
//! `StepConfig::uses`), in step order, so that what a command step that
//! runs first may provide is told apart.

use std::collections::{BTreeMap, BTreeSet};

/// What the steps use.
#[derive(Default)]
pub struct Uses<'w> {
    /// Source, extra topics, whether a command step runs before it.
    pub sources: Vec<(&'w str, Vec<&'w str>, bool)>,
    /// Store, whether a command step runs before its first use.
    pub stores: BTreeMap<&'w str, bool>,
    /// Plugins of the transform world.
    pub transforms: BTreeSet<&'w str>,
    /// Plugins of the check world.
    pub checks: BTreeSet<&'w str>,
    /// Whether a command ran before the step being noted.
    command_before: bool,
}

impl<'w> Uses<'w> {
    /// A command runs here: what comes after may be provided by it.
    pub fn command(&mut self) {
        self.command_before = true;
    }

    /// The source `name`, and more topics of its cluster (dead letters).
    pub fn source(&mut self, name: &'w str, topics: Vec<&'w str>) {
        match self.sources.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, more, _)) => more.extend(topics),
            None => self.sources.push((name, topics, self.command_before)),
        }
    }

    /// The store `name`.
    pub fn store(&mut self, name: &'w str) {
        self.stores.entry(name).or_insert(self.command_before);
    }

    /// The transform plugin `name`.
    pub fn transform(&mut self, name: &'w str) {
        self.transforms.insert(name);
    }

    /// The check plugin `name`.
    pub fn check(&mut self, name: &'w str) {
        self.checks.insert(name);
    }
}
