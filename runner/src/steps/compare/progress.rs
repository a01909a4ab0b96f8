//! Where a compare stands, saved as it goes (`compare-ID.progress.json` in
//! the state folder), so that a run killed midway goes on from the last
//! key it saved instead of starting over, and ends with the report an
//! uninterrupted run would have written: the compare point and where each
//! side stood at the first read are saved with it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::report::{Category, Report};

/// Saving progress: where, and how often.
#[derive(Debug, Clone)]
pub struct Saving {
    /// The progress file.
    pub path: PathBuf,
    /// At most this often (and at the end of each table).
    pub every: Duration,
    /// What is being compared, in words: progress saved for anything else
    /// (other tables, another compare point or check) is not used.
    pub asked: String,
}

/// A key to read again before it counts, as saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedSuspect {
    /// Its table.
    pub table: String,
    /// Its key, hex.
    pub key: String,
    /// How it differed at the first read.
    pub first: Category,
}

/// The progress itself.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    /// What was asked ([`Saving::asked`]).
    pub asked: String,
    /// Where blue and green stood at the first read.
    pub first: (Option<i64>, Option<i64>),
    /// The report so far.
    pub report: Report,
    /// Tables compared to their end.
    pub done: Vec<String>,
    /// In the table being compared, the last key compared (hex).
    pub after: Option<String>,
    /// Keys to read again.
    pub suspects: Vec<SavedSuspect>,
    /// Bytes of the list of differences written (`list_differences`).
    #[serde(default)]
    pub differences: u64,
}

impl Progress {
    /// The progress saved for `saving`, if there is one for the same
    /// question; anything unreadable or for another question is ignored
    /// (the compare starts over).
    pub fn load(saving: &Saving) -> Option<Progress> {
        let text = std::fs::read(&saving.path).ok()?;
        let saved: Progress = match serde_json::from_slice(&text) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(
                    file = %saving.path.display(),
                    "the saved progress of the compare cannot be read ({e}); starting over"
                );
                return None;
            }
        };
        if saved.asked != saving.asked {
            tracing::info!(
                "the compare's settings changed since its progress was saved; starting over"
            );
            return None;
        }
        let hex_ok = |h: &str| hex::decode(h).is_ok();
        if !saved.after.as_deref().is_none_or(hex_ok)
            || !saved.suspects.iter().all(|s| hex_ok(&s.key))
        {
            tracing::warn!(
                file = %saving.path.display(),
                "the saved progress of the compare holds keys that are not hex; starting over"
            );
            return None;
        }
        Some(saved)
    }

    /// Writes it (a new file renamed over the old one, so a kill leaves
    /// either the old progress or the new).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(self).unwrap_or_default())?;
        std::fs::rename(&tmp, path)
    }
}

/// Keeps the pace at most `rate` keys a second: the throttle that bounds
/// the load on a live blue.
pub struct Pace {
    rate: Option<u64>,
    started: Instant,
    keys: u64,
}

impl Pace {
    /// A pace of at most `rate` keys a second (none: as fast as it goes).
    pub fn new(rate: Option<u64>) -> Self {
        Pace {
            rate,
            started: Instant::now(),
            keys: 0,
        }
    }

    /// How long to wait after `keys` more keys.
    pub fn after(&mut self, keys: u64) -> Duration {
        self.keys += keys;
        match self.rate {
            Some(rate) if rate > 0 => {
                let due = Duration::from_secs_f64(self.keys as f64 / rate as f64);
                due.saturating_sub(self.started.elapsed())
            }
            _ => Duration::ZERO,
        }
    }
}
