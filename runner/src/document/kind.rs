//! Kinds: a `[source.NAME]`, `[store.NAME]` or `[[step]]` table says its
//! `kind`, and each axis (sources, stores, steps) keeps one registration
//! list of the kinds it has. Here a table is matched to its kind and
//! handed to that kind's reader as a [`Table`]; what the kinds are is the
//! axis's business.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::DeValue;

use super::error::{Errors, WorkflowError};
use super::read::{deserialize, kind, resolve_path};

/// One kind of an axis whose configurations are `C` (a trait object):
/// its name in the file and how its table is read.
pub struct Kind<C: ?Sized + 'static> {
    /// `kind = "…"`.
    pub name: &'static str,
    /// Reads a table of this kind.
    pub read: fn(Table<'_, '_>) -> Result<Box<C>, WorkflowError>,
}

/// A kind's table, `kind` taken out, and where it stands in the file.
pub struct Table<'a, 'i> {
    value: Spanned<DeValue<'i>>,
    errors: Errors<'a>,
}

impl<'a, 'i> Table<'a, 'i> {
    /// The table at `value`.
    pub fn new(value: Spanned<DeValue<'i>>, errors: Errors<'a>) -> Self {
        Table { value, errors }
    }

    /// Where the table stands, for errors found after reading it.
    pub fn at(&self) -> At<'a> {
        At {
            span: self.value.span(),
            errors: self.errors,
        }
    }

    /// Reads it as `T` (serde, unknown keys refused), errors placed at the
    /// offending value.
    pub fn read<T: DeserializeOwned>(self) -> Result<T, WorkflowError> {
        deserialize(self.value, self.errors)
    }
}

/// Where a table stands in the file.
#[derive(Clone)]
pub struct At<'a> {
    /// Its bytes in the file.
    pub span: Range<usize>,
    /// The file.
    pub errors: Errors<'a>,
}

impl At<'_> {
    /// An error about the table.
    pub fn error(&self, message: impl Into<String>) -> WorkflowError {
        self.errors.at(self.span.clone(), message)
    }
}

/// Matches a table to one of `kinds` by its `kind` and reads it.
pub fn read_kind<C: ?Sized>(
    value: Spanned<DeValue<'_>>,
    what: &str,
    kinds: &[Kind<C>],
    errors: Errors<'_>,
) -> Result<Box<C>, WorkflowError> {
    let names: Vec<&str> = kinds.iter().map(|k| k.name).collect();
    let (chosen, rest) = kind(value, what, &names, errors)?;
    (kinds[chosen].read)(Table::new(rest, errors))
}

/// Where a workflow lives: its folder, which relative paths in it are
/// resolved against, and its name, which default consumer groups derive
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    /// The workflow file's folder.
    pub dir: PathBuf,
    /// `[workflow] name`.
    pub workflow: String,
}

impl Home {
    /// A path from the file, resolved against the workflow's folder.
    pub fn path(&self, text: &str) -> PathBuf {
        resolve_path(&self.dir, text)
    }
}

/// The `[section.NAME]` tables of one axis (sources, stores), read by
/// their kinds, in file order.
#[derive(Debug)]
pub struct Sections<C: ?Sized>(pub Vec<(String, Arc<C>)>);

impl<C: ?Sized> Sections<C> {
    /// The section named `name`.
    pub fn get(&self, name: &str) -> Option<&C> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.as_ref())
    }

    /// Every section, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &C)> {
        self.0.iter().map(|(n, s)| (n.as_str(), s.as_ref()))
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<C: ?Sized> Clone for Sections<C> {
    fn clone(&self) -> Self {
        Sections(self.0.clone())
    }
}

impl<C: ?Sized> Default for Sections<C> {
    fn default() -> Self {
        Sections(Vec::new())
    }
}
