//! Deterministic sample event logs, for the quickstart, tests and
//! benchmarks: the same seed always writes the same file.

use std::io::{BufWriter, Write};
use std::path::Path;

/// A small, fast, deterministic random number generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Settings of the chat sample.
#[derive(Debug, Clone)]
pub struct ChatSample {
    /// How many events.
    pub events: u64,
    /// Chat rooms (one room's events stay in one partition).
    pub rooms: u64,
    /// Users.
    pub users: u64,
    /// Partitions.
    pub partitions: u64,
    /// Time of the first event (ms since the epoch).
    pub start_ms: i64,
    /// About how long the log spans (ms), whatever the number of events.
    pub span_ms: i64,
    /// The seed.
    pub seed: u64,
}

impl Default for ChatSample {
    fn default() -> Self {
        ChatSample {
            events: 100_000,
            rooms: 200,
            users: 1_000,
            partitions: 4,
            start_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            span_ms: 17 * 3_600_000,
            seed: 7,
        }
    }
}

const WORDS: &[&str] = &[
    "deploy", "green", "blue", "rollback", "shipped", "lunch", "review", "merge", "coffee", "done",
    "latency", "pager", "quiet", "canary", "replay", "cutover", "thanks", "ok", "hbase", "kafka",
];

/// One generated chat event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatEvent {
    /// Partition (by room).
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Event time (ms).
    pub timestamp_ms: i64,
    /// The room: the event's key.
    pub key: String,
    /// The event as JSON.
    pub value: serde_json::Value,
}

/// How many events of each type were generated (posted, edited, deleted).
pub type Counts = (u64, u64, u64);

/// Generates `sample.events` chat events in log order, handing each to
/// `each`; the same settings always give the same events.
pub fn generate<E>(
    sample: &ChatSample,
    mut each: impl FnMut(ChatEvent) -> Result<(), E>,
) -> Result<Counts, E> {
    let mut rng = Rng::new(sample.seed);
    let mut live: Vec<Vec<(String, i64)>> = vec![Vec::new(); sample.rooms as usize];
    let mut offsets = vec![0i64; sample.partitions as usize];
    let mut time = sample.start_ms;
    let (mut posted, mut edited, mut deleted) = (0, 0, 0);
    let max_step = (2 * sample.span_ms as u64 / sample.events.max(1)).max(1);
    for n in 0..sample.events {
        // Steps average span / events, so any size of log spans the same time.
        time += 1 + rng.below(max_step) as i64;
        let room_ix = rng.below(sample.rooms) as usize;
        let room = format!("room-{room_ix:04}");
        let partition = room_ix as u64 % sample.partitions;
        let user = format!("user-{:05}", rng.below(sample.users));
        let text: Vec<&str> = (0..1 + rng.below(8))
            .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
            .collect();
        let text = text.join(" ");
        let roll = rng.below(100);
        let messages = &mut live[room_ix];
        let value = if roll < 80 || messages.is_empty() {
            let id = format!("m-{n:09}");
            messages.push((id.clone(), time));
            posted += 1;
            serde_json::json!({"type": "message_posted", "room": room, "message_id": id, "user": user, "text": text, "posted_at": time})
        } else if roll < 95 {
            let (id, posted_at) = messages[rng.below(messages.len() as u64) as usize].clone();
            edited += 1;
            serde_json::json!({"type": "message_edited", "room": room, "message_id": id, "user": user, "text": format!("{text} (edited)"), "posted_at": posted_at})
        } else {
            let (id, posted_at) = messages.swap_remove(rng.below(messages.len() as u64) as usize);
            deleted += 1;
            serde_json::json!({"type": "message_deleted", "room": room, "message_id": id, "user": user, "posted_at": posted_at})
        };
        let offset = &mut offsets[partition as usize];
        each(ChatEvent {
            partition: partition as i32,
            offset: *offset,
            timestamp_ms: time,
            key: room,
            value,
        })?;
        *offset += 1;
    }
    Ok((posted, edited, deleted))
}

/// Writes `sample.events` chat events as NDJSON to `out`; returns how many
/// events of each type were written (posted, edited, deleted).
pub fn write_chat(sample: &ChatSample, out: &Path) -> std::io::Result<Counts> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = out.with_extension("tmp");
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    let counts = generate(sample, |e| {
        let line = serde_json::json!({
            "partition": e.partition,
            "offset": e.offset,
            "timestamp": e.timestamp_ms,
            "key": e.key,
            "value": e.value,
        });
        serde_json::to_writer(&mut w, &line)?;
        w.write_all(b"\n")
    })?;
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, out)?;
    Ok(counts)
}

/// Writes `requests` reads of the chat read model as a request log (one
/// JSON request per line: `method`, `path`, `headers`) to `out`, for the
/// `traffic` step: a user reading the latest messages of a room, through
/// the example read-api's paths. Same settings, same log.
pub fn write_chat_reads(sample: &ChatSample, requests: u64, out: &Path) -> std::io::Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = out.with_extension("tmp");
    let mut w = BufWriter::new(std::fs::File::create(&tmp)?);
    let mut rng = Rng::new(sample.seed ^ 0x7265_6164);
    for _ in 0..requests {
        let room = format!("room-{:04}", rng.below(sample.rooms.max(1)));
        let user = format!("user-{:05}", rng.below(sample.users.max(1)));
        let line = serde_json::json!({
            "method": "GET",
            "path": format!("/rows/messages?after={room}%23&before={room}%24&limit=20"),
            "headers": {"x-user-id": user},
        });
        serde_json::to_writer(&mut w, &line)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_writes_the_same_log() {
        let dir = tempfile::tempdir().unwrap();
        let sample = ChatSample {
            events: 500,
            ..ChatSample::default()
        };
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let counts = write_chat(&sample, &a).unwrap();
        write_chat(&sample, &b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(counts.0 + counts.1 + counts.2, 500);
        assert!(counts.1 > 0 && counts.2 > 0, "{counts:?}");
    }
}
