//! Comparing two answers to one request, as the mirror does: statuses,
//! the headers the workflow names, and bodies — JSON bodies as values
//! (key order and spacing do not matter, fields the workflow ignores are
//! left out, and differences are named by their path, `/items/3/text`),
//! other bodies byte for byte (a difference is named `body`).
//!
//! Noise is what differs between two reads of the same side (a timestamp,
//! a random order): the paths named there are not counted against the
//! other side, as Diffy does.

use std::collections::BTreeSet;

use serde_json::Value;

/// What one side answered, as far as the mirror keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The compared headers, in the workflow's order (absent ones as `None`).
    pub headers: Vec<(String, Option<String>)>,
    /// The body.
    pub body: Vec<u8>,
    /// The store's watermark the answer reported (not compared: it tells
    /// lag from damage).
    pub watermark: Option<String>,
}

/// Where two answers differ: `status`, `header NAME`, `body` or a JSON path.
pub type Differences = BTreeSet<String>;

/// Differences named for one pair; past this, one more entry says so.
pub const MAX_DIFFERENCES: usize = 200;
/// The longest path named (longer ones are cut, with `…`).
const MAX_PATH: usize = 256;

/// Adds `what` to `out`, or past the cap, [`MORE`].
pub fn note(out: &mut Differences, what: &str) {
    if out.len() < MAX_DIFFERENCES {
        out.insert(crate::text::bounded(what, MAX_PATH));
    } else {
        out.insert(MORE.into());
    }
}

/// The differences between `a` and `b`, leaving out JSON fields named in
/// `ignore` (a field name anywhere, or a path from the root).
pub fn differences(a: &Answer, b: &Answer, ignore: &[String]) -> Differences {
    let mut out = Differences::new();
    if a.status != b.status {
        out.insert("status".into());
    }
    for ((name, x), (_, y)) in a.headers.iter().zip(&b.headers) {
        if x != y {
            out.insert(format!("header {name}"));
        }
    }
    match (
        serde_json::from_slice::<Value>(&a.body),
        serde_json::from_slice::<Value>(&b.body),
    ) {
        (Ok(x), Ok(y)) => walk(&x, &y, &mut String::new(), ignore, &mut out),
        _ if a.body != b.body => {
            out.insert("body".into());
        }
        _ => {}
    }
    out
}

fn ignored(path: &str, key: &str, ignore: &[String]) -> bool {
    ignore.iter().any(|i| i == key || i == path)
}

fn walk(a: &Value, b: &Value, path: &mut String, ignore: &[String], out: &mut Differences) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let len = path.len();
                path.push('/');
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                if !ignored(path, key, ignore) {
                    match (x.get(key), y.get(key)) {
                        (Some(p), Some(q)) => walk(p, q, path, ignore, out),
                        _ => note(out, path),
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
                    (Some(p), Some(q)) => walk(p, q, path, ignore, out),
                    _ => note(out, path),
                }
                path.truncate(len);
            }
        }
        _ if a != b => note(out, if path.is_empty() { "/" } else { path }),
        _ => {}
    }
}

/// What is left of `found` once the `noise` of the same side is taken out.
/// `(more)` (differences past the cap, unnamed) is never taken out: what
/// it stands for cannot be matched against the noise.
pub fn without_noise(found: &Differences, noise: &Differences) -> Differences {
    found
        .iter()
        .filter(|d| *d == MORE || !noise.contains(*d))
        .cloned()
        .collect()
}

/// Stands for the differences past [`MAX_DIFFERENCES`].
pub const MORE: &str = "(more)";

#[cfg(test)]
mod tests {
    use super::*;

    fn json(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), Some("application/json".into()))],
            body: body.as_bytes().to_vec(),
            watermark: None,
        }
    }

    #[test]
    fn json_bodies_are_compared_as_values_and_differences_named_by_path() {
        let a = json(
            200,
            r#"{"id": 1, "items": [{"text": "a"}, {"text": "b"}], "at": 5}"#,
        );
        let b = json(
            200,
            r#"{"items":[{"text":"a"},{"text":"c"}],"id":1,"at":6}"#,
        );
        let found = differences(&a, &b, &[]);
        assert_eq!(found, ["/at", "/items/1/text"].map(String::from).into());
        assert_eq!(
            differences(&a, &b, &["at".into()]),
            ["/items/1/text"].map(String::from).into()
        );
        assert_eq!(
            differences(&a, &b, &["/items".into(), "/at".into()]),
            Differences::new()
        );
        let noise: Differences = ["/at".to_string()].into();
        assert_eq!(
            without_noise(&found, &noise),
            ["/items/1/text".to_string()].into()
        );
        // Past the cap, noise cannot cancel what was left unnamed.
        let capped: Differences = ["/at".to_string(), MORE.to_string()].into();
        let noise: Differences = ["/at".to_string(), MORE.to_string()].into();
        assert_eq!(without_noise(&capped, &noise), [MORE.to_string()].into());
    }

    #[test]
    fn other_bodies_statuses_and_headers_are_compared_whole() {
        let mut a = json(200, "plain text");
        let b = json(404, "plain text!");
        a.headers[0].1 = Some("text/plain".into());
        assert_eq!(
            differences(&a, &b, &[]),
            ["status", "header content-type", "body"]
                .map(String::from)
                .into()
        );
        assert!(differences(&a, &a, &[]).is_empty());
    }
}
