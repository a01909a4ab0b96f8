//! Compares blue's and green's answers to a mirrored read of a read-api
//! that serves rows as JSON — the runner's example read-api
//! (`runner serve-store`), or a service's own in the same shape: one row
//! `{"key", "cells": [{"family", "qualifier", "version", "value"}]}`, or
//! a page `{"rows": [row, …]}`.
//!
//! It takes out what differs only in form, so that two stores of
//! different kinds can be compared:
//! - a value given as text (`value`), hex (`value_hex`) or base64
//!   (`value_base64`) is the same bytes;
//! - rows are matched by key and cells by `family:qualifier`, whatever
//!   their order;
//! - cells named in `ignore_cells` (comma-separated `family:qualifier`)
//!   are left out: a cell one side does not serve;
//! - `versions = "ignore"` leaves cell versions out (a store that keeps
//!   versions of its own);
//! - fields named in `ignore_fields` (comma-separated names) are left out
//!   wherever they are.
//!
//! Every other JSON field is compared as a value. A place that differs is
//! named by its JSON path in that normal form: `/rows/KEY/cells/d:text`,
//! `/rows/KEY` (a row only one side has), `/cells/d:text/version`, and
//! `status` or `header NAME` outside the body. A body that is not JSON (a
//! read-api's error page, a truncated answer, whatever its
//! `content-type` says) is compared byte for byte (`body`): the plugin
//! never refuses a pair, so a failing side is always seen as different.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use switchyard_sdk::{Comparison, Config, Exchange, PluginError, Response};

/// The settings, read once per call (they are a few short strings).
struct Settings {
    ignore_cells: Vec<String>,
    ignore_fields: Vec<String>,
    versions: bool,
}

fn settings(config: &Config) -> Result<Settings, PluginError> {
    let list = |key: &str| -> Vec<String> {
        config
            .get_or(key, "")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let versions = match config.get_or("versions", "compare") {
        "compare" => true,
        "ignore" => false,
        other => {
            return Err(PluginError::Config(format!(
                "`versions` is `compare` or `ignore`, not `{other}`"
            )));
        }
    };
    Ok(Settings {
        ignore_cells: list("ignore_cells"),
        ignore_fields: list("ignore_fields"),
        versions,
    })
}

/// Refuses a wrong configuration before the first comparison.
pub fn check_config(config: &Config) -> Result<(), PluginError> {
    settings(config).map(|_| ())
}

/// Names the places where the two answers differ, in normal form.
#[switchyard_sdk::response_check(init = check_config)]
pub fn compare_reads(exchange: &Exchange, config: &Config) -> Result<Comparison, PluginError> {
    let settings = settings(config)?;
    let (a, b) = (&exchange.first, &exchange.second);
    let mut places = BTreeSet::new();
    if a.status != b.status {
        places.insert("status".to_string());
    }
    let names: BTreeSet<&str> = a
        .headers
        .iter()
        .chain(&b.headers)
        .map(|(n, _)| n.as_str())
        .collect();
    for name in names {
        if a.header(name) != b.header(name) {
            places.insert(format!("header {name}"));
        }
    }
    match (body(a), body(b)) {
        (Some(x), Some(y)) => {
            let (x, y) = (normal(x, &settings), normal(y, &settings));
            differ(&x, &y, &mut String::new(), &mut places);
        }
        _ if a.body != b.body => {
            places.insert("body".to_string());
        }
        _ => {}
    }
    Ok(if places.is_empty() {
        Comparison::Same
    } else {
        Comparison::Differ(places.into_iter().collect())
    })
}

/// The body as JSON; `None` when it is not JSON.
fn body(r: &Response) -> Option<Value> {
    serde_json::from_slice(&r.body).ok()
}

/// The answer in normal form: rows keyed by key, cells by
/// `family:qualifier` holding their bytes as hex; ignored fields gone.
fn normal(value: Value, settings: &Settings) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .filter(|(k, _)| !settings.ignore_fields.contains(k))
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("rows", Value::Array(rows))
                            if rows.iter().all(|r| r.get("key").is_some()) =>
                        {
                            Value::Object(
                                rows.into_iter()
                                    .map(|r| (text_of(&r["key"]), normal(r, settings)))
                                    .collect(),
                            )
                        }
                        ("cells", Value::Array(cells)) => Value::Object(cells_of(cells, settings)),
                        (_, v) => normal(v, settings),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| normal(v, settings)).collect())
        }
        other => other,
    }
}

fn cells_of(cells: Vec<Value>, settings: &Settings) -> Map<String, Value> {
    let mut out = Map::new();
    for cell in cells {
        let name = format!(
            "{}:{}",
            text_of(&cell["family"]),
            text_of(&cell["qualifier"])
        );
        if settings.ignore_cells.contains(&name) {
            continue;
        }
        let mut kept = Map::new();
        kept.insert("bytes".into(), bytes_of(&cell));
        if settings.versions {
            kept.insert("version".into(), cell["version"].clone());
        }
        out.insert(name, Value::Object(kept));
    }
    out
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A cell's value as hex, whichever way it was written; a value that does
/// not decode is kept as written, so it differs from any other.
fn bytes_of(cell: &Value) -> Value {
    let decoded = if let Some(t) = cell["value"].as_str() {
        Some(t.as_bytes().to_vec())
    } else if let Some(h) = cell["value_hex"].as_str() {
        from_hex(h)
    } else if let Some(b) = cell["value_base64"].as_str() {
        from_base64(b)
    } else {
        None
    };
    match decoded {
        Some(bytes) => Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect()),
        None => serde_json::json!({ "undecoded": cell }),
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn from_base64(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let text = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= digit(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

/// Walks both values, naming each place they differ by its path.
fn differ(a: &Value, b: &Value, path: &mut String, places: &mut BTreeSet<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let len = path.len();
                path.push('/');
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => differ(p, q, path, places),
                    _ => {
                        places.insert(path.clone());
                    }
                }
                path.truncate(len);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                match (x.get(i), y.get(i)) {
                    (Some(p), Some(q)) => differ(p, q, path, places),
                    _ => {
                        places.insert(path.clone());
                    }
                }
                path.truncate(len);
            }
        }
        _ if a != b => {
            places.insert(if path.is_empty() {
                "/".into()
            } else {
                path.clone()
            });
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(body: &str) -> Response {
        Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn compare(a: &str, b: &str, settings: &[(&str, &str)]) -> Comparison {
        let exchange = Exchange {
            method: "GET".into(),
            path: "/rows/messages/k".into(),
            first: json(a),
            second: json(b),
            ..Default::default()
        };
        compare_reads(&exchange, &Config::from_pairs(settings.iter().copied())).unwrap()
    }

    #[test]
    fn encodings_and_orders_that_differ_only_in_form_are_the_same() {
        let blue = r#"{"rows": [
            {"key": "r/1", "cells": [{"family": "d", "qualifier": "text", "version": 5, "value": "hi"},
                                     {"family": "m", "qualifier": "writer", "version": 5, "value": "old"}]},
            {"key": "r/2", "cells": [{"family": "d", "qualifier": "raw", "version": 6, "value_hex": "ff00"}]}],
            "next_after": null}"#;
        let green = r#"{"next_after": null, "rows": [
            {"key": "r/1", "cells": [{"family": "d", "qualifier": "text", "version": 5, "value_base64": "aGk="}]},
            {"key": "r/2", "cells": [{"family": "d", "qualifier": "raw", "version": 6, "value_base64": "/wA="}]}]}"#;
        assert_eq!(
            compare(blue, green, &[]),
            Comparison::Differ(vec!["/rows/r~11/cells/m:writer".into()])
        );
        assert_eq!(
            compare(blue, green, &[("ignore_cells", "m:writer")]),
            Comparison::Same
        );
    }

    #[test]
    fn values_versions_and_missing_rows_are_named_by_place() {
        let blue = r#"{"rows": [{"key": "a", "cells": [{"family": "d", "qualifier": "t", "version": 1, "value": "x"}]},
                                {"key": "b", "cells": []}]}"#;
        let green = r#"{"rows": [{"key": "a", "cells": [{"family": "d", "qualifier": "t", "version": 2, "value": "y"}]}]}"#;
        assert_eq!(
            compare(blue, green, &[]),
            Comparison::Differ(vec![
                "/rows/a/cells/d:t/bytes".into(),
                "/rows/a/cells/d:t/version".into(),
                "/rows/b".into()
            ])
        );
        assert_eq!(
            compare(blue, green, &[("versions", "ignore")]),
            Comparison::Differ(vec!["/rows/a/cells/d:t/bytes".into(), "/rows/b".into()])
        );
    }

    #[test]
    fn fields_can_be_left_out_and_broken_json_is_compared_as_bytes() {
        let a = r#"{"key": "k", "cells": [], "served_at": 1}"#;
        let b = r#"{"key": "k", "cells": [], "served_at": 2}"#;
        assert_eq!(
            compare(a, b, &[]),
            Comparison::Differ(vec!["/served_at".into()])
        );
        assert_eq!(
            compare(a, b, &[("ignore_fields", "served_at")]),
            Comparison::Same
        );
        // A failing side's error page, labelled JSON or not, differs.
        let mut broken = json("{not json");
        broken.status = 503;
        let exchange = Exchange {
            first: json("{}"),
            second: broken,
            ..Default::default()
        };
        assert_eq!(
            compare_reads(&exchange, &Config::default()).unwrap(),
            Comparison::Differ(vec!["body".into(), "status".into()])
        );
        assert!(check_config(&Config::from_pairs([("versions", "sometimes")])).is_err());
    }

    #[test]
    fn base64_and_hex_decode() {
        assert_eq!(from_base64("aGk=").unwrap(), b"hi");
        assert_eq!(from_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(from_hex("68690a").unwrap(), b"hi\n");
        assert!(from_hex("6").is_none() && from_base64("a").is_none());
    }
}
