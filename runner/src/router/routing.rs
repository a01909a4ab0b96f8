//! The routing state — where reads go — and the file that holds it.
//!
//! The file (`routing.json` in the workflow's state folder) is the one
//! place the state lives: the router's admin endpoint, the steps of a
//! running workflow and `runner rollback` from any shell all change it
//! the same way (read, change, write a new file and rename it, under a
//! lock), and every router serving the workflow looks at it several times
//! a second. So a rollback reaches every router within a second, whether
//! it runs inside `runner exec` or alone under `runner route`, and a
//! router restarted mid-ramp serves the same share to the same users.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::bucket::BUCKETS;

use crate::state::ROUTING_FILE as FILE;

/// Sticky keys an operator may pin to one side.
pub const MAX_PINS: usize = 10_000;
/// The longest sticky key that can be pinned, and the longest stage name
/// or reason kept.
pub const MAX_TEXT: usize = 256;
/// The longest question a paused step asks.
pub const MAX_QUESTION: usize = 1024;

/// Which side serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The store in use.
    Blue,
    /// The new store.
    Green,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Blue => Side::Green,
            Side::Green => Side::Blue,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Side::Blue => "blue",
            Side::Green => "green",
        }
    }
}

/// What overrides the share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Requests follow the rules, the pins and the share.
    #[default]
    Shift,
    /// Everything goes to blue, whatever the rules say: rolled back.
    AllBlue,
    /// Everything goes to green: cut over.
    AllGreen,
}

/// Where reads go. Fields a later runner adds are ignored (not refused),
/// so a router of this version keeps following a file one of a later
/// version wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    /// Rises with every change (to at least the time of the change in
    /// µs, so a file written afresh after a damaged one still rises);
    /// routers never go back to a lower one.
    pub generation: u64,
    /// What overrides the share.
    pub mode: Mode,
    /// The share of shifted requests that green serves, in hundredths of
    /// a percent (`0..=10000`).
    pub green_share: u32,
    /// Whether requests the rules mark for mirroring are mirrored.
    pub mirror: bool,
    /// What the stage is called (`blue`, `mirror`, `5%`, `rolled back`).
    pub stage: String,
    /// Why it last changed, and who changed it.
    pub reason: String,
    /// When it last changed (ms since the epoch).
    pub changed_at_ms: u64,
    /// Sticky keys pinned to one side, ahead of the share.
    pub pins: BTreeMap<String, Side>,
    /// A step waiting for an operator's answer, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Paused>,
}

/// A step of a running workflow that waits for an operator: a ramp stage
/// or a mirror stage that ended inconclusive, with `on_inconclusive =
/// "pause"`. Reads stay as they are meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paused {
    /// The step that waits.
    pub step: String,
    /// What it asks.
    pub question: String,
    /// The answer, once given; the step takes it and clears the pause.
    #[serde(default)]
    pub answer: Option<Answer>,
}

/// What an operator answers a paused step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// Count the stage as passed and go on.
    Pass,
    /// Hold the stage again.
    Again,
}

impl Answer {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Answer::Pass => "pass",
            Answer::Again => "again",
        }
    }
}

impl std::str::FromStr for Answer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pass" => Ok(Answer::Pass),
            "again" => Ok(Answer::Again),
            other => Err(format!("`{other}`: the answer is `pass` or `again`")),
        }
    }
}

impl Default for Routing {
    fn default() -> Self {
        Routing {
            generation: 0,
            mode: Mode::Shift,
            green_share: 0,
            mirror: false,
            stage: "blue".into(),
            reason: "not changed yet".into(),
            changed_at_ms: 0,
            pins: BTreeMap::new(),
            paused: None,
        }
    }
}

impl Routing {
    /// The share of green as a percentage.
    pub fn green_percent(&self) -> f64 {
        f64::from(self.green_share) / 100.0
    }

    /// One line for `runner status` and logs.
    pub fn describe(&self) -> String {
        let share = match self.mode {
            Mode::Shift => format!("{}% of shifted reads to green", self.green_percent()),
            Mode::AllBlue => "every read to blue (rolled back)".into(),
            Mode::AllGreen => "every read to green (cut over)".into(),
        };
        // The file may have been written by anyone who can write the
        // state folder: its texts are shown on one line.
        let shown = crate::text::foreign;
        let mut line = format!("stage `{}`: {share}", shown(&self.stage));
        if self.mirror {
            line.push_str(", mirroring on");
        }
        if !self.pins.is_empty() {
            line.push_str(&format!(", {} pinned keys", self.pins.len()));
        }
        line.push_str(&format!("; {}", shown(&self.reason)));
        if let Some(p) = &self.paused {
            match p.answer {
                None => line.push_str(&format!(
                    "; step `{}` is paused and asks: {} (answer `pass` or `again` with `runner resume` or the admin endpoint's POST /resume)",
                    shown(&p.step),
                    shown(&p.question)
                )),
                Some(a) => line.push_str(&format!(
                    "; step `{}` was answered `{}` and goes on",
                    shown(&p.step),
                    a.name()
                )),
            }
        }
        line
    }

    /// Sets green's share by hand (in hundredths of a percent), ending a
    /// rollback or a cutover; the stage is named after the share.
    pub fn set_share(&mut self, share: u32) {
        self.mode = Mode::Shift;
        self.green_share = share;
        self.stage = format!("{}% (set by hand)", f64::from(share) / 100.0);
    }

    /// Sends every read to blue, ending any pause: what `runner rollback`
    /// and the admin endpoint's `POST /rollback` do.
    pub fn roll_back(&mut self) {
        self.mode = Mode::AllBlue;
        self.stage = "rolled back".into();
        self.paused = None;
    }

    /// Gives the paused step `answer`; refused when no step waits.
    pub fn answer(&mut self, answer: Answer) -> Result<(), String> {
        match &mut self.paused {
            Some(p) if p.answer.is_none() => {
                p.answer = Some(answer);
                Ok(())
            }
            Some(p) => Err(format!("step `{}` was answered already", p.step)),
            None => Err("no step is paused waiting for an answer".into()),
        }
    }

    /// Checks what a caller asks to set: a share within range, texts and
    /// pins within their bounds.
    pub fn check(&self) -> Result<(), String> {
        if self.green_share > BUCKETS {
            return Err(format!(
                "green share {}% is above 100%",
                self.green_percent()
            ));
        }
        if self.stage.len() > MAX_TEXT || self.reason.len() > MAX_TEXT {
            return Err(format!("a stage or reason of more than {MAX_TEXT} bytes"));
        }
        if self.pins.len() > MAX_PINS {
            return Err(format!(
                "{} pinned keys; at most {MAX_PINS} can be pinned",
                self.pins.len()
            ));
        }
        if let Some(p) = &self.paused
            && (p.step.len() > MAX_TEXT || p.question.len() > MAX_QUESTION)
        {
            return Err(format!(
                "a paused step's name of more than {MAX_TEXT} bytes or question of more than {MAX_QUESTION}"
            ));
        }
        if let Some(k) = self.pins.keys().find(|k| k.len() > MAX_TEXT) {
            return Err(format!(
                "a pinned key of {} bytes; keys are at most {MAX_TEXT} bytes",
                k.len()
            ));
        }
        Ok(())
    }
}

/// A percentage as hundredths of a percent: `5`, `0.5`, `"25%"`.
pub fn share_of(percent: f64) -> Result<u32, String> {
    if !(0.0..=100.0).contains(&percent) || percent.is_nan() {
        return Err(format!("{percent}% is not between 0% and 100%"));
    }
    let share = (percent * 100.0).round() as u32;
    if share == 0 && percent > 0.0 {
        return Err(format!(
            "{percent}% is below the smallest share, 0.01% (1 bucket of 10,000)"
        ));
    }
    Ok(share)
}

/// Why the routing could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// The file could not be used.
    #[error("routing state `{}`: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The change asked for was refused (a share above 100%, no step to
    /// answer).
    #[error("{0}")]
    Refused(String),
}

/// The routing file of one state folder.
#[derive(Debug, Clone)]
pub struct RoutingFile {
    dir: PathBuf,
}

impl RoutingFile {
    /// The routing file in state folder `dir`.
    pub fn new(dir: &Path) -> Self {
        RoutingFile {
            dir: dir.to_path_buf(),
        }
    }

    /// Its path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    fn error(&self, message: impl std::fmt::Display) -> RoutingError {
        RoutingError::File {
            path: self.path(),
            message: message.to_string(),
        }
    }

    /// The state as the file holds it; the default (all to blue) when
    /// there is no file yet.
    pub fn read(&self) -> Result<Routing, RoutingError> {
        let text = match std::fs::read(self.path()) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Routing::default()),
            Err(e) => return Err(self.error(e)),
        };
        if text.len() > 4 << 20 {
            return Err(self.error("larger than 4 MiB; it is not the runner's"));
        }
        let routing: Routing = serde_json::from_slice(&text).map_err(|e| {
            self.error(format!(
                "unreadable ({e}); `runner rollback` writes it afresh"
            ))
        })?;
        routing.check().map_err(|e| self.error(e))?;
        Ok(routing)
    }

    /// Changes the state with `change` (which may refuse), under the lock,
    /// and writes it; returns the state written.
    pub fn update(
        &self,
        reason: &str,
        change: impl FnOnce(&mut Routing) -> Result<(), String>,
    ) -> Result<Routing, RoutingError> {
        self.update_from(reason, change, false)
    }

    /// Like [`RoutingFile::update`]; with `afresh`, a file that cannot be
    /// read is replaced, starting from the default (every read to blue):
    /// a rollback must work even when the file is damaged.
    pub fn update_from(
        &self,
        reason: &str,
        change: impl FnOnce(&mut Routing) -> Result<(), String>,
        afresh: bool,
    ) -> Result<Routing, RoutingError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.error(e))?;
        let _lock = Lock::take(&self.dir.join("routing.lock")).map_err(|e| self.error(e))?;
        let mut routing = match self.read() {
            Ok(r) => r,
            Err(e) if afresh => {
                tracing::warn!("{e}; writing it afresh");
                Routing::default()
            }
            Err(e) => return Err(e),
        };
        change(&mut routing).map_err(RoutingError::Refused)?;
        self.commit(&mut routing, Some(reason))?;
        Ok(routing)
    }

    /// Like [`RoutingFile::update`], only if the file is still at
    /// generation `expected` (nobody changed it since the caller's own
    /// change): otherwise `Err` with the state as it is, nothing written.
    /// A step uses it so that it never undoes an operator's rollback.
    pub fn update_if(
        &self,
        reason: &str,
        expected: u64,
        change: impl FnOnce(&mut Routing) -> Result<(), String>,
    ) -> Result<Result<Routing, Routing>, RoutingError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.error(e))?;
        let _lock = Lock::take(&self.dir.join("routing.lock")).map_err(|e| self.error(e))?;
        let mut routing = self.read()?;
        if routing.generation != expected {
            return Ok(Err(routing));
        }
        change(&mut routing).map_err(RoutingError::Refused)?;
        self.commit(&mut routing, Some(reason))?;
        Ok(Ok(routing))
    }

    /// Takes the pause of step `step` out, if it is there, keeping the
    /// reason of the last change (a rollback's stays what `runner status`
    /// shows).
    pub fn clear_pause(&self, step: &str) -> Result<(), RoutingError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.error(e))?;
        let _lock = Lock::take(&self.dir.join("routing.lock")).map_err(|e| self.error(e))?;
        let mut routing = self.read()?;
        if routing.paused.as_ref().is_none_or(|p| p.step != step) {
            return Ok(());
        }
        routing.paused = None;
        self.commit(&mut routing, None)
    }

    /// Writes `routing` as the next generation, with `reason` when given.
    fn commit(&self, routing: &mut Routing, reason: Option<&str>) -> Result<(), RoutingError> {
        // In microseconds: a file written afresh (after a damaged one) is
        // later than any change before it, even one in the same ms.
        routing.generation = (routing.generation + 1).max(now_us());
        if let Some(reason) = reason {
            routing.reason = crate::text::cut(reason, MAX_TEXT);
        }
        routing.changed_at_ms = now_ms();
        routing.check().map_err(RoutingError::Refused)?;
        self.write(routing)
    }

    fn write(&self, routing: &Routing) -> Result<(), RoutingError> {
        let tmp = self.dir.join("routing.json.tmp");
        let text = serde_json::to_vec_pretty(routing).map_err(|e| self.error(e))?;
        // A fresh file every time, never one found there (a link would be
        // followed).
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(self.error(e)),
            _ => {}
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| self.error(e))?;
        f.write_all(&text).map_err(|e| self.error(e))?;
        f.sync_all().map_err(|e| self.error(e))?;
        std::fs::rename(&tmp, self.path()).map_err(|e| self.error(e))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// An exclusive lock on a file, held until dropped (flock: released by
/// the kernel if the process dies).
struct Lock {
    _file: File,
}

impl Lock {
    fn take(path: &Path) -> std::io::Result<Lock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        lock_exclusive(&file)?;
        Ok(Lock { _file: file })
    }
}

#[allow(unsafe_code)]
fn lock_exclusive(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function borrows; no memory is shared.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_kept_in_order_and_bad_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = RoutingFile::new(dir.path());
        assert_eq!(file.read().unwrap(), Routing::default());
        let r = file
            .update("ramp", |r| {
                r.green_share = share_of(5.0)?;
                r.stage = "5%".into();
                Ok(())
            })
            .unwrap();
        assert_eq!(r.green_share, 500);
        assert!(r.generation >= 1);
        assert_eq!(file.read().unwrap(), r);
        let refused = file.update("too far", |r| {
            r.green_share = 10_001;
            Ok(())
        });
        assert!(refused.unwrap_err().to_string().contains("above 100%"));
        assert_eq!(file.read().unwrap().generation, r.generation);
        let later = file.update("again", |_| Ok(())).unwrap();
        assert!(later.generation > r.generation);
        assert!(share_of(100.5).is_err() && share_of(f64::NAN).is_err());
        std::fs::write(file.path(), "{").unwrap();
        assert!(file.read().unwrap_err().to_string().contains("unreadable"));
        // A rollback writes a damaged file afresh, still later than before.
        assert!(file.update("x", |_| Ok(())).is_err());
        let fresh = file
            .update_from(
                "rollback",
                |r| {
                    r.mode = Mode::AllBlue;
                    Ok(())
                },
                true,
            )
            .unwrap();
        assert!(fresh.generation > later.generation);
    }

    #[test]
    fn only_a_paused_step_takes_an_answer_and_only_once() {
        let mut r = Routing::default();
        assert!(
            r.answer(Answer::Pass)
                .unwrap_err()
                .contains("no step is paused")
        );
        r.paused = Some(Paused {
            step: "ramp".into(),
            question: "stage 5% is inconclusive".into(),
            answer: None,
        });
        assert!(r.describe().contains("step `ramp` is paused and asks"));
        r.answer(Answer::Again).unwrap();
        assert!(
            r.answer(Answer::Pass)
                .unwrap_err()
                .contains("answered already")
        );
        assert_eq!(r.paused.unwrap().answer, Some(Answer::Again));
        assert_eq!("pass".parse::<Answer>(), Ok(Answer::Pass));
        assert!("yes".parse::<Answer>().is_err());
    }
}
