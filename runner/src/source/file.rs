//! The file source: an NDJSON event log, one event per line:
//!
//! ```json
//! {"partition":0,"offset":17,"timestamp":1767225600000,"key":"room-1","value":{"type":"message_posted"},"headers":{"trace":"x"}}
//! ```
//!
//! `partition` defaults to 0 and `offset` to the event's position in its
//! partition; `value` and `key` may be any JSON (a string is taken as its
//! text, anything else as its JSON). Positions are committed by the engine's
//! state; the cursor is the line number, so resuming skips exactly the
//! lines already acknowledged.
//!
//! A line longer than `max_event_size` is never read into memory whole: it
//! becomes an unreadable record (its line number and length), handled by
//! the replay's `on_error`. The file is read once at open to learn its
//! partitions, which the watermark must cover.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    BadRecord, Batch, BatchLimit, Checkpoint, Follow, Progress, Reached, Source, SourceConfig,
    SourceError, Start, StartFilter,
};
use crate::cancel::Cancel;
use crate::document::values::Size;
use crate::document::{Home, Kind};
use crate::fault::Fault;
use crate::model::{Event, Header};
use crate::plugin::limits::show_size;
use crate::text::{LineRead, read_line};

/// The most partitions a file source may have: beyond a sane topic's, and
/// each is carried in every checkpoint.
pub const MAX_PARTITIONS: usize = 10_000;

/// What an event's numbers must be: partitions, offsets and times are
/// never negative (a time is milliseconds since 1970, and becomes a
/// version).
fn check(line: &Line<'_>) -> Result<(), String> {
    if line.partition < 0 {
        return Err(format!("`partition` {} is below 0", line.partition));
    }
    if line.offset.is_some_and(|o| o < 0) {
        return Err(format!("`offset` {} is below 0", line.offset.unwrap_or(0)));
    }
    if line.timestamp < 0 {
        return Err(format!(
            "`timestamp` {} is below 0; it is milliseconds since 1970",
            line.timestamp
        ));
    }
    Ok(())
}

/// The longest line taken as an event, by default.
pub const DEFAULT_MAX_EVENT: u64 = 16 << 20;

/// The largest event a file source may be set to take.
const MAX_EVENT_SIZE: u64 = 1 << 30;

/// The kind, for the registration list.
pub const KIND: Kind<dyn SourceConfig> = Kind {
    name: "file",
    read: |table| {
        let at = table.at();
        let file: FileConfig = table.read()?;
        if file
            .max_event_size
            .is_some_and(|s| s.0 == 0 || s.0 > MAX_EVENT_SIZE)
        {
            return Err(at.error("`max_event_size` must be between 1 byte and 1GiB"));
        }
        Ok(Box::new(file))
    },
};

/// `kind = "file"`: one event per line, as
/// `{"partition":0,"offset":0,"timestamp":…,"key":"…","value":…}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file.
    pub path: String,
    /// The longest line taken as an event (default 16MiB); a longer one is
    /// an unreadable record, handled by the replay's `on_error`.
    #[serde(default)]
    pub max_event_size: Option<Size>,
}

impl SourceConfig for FileConfig {
    fn describe(&self, home: &Home, _name: &str) -> String {
        format!("file {}", home.path(&self.path).display())
    }

    fn probe(
        &self,
        home: &Home,
        name: &str,
        _topics: &[&str],
        made_earlier: bool,
    ) -> Result<String, SourceError> {
        let error = |message: String| SourceError::new(name, Fault::Io, message);
        let path = home.path(&self.path);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(format!("file {}", path.display())),
            Ok(_) => Err(error(format!("`{}` is not a file", path.display()))),
            Err(_) if made_earlier => Ok(format!(
                "file {} (not there yet; an earlier step may write it)",
                path.display()
            )),
            Err(e) => Err(error(format!("cannot read `{}`: {e}", path.display()))),
        }
    }

    fn open(
        &self,
        home: &Home,
        name: &str,
        _follow: Follow,
        stop: &Cancel,
    ) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(FileSource::open(
            name,
            &home.path(&self.path),
            self.max_event_size.map_or(DEFAULT_MAX_EVENT, |s| s.0),
            stop,
        )?))
    }
}

/// Bytes of an over-long line kept for the dead letter.
const KEPT_OF_OVERSIZED: usize = 1024;

/// Reads an NDJSON event file.
pub struct FileSource {
    name: String,
    path: PathBuf,
    reader: BufReader<File>,
    max_event: u64,
    /// Lines consumed so far.
    line: u64,
    bytes_read: u64,
    total_bytes: u64,
    /// Next offset per partition.
    next: BTreeMap<i32, i64>,
    /// With a timestamp start: partitions still before the start time.
    skip_before: Option<(i64, BTreeMap<i32, bool>)>,
    /// The time each of the file's partitions has reached.
    reached: Reached,
    buf: Vec<u8>,
}

/// Reads the next line into `buf`, keeping at most `max` bytes of it and
/// only the first [`KEPT_OF_OVERSIZED`] of a longer one.
fn next_line(
    reader: &mut BufReader<File>,
    buf: &mut Vec<u8>,
    max: u64,
) -> std::io::Result<Option<LineRead>> {
    let line = read_line(reader, buf, max)?;
    if line.is_some_and(|l| l.cut) {
        buf.truncate(KEPT_OF_OVERSIZED);
    }
    Ok(line)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(default)]
    partition: i32,
    #[serde(default)]
    offset: Option<i64>,
    timestamp: i64,
    #[serde(default, borrow)]
    key: Option<&'a RawValue>,
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

impl FileSource {
    /// Opens the file and learns its partitions (reading it once, which
    /// ends early if `stop` is set); lines longer than `max_event` bytes
    /// are unreadable records.
    pub fn open(
        name: &str,
        path: &Path,
        max_event: u64,
        stop: &Cancel,
    ) -> Result<Self, SourceError> {
        let fail = |message: String| SourceError::new(name, Fault::Io, message);
        let error = |e: std::io::Error| fail(format!("cannot read `{}`: {e}", path.display()));
        // A FIFO or a device never ends, nor does a file that is one.
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => {
                return Err(fail(format!(
                    "`{}` is not a regular file; give the source a file of events",
                    path.display()
                )));
            }
            Err(e) => return Err(fail(format!("cannot open `{}`: {e}", path.display()))),
            Ok(_) => {}
        }
        let open = || File::open(path).map(|f| BufReader::with_capacity(1 << 20, f));
        let mut reached = Reached::default();
        let mut scan = open().map_err(error)?;
        let mut buf = Vec::new();
        let mut lines = 0u64;
        while let Some(line) = next_line(&mut scan, &mut buf, max_event).map_err(error)? {
            lines += 1;
            if lines.is_multiple_of(4096) && stop.is_cancelled() {
                return Err(SourceError::new(
                    name,
                    Fault::Transient,
                    "stopped while reading the file",
                ));
            }
            if line.cut {
                continue;
            }
            // Only lines that are events: a partition of unreadable lines
            // would never be reached.
            if let Ok(event) = serde_json::from_slice::<Line>(&buf)
                && check(&event).is_ok()
            {
                reached.require(event.partition);
                if reached.partitions() > MAX_PARTITIONS {
                    return Err(SourceError::new(
                        name,
                        Fault::Refused,
                        format!(
                            "`{}` has events of more than {MAX_PARTITIONS} partitions; a source may have at most that many",
                            path.display()
                        ),
                    ));
                }
            }
        }
        let reader = open().map_err(error)?;
        let total_bytes = reader.get_ref().metadata().map(|m| m.len()).unwrap_or(0);
        Ok(FileSource {
            name: name.to_string(),
            path: path.to_path_buf(),
            reader,
            max_event,
            line: 0,
            bytes_read: 0,
            total_bytes,
            next: BTreeMap::new(),
            skip_before: None,
            reached,
            buf,
        })
    }

    fn error(&self, fault: Fault, message: String) -> SourceError {
        SourceError::new(&self.name, fault, message)
    }

    /// Reads one line into `self.buf`; `None` at the end of the file.
    fn read_line(&mut self) -> Result<Option<LineRead>, SourceError> {
        let line = next_line(&mut self.reader, &mut self.buf, self.max_event).map_err(|e| {
            self.error(
                Fault::Io,
                format!("cannot read `{}`: {e}", self.path.display()),
            )
        })?;
        if let Some(l) = &line {
            self.line += 1;
            self.bytes_read += l.len;
        }
        Ok(line)
    }

    fn parse(&mut self) -> Result<Event, String> {
        let line: Line = serde_json::from_slice(&self.buf).map_err(|e| e.to_string())?;
        check(&line)?;
        let next = self.next.entry(line.partition).or_insert(0);
        let offset = line.offset.unwrap_or(*next);
        if offset == i64::MAX {
            return Err(format!("`offset` {offset} leaves no room for the next one"));
        }
        *next = offset + 1;
        Ok(Event {
            partition: line.partition,
            offset,
            timestamp_ms: line.timestamp,
            key: line.key.filter(|k| k.get() != "null").map(raw_bytes),
            value: raw_bytes(line.value),
            headers: line
                .headers
                .into_iter()
                .map(|(key, value)| Header {
                    key,
                    value: value.into_bytes(),
                })
                .collect(),
        })
    }

    fn wanted(&mut self, event: &Event) -> bool {
        // A skipped event is reached as much as an applied one.
        self.reached.saw(event.partition, event.timestamp_ms);
        let Some((at, started)) = &mut self.skip_before else {
            return true;
        };
        let started = started.entry(event.partition).or_insert(false);
        if !*started && event.timestamp_ms >= *at {
            *started = true;
        }
        *started
    }
}

/// A JSON string's text, or any other JSON value's text.
fn raw_bytes(raw: &RawValue) -> Vec<u8> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str::<String>(text)
            .map(String::into_bytes)
            .unwrap_or_else(|_| text.as_bytes().to_vec())
    } else {
        text.as_bytes().to_vec()
    }
}

impl Source for FileSource {
    fn seek(&mut self, start: &Start, resume: Option<&Checkpoint>) -> Result<(), SourceError> {
        match (resume, start) {
            (None, Start::Earliest) => {}
            (None, Start::Timestamp(at)) => self.skip_before = Some((*at, BTreeMap::new())),
            (None, Start::Latest | Start::Offsets(_)) => {
                return Err(self.error(
                    Fault::Refused,
                    "a file source starts at the earliest event or at a time".into(),
                ));
            }
            (Some(cp), _) => {
                let lines = cp.cursor.unwrap_or(0);
                while self.line < lines {
                    if self.read_line()?.is_none() {
                        return Err(self.error(Fault::Io, format!(
                            "the checkpoint is at line {lines} but `{}` has only {} lines; was the file replaced?",
                            self.path.display(),
                            self.line
                        )));
                    }
                }
                self.next = cp.next.clone();
                self.reached.resume(&cp.event_times);
                self.skip_before = cp
                    .start_filter
                    .as_ref()
                    .map(|f| (f.at, f.started.iter().map(|p| (*p, true)).collect()));
            }
        }
        Ok(())
    }

    fn next_batch(&mut self, limit: BatchLimit) -> Result<Option<Batch>, SourceError> {
        let mut batch = Batch::default();
        let mut read = 0;
        let mut bytes = 0;
        while read < limit.events && bytes < limit.bytes {
            let Some(line) = self.read_line()? else {
                break;
            };
            read += 1;
            bytes += line.len;
            if line.cut {
                batch.bad.push(BadRecord {
                    place: format!("line {} of `{}`", self.line, self.path.display()),
                    raw: self.buf.clone(),
                    error: format!(
                        "the line is {} bytes, more than `max_event_size` ({}); only its first {} bytes are kept here",
                        line.len,
                        show_size(self.max_event),
                        self.buf.len()
                    ),
                });
                continue;
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match self.parse() {
                Ok(event) => {
                    if self.wanted(&event) {
                        batch.events.push(event);
                    }
                }
                Err(error) => batch.bad.push(BadRecord {
                    place: format!("line {} of `{}`", self.line, self.path.display()),
                    raw: self.buf.clone(),
                    error,
                }),
            }
        }
        if read == 0 {
            return Ok(None);
        }
        batch.checkpoint = Checkpoint {
            next: self.next.clone(),
            cursor: Some(self.line),
            start_filter: self.skip_before.as_ref().map(|(at, started)| StartFilter {
                at: *at,
                started: started
                    .iter()
                    .filter(|(_, s)| **s)
                    .map(|(p, _)| *p)
                    .collect(),
            }),
            event_times: self.reached.times(),
        };
        batch.watermark = self.reached.watermark(None);
        Ok(Some(batch))
    }

    fn commit(&mut self, _checkpoint: &Checkpoint) -> Result<(), SourceError> {
        // The engine's state file holds a file source's checkpoint.
        Ok(())
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.bytes_read,
            total: Some(self.total_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> FileSource {
        FileSource::open("f", path, DEFAULT_MAX_EVENT, &Cancel::default()).unwrap()
    }

    #[test]
    fn a_file_that_cannot_be_read_is_an_io_failure() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.ndjson");
        let e = FileSource::open("f", &missing, DEFAULT_MAX_EVENT, &Cancel::default())
            .err()
            .unwrap();
        assert_eq!(e.fault, Fault::Io, "{e}");
    }

    fn limit(events: usize) -> BatchLimit {
        BatchLimit {
            events,
            bytes: u64::MAX,
        }
    }

    fn write(lines: &[&str]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.ndjson");
        std::fs::write(&path, lines.join("\n")).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_events_and_names_bad_lines() {
        let (_d, path) = write(&[
            r#"{"partition":1,"offset":7,"timestamp":5,"key":"k","value":{"a":1}}"#,
            r#"{"timestamp":6,"value":"plain"}"#,
            "not json",
        ]);
        let mut s = open(&path);
        let b = s.next_batch(limit(10)).unwrap().unwrap();
        assert_eq!(b.events.len(), 2);
        assert_eq!(b.events[0].value, br#"{"a":1}"#);
        assert_eq!(b.events[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!((b.events[1].partition, b.events[1].offset), (0, 0));
        assert_eq!(b.events[1].value, b"plain");
        assert_eq!(b.bad.len(), 1);
        assert!(
            b.bad[0].place.starts_with("line 3 of"),
            "{}",
            b.bad[0].place
        );
        assert_eq!(b.checkpoint.next.get(&1), Some(&8));
        assert!(s.next_batch(limit(10)).unwrap().is_none());
    }

    #[test]
    fn resumes_from_a_checkpoint_and_starts_at_a_time() {
        let lines: Vec<String> = (0..10)
            .map(|i| format!(r#"{{"timestamp":{},"value":"{i}"}}"#, i * 10))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (_d, path) = write(&refs);
        let mut first = open(&path);
        let cp = first.next_batch(limit(4)).unwrap().unwrap().checkpoint;
        let mut resumed = open(&path);
        resumed.seek(&Start::Earliest, Some(&cp)).unwrap();
        let b = resumed.next_batch(limit(100)).unwrap().unwrap();
        assert_eq!(b.events.first().unwrap().offset, 4);
        assert_eq!(b.events.len(), 6);
        let mut timed = open(&path);
        timed.seek(&Start::Timestamp(55), None).unwrap();
        let b = timed.next_batch(limit(100)).unwrap().unwrap();
        assert_eq!(b.events.first().unwrap().timestamp_ms, 60);
    }

    #[test]
    fn a_resume_keeps_skipping_what_a_time_start_skips() {
        // Partition 1 reaches the start time late; partition 0 early.
        let lines = [
            r#"{"partition":0,"timestamp":50,"value":"a"}"#,
            r#"{"partition":1,"timestamp":10,"value":"b"}"#,
            r#"{"partition":1,"timestamp":20,"value":"c"}"#,
            r#"{"partition":1,"timestamp":60,"value":"d"}"#,
        ];
        let (_d, path) = write(&lines);
        let mut first = open(&path);
        first.seek(&Start::Timestamp(40), None).unwrap();
        let b = first.next_batch(limit(2)).unwrap().unwrap();
        assert_eq!(b.events.len(), 1, "only partition 0's event");
        let mut resumed = open(&path);
        resumed
            .seek(&Start::Timestamp(40), Some(&b.checkpoint))
            .unwrap();
        let rest = resumed.next_batch(limit(10)).unwrap().unwrap();
        let values: Vec<&[u8]> = rest.events.iter().map(|e| e.value.as_slice()).collect();
        assert_eq!(
            values,
            vec![&b"d"[..]],
            "partition 1's old event stays skipped"
        );
    }

    #[test]
    fn a_line_over_the_limit_is_unreadable_and_never_held_whole() {
        let long = format!(r#"{{"timestamp":1,"value":"{}"}}"#, "x".repeat(5000));
        let (_d, path) = write(&[
            r#"{"timestamp":0,"value":"a"}"#,
            &long,
            r#"{"timestamp":2,"value":"b"}"#,
        ]);
        let mut s = FileSource::open("f", &path, 1000, &Cancel::default()).unwrap();
        let b = s.next_batch(limit(10)).unwrap().unwrap();
        assert_eq!(b.events.len(), 2);
        assert_eq!(b.bad.len(), 1);
        assert!(
            b.bad[0].place.starts_with("line 2 of"),
            "{}",
            b.bad[0].place
        );
        assert!(
            b.bad[0]
                .error
                .starts_with("the line is 5027 bytes, more than `max_event_size` (1000 bytes)"),
            "{}",
            b.bad[0].error
        );
        assert!(b.bad[0].raw.len() <= KEPT_OF_OVERSIZED);
    }

    #[test]
    fn batches_end_at_a_byte_limit_too() {
        let lines: Vec<String> = (0..10)
            .map(|i| format!(r#"{{"timestamp":{i},"value":"{}"}}"#, "v".repeat(100)))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (_d, path) = write(&refs);
        let mut s = open(&path);
        let small = BatchLimit {
            events: 1000,
            bytes: 300,
        };
        assert_eq!(s.next_batch(small).unwrap().unwrap().events.len(), 3);
    }

    #[test]
    fn the_watermark_covers_every_partition_of_the_file() {
        // Partition 1 appears late in the file but is behind in time.
        let (_d, path) = write(&[
            r#"{"partition":0,"timestamp":100,"value":"a"}"#,
            r#"{"partition":0,"timestamp":200,"value":"b"}"#,
            r#"{"partition":1,"timestamp":50,"value":"c"}"#,
        ]);
        let mut s = open(&path);
        let first = s.next_batch(limit(2)).unwrap().unwrap();
        assert_eq!(first.watermark, None, "partition 1 not reached yet");
        let second = s.next_batch(limit(2)).unwrap().unwrap();
        assert_eq!(second.watermark, Some(50));
        let mut whole = open(&path);
        assert_eq!(
            whole.next_batch(limit(1000)).unwrap().unwrap().watermark,
            Some(50)
        );
    }

    #[test]
    fn a_partition_of_unreadable_lines_holds_no_watermark_back() {
        let (_d, path) = write(&[
            r#"{"partition":0,"timestamp":100,"value":"a"}"#,
            r#"{"partition":1,"timestmap":50,"value":"typo"}"#,
        ]);
        let batch = open(&path).next_batch(limit(10)).unwrap().unwrap();
        assert_eq!(batch.bad.len(), 1);
        assert_eq!(batch.watermark, Some(100));
    }

    #[test]
    fn numbers_that_cannot_be_are_unreadable_events() {
        let (_d, path) = write(&[
            r#"{"timestamp":-5,"value":"before 1970"}"#,
            r#"{"partition":-1,"timestamp":5,"value":"no such partition"}"#,
            r#"{"offset":9223372036854775807,"timestamp":5,"value":"no next offset"}"#,
            r#"{"timestamp":6,"value":"fine"}"#,
        ]);
        let b = open(&path).next_batch(limit(10)).unwrap().unwrap();
        assert_eq!(b.events.len(), 1);
        let errors: Vec<&str> = b.bad.iter().map(|r| r.error.as_str()).collect();
        assert_eq!(
            errors,
            vec![
                "`timestamp` -5 is below 0; it is milliseconds since 1970",
                "`partition` -1 is below 0",
                "`offset` 9223372036854775807 leaves no room for the next one",
            ]
        );
    }

    #[test]
    fn a_device_or_too_many_partitions_is_refused_at_open() {
        let stop = Cancel::default();
        let err = FileSource::open("f", Path::new("/dev/zero"), DEFAULT_MAX_EVENT, &stop)
            .err()
            .unwrap();
        assert!(
            err.message.contains("is not a regular file"),
            "{}",
            err.message
        );
        let lines: Vec<String> = (0..=MAX_PARTITIONS)
            .map(|p| format!(r#"{{"partition":{p},"timestamp":1,"value":"v"}}"#))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (_d, path) = write(&refs);
        let err = FileSource::open("f", &path, DEFAULT_MAX_EVENT, &stop)
            .err()
            .unwrap();
        assert!(
            err.message.contains("more than 10000 partitions"),
            "{}",
            err.message
        );
    }
}
