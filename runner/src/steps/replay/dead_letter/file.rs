//! Dead letters in an NDJSON file: one JSON object per line, with the
//! reason, fsynced before the batch is committed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::DeadLetter;
use crate::model::Event;
use crate::plugin::bindings::types;
use crate::plugin::error::describe;
use crate::source::BadRecord;
use crate::steps::StepError;

/// An append-only NDJSON file.
pub struct FileLetters {
    file: File,
    path: PathBuf,
    dirty: bool,
}

impl FileLetters {
    /// Opens (or creates) the file, and its folder.
    pub fn open(path: &Path) -> Result<Self, StepError> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                StepError::DeadLetter(format!(
                    "cannot open dead-letter file `{}`: {e}",
                    path.display()
                ))
            })?;
        Ok(FileLetters {
            file,
            path: path.to_path_buf(),
            dirty: false,
        })
    }

    fn line(&mut self, value: serde_json::Value) -> Result<(), StepError> {
        let mut text = value.to_string();
        text.push('\n');
        self.dirty = true;
        self.file.write_all(text.as_bytes()).map_err(|e| {
            StepError::DeadLetter(format!(
                "cannot write dead-letter file `{}`: {e}",
                self.path.display()
            ))
        })
    }
}

impl DeadLetter for FileLetters {
    fn refused(
        &mut self,
        step: &str,
        plugin: &str,
        event: &Event,
        error: &types::PluginError,
    ) -> Result<(), StepError> {
        self.line(serde_json::json!({
            "step": step,
            "plugin": plugin,
            "error": describe(error),
            "partition": event.partition,
            "offset": event.offset,
            "timestamp": event.timestamp_ms,
            "key": event.key.as_ref().map(|k| String::from_utf8_lossy(k)),
            "value": String::from_utf8_lossy(&event.value),
        }))
    }

    fn unreadable(&mut self, step: &str, bad: &BadRecord) -> Result<(), StepError> {
        self.line(serde_json::json!({
            "step": step,
            "error": bad.error,
            "place": bad.place,
            "raw": String::from_utf8_lossy(&bad.raw),
        }))
    }

    fn sync(&mut self) -> Result<(), StepError> {
        if !std::mem::take(&mut self.dirty) {
            return Ok(());
        }
        self.file.sync_data().map_err(|e| {
            StepError::DeadLetter(format!(
                "cannot sync dead-letter file `{}`: {e}",
                self.path.display()
            ))
        })
    }
}
