//! The configuration a workflow gives a plugin (`[plugin.NAME.config]`).

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::PluginError;

/// Key/value settings from the workflow, handed to the plugin at start.
///
/// ```
/// let c = switchyard_sdk::Config::from_pairs([("table", "messages"), ("shards", "4")]);
/// assert_eq!(c.get("table"), Some("messages"));
/// assert_eq!(c.parse::<u32>("shards").unwrap(), Some(4));
/// assert_eq!(c.get_or("writer", "rmu"), "rmu");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    entries: BTreeMap<String, String>,
}

impl Config {
    /// Builds a configuration from pairs (the host does this; tests too).
    ///
    /// ```
    /// let c = switchyard_sdk::Config::from_pairs([("k", "v")]);
    /// assert_eq!(c.get("k"), Some("v"));
    /// ```
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Config {
            entries: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `key`, if set.
    ///
    /// ```
    /// assert_eq!(switchyard_sdk::Config::default().get("k"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// The value of `key`, or `default` when it is not set.
    ///
    /// ```
    /// assert_eq!(switchyard_sdk::Config::default().get_or("k", "d"), "d");
    /// ```
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// The value of `key` parsed as `T`; a [`PluginError::Config`] names the
    /// key when it does not parse.
    ///
    /// ```
    /// let c = switchyard_sdk::Config::from_pairs([("n", "x")]);
    /// assert!(c.parse::<u8>("n").is_err());
    /// ```
    pub fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>, PluginError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => raw
                .parse()
                .map(Some)
                .map_err(|e| PluginError::Config(format!("`{key}` = {raw:?}: {e}"))),
        }
    }

    /// All settings, ordered by key.
    ///
    /// ```
    /// let c = switchyard_sdk::Config::from_pairs([("b", "2"), ("a", "1")]);
    /// assert_eq!(c.iter().next(), Some(("a", "1")));
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}
