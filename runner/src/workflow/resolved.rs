//! `runner plan --resolved`: the workflow as the runner reads it, with the
//! templates it extends merged in and every variable expanded. Each value
//! is followed by the file and line it comes from, so an override that did
//! not take, or a value a service did not mean to inherit, shows at once.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::document::Errors;
use crate::document::layers::get;

/// Where the variables a command step gets start (`SWITCHYARD_NAME`).
const ENV_PREFIX: &str = "SWITCHYARD_";

/// A `[vars]` entry as resolved: its name, value and where it was set.
pub struct ResolvedVar {
    /// The name.
    pub name: String,
    /// The value, expanded.
    pub value: String,
    /// `file:line`, or `--var`.
    pub from: String,
}

/// The text of the document after merging and expansion; `via` says, by
/// a value's offset, which variables made it and where they were set.
pub fn text(
    workflow: &Spanned<DeValue<'_>>,
    doc: &DeTable<'_>,
    vars: &[ResolvedVar],
    via: &BTreeMap<usize, String>,
    errors: Errors<'_>,
) -> String {
    let from = |span: std::ops::Range<usize>| {
        let at = errors.location(span.start);
        match via.get(&span.start) {
            Some(vars) => format!("{}:{}, {vars}", at.file.display(), at.line),
            None => format!("{}:{}", at.file.display(), at.line),
        }
    };
    let files: Vec<String> = errors
        .layers
        .iter()
        .map(|l| l.file.display().to_string())
        .collect();
    let mut out = format!("# {}", files[0]);
    if files.len() > 1 {
        out.push_str(&format!(
            ", extending {}",
            files[1..].join(", which extends ")
        ));
    }
    out.push_str(",\n# as the runner reads it: templates merged, variables expanded (command\n# steps also get each variable as SWITCHYARD_NAME in their environment).\n\n");
    for section in super::SECTIONS {
        if *section == "vars" {
            if !vars.is_empty() {
                out.push_str("[vars]\n");
                for var in vars {
                    let value = toml::Value::String(var.value.clone());
                    let _ = writeln!(out, "{} = {value}  # {}", key(&var.name), var.from);
                }
                out.push('\n');
            }
            continue;
        }
        if *section == "workflow" {
            table(&mut out, "[workflow]", workflow, &from);
            continue;
        }
        let Some(value) = get(doc, section) else {
            continue;
        };
        match (*section, value.get_ref()) {
            ("source" | "store" | "plugin", DeValue::Table(named)) => {
                for (name, entry) in named {
                    let header = format!("[{section}.{}]", key(name.get_ref()));
                    table(&mut out, &header, entry, &from);
                }
            }
            ("step", DeValue::Array(steps)) => {
                for step in steps.iter() {
                    table(&mut out, "[[step]]", step, &from);
                }
            }
            _ => table(&mut out, &format!("[{section}]"), value, &from),
        }
    }
    out
}

/// One table: its header, then `key = value  # file:line` per key. A table
/// inside is written key by key (`a.b = …`), each with its own origin: a
/// service may have set one key of a table the template wrote.
fn table(
    out: &mut String,
    header: &str,
    value: &Spanned<DeValue<'_>>,
    from: &impl Fn(std::ops::Range<usize>) -> String,
) {
    let _ = writeln!(out, "{header}  # {}", from(value.span()));
    if let DeValue::Table(entries) = value.get_ref() {
        keys(out, "", entries, from);
    }
    out.push('\n');
}

fn keys(
    out: &mut String,
    prefix: &str,
    entries: &DeTable<'_>,
    from: &impl Fn(std::ops::Range<usize>) -> String,
) {
    for (k, v) in entries {
        let name = format!("{prefix}{}", key(k.get_ref()));
        match v.get_ref() {
            DeValue::Table(inner) if prefix.is_empty() && k.get_ref() == "env" => {
                // Every variable a command step gets is left out: it
                // would repeat `[vars]` in every such step.
                let mut own = DeTable::new();
                for (name, value) in inner {
                    if !name.get_ref().starts_with(ENV_PREFIX) {
                        own.insert(name.clone(), value.clone());
                    }
                }
                keys(out, &format!("{name}."), &own, from);
            }
            DeValue::Table(inner) if !inner.is_empty() => {
                keys(out, &format!("{name}."), inner, from);
            }
            _ => {
                let _ = writeln!(out, "{name} = {}  # {}", inline(v), from(v.span()));
            }
        }
    }
}

/// A value as TOML on one line (tables inline).
fn inline(value: &Spanned<DeValue<'_>>) -> String {
    let de = toml::de::ValueDeserializer::from(value.clone());
    match toml::Value::deserialize(de) {
        Ok(v) => v.to_string(),
        Err(e) => format!("\"(cannot show: {})\"", e.message()),
    }
}

/// A key, bare when TOML allows it.
fn key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        toml::Value::String(name.to_string()).to_string()
    }
}
