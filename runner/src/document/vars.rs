//! `${name}` variables: declared in `[vars]`, overridden with `--var
//! name=value`, and expanded in every string value of the workflow. A few
//! are built in: `workflow_dir`, `state_dir`, `runner` (this executable) and
//! `workflow` (the workflow's name). `$$` writes a literal `$`.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{Errors, WorkflowError};
use super::quoting::QuoteError;

/// Variable values by name, all expanded.
pub type Vars = BTreeMap<String, String>;

/// Resolves the `[vars]` table against the built-ins and overrides, and
/// removes it from the document. Variables may use other variables.
pub fn resolve(
    doc: &mut DeTable<'_>,
    builtins: &Vars,
    overrides: &[(String, String)],
    errors: Errors<'_>,
) -> Result<Vars, WorkflowError> {
    let mut declared: BTreeMap<String, (String, Range<usize>)> = BTreeMap::new();
    if let Some(table) = take(doc, "vars") {
        let span = table.span();
        let DeValue::Table(table) = table.into_inner() else {
            return Err(errors.at(span, "`vars` must be a table of strings"));
        };
        for (key, value) in table {
            let name = key.get_ref().to_string();
            if builtins.contains_key(&name) {
                return Err(errors.at(
                    key.span(),
                    format!("`{name}` is a built-in variable and cannot be declared"),
                ));
            }
            let span = value.span();
            match value.into_inner() {
                DeValue::String(s) => {
                    declared.insert(name, (s.into_owned(), span));
                }
                DeValue::Integer(i) => {
                    let digits = i.as_str().replace('_', "");
                    let value = i64::from_str_radix(&digits, i.radix())
                        .map(|n| n.to_string())
                        .unwrap_or(digits);
                    declared.insert(name, (value, span));
                }
                DeValue::Boolean(b) => {
                    declared.insert(name, (b.to_string(), span));
                }
                _ => {
                    return Err(errors.at(
                        span,
                        format!("variable `{name}` must be a string, integer or boolean"),
                    ));
                }
            }
        }
    }
    for (name, value) in overrides {
        match declared.get_mut(name) {
            Some(entry) => entry.0 = value.replace('$', "$$"),
            None => {
                let known: Vec<&str> = declared.keys().map(String::as_str).collect();
                return Err(WorkflowError::Override {
                    message: format!(
                        "`--var {name}=…` names no variable of this workflow; it declares {}",
                        if known.is_empty() {
                            "none (add a `[vars]` table)".to_string()
                        } else {
                            known
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                });
            }
        }
    }
    let mut resolved = builtins.clone();
    for name in declared.keys() {
        resolve_one(name, &declared, &mut resolved, &mut Vec::new(), errors)?;
    }
    Ok(resolved)
}

fn resolve_one(
    name: &str,
    declared: &BTreeMap<String, (String, Range<usize>)>,
    resolved: &mut Vars,
    stack: &mut Vec<String>,
    errors: Errors<'_>,
) -> Result<String, WorkflowError> {
    if let Some(v) = resolved.get(name) {
        return Ok(v.clone());
    }
    let (raw, span) = &declared[name];
    if stack.iter().any(|s| s == name) {
        stack.push(name.to_string());
        return Err(errors.at(
            span.clone(),
            format!(
                "variables refer to each other in a cycle: {}",
                stack.join(" → ")
            ),
        ));
    }
    stack.push(name.to_string());
    let value = expand_with(raw, |var| {
        if declared.contains_key(var) {
            resolve_one(var, declared, resolved, stack, errors).map(Some)
        } else {
            Ok(resolved.get(var).cloned())
        }
    })
    .map_err(|e| match e {
        Expand::Unknown(var) => errors.at(span.clone(), unknown(&var, declared.keys(), resolved)),
        Expand::Unclosed => errors.at(span.clone(), UNCLOSED),
        Expand::TooLong => errors.at(span.clone(), TOO_LONG),
        Expand::Inner(e) => e,
    })?;
    stack.pop();
    resolved.insert(name.to_string(), value.clone());
    Ok(value)
}

/// Where a string used variables: its offset and their names.
pub type Used = Vec<(usize, Vec<String>)>;

/// Expands variables in every string of the document (keys are left alone)
/// and says which strings used which variables. In a command line that a
/// shell runs, each value is quoted for where it lands (see `quoting`), so
/// no value can become shell syntax.
pub fn expand_document(
    doc: &mut DeTable<'_>,
    vars: &Vars,
    errors: Errors<'_>,
) -> Result<Used, WorkflowError> {
    let mut used = Used::new();
    for (key, value) in doc.iter_mut() {
        match value.get_mut() {
            DeValue::Array(steps) if key.get_ref() == "step" => {
                for step in steps.iter_mut() {
                    expand_step(step, vars, errors, &mut used)?;
                }
            }
            _ => expand_value(value, vars, errors, &mut used)?,
        }
    }
    Ok(used)
}

/// The step kinds that run commands, and the key of each that holds the
/// command (a script for `sh -c` when it is a string).
const COMMANDS: &[(&str, &str)] = &[
    ("shell", "run"),
    ("shell", "command"),
    ("restore", "command"),
];

/// Expands one `[[step]]`. A command step gets every variable as an
/// environment variable (`SWITCHYARD_NAME`, added to its `env`), and in a
/// script for a shell each `${var}` becomes a reference to it.
fn expand_step(
    step: &mut Spanned<DeValue<'_>>,
    vars: &Vars,
    errors: Errors<'_>,
    used: &mut Used,
) -> Result<(), WorkflowError> {
    let step_span = step.span();
    let DeValue::Table(table) = step.get_mut() else {
        return expand_value(step, vars, errors, used);
    };
    let mut kind = None;
    for (key, value) in table.iter() {
        if key.get_ref() == "kind"
            && let DeValue::String(k) = value.get_ref()
        {
            if k.contains('$') {
                return Err(errors.at(
                    value.span(),
                    "a step's `kind` is written out, not taken from a variable",
                ));
            }
            kind = Some(k.to_string());
        }
    }
    let names = super::quoting::environment(vars);
    let script = |text: &str, span: Range<usize>| {
        super::quoting::expand_quoted(text, &names).map_err(|e| {
            errors.at(
                span,
                match e {
                    QuoteError::Unknown(var) => unknown(&var, std::iter::empty(), vars),
                    QuoteError::Unclosed => UNCLOSED.to_string(),
                    QuoteError::Code { name, program, env } => code_error(&name, &program, &env),
                    QuoteError::Unclear { name, place, env } => format!(
                        "`${{{name}}}` inside {place} of a shell script: the runner cannot tell how the value would be read there; write `\"${env}\"` in its place (every command gets `{env}` set to the value of `{name}`), or use `command = [\"program\", \"arg\"]`"
                    ),
                },
            )
        })
    };
    let mut runs_command = false;
    for (key, value) in table.iter_mut() {
        let command = COMMANDS
            .iter()
            .any(|(k, field)| kind.as_deref() == Some(*k) && key.get_ref() == *field);
        runs_command |= command;
        let span = value.span();
        match value.get_mut() {
            DeValue::String(line) if command => *line = script(line, span)?.into(),
            DeValue::Array(args) if command => {
                let raw: Vec<String> = args
                    .iter()
                    .map(|a| match a.get_ref() {
                        DeValue::String(s) => s.to_string(),
                        _ => String::new(),
                    })
                    .collect();
                let raw: Vec<&str> = raw.iter().map(String::as_str).collect();
                for (i, arg) in args.iter_mut().enumerate() {
                    let span = arg.span();
                    let reader = super::code::reads_as_code(&raw, i);
                    match (arg.get_mut(), reader) {
                        (DeValue::String(text), Some(reader)) if reader.shell => {
                            *text = script(text, span)?.into()
                        }
                        (DeValue::String(text), Some(reader))
                            if let Some(name) = first_var(text) =>
                        {
                            let env = names.get(name).cloned().unwrap_or_default();
                            return Err(errors.at(span, code_error(name, &reader.program, &env)));
                        }
                        _ => expand_value(arg, vars, errors, used)?,
                    }
                }
            }
            _ => expand_value(value, vars, errors, used)?,
        }
    }
    if runs_command {
        let env = names
            .into_iter()
            .map(|(var, name)| (name, vars[&var].clone()))
            .collect();
        add_env(table, env, step_span);
    }
    Ok(())
}

/// Why a `${var}` cannot go where a program reads code, and the ways out.
fn code_error(name: &str, program: &str, env: &str) -> String {
    format!(
        "`${{{name}}}` stands where `{program}` reads code, so its value would run as code, not be one word; pass it as an argument the code reads (`sh -c '… \"$1\" …' sh ${{{name}}}`), or have the code read the environment variable `{env}`, which every command gets (in a nested shell, inside single quotes: `'… \"${env}\" …'`; sudo, ssh and containers do not pass it on)"
    )
}

/// The first `${name}` in `text`, if any.
fn first_var(text: &str) -> Option<&str> {
    let start = text.find("${")? + 2;
    let end = text[start..].find('}')? + start;
    Some(text[start..end].trim())
}

/// Adds variables to a step's `env` table (making one if needed).
fn add_env(table: &mut DeTable<'_>, env: Vec<(String, String)>, span: Range<usize>) {
    let found = table
        .iter()
        .find(|(k, _)| k.get_ref() == "env")
        .map(|(k, _)| k.clone());
    let key = found.unwrap_or_else(|| Spanned::new(span.clone(), "env".into()));
    let mut entry = table
        .remove(&key)
        .unwrap_or_else(|| Spanned::new(span.clone(), DeValue::Table(DeTable::new())));
    if let DeValue::Table(vars) = entry.get_mut() {
        for (name, value) in env {
            vars.insert(
                Spanned::new(span.clone(), name.into()),
                Spanned::new(span.clone(), DeValue::String(value.into())),
            );
        }
    }
    table.insert(key, entry);
}

fn expand_value(
    value: &mut Spanned<DeValue<'_>>,
    vars: &Vars,
    errors: Errors<'_>,
    used: &mut Used,
) -> Result<(), WorkflowError> {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) if s.contains('$') => {
            let start = span.start;
            let mut names = Vec::new();
            let expanded = expand_with(s, |var| {
                names.push(var.to_string());
                Ok::<_, WorkflowError>(vars.get(var).cloned())
            })
            .map_err(|e| match e {
                Expand::Unknown(var) => errors.at(span, unknown(&var, std::iter::empty(), vars)),
                Expand::Unclosed => errors.at(span, UNCLOSED),
                Expand::TooLong => errors.at(span, TOO_LONG),
                Expand::Inner(e) => e,
            })?;
            *s = expanded.into();
            if !names.is_empty() {
                used.push((start, names));
            }
        }
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                expand_value(item, vars, errors, used)?;
            }
        }
        DeValue::Table(table) => {
            for (_, item) in table.iter_mut() {
                expand_value(item, vars, errors, used)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Expands variables in one string; the error says which one is unknown.
pub fn expand_text(text: &str, vars: &Vars) -> Result<String, String> {
    expand_with(text, |v| Ok::<_, ()>(vars.get(v).cloned())).map_err(|e| match e {
        Expand::Unknown(var) => format!("unknown variable `{var}`"),
        Expand::Unclosed => UNCLOSED.to_string(),
        Expand::TooLong => TOO_LONG.to_string(),
        Expand::Inner(()) => String::new(),
    })
}

const UNCLOSED: &str = "`${` without a closing `}`; write `$$` for a literal `$`";

fn unknown<'a>(var: &str, declared: impl Iterator<Item = &'a String>, known: &Vars) -> String {
    let mut names: Vec<&str> = declared.map(String::as_str).collect();
    names.extend(known.keys().map(String::as_str));
    names.sort();
    names.dedup();
    format!(
        "unknown variable `{var}`; declare it in [vars] (known: {})",
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

enum Expand<E> {
    Unknown(String),
    Unclosed,
    TooLong,
    Inner(E),
}

/// The longest a string may grow by expanding variables: variables that
/// refer to each other could double it with every level.
pub const MAX_EXPANDED: usize = 1 << 20;

const TOO_LONG: &str = "expanding variables makes this longer than 1 MiB; variables that use other variables may double with every level";

/// Replaces `${name}` using `lookup`; `$$` becomes `$`.
fn expand_with<E>(
    text: &str,
    mut lookup: impl FnMut(&str) -> Result<Option<String>, E>,
) -> Result<String, Expand<E>> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail.find('}').ok_or(Expand::Unclosed)?;
            let name = tail[..end].trim();
            match lookup(name).map_err(Expand::Inner)? {
                Some(v) if out.len() + v.len() > MAX_EXPANDED => return Err(Expand::TooLong),
                Some(v) => out.push_str(&v),
                None => return Err(Expand::Unknown(name.to_string())),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Removes a top-level key from the document.
pub fn take<'i>(doc: &mut DeTable<'i>, key: &str) -> Option<Spanned<DeValue<'i>>> {
    let found = doc
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(k, _)| k.clone())?;
    doc.remove(&found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(text: &str, vars: &[(&str, &str)]) -> Result<String, String> {
        let vars: Vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        expand_with(text, |n| Ok::<_, ()>(vars.get(n).cloned())).map_err(|e| match e {
            Expand::Unknown(n) => format!("unknown {n}"),
            Expand::Unclosed => "unclosed".into(),
            Expand::TooLong => "too long".into(),
            Expand::Inner(()) => "inner".into(),
        })
    }

    #[test]
    fn expands_names_and_escapes() {
        assert_eq!(
            expand("${a}/x/${ b }", &[("a", "1"), ("b", "2")]),
            Ok("1/x/2".into())
        );
        assert_eq!(
            expand("cost: $$5 and $x", &[]),
            Ok("cost: $5 and $x".into())
        );
        assert_eq!(expand("${nope}", &[]), Err("unknown nope".into()));
        let big = "x".repeat(MAX_EXPANDED / 2 + 1);
        assert_eq!(expand("${b}${b}", &[("b", &big)]), Err("too long".into()));
        assert_eq!(expand("${open", &[]), Err("unclosed".into()));
    }
}
