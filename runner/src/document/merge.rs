//! How a workflow overrides the template it extends.
//!
//! - Tables merge key by key, the workflow's value winning; any other value
//!   (a string, a number, an array) replaces the template's whole.
//! - A `[source.NAME]`, `[store.NAME]` or `[[step]]` that names another
//!   `kind`, or a `[plugin.NAME]` that names its own `crate` or `wasm`,
//!   replaces the template's entry whole: the template's other settings
//!   belong to something else.
//! - `[[step]]`s are matched by `id`: a step with an id the template has
//!   merges into that step (same rules). A new step says where it goes
//!   with `before = "ID"` or `after = "ID"`, so that a misspelt id is an
//!   error rather than a new step after the cutover; only when the
//!   template has no steps do a file's steps simply follow in order.

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::error::{Errors, WorkflowError};
use super::layers::get;
use super::vars;

/// `over` laid on `base`.
pub fn merge<'i>(
    mut base: DeTable<'i>,
    over: DeTable<'i>,
    errors: Errors<'_>,
) -> Result<DeTable<'i>, WorkflowError> {
    for (key, value) in over {
        let Some(existing) = base.get_mut(&key) else {
            // Steps go through the merge even with none to merge into:
            // `before` and `after` are taken out there.
            let value = match key.get_ref().as_ref() {
                "step" => {
                    let empty = Spanned::new(value.span(), DeValue::Array(DeArray::new()));
                    merge_steps(empty, value, errors)?
                }
                _ => value,
            };
            base.insert(key, value);
            continue;
        };
        let old = take(existing);
        *existing = match key.get_ref().as_ref() {
            "step" => merge_steps(old, value, errors)?,
            "source" | "store" => merge_named(old, value, &[]),
            "plugin" => merge_named(old, value, &["crate", "wasm"]),
            _ => merge_value(old, value),
        };
    }
    Ok(base)
}

/// Tables merged key by key, each key by `each` (a merged table keeps
/// the template's place, where it is defined); anything else replaced.
fn merge_tables<'i>(
    base: Spanned<DeValue<'i>>,
    over: Spanned<DeValue<'i>>,
    each: &dyn Fn(Spanned<DeValue<'i>>, Spanned<DeValue<'i>>) -> Spanned<DeValue<'i>>,
) -> Spanned<DeValue<'i>> {
    let (base_span, over_span) = (base.span(), over.span());
    match (base.into_inner(), over.into_inner()) {
        (DeValue::Table(mut table), DeValue::Table(entries)) => {
            for (key, value) in entries {
                match table.get_mut(&key) {
                    Some(existing) => {
                        let old = take(existing);
                        *existing = each(old, value);
                    }
                    None => {
                        table.insert(key, value);
                    }
                }
            }
            Spanned::new(base_span, DeValue::Table(table))
        }
        (_, over) => Spanned::new(over_span, over),
    }
}

/// A value laid on another: tables merged all the way down.
fn merge_value<'i>(base: Spanned<DeValue<'i>>, over: Spanned<DeValue<'i>>) -> Spanned<DeValue<'i>> {
    merge_tables(base, over, &merge_value)
}

/// `[section.NAME]` entries merged by name.
fn merge_named<'i>(
    base: Spanned<DeValue<'i>>,
    over: Spanned<DeValue<'i>>,
    own: &[&str],
) -> Spanned<DeValue<'i>> {
    merge_tables(base, over, &|b, o| merge_entry(b, o, own))
}

/// One source, store, plugin or step: replaced whole when it names another
/// `kind`, or sets one of `own` (the keys that say what a plugin is).
fn merge_entry<'i>(
    base: Spanned<DeValue<'i>>,
    over: Spanned<DeValue<'i>>,
    own: &[&str],
) -> Spanned<DeValue<'i>> {
    let (DeValue::Table(table), DeValue::Table(entry)) = (base.get_ref(), over.get_ref()) else {
        return over;
    };
    let kind =
        |t: &DeTable<'_>| get(t, "kind").and_then(|k| k.get_ref().as_str().map(String::from));
    let other_kind = matches!((kind(table), kind(entry)), (Some(a), Some(b)) if a != b);
    if other_kind || own.iter().any(|k| get(entry, k).is_some()) {
        return over;
    }
    merge_value(base, over)
}

/// Where a new step goes.
enum Place {
    End,
    Before(String),
    After(String),
}

/// `[[step]]`s merged by `id`.
fn merge_steps<'i>(
    base: Spanned<DeValue<'i>>,
    over: Spanned<DeValue<'i>>,
    errors: Errors<'_>,
) -> Result<Spanned<DeValue<'i>>, WorkflowError> {
    let span = over.span();
    let (DeValue::Array(base), DeValue::Array(over)) = (base.into_inner(), over.into_inner())
    else {
        return Err(errors.at(span, "`step` must be written as `[[step]]` tables"));
    };
    let mut steps: Vec<Spanned<DeValue<'i>>> = base.iter().cloned().collect();
    let template_has_steps = !steps.is_empty();
    let mut seen: Vec<String> = Vec::new();
    for step in over.iter().cloned() {
        let step_span = step.span();
        let (place, step) = placement(step, errors)?;
        let id = step_id(&step);
        if let Some(id) = &id {
            if seen.contains(id) {
                return Err(errors.at(step_span, format!("duplicate step id `{id}`")));
            }
            seen.push(id.clone());
        }
        if let Some(i) = id.as_deref().and_then(|id| position(&steps, id)) {
            if !matches!(place, Place::End) {
                return Err(errors.at(
                    step_span,
                    format!(
                        "step `{}` is already in the template, so it is merged in its place; `before` and `after` place new steps",
                        id.unwrap_or_default()
                    ),
                ));
            }
            let old = take(&mut steps[i]);
            steps[i] = merge_entry(old, step, &[]);
            continue;
        }
        let at = match &place {
            Place::End if template_has_steps => {
                let known: Vec<String> = base.iter().filter_map(step_id).collect();
                return Err(errors.at(
                    step_span,
                    format!(
                        "the template has no step `{}` to merge this into (it has {}); to add a step, say where it goes with `before = \"ID\"` or `after = \"ID\"`",
                        id.unwrap_or_default(),
                        known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            Place::End => steps.len(),
            Place::Before(target) | Place::After(target) => {
                let Some(i) = position(&steps, target) else {
                    return Err(errors.at(
                        step_span,
                        format!("no step `{target}` to place this step next to"),
                    ));
                };
                if matches!(place, Place::After(_)) {
                    i + 1
                } else {
                    i
                }
            }
        };
        steps.insert(at, step);
    }
    let mut merged = DeArray::new();
    for step in steps {
        merged.push(step);
    }
    Ok(Spanned::new(span, DeValue::Array(merged)))
}

/// Takes `before` or `after` out of a step.
fn placement<'i>(
    step: Spanned<DeValue<'i>>,
    errors: Errors<'_>,
) -> Result<(Place, Spanned<DeValue<'i>>), WorkflowError> {
    let span = step.span();
    let DeValue::Table(mut table) = step.into_inner() else {
        return Err(errors.at(span, "each `[[step]]` must be a table"));
    };
    let before = vars::take(&mut table, "before");
    let after = vars::take(&mut table, "after");
    let target = |v: Spanned<DeValue<'_>>| match v.get_ref() {
        DeValue::String(s) => Ok(s.to_string()),
        _ => Err(errors.at(v.span(), "`before` and `after` name a step's `id`")),
    };
    let place = match (before, after) {
        (None, None) => Place::End,
        (Some(b), None) => Place::Before(target(b)?),
        (None, Some(a)) => Place::After(target(a)?),
        (Some(_), Some(a)) => {
            return Err(errors.at(
                a.span(),
                "a step is placed `before` or `after` another, not both",
            ));
        }
    };
    Ok((place, Spanned::new(span, DeValue::Table(table))))
}

fn step_id(step: &Spanned<DeValue<'_>>) -> Option<String> {
    let DeValue::Table(table) = step.get_ref() else {
        return None;
    };
    get(table, "id").and_then(|v| v.get_ref().as_str().map(String::from))
}

fn position(steps: &[Spanned<DeValue<'_>>], id: &str) -> Option<usize> {
    steps.iter().position(|s| step_id(s).as_deref() == Some(id))
}

/// Moves a value out, leaving a placeholder that is overwritten at once.
fn take<'i>(value: &mut Spanned<DeValue<'i>>) -> Spanned<DeValue<'i>> {
    std::mem::replace(value, Spanned::new(0..0, DeValue::Boolean(false)))
}
