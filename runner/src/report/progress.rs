//! Progress of a long step: a bar on a terminal (indicatif), and a log
//! line every few seconds otherwise, so CI logs show progress too.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a log line is written when there is no bar.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The bar on screen, if any: log lines are written around it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Where `tracing` writes: stderr, with the progress bar (if one is
/// drawn) lifted while a line is written, so lines and bar never mix.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match active {
            Some(bar) => bar
                .suspend(|| std::io::stderr().write_all(buf))
                .map(|()| buf.len()),
            None => std::io::stderr().write_all(buf).map(|()| buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// How far along a source is, for progress display.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Units done (bytes of a file).
    pub done: u64,
    /// Units in all, if known.
    pub total: Option<u64>,
}

/// Progress of one step, shared by its threads.
#[derive(Clone)]
pub struct ProgressLine {
    inner: Arc<Inner>,
}

struct Inner {
    step: String,
    bar: Option<ProgressBar>,
    started: Instant,
    log: Mutex<(Instant, u64, Progress)>,
}

impl ProgressLine {
    /// A bar when `show` and stderr is a terminal; log lines otherwise.
    pub fn new(show: bool, step: &str, total: Option<u64>) -> Self {
        let bar = (show && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let bar = ProgressBar::new(total.unwrap_or(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:30}] {percent:>3}% {msg} ({elapsed})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(step.to_string());
            *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
            bar
        });
        ProgressLine {
            inner: Arc::new(Inner {
                step: step.to_string(),
                bar,
                started: Instant::now(),
                log: Mutex::new((Instant::now(), 0, Progress::default())),
            }),
        }
    }

    /// The source's position moved.
    pub fn source(&self, p: Progress) {
        if let Some(bar) = &self.inner.bar {
            if let Some(total) = p.total {
                bar.set_length(total);
            }
            bar.set_position(p.done);
        }
        self.inner.log.lock().unwrap_or_else(|e| e.into_inner()).2 = p;
    }

    /// `n` events were written in all.
    pub fn events(&self, n: u64) {
        let elapsed = self.inner.started.elapsed();
        if let Some(bar) = &self.inner.bar {
            bar.set_message(format!(
                "{} events, {}",
                super::thousands(n),
                super::rate(n, elapsed, "events")
            ));
            return;
        }
        let mut log = self.inner.log.lock().unwrap_or_else(|e| e.into_inner());
        log.1 = n;
        if log.0.elapsed() >= LOG_EVERY {
            log.0 = Instant::now();
            let pct = log
                .2
                .total
                .filter(|t| *t > 0)
                .map(|t| format!(" ({}%)", log.2.done * 100 / t))
                .unwrap_or_default();
            tracing::info!(
                step = %self.inner.step,
                "{} events written{pct}, {}",
                super::thousands(n),
                super::rate(n, elapsed, "events")
            );
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.inner.bar {
            bar.finish_and_clear();
            *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}
