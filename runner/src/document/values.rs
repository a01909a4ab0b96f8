//! Value types of the workflow file that parse from strings: durations,
//! sizes and points in time, each with an error that says what it expects;
//! and numbers and flags, which may also be written as text, so that a
//! `${var}` (always text once expanded) can stand for one.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// The longest duration a workflow may write: far beyond any sensible
/// timeout, and far below what would overflow a clock.
pub const MAX_PERIOD: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A duration written like `30s`, `5m`, `1h 30m`, `250ms`; at most ten years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(pub Duration);

impl Period {
    /// Parses a duration, refusing one longer than [`MAX_PERIOD`].
    pub fn parse(text: &str) -> Result<Period, String> {
        let d = humantime::parse_duration(text).map_err(|e| {
            format!(
                "invalid duration `{text}`: {e}; expected something like `30s`, `5m` or `1h 30m`"
            )
        })?;
        if d > MAX_PERIOD {
            return Err(format!(
                "duration `{text}` is longer than ten years; expected something like `30s`, `5m` or `1h 30m`"
            ));
        }
        Ok(Period(d))
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Period::parse(&text).map_err(de::Error::custom)
    }
}

/// Reads an optional whole number written as a number (`batch_size = 500`)
/// or as text (`batch_size = "${bs}"`). Use with
/// `#[serde(default, deserialize_with = "values::whole")]`.
pub fn whole<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + TryFrom<u64> + TryFrom<i64>,
{
    struct Whole<T>(PhantomData<T>);
    impl<T: FromStr + TryFrom<u64> + TryFrom<i64>> Visitor<'_> for Whole<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a whole number")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.trim().parse().map_err(|_| {
                E::custom(format!(
                    "`{v}` is not a whole number in range; expected something like `1000`"
                ))
            })
        }
    }
    d.deserialize_any(Whole(PhantomData)).map(Some)
}

/// Like [`whole`], for the values of a table (`start_offsets = { 0 = "${o}" }`).
pub fn whole_values<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, i64>, D::Error> {
    #[derive(Deserialize)]
    struct Value(#[serde(deserialize_with = "whole")] Option<i64>);
    let raw: std::collections::BTreeMap<String, Value> = Deserialize::deserialize(d)?;
    Ok(raw
        .into_iter()
        .filter_map(|(k, v)| v.0.map(|v| (k, v)))
        .collect())
}

/// Like [`whole`], for a fraction (`max_mismatch_ratio = "${ratio}"`).
pub fn fraction<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct Fraction;
    impl Visitor<'_> for Fraction {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a number")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            v.trim().parse().map_err(|_| {
                E::custom(format!(
                    "`{v}` is not a number; expected something like `0.01`"
                ))
            })
        }
    }
    d.deserialize_any(Fraction).map(Some)
}

/// Reads a flag written as a boolean or as the text `true` or `false`
/// (`scale_out = "${scale}"`). Use with
/// `#[serde(default, deserialize_with = "values::flag")]`.
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct Flag;
    impl Visitor<'_> for Flag {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "`true` or `false`")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v.trim() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(E::custom(format!("`{v}` is not `true` or `false`"))),
            }
        }
    }
    d.deserialize_any(Flag)
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
                Period::parse(margin)
                    .map(|s| s.0)
                    .map_err(|e| format!("invalid margin: {e}")),
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

/// A point a store is read or restored as of: what `compare` and
/// `restore` accept of a [`Point`] (neither has an `earliest`, and the
/// restore point is what `restore` makes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Everything there is.
    Latest,
    /// A fixed time or version.
    At(i64),
    /// The watermark of the stores involved, minus a margin.
    Watermark(Duration),
}

impl AsOf {
    /// The point, if it is one a store can be read as of.
    pub fn from_point(point: &Point) -> Option<AsOf> {
        match point {
            Point::Latest => Some(AsOf::Latest),
            Point::At(ms) => Some(AsOf::At(*ms)),
            Point::Watermark(margin) => Some(AsOf::Watermark(*margin)),
            Point::Earliest | Point::Restore(_) => None,
        }
    }
}

impl fmt::Display for AsOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let point = match *self {
            AsOf::Latest => Point::Latest,
            AsOf::At(ms) => Point::At(ms),
            AsOf::Watermark(margin) => Point::Watermark(margin),
        };
        point.fmt(f)
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

    #[test]
    fn durations_are_bounded_when_parsed() {
        assert_eq!(Period::parse("1h").unwrap().0, Duration::from_secs(3600));
        assert!(
            Period::parse("4611686018427387904s")
                .unwrap_err()
                .contains("longer than ten years")
        );
        assert!(Point::parse("restore - 99999y").is_err());
    }

    #[test]
    fn numbers_and_flags_may_be_written_as_text() {
        #[derive(Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "whole")]
            n: Option<usize>,
            #[serde(default, deserialize_with = "flag")]
            f: bool,
            #[serde(default, deserialize_with = "fraction")]
            r: Option<f64>,
        }
        let t: T = toml::from_str("n = \"12\"\nf = \"true\"\nr = \"0.5\"").unwrap();
        assert_eq!((t.n, t.f, t.r), (Some(12), true, Some(0.5)));
        let t: T = toml::from_str("n = 12\nf = false").unwrap();
        assert_eq!((t.n, t.f, t.r), (Some(12), false, None));
        let e = toml::from_str::<T>("n = \"lots\"")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`lots` is not a whole number"), "{e}");
        assert!(toml::from_str::<T>("n = -1").is_err());
    }
}
