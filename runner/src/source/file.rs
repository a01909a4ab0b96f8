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

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{BadRecord, Batch, Checkpoint, Progress, Source, SourceError, Start, StartFilter};
use crate::model::{Event, Header};

/// Reads an NDJSON event file.
pub struct FileSource {
    name: String,
    path: PathBuf,
    reader: BufReader<File>,
    /// Lines consumed so far.
    line: u64,
    bytes_read: u64,
    total_bytes: u64,
    /// Next offset per partition.
    next: BTreeMap<i32, i64>,
    /// With a timestamp start: partitions still before the start time.
    skip_before: Option<(i64, BTreeMap<i32, bool>)>,
    buf: Vec<u8>,
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
    /// Opens the file.
    pub fn open(name: &str, path: &Path) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(|e| SourceError {
            source_name: name.to_string(),
            message: format!("cannot open `{}`: {e}", path.display()),
        })?;
        let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(FileSource {
            name: name.to_string(),
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, file),
            line: 0,
            bytes_read: 0,
            total_bytes,
            next: BTreeMap::new(),
            skip_before: None,
            buf: Vec::new(),
        })
    }

    fn error(&self, message: String) -> SourceError {
        SourceError {
            source_name: self.name.clone(),
            message,
        }
    }

    /// Reads one line into `self.buf`; false at the end of the file.
    fn read_line(&mut self) -> Result<bool, SourceError> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| self.error(format!("cannot read `{}`: {e}", self.path.display())))?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        self.bytes_read += n as u64;
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(true)
    }

    fn parse(&mut self) -> Result<Event, String> {
        let line: Line = serde_json::from_slice(&self.buf).map_err(|e| e.to_string())?;
        let next = self.next.entry(line.partition).or_insert(0);
        let offset = line.offset.unwrap_or(*next);
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
                return Err(
                    self.error("a file source starts at the earliest event or at a time".into())
                );
            }
            (Some(cp), _) => {
                let lines = cp.cursor.unwrap_or(0);
                while self.line < lines {
                    if !self.read_line()? {
                        return Err(self.error(format!(
                            "the checkpoint is at line {lines} but `{}` has only {} lines; was the file replaced?",
                            self.path.display(),
                            self.line
                        )));
                    }
                }
                self.next = cp.next.clone();
                self.skip_before = cp
                    .start_filter
                    .as_ref()
                    .map(|f| (f.at, f.started.iter().map(|p| (*p, true)).collect()));
            }
        }
        Ok(())
    }

    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>, SourceError> {
        let mut batch = Batch::default();
        let mut read = 0;
        while read < max && self.read_line()? {
            read += 1;
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
            event_times: BTreeMap::new(),
        };
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
        let mut s = FileSource::open("f", &path).unwrap();
        let b = s.next_batch(10).unwrap().unwrap();
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
        assert!(s.next_batch(10).unwrap().is_none());
    }

    #[test]
    fn resumes_from_a_checkpoint_and_starts_at_a_time() {
        let lines: Vec<String> = (0..10)
            .map(|i| format!(r#"{{"timestamp":{},"value":"{i}"}}"#, i * 10))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (_d, path) = write(&refs);
        let mut first = FileSource::open("f", &path).unwrap();
        let cp = first.next_batch(4).unwrap().unwrap().checkpoint;
        let mut resumed = FileSource::open("f", &path).unwrap();
        resumed.seek(&Start::Earliest, Some(&cp)).unwrap();
        let b = resumed.next_batch(100).unwrap().unwrap();
        assert_eq!(b.events.first().unwrap().offset, 4);
        assert_eq!(b.events.len(), 6);
        let mut timed = FileSource::open("f", &path).unwrap();
        timed.seek(&Start::Timestamp(55), None).unwrap();
        let b = timed.next_batch(100).unwrap().unwrap();
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
        let mut first = FileSource::open("f", &path).unwrap();
        first.seek(&Start::Timestamp(40), None).unwrap();
        let b = first.next_batch(2).unwrap().unwrap();
        assert_eq!(b.events.len(), 1, "only partition 0's event");
        let mut resumed = FileSource::open("f", &path).unwrap();
        resumed
            .seek(&Start::Timestamp(40), Some(&b.checkpoint))
            .unwrap();
        let rest = resumed.next_batch(10).unwrap().unwrap();
        let values: Vec<&[u8]> = rest.events.iter().map(|e| e.value.as_slice()).collect();
        assert_eq!(
            values,
            vec![&b"d"[..]],
            "partition 1's old event stays skipped"
        );
    }
}
