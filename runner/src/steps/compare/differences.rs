//! Every differing key, when the workflow asks for the list
//! (`list_differences = true`): one JSON line per key in
//! `compare-ID.differences.ndjson`, beside the report that keeps only the
//! first examples. A resumed compare cuts the file back to the length its
//! saved progress counted, so no key is listed twice.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::report::Category;
use crate::plugin::check::Pair;
use crate::steps::StepError;

/// The list being written.
pub struct DifferenceLog {
    path: PathBuf,
    out: BufWriter<File>,
    /// Bytes written, flushed or not.
    written: u64,
}

/// One line of the list.
#[derive(Serialize)]
struct Line<'a> {
    table: &'a str,
    /// The key as `runner rows --key` takes it back.
    key: String,
    category: Category,
}

impl DifferenceLog {
    /// Opens the list, keeping its first `keep` bytes (what a saved
    /// progress counted; 0 starts afresh).
    pub fn open(path: &Path, keep: u64) -> Result<Self, StepError> {
        let fail = |e: std::io::Error| {
            StepError::Local(format!(
                "cannot write the list of differences {}: {e}",
                path.display()
            ))
        };
        // A link planted where the list goes is refused, not written through
        // (the list is cut back to `keep`, which would cut its target).
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(fail)?;
        let length = file.metadata().map_err(fail)?.len();
        if length < keep {
            return Err(StepError::Local(format!(
                "{} holds {length} bytes, fewer than the {keep} the saved progress counted: it was cut or replaced; remove the compare's progress file to start over",
                path.display()
            )));
        }
        file.set_len(keep).map_err(fail)?;
        let mut out = BufWriter::new(file);
        use std::io::Seek;
        out.seek(std::io::SeekFrom::Start(keep)).map_err(fail)?;
        Ok(DifferenceLog {
            path: path.to_path_buf(),
            out,
            written: keep,
        })
    }

    /// Lists one differing key.
    pub fn add(&mut self, pair: &Pair, category: Category) -> Result<(), StepError> {
        let mut line = serde_json::to_vec(&Line {
            table: &pair.table,
            key: crate::text::text_or_hex(&pair.row_key),
            category,
        })
        .unwrap_or_default();
        line.push(b'\n');
        self.out.write_all(&line).map_err(|e| self.failed(e))?;
        self.written += line.len() as u64;
        Ok(())
    }

    /// Writes out what is buffered; the length to save with the progress.
    pub fn flush(&mut self) -> Result<u64, StepError> {
        self.out.flush().map_err(|e| self.failed(e))?;
        Ok(self.written)
    }

    fn failed(&self, e: std::io::Error) -> StepError {
        StepError::Local(format!(
            "cannot write the list of differences {}: {e}",
            self.path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &str) -> Pair {
        Pair {
            table: "t".into(),
            row_key: key.as_bytes().to_vec(),
            blue: None,
            green: None,
        }
    }

    #[test]
    fn a_resumed_list_goes_on_from_the_saved_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.ndjson");
        let mut log = DifferenceLog::open(&path, 0).unwrap();
        log.add(&pair("a"), Category::OnlyBlue).unwrap();
        let saved = log.flush().unwrap();
        // Written after the save, then killed: not counted by the progress.
        log.add(&pair("b"), Category::OnlyBlue).unwrap();
        log.flush().unwrap();
        drop(log);
        let mut log = DifferenceLog::open(&path, saved).unwrap();
        log.add(&pair("b"), Category::OnlyBlue).unwrap();
        log.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"table\":\"t\",\"key\":\"a\",\"category\":\"only-blue\"}\n\
             {\"table\":\"t\",\"key\":\"b\",\"category\":\"only-blue\"}\n"
        );
        // A list shorter than the progress counted was replaced: refused.
        std::fs::write(&path, "").unwrap();
        assert!(DifferenceLog::open(&path, saved).is_err());
        // A link in its place is not followed: its target keeps its bytes.
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep me").unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(DifferenceLog::open(&path, 0).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    }
}
