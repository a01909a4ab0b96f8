//! The `check` world: is a blue row equal to its green row?

use super::bindings::{checker, types};
use super::contract::Check;
use super::error::{Input, PluginFailure};
use super::instance::{Instance, Plugin};

pub use checker::{Pair, Verdict};

/// A loaded check plugin.
pub type CheckPlugin = Plugin<Check>;

impl Instance<Check> {
    /// Checks a batch of pairs: one verdict per pair, in order.
    pub fn check(
        &mut self,
        pairs: &[Pair],
    ) -> Result<Vec<Result<Verdict, types::PluginError>>, PluginFailure> {
        let at = match pairs {
            [one] => Input::Key {
                table: one.table.clone(),
                key: crate::text::foreign_bytes(&one.row_key),
            },
            _ => Input::Keys { count: pairs.len() },
        };
        let verdicts = self.call(&at, |exports, store| {
            exports
                .call::<_, (Vec<Result<Verdict, types::PluginError>>,)>(store, (pairs,))
                .map(|(verdicts,)| verdicts)
        });
        match verdicts {
            Ok(v) if v.len() == pairs.len() => Ok(v.into_iter().map(bounded).collect()),
            Ok(v) => Err(PluginFailure::Contract {
                plugin: self.name().to_string(),
                what: format!(
                    "`check` returned {} verdicts for {} pairs",
                    v.len(),
                    pairs.len()
                ),
                at,
            }),
            // Name the key that caused it.
            Err(failure) if pairs.len() > 1 && !matches!(failure, PluginFailure::Config { .. }) => {
                let mut all = Vec::with_capacity(pairs.len());
                for pair in pairs {
                    all.extend(self.check(std::slice::from_ref(pair))?);
                }
                tracing::warn!(plugin = self.name(), "{failure}; each key alone succeeded");
                Ok(all)
            }
            Err(failure) => Err(failure),
        }
    }
}

/// A verdict with what the plugin said in it bounded and on one line.
fn bounded(verdict: Result<Verdict, types::PluginError>) -> Result<Verdict, types::PluginError> {
    match verdict {
        Ok(Verdict::Different(why)) => Ok(Verdict::Different(crate::text::foreign(&why))),
        Ok(other) => Ok(other),
        Err(e) => Err(super::error::bounded(e)),
    }
}
