//! The touched-keys log. Blue and green are fed from one log, so the runner
//! knows which keys changed: a replay with `record_touched = true` appends
//! the table, key and highest version of every row its store acknowledged
//! (`touched-ID.ndjson` in the state folder), before the batch's position
//! may be committed. A `compare` in `touched` mode reads it from where its
//! last pass stopped and compares those keys only.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::Mutations;

/// The most keys one touched compare holds; beyond, compare in `full` mode.
pub const MAX_TOUCHED: usize = 10_000_000;

/// Where replay `id` records the keys it wrote.
pub fn path(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join(format!("touched-{id}.ndjson"))
}

/// One line: a key a batch wrote, and the highest version it wrote there.
#[derive(Serialize, Deserialize)]
struct Line {
    table: String,
    /// The row key, hex.
    key: String,
    version: u64,
}

/// The log, open for appending.
pub struct TouchedLog {
    file: BufWriter<File>,
}

impl TouchedLog {
    /// Opens (or makes) the log at `path`.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(TouchedLog {
            file: BufWriter::new(file),
        })
    }

    /// Records the keys of one acknowledged batch (once each, with its
    /// highest version) and hands them to the operating system.
    pub fn record(&mut self, rows: Mutations<'_>) -> std::io::Result<()> {
        let mut keys: BTreeMap<(&str, &[u8]), u64> = BTreeMap::new();
        for row in rows.rows() {
            let v = keys.entry((row.table, row.row_key)).or_insert(row.version);
            *v = (*v).max(row.version);
        }
        for ((table, key), version) in keys {
            let line = Line {
                table: table.to_string(),
                key: hex::encode(key),
                version,
            };
            serde_json::to_writer(&mut self.file, &line)?;
            self.file.write_all(b"\n")?;
        }
        self.file.flush()
    }
}

/// Writes `keys` as a log of their own at `path` (a new file renamed over
/// the old one).
pub fn write_keys<'k>(
    path: &Path,
    keys: impl Iterator<Item = (&'k str, &'k [u8], u64)>,
) -> std::io::Result<()> {
    let tmp = path.with_extension("ndjson.tmp");
    let mut out = BufWriter::new(File::create(&tmp)?);
    for (table, key, version) in keys {
        let line = Line {
            table: table.to_string(),
            key: hex::encode(key),
            version,
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(tmp, path)
}

/// Keys touched, table by table, each with the highest version written.
pub type Touched = BTreeMap<String, BTreeMap<Vec<u8>, u64>>;

/// Reads the log at `path` from byte `from`: the keys touched since (at
/// most `max_keys`, else an error), and where the last whole line ends (a
/// line still being written is left for the next pass). A log not made yet
/// holds nothing.
pub fn read(path: &Path, from: u64, max_keys: usize) -> Result<(Touched, u64), String> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Touched::new(), 0)),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut reader = BufReader::new(file);
    reader
        .seek(SeekFrom::Start(from))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut touched = Touched::new();
    let (mut end, mut count) = (from, 0usize);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        let at = end;
        end += n as u64;
        let parsed: Line = serde_json::from_slice(&line)
            .map_err(|e| format!("{} at byte {at} is not a touched key: {e}", path.display()))?;
        let key = hex::decode(&parsed.key).map_err(|e| {
            format!(
                "{} at byte {at}: a key that is not hex: {e}",
                path.display()
            )
        })?;
        let keys = touched.entry(parsed.table).or_default();
        match keys.get_mut(&key) {
            Some(v) => *v = (*v).max(parsed.version),
            None => {
                count += 1;
                if count > max_keys {
                    return Err(format!(
                        "more than {max_keys} keys were touched since the last pass; compare them in `full` mode"
                    ));
                }
                keys.insert(key, parsed.version);
            }
        }
    }
    Ok((touched, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, RowMutation};

    #[test]
    fn keys_read_back_once_each_with_their_highest_version_and_a_torn_line_waits() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("touched-r.ndjson");
        let row = |key: &[u8], version| RowMutation {
            table: "t".into(),
            row_key: key.to_vec().into(),
            version,
            cells: vec![Cell::DeleteRow],
        };
        let mut log = TouchedLog::open(&file).unwrap();
        log.record(Mutations::Owned(&[
            row(b"a", 3),
            row(b"\xff", 1),
            row(b"a", 9),
        ]))
        .unwrap();
        log.record(Mutations::Owned(&[row(b"a", 5)])).unwrap();
        drop(log);
        let (touched, end) = read(&file, 0, 2).unwrap();
        let err = read(&file, 0, 1).unwrap_err();
        assert!(err.starts_with("more than 1 keys were touched"), "{err}");
        assert_eq!(touched["t"][&b"a"[..]], 9);
        assert_eq!(touched["t"][&b"\xff"[..]], 1);
        assert_eq!(end, std::fs::metadata(&file).unwrap().len());

        // A line being written is not read until it is whole.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap()
            .write_all(br#"{"table":"t","key":"62","vers"#)
            .unwrap();
        let (since, again) = read(&file, end, 2).unwrap();
        assert!(since.is_empty());
        assert_eq!(again, end);
        assert_eq!(read(&dir.path().join("none"), 0, 2).unwrap().1, 0);
    }
}
