//! `runner rows`: a store's rows as the store serves them (visible cells
//! only, each with its version), whatever its kind, so an operator can
//! look inside blue or green without knowing how the kind lays them out.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::document::values::Point;
use crate::model::Row;
use crate::store::{KeyRange, Store, StoreError};

/// A row key as typed: text, or `hex:…` for bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(pub Vec<u8>);

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// These keys only.
    pub keys: Vec<Vec<u8>>,
    /// From this key on (included).
    pub from: Option<Vec<u8>>,
    /// Up to this key (not included), as HBase scans.
    pub to: Option<Vec<u8>>,
    /// As of this point (`latest` when `None`).
    pub as_of: Option<String>,
    /// At most this many rows (`0`: all).
    pub limit: usize,
}

/// A row key as typed on the command line: text, or `hex:…`.
pub fn parse_key(text: &str) -> Result<Key, String> {
    match text.strip_prefix("hex:") {
        Some(h) => hex::decode(h)
            .map(Key)
            .map_err(|e| format!("`{text}`: not hex ({e})")),
        None => Ok(Key(text.as_bytes().to_vec())),
    }
}

/// The version to read as of: a number of milliseconds, an RFC 3339
/// time, `latest`, or `watermark` (minus a margin) of the store itself.
fn as_of(store: &mut dyn Store, text: Option<&str>) -> Result<Option<u64>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    let version = match Point::parse(text)? {
        Point::Latest => return Ok(None),
        Point::At(ms) => ms,
        Point::Watermark(margin) => {
            let mark = store
                .watermark()
                .map_err(|e| e.to_string())?
                .ok_or("the store records no watermark")?;
            mark.saturating_sub(i64::try_from(margin.as_millis()).unwrap_or(i64::MAX))
        }
        _ => {
            return Err(format!(
                "`--as-of {text}`: give a time, a number of milliseconds, `latest` or `watermark - …`"
            ));
        }
    };
    u64::try_from(version)
        .map(Some)
        .map_err(|_| format!("`--as-of {text}` is before the first version"))
}

/// Reads what `query` asks for from `table` and hands the rows to `show` in
/// key order as the pages come, so `--limit 0` holds a page of a large table
/// at a time, not all of it; `show` says whether to go on (a reader that
/// stopped). Returns how many rows were shown and whether the limit cut
/// them short.
pub fn read(
    store: &mut dyn Store,
    table: &str,
    query: &Query,
    show: &mut dyn FnMut(&Row) -> bool,
) -> Result<(usize, bool), String> {
    let version = as_of(store, query.as_of.as_deref())?;
    let failed = |e: StoreError| e.to_string();
    let limit = if query.limit == 0 {
        usize::MAX
    } else {
        query.limit
    };
    if !query.keys.is_empty() {
        // Each key once, in the order given.
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for k in &query.keys {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        let found: Vec<Row> = store
            .get(table, &keys, version)
            .map_err(failed)?
            .into_iter()
            .flatten()
            .collect();
        let mut shown = 0;
        for row in found.iter().take(limit) {
            if !show(row) {
                break;
            }
            shown += 1;
        }
        return Ok((shown, found.len() > limit));
    }
    let mut shown = 0;
    // Each row is shown while the limit has room; one more means cut short.
    let mut offer = |shown: &mut usize, row: &Row| -> Option<bool> {
        if *shown == limit {
            return Some(true);
        }
        if !show(row) {
            return Some(false);
        }
        *shown += 1;
        None
    };
    // `--from` is included: read it, then scan after it (unless `--to`
    // ends the range before it).
    if let Some(from) = query
        .from
        .as_ref()
        .filter(|f| query.to.as_ref().is_none_or(|to| *f < to))
    {
        let first = store
            .get(table, std::slice::from_ref(from), version)
            .map_err(failed)?;
        for row in first.iter().flatten() {
            if let Some(cut) = offer(&mut shown, row) {
                return Ok((shown, cut));
            }
        }
    }
    let mut range = KeyRange {
        after: query.from.clone(),
        before: query.to.clone(),
    };
    loop {
        let want = (limit - shown).saturating_add(1).min(500);
        let page = store.scan(table, &range, want, version).map_err(failed)?;
        for row in &page.rows {
            if let Some(cut) = offer(&mut shown, row) {
                return Ok((shown, cut));
            }
        }
        match page.next_after {
            Some(next) => range.after = Some(next),
            None => return Ok((shown, false)),
        }
    }
}

/// Rows as text: the key, then a line per cell.
pub fn text(table: &str, rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        let _ = writeln!(out, "{table}  {}", shown(&row.row_key));
        let width = row
            .cells
            .iter()
            .map(|c| c.family.len() + 1 + shown(&c.qualifier).len())
            .max()
            .unwrap_or(0);
        for c in &row.cells {
            let name = format!("{}:{}", c.family, shown(&c.qualifier));
            let _ = writeln!(
                out,
                "  {name:<width$}  @{}  {}",
                crate::report::version_time(c.version as i64),
                shown(&c.value)
            );
        }
    }
    out
}

/// One row as a JSON object (a line of `--json`).
pub fn json(table: &str, row: &Row) -> Value {
    let mut out = json!({ "table": table });
    put_bytes(&mut out, "key", &row.row_key);
    out["cells"] = row
        .cells
        .iter()
        .map(|c| {
            let mut cell = json!({ "family": c.family, "version": c.version });
            put_bytes(&mut cell, "qualifier", &c.qualifier);
            put_bytes(&mut cell, "value", &c.value);
            cell
        })
        .collect();
    out
}

/// `name` as text when the bytes are UTF-8, else `name_hex`.
fn put_bytes(object: &mut Value, name: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => object[name] = json!(text),
        Err(_) => object[format!("{name}_hex")] = json!(hex::encode(bytes)),
    }
}

/// Bytes shown so `--key` takes them back.
pub fn shown(bytes: &[u8]) -> String {
    crate::text::text_or_hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_back_as_they_are_shown() {
        for bytes in [
            &b"room-1/msg"[..],
            b"\x00\xff",
            b"line\nbreak",
            b"hex:ab",
            b"",
        ] {
            assert_eq!(parse_key(&shown(bytes)).unwrap().0, bytes);
        }
        assert!(parse_key("hex:zz").is_err());
    }
}
