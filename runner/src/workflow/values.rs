//! Value types of the workflow file that parse from strings: durations,
//! sizes and points in time, each with an error that says what it expects.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written like `30s`, `5m`, `1h 30m`, `250ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map(Span).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration `{text}`: {e}; expected something like `30s`, `5m` or `1h 30m`"
            ))
        })
    }
}

/// A size written like `64MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::plugin::limits::parse_size(&text)
            .map(Size)
            .map_err(serde::de::Error::custom)
    }
}

/// A point on the version axis (milliseconds since the epoch, as versions
/// derived from event time are), absolute or relative to something the
/// engine knows when the step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Point {
    /// Everything there is.
    Latest,
    /// The start of the log.
    Earliest,
    /// A fixed time or version.
    At(i64),
    /// The restore point recorded by an earlier `restore` step, minus a margin.
    Restore(Duration),
    /// The lowest watermark of the stores involved, minus a margin.
    Watermark(Duration),
}

impl Point {
    /// Parses `latest`, `earliest`, `restore`, `restore - 10m`,
    /// `watermark - 5m`, an RFC 3339 time or a number of milliseconds.
    pub fn parse(text: &str) -> Result<Point, String> {
        let t = text.trim();
        let relative = |base: &str| -> Option<Result<Duration, String>> {
            let rest = t.strip_prefix(base)?.trim();
            if rest.is_empty() {
                return Some(Ok(Duration::ZERO));
            }
            let margin = rest.strip_prefix('-')?.trim();
            Some(
                humantime::parse_duration(margin)
                    .map_err(|e| format!("invalid margin `{margin}`: {e}")),
            )
        };
        match t {
            "latest" => return Ok(Point::Latest),
            "earliest" => return Ok(Point::Earliest),
            _ => {}
        }
        if let Some(m) = relative("restore") {
            return m.map(Point::Restore);
        }
        if let Some(m) = relative("watermark") {
            return m.map(Point::Watermark);
        }
        if let Ok(ms) = t.parse::<i64>() {
            return Ok(Point::At(ms));
        }
        if let Ok(time) = humantime::parse_rfc3339_weak(t) {
            let ms = time
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| format!("`{t}` is before 1970"))?
                .as_millis();
            return Ok(Point::At(ms as i64));
        }
        Err(format!(
            "invalid point `{t}`; expected `earliest`, `latest`, `restore - 10m`, `watermark - 5m`, an RFC 3339 time or milliseconds since the epoch"
        ))
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let margin = |f: &mut fmt::Formatter<'_>, base: &str, d: &Duration| {
            if d.is_zero() {
                write!(f, "{base}")
            } else {
                write!(f, "{base} - {}", humantime::format_duration(*d))
            }
        };
        match self {
            Point::Latest => write!(f, "latest"),
            Point::Earliest => write!(f, "earliest"),
            Point::At(ms) => write!(f, "{ms}"),
            Point::Restore(d) => margin(f, "restore", d),
            Point::Watermark(d) => margin(f, "watermark", d),
        }
    }
}

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Point::At(n)),
            Raw::Text(t) => Point::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_parse() {
        assert_eq!(Point::parse("latest"), Ok(Point::Latest));
        assert_eq!(
            Point::parse("restore - 10m"),
            Ok(Point::Restore(Duration::from_secs(600)))
        );
        assert_eq!(Point::parse("restore"), Ok(Point::Restore(Duration::ZERO)));
        assert_eq!(
            Point::parse("watermark-1s"),
            Ok(Point::Watermark(Duration::from_secs(1)))
        );
        assert_eq!(
            Point::parse("2026-01-01T00:00:00Z"),
            Ok(Point::At(1_767_225_600_000))
        );
        assert_eq!(Point::parse("42"), Ok(Point::At(42)));
        assert!(
            Point::parse("yesterday")
                .unwrap_err()
                .starts_with("invalid point `yesterday`")
        );
        assert_eq!(
            Point::Restore(Duration::from_secs(600)).to_string(),
            "restore - 10m"
        );
    }
}
