//! The validation pass: everything that can be checked without a live
//! system — unique ids, references between sections, values in range.

use std::collections::HashSet;

use toml::Spanned;

use super::steps::{OnError, StepKind, Until};
use super::{Workflow, valid_name};
use crate::document::error::{Errors, WorkflowError};
use crate::document::values::{Period, Point};
use crate::plugin::PluginSource;
use crate::plugin::bindings::{CHECKER_INTERFACE, TRANSFORMER_INTERFACE};
use crate::source::kafka::config::kafka;
use crate::text::quoted;

/// Checks a parsed workflow.
pub fn validate(w: &Workflow, errors: Errors<'_>) -> Result<(), WorkflowError> {
    let mut ids = HashSet::new();
    let mut restored = HashSet::new();
    // Replays that keep running in the background, for `stop` steps.
    let mut background: HashSet<String> = HashSet::new();
    for (name, store) in w.stores.iter() {
        if let Some(fed) = store.fed_by() {
            let source = fed.source.get_ref();
            if w.source(source).and_then(kafka).is_none() {
                return Err(errors.at(
                    fed.source.span(),
                    format!(
                        "store `{name}`: `fed_by.source` must name a kafka source; there is no `[source.{source}]` of kind `kafka`"
                    ),
                ));
            }
        }
    }
    for step in &w.steps {
        let id = step.id.get_ref();
        if !valid_name(id) {
            return Err(errors.at(
                step.id.span(),
                format!("invalid step id `{id}`; use letters, digits, `-` and `_`"),
            ));
        }
        if !ids.insert(id.clone()) {
            return Err(errors.at(
                step.id.span(),
                format!("duplicate step id `{id}`; every step needs its own id"),
            ));
        }
        let at = |message: String| errors.at(step.id.span(), format!("step `{id}`: {message}"));
        match &step.kind {
            StepKind::Shell(s) => match (&s.command, &s.run) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(at(
                        "needs exactly one of `command` (a program and its arguments, run without a shell) or `run` (a line for `sh -c`)".into(),
                    ));
                }
                (Some(args), None) if args.first().is_none_or(|p| p.trim().is_empty()) => {
                    return Err(at("`command` is empty; give the program first, like `[\"runner\", \"sample\", \"chat\"]`".into()));
                }
                (None, Some(run)) if run.trim().is_empty() => {
                    return Err(at("`run` is empty".into()));
                }
                _ => not_zero(s.timeout, "timeout", &at)?,
            },
            StepKind::Restore(r) => {
                store(w, &r.into, errors)?;
                match (&r.from, &r.command) {
                    (Some(from), None) => {
                        store(w, from, errors)?;
                        if from.get_ref() == r.into.get_ref() {
                            return Err(
                                errors.at(from.span(), "`from` and `into` are the same store")
                            );
                        }
                    }
                    (None, Some(_)) => {}
                    _ => {
                        return Err(at(
                            "needs exactly one of `from` (a store to copy) or `command` (your own restore command)"
                                .into(),
                        ));
                    }
                }
                if matches!(r.as_of, Some(Point::Restore(_)) | Some(Point::Earliest)) {
                    return Err(at(
                        "`as_of` must be `latest`, `watermark - …` or a time".into()
                    ));
                }
                positive(r.batch_size, "batch_size", &at)?;
                not_zero(r.timeout, "timeout", &at)?;
                restored.insert(r.into.get_ref().clone());
            }
            StepKind::Replay(r) => {
                let source = w.source(r.source.get_ref()).ok_or_else(|| {
                    missing(
                        errors,
                        &r.source,
                        "source",
                        w.sources.iter().map(|(n, _)| n),
                    )
                })?;
                plugin(w, &r.transform, errors)?;
                world(w, &r.transform, "transform", TRANSFORMER_INTERFACE, errors)?;
                store(w, &r.into, errors)?;
                if w.store(r.into.get_ref())
                    .is_some_and(|s| s.declared_tables().is_none_or(|t| t.is_empty()))
                {
                    return Err(errors.at(
                        r.into.span(),
                        format!(
                            "store `{}` declares no `tables`; list the tables the plugin writes in `[store.{}]` (`tables = [\"messages\"]`): a plugin writes only to tables the workflow declares",
                            r.into.get_ref(),
                            r.into.get_ref()
                        ),
                    ));
                }
                let kafka = source.can_follow();
                match &r.start {
                    Some(Point::Restore(_)) if !restored.contains(r.into.get_ref()) => {
                        return Err(at(format!(
                            "`start` is relative to the restore point, but no earlier `restore` step loads `{}`",
                            r.into.get_ref()
                        )));
                    }
                    Some(Point::Latest) if !kafka => {
                        return Err(at(
                            "`start = \"latest\"` needs a kafka source; a file has no live end"
                                .into(),
                        ));
                    }
                    Some(Point::Watermark(_)) => {
                        return Err(at(
                            "`start` must be `earliest`, `latest`, `restore - …`, a time or milliseconds"
                                .into(),
                        ));
                    }
                    _ => {}
                }
                if !r.start_offsets.is_empty() {
                    if !kafka {
                        return Err(at("`start_offsets` needs a kafka source".into()));
                    }
                    if r.start.is_some() {
                        return Err(at("give `start` or `start_offsets`, not both".into()));
                    }
                    for (partition, offset) in &r.start_offsets {
                        if partition.parse::<u16>().is_err() || *offset < 0 {
                            return Err(at(format!(
                                "`start_offsets` maps partition numbers to offsets, both 0 or more; got `{partition} = {offset}`"
                            )));
                        }
                    }
                }
                let allowed: &[&str] = if source.can_follow() {
                    &["end", "caught-up", "cutover"]
                } else {
                    &["end"]
                };
                if let Some(until) = &r.until
                    && !allowed.contains(&until.get_ref().as_str())
                {
                    return Err(errors.at(
                        until.span(),
                        format!(
                            "unknown `until` = `{}` for this source; expected {}",
                            until.get_ref(),
                            quoted(allowed)
                        ),
                    ));
                }
                let until = r.until();
                if r.caught_up.is_some() && until == Until::End {
                    return Err(at(
                        "`caught_up` is the gate of `until = \"caught-up\"` or `\"cutover\"`"
                            .into(),
                    ));
                }
                if until == Until::Cutover {
                    background.insert(id.clone());
                }
                not_zero(
                    r.caught_up.as_ref().and_then(|g| g.timeout),
                    "caught_up.timeout",
                    &at,
                )?;
                not_zero(
                    r.caught_up.as_ref().and_then(|g| g.stall),
                    "caught_up.stall",
                    &at,
                )?;
                positive(r.batch_size, "batch_size", &at)?;
                if r.batch_bytes.is_some_and(|b| b.0 == 0) {
                    return Err(at("`batch_bytes` must be at least 1".into()));
                }
                if let (Some(_), Some(topic)) = (&r.dead_letter, &r.dead_letter_topic) {
                    return Err(errors.at(
                        topic.span(),
                        "give `dead_letter` (a file) or `dead_letter_topic`, not both",
                    ));
                }
                if let Some(topic) = &r.dead_letter_topic {
                    if !kafka {
                        return Err(errors.at(
                            topic.span(),
                            "`dead_letter_topic` is a topic of the source's cluster, so it needs a kafka source; use `dead_letter` (a file) with this one",
                        ));
                    }
                    if topic.get_ref().trim().is_empty() {
                        return Err(errors.at(topic.span(), "`dead_letter_topic` is empty"));
                    }
                }
                if r.on_error == OnError::DeadLetter
                    && r.dead_letter.is_none()
                    && r.dead_letter_topic.is_none()
                {
                    return Err(at(
                        "`on_error = \"dead-letter\"` needs `dead_letter` (the file refused events go to) or `dead_letter_topic` (a topic of the source's cluster)".into(),
                    ));
                }
            }
            StepKind::Compare(c) => {
                store(w, &c.blue, errors)?;
                store(w, &c.green, errors)?;
                if c.blue.get_ref() == c.green.get_ref() {
                    return Err(errors.at(c.green.span(), "`blue` and `green` are the same store"));
                }
                if c.tables.is_empty() {
                    return Err(at("`tables` is empty; name the tables to compare".into()));
                }
                if let Some(check) = &c.check {
                    plugin(w, check, errors)?;
                    world(w, check, "check", CHECKER_INTERFACE, errors)?;
                }
                if let Some(r) = c.max_mismatch_ratio
                    && !(0.0..=1.0).contains(&r)
                {
                    return Err(at(format!(
                        "`max_mismatch_ratio` = {r} is not between 0 and 1"
                    )));
                }
                if matches!(c.as_of, Some(Point::Restore(_)) | Some(Point::Earliest)) {
                    return Err(at(
                        "`as_of` must be `watermark - …`, `latest` or a time".into()
                    ));
                }
                positive(c.batch_size, "batch_size", &at)?;
                if c.examples.is_some_and(|n| n > 100_000) {
                    return Err(at(
                        "`examples` may be at most 100000; the counts stay exact whatever it is"
                            .into(),
                    ));
                }
            }
            StepKind::Stop(s) => {
                for replay in &s.replays {
                    if !background.contains(replay.get_ref()) {
                        return Err(errors.at(
                            replay.span(),
                            format!(
                                "`{}` is not an earlier replay step with `until = \"cutover\"`; only those run in the background",
                                replay.get_ref()
                            ),
                        ));
                    }
                }
            }
            StepKind::Cutover(c) => {
                store(w, &c.to, errors)?;
                if let Some(from) = &c.from {
                    store(w, from, errors)?;
                }
            }
        }
    }
    Ok(())
}

/// The most a batch may hold: a batch is held whole in memory.
const MAX_BATCH: usize = 1_000_000;

fn positive(
    value: Option<usize>,
    name: &str,
    at: &dyn Fn(String) -> WorkflowError,
) -> Result<(), WorkflowError> {
    match value {
        Some(0) => Err(at(format!("`{name}` must be at least 1"))),
        Some(n) if n > MAX_BATCH => Err(at(format!("`{name}` = {n} is more than {MAX_BATCH}"))),
        _ => Ok(()),
    }
}

/// A time limit of zero would fail at once; it is a mistake, not a limit.
fn not_zero(
    value: Option<Period>,
    name: &str,
    at: &dyn Fn(String) -> WorkflowError,
) -> Result<(), WorkflowError> {
    match value {
        Some(t) if t.0.is_zero() => Err(at(format!("`{name}` must be longer than 0s"))),
        _ => Ok(()),
    }
}

fn store(w: &Workflow, name: &Spanned<String>, errors: Errors<'_>) -> Result<(), WorkflowError> {
    match w.store(name.get_ref()) {
        Some(_) => Ok(()),
        None => Err(missing(
            errors,
            name,
            "store",
            w.stores.iter().map(|(n, _)| n),
        )),
    }
}

fn plugin(w: &Workflow, name: &Spanned<String>, errors: Errors<'_>) -> Result<(), WorkflowError> {
    match w.plugin(name.get_ref()) {
        Some(_) => Ok(()),
        None => Err(missing(
            errors,
            name,
            "plugin",
            w.plugins.iter().map(|p| p.name.as_str()),
        )),
    }
}

/// A prebuilt plugin must be of the world its step needs; a crate is
/// checked when it is built.
fn world(
    w: &Workflow,
    name: &Spanned<String>,
    kind: &str,
    interface: &str,
    errors: Errors<'_>,
) -> Result<(), WorkflowError> {
    let Some(PluginSource::Wasm(file)) = w.plugin(name.get_ref()).map(|p| &p.source) else {
        return Ok(());
    };
    let Ok(bytes) = crate::plugin::load::read_component(file) else {
        return Ok(());
    };
    let problem = match crate::plugin::load::exports(&bytes) {
        Ok(exports) if exports.iter().any(|e| e == interface) => return Ok(()),
        Ok(exports) => format!(
            "plugin `{}` is not a {kind} plugin: it exports {}; expected `{interface}` (build it with `#[switchyard_sdk::{kind}]`)",
            name.get_ref(),
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        Err(why) => format!(
            "plugin `{}`: `{}` cannot be used: {why}",
            name.get_ref(),
            file.display()
        ),
    };
    Err(errors.at(name.span(), problem))
}

fn missing<'a>(
    errors: Errors<'_>,
    name: &Spanned<String>,
    what: &str,
    known: impl Iterator<Item = &'a str>,
) -> WorkflowError {
    let known: Vec<&str> = known.collect();
    let hint = if known.is_empty() {
        format!("the workflow declares no `[{what}.NAME]`")
    } else {
        format!("declared: {}", quoted(&known))
    };
    errors.at(
        name.span(),
        format!("unknown {what} `{}`; {hint}", name.get_ref()),
    )
}
