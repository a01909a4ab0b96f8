//! Captures what a plugin writes to stdout and stderr.
//!
//! Output is never refused (a refused write makes Rust's `println!` panic),
//! but only the last few KiB are kept: enough to quote a panic message in a
//! trap report, never enough for a chatty plugin to exhaust the runner.

use std::sync::{Arc, Mutex};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How much of the latest output is kept.
const KEEP: usize = 4096;

/// The tail of a plugin's output, shared by its stdout and stderr.
#[derive(Clone, Default)]
pub struct OutputTail {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl OutputTail {
    /// Forgets what was captured so far (called before each plugin call).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The captured text, trimmed.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).trim().to_string()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, bytes: &[u8]) {
        let mut buf = self.lock();
        buf.extend_from_slice(bytes);
        if buf.len() > KEEP {
            let cut = buf.len() - KEEP;
            buf.drain(..cut);
        }
    }
}

impl IsTerminal for OutputTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for OutputTail {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for OutputTail {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for OutputTail {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_latest_output() {
        let tail = OutputTail::default();
        tail.push(&vec![b'a'; KEEP]);
        tail.push(b"panicked: boom");
        let text = tail.text();
        assert_eq!(text.len(), KEEP);
        assert!(text.ends_with("panicked: boom"));
        tail.clear();
        assert_eq!(tail.text(), "");
    }
}
