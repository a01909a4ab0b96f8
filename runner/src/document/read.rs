//! Reading the tables of the document: named sections, `kind`, one value
//! as a type, with errors placed at the offending value; and paths, which
//! the file writes relative to its own folder.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{Errors, WorkflowError};
use super::{valid_name, vars};
use crate::text::quoted;

/// Reads one spanned value as `T`, errors placed at the offending value.
pub fn deserialize<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    errors: Errors<'_>,
) -> Result<T, WorkflowError> {
    let span = value.span();
    T::deserialize(toml::de::ValueDeserializer::from(value)).map_err(|e| errors.toml(e, span))
}

/// `[section.NAME]` tables, in file order.
pub fn named_tables<'i>(
    doc: &mut DeTable<'i>,
    section: &str,
    errors: Errors<'_>,
) -> Result<Vec<(String, Spanned<DeValue<'i>>)>, WorkflowError> {
    let Some(value) = vars::take(doc, section) else {
        return Ok(Vec::new());
    };
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        return Err(errors.at(
            span,
            format!("`{section}` must hold `[{section}.NAME]` tables"),
        ));
    };
    let mut out = Vec::new();
    for (key, value) in table {
        let name = key.get_ref().to_string();
        if !valid_name(&name) {
            return Err(errors.at(
                key.span(),
                format!("invalid {section} name `{name}`; use letters, digits, `-` and `_`"),
            ));
        }
        if !matches!(value.get_ref(), DeValue::Table(_)) {
            return Err(errors.at(
                value.span(),
                format!("`{section}.{name}` must be a table (`[{section}.{name}]`)"),
            ));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// Removes `key` from a spanned table value and returns it with the rest.
pub fn split_key<'i>(
    value: Spanned<DeValue<'i>>,
    key: &str,
) -> (Option<Spanned<DeValue<'i>>>, Spanned<DeValue<'i>>) {
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(mut table) => {
            let found = vars::take(&mut table, key);
            (found, Spanned::new(span, DeValue::Table(table)))
        }
        other => (None, Spanned::new(span, other)),
    }
}

/// The `kind` of a source, store or step table: its place in `kinds`, and
/// the rest of the table.
pub fn kind<'i>(
    value: Spanned<DeValue<'i>>,
    what: &str,
    kinds: &[&str],
    errors: Errors<'_>,
) -> Result<(usize, Spanned<DeValue<'i>>), WorkflowError> {
    let span = value.span();
    let (kind, rest) = split_key(value, "kind");
    let Some(kind) = kind else {
        return Err(errors.at(
            span,
            format!("{what} has no `kind`; expected one of {}", quoted(kinds)),
        ));
    };
    match kind.get_ref() {
        DeValue::String(k) => match kinds.iter().position(|n| *n == k.as_ref()) {
            Some(at) => Ok((at, rest)),
            None => Err(errors.at(
                kind.span(),
                format!(
                    "unknown {what} kind `{k}`; expected one of {}",
                    quoted(kinds)
                ),
            )),
        },
        _ => Err(errors.at(
            kind.span(),
            format!("`kind` must be a string, one of {}", quoted(kinds)),
        )),
    }
}

/// `text` resolved against `dir`, lexically.
pub fn resolve_path(dir: &Path, text: &str) -> PathBuf {
    let p = Path::new(text);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    };
    // Lexically, so messages show `/repo/plugins/x`, not `/repo/workflows/../plugins/x`.
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir if out.parent().is_some() => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `p` made absolute (as it is, if that fails).
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
