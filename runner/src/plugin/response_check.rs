//! The `response-check` world: where do two answers to one mirrored read
//! differ?

use super::bindings::{response_checker, types};
use super::contract::ResponseCheck;
use super::error::{Input, PluginFailure};
use super::instance::{Instance, Plugin};

pub use response_checker::{Comparison, Exchange, Response};

/// A loaded response-check plugin.
pub type ResponseCheckPlugin = Plugin<ResponseCheck>;

impl Instance<ResponseCheck> {
    /// Compares the two answers of `exchange`; the places it names are
    /// bounded in number and length, and each put on one line.
    pub fn compare(
        &mut self,
        exchange: &Exchange,
    ) -> Result<Result<Comparison, types::PluginError>, PluginFailure> {
        let at = Input::Request {
            what: crate::text::bounded(&format!("{} {}", exchange.method, exchange.path), 200),
        };
        let compared = self.call(&at, |exports, store| {
            exports
                .call::<_, (Result<Comparison, types::PluginError>,)>(store, (exchange,))
                .map(|(comparison,)| comparison)
        })?;
        Ok(match compared {
            Ok(Comparison::Differ(places)) => Ok(Comparison::Differ(bounded(places))),
            Ok(other) => Ok(other),
            Err(e) => Err(super::error::bounded(e)),
        })
    }
}

/// Places kept of one answer: the router names at most 200 and says
/// when there were more, so one more than that is enough.
pub const MAX_PLACES: usize = 201;
/// The longest place kept (longer ones are cut, with `…`).
pub const MAX_PLACE: usize = 256;

fn bounded(places: Vec<String>) -> Vec<String> {
    places
        .into_iter()
        .take(MAX_PLACES)
        .map(|p| crate::text::cut(&crate::text::foreign(&p), MAX_PLACE))
        .collect()
}
