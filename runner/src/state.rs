//! The state folder of a workflow: which steps are done, what each kind
//! keeps of its own (a replay's position), the restore point. Written atomically (temporary file, fsync,
//! rename) after every step and at replay checkpoints, so a runner killed
//! at any moment finds a consistent file on restart. A lock file keeps two
//! runners off the same state.
//!
//! The folder is the runner's own: it is new or empty when a workflow
//! first uses it, and it records which workflow it belongs to (the name,
//! and each step's id and kind) and every file the runner made in it:
//! stores, dead letters and reports are listed before they are created,
//! and what a `shell` step (or a restore command) left there is listed
//! when it ends. `--fresh` removes those files only, and refuses a folder
//! that holds anything else.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
    /// Stopped by Ctrl-C or SIGTERM with its progress saved; `exec` resumes it.
    Interrupted,
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
    /// Counters (events, rows, keys …), kept across resumes.
    #[serde(default)]
    pub metrics: BTreeMap<String, u64>,
    /// The step left a task running in the background (a replay syncing
    /// until cutover) that a resumed run starts again; `live` in the file.
    #[serde(default, rename = "live", skip_serializing_if = "std::ops::Not::not")]
    pub background: bool,
    /// What the step's kind keeps of its own (a replay's checkpoint and
    /// partitions, a copy's last keys), read and written by that kind
    /// alone (see [`StepState::own`]). Kept flat beside the fields above,
    /// as earlier runners wrote it.
    #[serde(flatten)]
    pub own: serde_json::Map<String, serde_json::Value>,
}

impl StepState {
    /// A step done that left a task running in the background (not
    /// stopped on purpose): every run starts it again.
    pub fn syncing(&self) -> bool {
        self.status == Status::Done && self.background
    }

    /// The kind's own part, as its type `T`.
    pub fn own<T: DeserializeOwned>(&self) -> Result<T, StateError> {
        serde_json::from_value(serde_json::Value::Object(self.own.clone())).map_err(|e| {
            StateError::Unreadable {
                kind: self.kind.clone(),
                message: e.to_string(),
            }
        })
    }

    /// Sets one field of the kind's own part (`None` removes it), leaving
    /// the rest as it is. A value that cannot be written (it cannot happen
    /// for the types kinds keep) leaves the field as it was.
    pub fn set_own_field<T: Serialize>(&mut self, key: &str, value: Option<T>) {
        match value.map(serde_json::to_value) {
            Some(Ok(v)) => {
                self.own.insert(key.to_string(), v);
            }
            Some(Err(_)) => {}
            None => {
                self.own.remove(key);
            }
        }
    }

    /// Replaces the kind's own part with `value`.
    pub fn set_own<T: Serialize>(&mut self, value: &T) {
        if let Ok(serde_json::Value::Object(own)) = serde_json::to_value(value) {
            self.own = own;
        }
    }
}

impl State {
    /// Whether step `id` is a replay syncing in the background.
    pub fn syncing(&self, id: &str) -> bool {
        self.steps.get(id).is_some_and(StepState::syncing)
    }
}

/// Which workflow a state folder belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// The workflow's name.
    pub workflow: String,
    /// Its steps: id and kind.
    pub steps: BTreeMap<String, String>,
}

/// The version of the state format this runner writes: 1 lists the files
/// the runner made (a folder of an older runner has everything it holds
/// taken as made by it).
const FORMAT: u32 = 1;

/// The whole state of a workflow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The workflow's name.
    pub workflow: String,
    /// The state format (1 since the runner lists the files it made).
    #[serde(default)]
    pub format: u32,
    /// Fingerprint of the workflow file when the run started.
    pub fingerprint: String,
    /// Entries of the folder the runner made (stores, dead letters,
    /// reports, what its commands wrote there); `--fresh` removes these
    /// and nothing else.
    #[serde(default)]
    pub made: BTreeSet<String>,
    /// What the folder held when a command step started, until it ends: a
    /// runner killed during the step takes what is new as the command's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_command: Option<BTreeSet<String>>,
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
    /// When a running runner last reported (ms since the epoch): it
    /// writes this every few seconds while it works on the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_ms: Option<u64>,
    /// The process id of the runner that last worked on the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_pid: Option<u32>,
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
    #[error("another runner{} is working on this workflow (lock `{}` is held); wait for it or stop it", .pid.map_or(String::new(), |p| format!(" (pid {p})")), .path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The process id the state names, if it names one.
        pid: Option<u32>,
    },
    /// A step's own part of the state cannot be read.
    #[error(
        "the saved state of a `{kind}` step cannot be read ({message}); run with `--fresh` to start over"
    )]
    Unreadable {
        /// The step's kind.
        kind: String,
        /// What serde said.
        message: String,
    },
    /// The folder is not this workflow's state folder.
    #[error("`{}` {why}", .path.display())]
    NotOurs {
        /// The folder.
        path: PathBuf,
        /// Whose it is, and what to do.
        why: String,
    },
}

/// Attempts, 100 ms apart, to take a lock held for an instant.
const LOCK_TRIES: u32 = 20;

/// Files of the runner's own in every state folder.
const OWN: &[&str] = &[
    "lock",
    "state.json",
    "state.json.tmp",
    ROUTING_FILE,
    "routing.json.tmp",
    "routing.lock",
    MIRROR_SAMPLES_FILE,
];

/// Where the router keeps samples of mirrored answers that differ.
pub const MIRROR_SAMPLES_FILE: &str = "mirror-samples.ndjson";

/// Where the router's routing state is kept in the state folder (see
/// `router::routing`), beside its temporary file and its lock.
pub const ROUTING_FILE: &str = "routing.json";

/// The open, locked state folder.
pub struct StateFile {
    dir: PathBuf,
    /// The state as last saved or changed.
    pub data: State,
    /// Entries that were in the folder, not made by the runner, when it
    /// was opened; never adopted.
    foreign: BTreeSet<String>,
    /// The last run was killed during a command step.
    interrupted_command: bool,
    _lock: File,
}

/// The names in `dir`.
fn entries(dir: &Path) -> Result<BTreeSet<String>, StateError> {
    let list = std::fs::read_dir(dir).map_err(|e| StateError::Io {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(list
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// Whether `name` is one entry of a folder (no separator, not `.`/`..`).
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// `a`, `b` and 3 more.
fn listed(names: &BTreeSet<String>) -> String {
    let shown: Vec<String> = names.iter().take(5).map(|n| format!("`{n}`")).collect();
    match names.len().saturating_sub(5) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

impl StateFile {
    /// Opens (creating) the folder, takes the lock, reads the state. A
    /// folder that holds files but no state, or the state of another
    /// workflow, is refused.
    pub fn open(dir: &Path, owner: &Owner) -> Result<Self, StateError> {
        let io = |path: &Path, e: std::io::Error| StateError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if dir.exists() && !dir.is_dir() {
            return Err(StateError::NotOurs {
                path: dir.to_path_buf(),
                why: "is not a folder; give `--state` a new or empty folder".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let before = entries(dir)?;
        let stray: BTreeSet<String> = before
            .iter()
            .filter(|n| !OWN.contains(&n.as_str()))
            .cloned()
            .collect();
        if !before.contains("state.json") && !stray.is_empty() {
            return Err(StateError::NotOurs {
                path: dir.to_path_buf(),
                why: format!(
                    "holds files but no Switchyard state ({}); give `--state` a new or empty folder",
                    listed(&stray)
                ),
            });
        }
        // The runner writes its own files in place: never through a link
        // somebody left there under their names.
        for own in OWN {
            let path = dir.join(own);
            if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
                return Err(StateError::NotOurs {
                    path: dir.to_path_buf(),
                    why: format!(
                        "holds `{own}`, which is not a plain file (a link or a folder); the runner writes only its own files: remove it"
                    ),
                });
            }
        }
        let lock_path = dir.join("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io(&lock_path, e))?;
        // `runner status` holds the lock for an instant to see whether a
        // runner is alive; a short retry keeps that from refusing a start.
        let mut tries = 0;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if tries < LOCK_TRIES => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let pid = read(dir).ok().flatten().and_then(|s| s.runner_pid);
                    return Err(StateError::Locked {
                        path: lock_path,
                        pid,
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path, e)),
            }
        }
        let mut state = read(dir)?.unwrap_or_else(|| State {
            workflow: owner.workflow.clone(),
            format: FORMAT,
            started_at_ms: now_ms(),
            ..State::default()
        });
        if state.workflow != owner.workflow {
            return Err(StateError::NotOurs {
                path: dir.to_path_buf(),
                why: format!(
                    "holds the state of workflow `{}`, not of `{}`; give this workflow its own `--state` folder",
                    state.workflow, owner.workflow
                ),
            });
        }
        if let Some(odd) = state.made.iter().find(|n| !plain_name(n)) {
            return Err(StateError::NotOurs {
                path: dir.to_path_buf(),
                why: format!(
                    "has a state.json that lists `{}` as the runner's, which is not a name in the folder; the runner did not write it: move the folder away",
                    crate::text::foreign(odd)
                ),
            });
        }
        // What a command step killed halfway left is not taken as the
        // runner's (nor is what an older runner, which listed nothing, made):
        // `--fresh` names it, and a person decides.
        let interrupted_command = state.before_command.take().is_some();
        state.format = FORMAT;
        let foreign = stray
            .into_iter()
            .filter(|n| !state.made.contains(n))
            .collect();
        Ok(StateFile {
            dir: dir.to_path_buf(),
            data: state,
            foreign,
            interrupted_command,
            _lock: lock,
        })
    }

    /// Why the saved state is not this workflow's, if it is not: a step it
    /// recorded that the workflow no longer has, or has as another kind.
    /// (New steps may be added.)
    pub fn other_steps(&self, owner: &Owner) -> Option<String> {
        self.data
            .steps
            .iter()
            .find_map(|(id, st)| match owner.steps.get(id) {
                Some(kind) if *kind == st.kind => None,
                Some(kind) => Some(format!("its step `{id}` was a {}, now a {kind}", st.kind)),
                None => Some(format!(
                    "it ran a step `{id}` ({}) that the workflow no longer has",
                    st.kind
                )),
            })
    }

    /// Removes what the runner made in the folder (all but the lock, which
    /// stays held) and starts a new state. Refuses a folder that holds
    /// anything the runner did not make.
    pub fn clear(&mut self, owner: &Owner) -> Result<(), StateError> {
        let io = |path: &Path, e: std::io::Error| StateError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if !self.foreign.is_empty() {
            return Err(StateError::NotOurs {
                path: self.dir.clone(),
                why: format!(
                    "holds files the runner did not make ({}){}; refusing to clear it for `--fresh`: move them away first",
                    listed(&self.foreign),
                    if self.interrupted_command {
                        " (a command step stopped by a kill may have left some of them)"
                    } else {
                        ""
                    }
                ),
            });
        }
        let made = std::mem::take(&mut self.data.made);
        for name in made
            .iter()
            .map(String::as_str)
            .chain(["state.json", "state.json.tmp"])
        {
            let path = self.dir.join(name);
            let removed = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
                Ok(_) => std::fs::remove_file(&path),
                Err(_) => continue,
            };
            removed.map_err(|e| io(&path, e))?;
        }
        self.data = State {
            workflow: owner.workflow.clone(),
            format: FORMAT,
            started_at_ms: now_ms(),
            ..State::default()
        };
        Ok(())
    }

    /// Lists `paths` as the runner's, before it creates them, and saves:
    /// those inside the folder are removed by `--fresh`.
    pub fn own(&mut self, paths: &[PathBuf]) -> Result<(), StateError> {
        let mut new = false;
        for path in paths {
            let Ok(inside) = path.strip_prefix(&self.dir) else {
                continue;
            };
            if let Some(std::path::Component::Normal(first)) = inside.components().next() {
                new |= self.data.made.insert(first.to_string_lossy().into_owned());
            }
        }
        if new { self.save() } else { Ok(()) }
    }

    /// A command step starts: what the folder holds now is remembered.
    pub fn command_starts(&mut self) -> Result<(), StateError> {
        self.data.before_command = Some(entries(&self.dir)?);
        self.save()
    }

    /// A command step ended: what it left in the folder is the runner's.
    pub fn command_ended(&mut self) -> Result<(), StateError> {
        if let Some(before) = self.data.before_command.take() {
            for name in entries(&self.dir)? {
                if !before.contains(&name) && !OWN.contains(&name.as_str()) {
                    self.data.made.insert(name);
                }
            }
        }
        self.save()
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
        let text = serde_json::to_vec_pretty(&self.data).map_err(|e| StateError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // A fresh file every time, never one found there (a link would be
        // followed).
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io)?;
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
        self.data
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
                metrics: BTreeMap::new(),
                background: false,
                own: serde_json::Map::new(),
            })
    }
}

/// Whether workflow `workflow` may keep files in `dir` without opening
/// its state (the routing state, written by `runner rollback` or a router
/// running alone): a folder that does not exist yet, or one that holds
/// only the runner's files and, if any state, this workflow's.
pub fn check_folder(dir: &Path, workflow: &str) -> Result<(), StateError> {
    let not_ours = |why: String| StateError::NotOurs {
        path: dir.to_path_buf(),
        why,
    };
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(not_ours("is not a folder".into()));
    }
    if let Some(state) = read(dir)? {
        if state.workflow != workflow {
            return Err(not_ours(format!(
                "holds the state of workflow `{}`, not of `{workflow}`",
                state.workflow
            )));
        }
        return Ok(());
    }
    let stray: BTreeSet<String> = entries(dir)?
        .into_iter()
        .filter(|n| !OWN.contains(&n.as_str()))
        .collect();
    if !stray.is_empty() {
        return Err(not_ours(format!(
            "holds files but no Switchyard state ({}); give `--state` a new or empty folder",
            listed(&stray)
        )));
    }
    Ok(())
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

/// Whether a runner holds the lock of the state folder `dir` now (for
/// `status`): the lock is an advisory file lock, released by the kernel
/// when its process ends however it ends, kill -9 included.
pub fn runner_alive(dir: &Path) -> bool {
    let Ok(lock) = File::open(dir.join("lock")) else {
        return false;
    };
    matches!(
        lock.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    )
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

    fn owner(name: &str) -> Owner {
        Owner {
            workflow: name.into(),
            steps: [("a".to_string(), "shell".to_string())].into(),
        }
    }

    #[test]
    fn state_survives_a_reopen_and_the_lock_excludes_a_second_runner() {
        let dir = tempfile::tempdir().unwrap();
        let w = owner("w");
        let mut s = StateFile::open(dir.path(), &w).unwrap();
        s.step_mut("a", "shell").status = Status::Done;
        s.data.restore_points.insert("green".into(), 42);
        s.own(&[dir.path().join("blue.sqlite")]).unwrap();
        std::fs::write(dir.path().join("blue.sqlite"), "x").unwrap();
        s.save().unwrap();
        assert!(matches!(
            StateFile::open(dir.path(), &w),
            Err(StateError::Locked { .. })
        ));
        drop(s);
        let mut again = StateFile::open(dir.path(), &w).unwrap();
        assert_eq!(again.data.steps["a"].status, Status::Done);
        assert_eq!(again.data.restore_points["green"], 42);
        again.clear(&w).unwrap();
        assert!(again.data.steps.is_empty());
        assert!(!dir.path().join("blue.sqlite").exists());
        assert!(dir.path().join("lock").exists());
    }

    #[test]
    fn a_folder_that_is_not_a_state_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious.txt"), "keep").unwrap();
        let err = StateFile::open(dir.path(), &owner("w")).err().unwrap();
        assert!(
            err.to_string()
                .contains("holds files but no Switchyard state (`precious.txt`)"),
            "{err}"
        );
        assert!(dir.path().join("precious.txt").exists());
    }

    #[test]
    fn fresh_removes_only_what_the_runner_made() {
        let dir = tempfile::tempdir().unwrap();
        let w = owner("w");
        let mut s = StateFile::open(dir.path(), &w).unwrap();
        s.own(&[dir.path().join("green.sqlite")]).unwrap();
        std::fs::write(dir.path().join("green.sqlite"), "x").unwrap();
        // Dropped in while the runner works: still not the runner's.
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        s.command_starts().unwrap();
        std::fs::write(dir.path().join("events.ndjson"), "made by a command").unwrap();
        s.command_ended().unwrap();
        drop(s);
        let mut s = StateFile::open(dir.path(), &w).unwrap();
        let err = s.clear(&w).unwrap_err().to_string();
        assert!(err.contains("did not make (`notes.txt`)"), "{err}");
        assert!(dir.path().join("green.sqlite").exists());
        std::fs::remove_file(dir.path().join("notes.txt")).unwrap();
        drop(s);
        let mut s = StateFile::open(dir.path(), &w).unwrap();
        s.clear(&w).unwrap();
        assert!(!dir.path().join("green.sqlite").exists());
        assert!(!dir.path().join("events.ndjson").exists());
    }

    #[test]
    fn what_a_command_killed_halfway_left_is_named_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let w = owner("w");
        let mut s = StateFile::open(dir.path(), &w).unwrap();
        s.command_starts().unwrap();
        std::fs::write(dir.path().join("half.ndjson"), "x").unwrap();
        drop(s); // killed: `command_ended` never ran
        let mut s = StateFile::open(dir.path(), &w).unwrap();
        let err = s.clear(&w).unwrap_err().to_string();
        assert!(
            err.contains(
                "(`half.ndjson`) (a command step stopped by a kill may have left some of them)"
            ),
            "{err}"
        );
        assert!(dir.path().join("half.ndjson").exists());
    }

    #[test]
    fn a_forged_list_or_a_link_in_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = tempfile::tempdir().unwrap();
        std::fs::write(victim.path().join("keep.txt"), "keep").unwrap();
        std::fs::write(
            dir.path().join("state.json"),
            format!(
                r#"{{"workflow":"w","fingerprint":"","started_at_ms":0,"steps":{{}},"made":["../{}"]}}"#,
                victim.path().file_name().unwrap().to_string_lossy()
            ),
        )
        .unwrap();
        let err = StateFile::open(dir.path(), &owner("w"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("which is not a name in the folder"), "{err}");
        std::fs::remove_file(dir.path().join("state.json")).unwrap();
        std::fs::remove_file(dir.path().join("lock")).unwrap();
        std::os::unix::fs::symlink(victim.path().join("keep.txt"), dir.path().join("lock"))
            .unwrap();
        let err = StateFile::open(dir.path(), &owner("w"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("holds `lock`, which is not a plain file"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(victim.path().join("keep.txt")).unwrap(),
            "keep"
        );
    }

    #[test]
    fn another_workflows_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateFile::open(dir.path(), &owner("a")).unwrap();
        s.save().unwrap();
        drop(s);
        let err = StateFile::open(dir.path(), &owner("b")).err().unwrap();
        assert!(
            err.to_string()
                .contains("holds the state of workflow `a`, not of `b`"),
            "{err}"
        );
        let mut s = StateFile::open(dir.path(), &owner("a")).unwrap();
        s.step_mut("a", "shell");
        s.save().unwrap();
        drop(s);
        let grown = Owner {
            workflow: "a".into(),
            steps: [("a", "shell"), ("b", "compare")]
                .map(|(i, k)| (i.to_string(), k.to_string()))
                .into(),
        };
        let s = StateFile::open(dir.path(), &grown).unwrap();
        assert_eq!(s.other_steps(&grown), None, "a step may be added");
        drop(s);
        let changed = Owner {
            workflow: "a".into(),
            steps: [("a".to_string(), "replay".to_string())].into(),
        };
        let s = StateFile::open(dir.path(), &changed).unwrap();
        assert_eq!(
            s.other_steps(&changed).as_deref(),
            Some("its step `a` was a shell, now a replay")
        );
    }
}
