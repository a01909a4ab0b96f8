//! The state folder of a workflow: which steps are done, where replays
//! stand, the restore point. Written atomically (temporary file, fsync,
//! rename) after every step and at replay checkpoints, so a runner killed
//! at any moment finds a consistent file on restart. A lock file keeps two
//! runners off the same state.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::source::Checkpoint;

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Started and not finished (or the runner died in it).
    Running,
    /// Finished.
    Done,
    /// Failed; `exec` runs it again.
    Failed,
}

/// The saved state of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    /// Where it stands.
    pub status: Status,
    /// The step kind, for `status`.
    pub kind: String,
    /// When the latest attempt started (ms since the epoch).
    pub started_at_ms: u64,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// How many times it was started.
    pub attempts: u32,
    /// One line on what it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The error of a failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A replay's acknowledged position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// Counters (events, rows, keys …), kept across resumes.
    #[serde(default)]
    pub metrics: BTreeMap<String, u64>,
    /// A copy's progress: the last key done per table (hex).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resume: BTreeMap<String, String>,
    /// A replay done with its gate that keeps syncing in the background
    /// (`until = "cutover"`); a resumed run starts it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
    /// A replay's partitions as last seen: log end, acknowledged position,
    /// lag and throughput.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partitions: BTreeMap<i32, PartitionStatus>,
}

/// Where one partition of a replay stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionStatus {
    /// The log end (high watermark).
    pub high: i64,
    /// The next offset not yet acknowledged by the store.
    pub acked: i64,
    /// Messages behind the log end.
    pub lag: u64,
    /// Events applied from this partition in this run.
    pub events: u64,
    /// Events per second over the last interval.
    pub rate: f64,
    /// When this was measured (ms since the epoch).
    pub at_ms: u64,
}

/// The whole state of a workflow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The workflow's name.
    pub workflow: String,
    /// Fingerprint of the workflow file when the run started.
    pub fingerprint: String,
    /// When the first run started.
    pub started_at_ms: u64,
    /// When the last step finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// Steps by id.
    pub steps: BTreeMap<String, StepState>,
    /// Restore point (T0) per store restored.
    #[serde(default)]
    pub restore_points: BTreeMap<String, i64>,
    /// The store reads were switched to, once cut over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover_to: Option<String>,
}

/// Why the state folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("state `{}`: {message}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Another runner holds the lock.
    #[error("another runner is working on this workflow (lock `{}` is held); wait for it or stop it", .path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
}

/// The open, locked state folder.
pub struct StateFile {
    dir: PathBuf,
    /// The state as last saved or changed.
    pub state: State,
    _lock: File,
}

impl StateFile {
    /// Opens (creating) the folder, takes the lock, reads the state.
    pub fn open(dir: &Path, workflow: &str) -> Result<Self, StateError> {
        let io = |path: &Path, e: std::io::Error| StateError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let lock_path = dir.join("lock");
        let lock = File::create(&lock_path).map_err(|e| io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StateError::Locked { path: lock_path });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path, e)),
        }
        let state = read(dir)?.unwrap_or_else(|| State {
            workflow: workflow.to_string(),
            started_at_ms: now_ms(),
            ..State::default()
        });
        Ok(StateFile {
            dir: dir.to_path_buf(),
            state,
            _lock: lock,
        })
    }

    /// Empties the folder (all but the lock, which stays held) and starts
    /// a new state. Refuses a folder that holds files but no `state.json`:
    /// `--state` pointed somewhere that is not a state folder.
    pub fn clear(&mut self) -> Result<(), StateError> {
        let io = |path: &Path, e: std::io::Error| StateError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let entries: Vec<_> = std::fs::read_dir(&self.dir)
            .map_err(|e| io(&self.dir, e))?
            .filter_map(Result::ok)
            .filter(|e| e.file_name() != "lock")
            .collect();
        if !entries.is_empty() && !self.dir.join("state.json").exists() {
            return Err(StateError::Io {
                path: self.dir.clone(),
                message: "refusing to clear for --fresh: the folder holds files but no state.json, so it is not a Switchyard state folder".into(),
            });
        }
        for entry in entries {
            let path = entry.path();
            let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| io(&path, e))?;
        }
        self.state = State {
            workflow: self.state.workflow.clone(),
            started_at_ms: now_ms(),
            ..State::default()
        };
        Ok(())
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the state atomically.
    pub fn save(&self) -> Result<(), StateError> {
        let path = self.dir.join("state.json");
        let tmp = self.dir.join("state.json.tmp");
        let io = |e: std::io::Error| StateError::Io {
            path: path.clone(),
            message: e.to_string(),
        };
        let text = serde_json::to_vec_pretty(&self.state).map_err(|e| StateError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(&text).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The state of step `id`, created as pending-running if new.
    pub fn step_mut(&mut self, id: &str, kind: &str) -> &mut StepState {
        self.state
            .steps
            .entry(id.to_string())
            .or_insert_with(|| StepState {
                status: Status::Running,
                kind: kind.to_string(),
                started_at_ms: now_ms(),
                finished_at_ms: None,
                attempts: 0,
                summary: None,
                error: None,
                checkpoint: None,
                metrics: BTreeMap::new(),
                resume: BTreeMap::new(),
                live: false,
                partitions: BTreeMap::new(),
            })
    }
}

/// Reads the state of a folder without locking it (for `status`).
pub fn read(dir: &Path) -> Result<Option<State>, StateError> {
    let path = dir.join("state.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Io {
                path,
                message: format!("unreadable ({e}); move it away to start over"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::Io {
            path,
            message: e.to_string(),
        }),
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_a_reopen_and_the_lock_excludes_a_second_runner() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = StateFile::open(dir.path(), "w").unwrap();
        s.step_mut("a", "shell").status = Status::Done;
        s.state.restore_points.insert("green".into(), 42);
        s.save().unwrap();
        assert!(matches!(
            StateFile::open(dir.path(), "w"),
            Err(StateError::Locked { .. })
        ));
        drop(s);
        let mut again = StateFile::open(dir.path(), "w").unwrap();
        assert_eq!(again.state.steps["a"].status, Status::Done);
        assert_eq!(again.state.restore_points["green"], 42);
        std::fs::write(dir.path().join("blue.sqlite"), "x").unwrap();
        again.clear().unwrap();
        assert!(again.state.steps.is_empty());
        assert!(!dir.path().join("blue.sqlite").exists());
        assert!(dir.path().join("lock").exists());
    }

    #[test]
    fn clearing_refuses_a_folder_that_is_not_a_state_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious.txt"), "keep").unwrap();
        let mut s = StateFile::open(dir.path(), "w").unwrap();
        assert!(
            s.clear()
                .unwrap_err()
                .to_string()
                .contains("refusing to clear")
        );
        assert!(dir.path().join("precious.txt").exists());
    }
}
