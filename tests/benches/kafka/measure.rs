//! Measuring `runner exec` as a child process — wall time start to finish,
//! peak memory (VmHWM, polled from /proc while it runs: the kernel's
//! high-water mark, so a late sample still sees an early peak), CPU time
//! (what waiting for it adds to this process's children's times), the
//! events it reports — and the table the figures are printed in.

use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One finished `runner exec`.
pub struct Exec {
    /// Start to finish.
    pub took: Duration,
    /// The child's peak resident memory, KiB.
    pub peak_rss: Option<u64>,
    /// Its peak so far at a quarter, half and three quarters of the run,
    /// KiB: whether memory grows with the backlog or only at the start.
    pub peak_by_quarter: Vec<u64>,
    /// The child's CPU time, user and system, all threads.
    pub cpu: Duration,
    /// The broker's CPU time meanwhile, when known (set by the caller).
    pub broker_cpu: Option<Duration>,
    /// Events the replay step says it read.
    pub events: u64,
    /// The step's own rate, as it reports it (the pipeline alone).
    pub step_rate: String,
}

/// Runs `runner exec` of `workflow` with its state in `state`; panics with
/// its output unless it completes.
pub fn exec(runner: &Path, workflow: &Path, state: &Path) -> Exec {
    let dir = workflow.parent().expect("workflow in a folder");
    let (out_path, err_path) = (dir.join("stdout.txt"), dir.join("stderr.txt"));
    let file = |p: &Path| std::fs::File::create(p).expect("log file");
    let cpu_before = cpu_times().1;
    let started = Instant::now();
    let mut child = Command::new(runner)
        .arg("exec")
        .arg("--no-progress")
        .arg("--state")
        .arg(state)
        .arg(workflow)
        .stdin(Stdio::null())
        .stdout(file(&out_path))
        .stderr(file(&err_path))
        .spawn()
        .expect("runner starts");
    let mut peak = None;
    let mut samples = Vec::new();
    let status = loop {
        if let Some(kib) = memory_kib(child.id(), "VmHWM:") {
            peak = Some(peak.unwrap_or(0).max(kib));
            samples.push((started.elapsed(), kib));
        }
        if let Some(status) = child.try_wait().expect("wait for runner") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = started.elapsed();
    let peak_by_quarter = [1, 2, 3]
        .into_iter()
        .filter_map(|q| {
            let at = took * q / 4;
            samples
                .iter()
                .rev()
                .find(|(t, _)| *t <= at)
                .map(|(_, k)| *k)
        })
        .collect();
    let cpu = cpu_times().1.saturating_sub(cpu_before);
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        status.success(),
        "runner exec {} failed ({status}):\n{stdout}\n{stderr}",
        workflow.display()
    );
    let (events, step_rate) = step_summary(&stdout)
        .unwrap_or_else(|| panic!("no replay summary in the runner's output:\n{stdout}"));
    Exec {
        took,
        peak_rss: peak,
        peak_by_quarter,
        cpu,
        broker_cpu: None,
        events,
        step_rate,
    }
}

/// A memory figure (`VmHWM:`, `VmRSS:`) of a live process, KiB (none
/// once it has exited).
fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// CPU time (user + system) of this process, and of its children that
/// have been waited for, from `/proc/self/stat` (in USER_HZ ticks, 100 a
/// second on Linux).
pub fn cpu_times() -> (Duration, Duration) {
    stat_times("self")
}

/// CPU time (user + system) of another process, while it runs.
pub fn process_cpu(pid: u32) -> Duration {
    stat_times(&pid.to_string()).0
}

fn stat_times(pid: &str) -> (Duration, Duration) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses: field 3 first.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = |i: usize, j: usize| {
        let t = fields.get(i).unwrap_or(&0) + fields.get(j).unwrap_or(&0);
        Duration::from_millis(t * 10)
    };
    // utime stime cutime cstime are fields 14 to 17.
    (ticks(11, 12), ticks(13, 14))
}

/// From the summary line `replay  replay  1.2s  N events → …; R events/s`:
/// N and R.
fn step_summary(stdout: &str) -> Option<(u64, String)> {
    let line = stdout.lines().find(|l| l.contains(" events → "))?;
    let before = &line[..line.find(" events → ")?];
    let events = before.rsplit(' ').next()?.parse().ok()?;
    let rate = line.rsplit("; ").next()?.trim().to_string();
    Some((events, rate))
}

/// One line of the table.
pub struct Row {
    what: String,
    events: u64,
    took: Duration,
    ratio: String,
    rss: Option<u64>,
    cpu: Option<Duration>,
    broker_cpu: Option<Duration>,
    note: String,
}

impl Row {
    /// A measured figure.
    pub fn new(what: &str, events: u64, took: Duration) -> Row {
        Row {
            what: what.into(),
            events,
            took,
            ratio: String::new(),
            rss: None,
            cpu: None,
            broker_cpu: None,
            note: String::new(),
        }
    }

    /// With the CPU time the broker spent meanwhile.
    pub fn broker_cpu(mut self, cpu: Duration) -> Row {
        self.broker_cpu = Some(cpu);
        self
    }

    /// With the CPU time it took.
    pub fn cpu(mut self, cpu: Duration) -> Row {
        self.cpu = Some(cpu);
        self
    }

    /// A `runner exec`, with its peak memory and its own step rate.
    pub fn exec(what: &str, e: &Exec) -> Row {
        let quarters: Vec<String> = e
            .peak_by_quarter
            .iter()
            .map(|k| format!("{:.0}", *k as f64 / 1024.0))
            .collect();
        Row {
            rss: e.peak_rss,
            cpu: Some(e.cpu),
            broker_cpu: e.broker_cpu,
            note: format!(
                "step alone {}; peak RSS at ¼ ½ ¾ of the run: {} MiB",
                e.step_rate,
                quarters.join(" ")
            ),
            ..Row::new(what, e.events, e.took)
        }
    }

    /// Events per second.
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.took.as_secs_f64()
    }

    /// Compared with `base`'s rate.
    pub fn ratio(mut self, base: &Row, name: &str) -> Row {
        self.ratio = format!("{:.2} × {name}", self.rate() / base.rate());
        self
    }

    /// Peak memory compared with `base`'s.
    pub fn rss_ratio(mut self, base: &Row) -> Row {
        if let (Some(a), Some(b)) = (self.rss, base.rss) {
            self.ratio = format!("RSS {:.2} × {}", a as f64 / b as f64, base.events);
        }
        self
    }
}

/// Figures, printed as a table.
#[derive(Default)]
pub struct Table(Vec<Row>);

impl Table {
    /// Adds lines.
    pub fn extend(&mut self, rows: impl IntoIterator<Item = Row>) {
        self.0.extend(rows);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self
            .0
            .iter()
            .map(|r| r.what.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "{:<w$}  {:>9}  {:>8}  {:>10}  {:<16}  {:>9}  {:>6}  {:>9}  {:>9}",
            "what",
            "events",
            "seconds",
            "events/s",
            "ratio",
            "peak RSS",
            "CPU s",
            "µs/event",
            "broker µs"
        )?;
        for r in &self.0 {
            let rss = r.rss.map_or("—".to_string(), |k| {
                format!("{:.0} MiB", k as f64 / 1024.0)
            });
            let cpu = r
                .cpu
                .map_or("—".to_string(), |c| format!("{:.1}", c.as_secs_f64()));
            let per_event = |cpu: Option<Duration>| match cpu {
                Some(c) if r.events > 0 => {
                    format!("{:.1}", c.as_secs_f64() * 1e6 / r.events as f64)
                }
                _ => "—".to_string(),
            };
            writeln!(
                f,
                "{:<w$}  {:>9}  {:>8.2}  {:>10.0}  {:<16}  {:>9}  {:>6}  {:>9}  {:>9}  {}",
                r.what,
                r.events,
                r.took.as_secs_f64(),
                r.rate(),
                r.ratio,
                rss,
                cpu,
                per_event(r.cpu),
                per_event(r.broker_cpu),
                r.note
            )?;
        }
        Ok(())
    }
}
