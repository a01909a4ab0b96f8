//! Threads that run a router's plugin calls (the route plugin's, the
//! mirror's response-check plugin's), off the threads that serve
//! requests: a call blocks its thread (and the sandbox's host calls cannot
//! run inside an async runtime), and a plugin that hangs must not hold a
//! thread the proxy needs. Each thread keeps one instance; the sandbox
//! replaces an instance it stopped.

use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::plugin::instance::{Instance, Plugin, World};

/// Why a call got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// Every thread was busy and the queue full: the call was not made.
    Busy,
    /// No thread answered within the wait.
    Late,
}

/// The queue of a set of plugin threads; they end when it is dropped.
pub struct PluginThreads<In, Out> {
    jobs: SyncSender<(In, oneshot::Sender<Out>)>,
}

impl<In: Send + 'static, Out: Send + 'static> PluginThreads<In, Out> {
    /// Starts `threads` threads named `name`, each with its own instance of
    /// `plugin`, taking calls from a queue of `queue`; `call` makes one.
    pub fn start<W: World>(
        plugin: &Plugin<W>,
        name: &str,
        threads: usize,
        queue: usize,
        call: impl Fn(&mut Instance<W>, &In) -> Out + Send + Sync + 'static,
    ) -> Self {
        let (jobs, waiting) = sync_channel::<(In, oneshot::Sender<Out>)>(queue);
        let waiting = Arc::new(Mutex::new(waiting));
        let call = Arc::new(call);
        for _ in 0..threads {
            let waiting = waiting.clone();
            let call = call.clone();
            let mut instance = plugin.instance();
            let started = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    loop {
                        let job = waiting.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok((input, tell)) = job else {
                            return;
                        };
                        // Its caller gave up waiting: no call for nobody.
                        if tell.is_closed() {
                            continue;
                        }
                        let _ = tell.send(call(&mut instance, &input));
                    }
                });
            if let Err(e) = started {
                tracing::error!("cannot start a {name} thread: {e}");
            }
        }
        PluginThreads { jobs }
    }

    /// Has one thread make the call with `input`, waiting at most `wait`
    /// for it (time in the queue included); never blocks the caller's
    /// thread.
    pub async fn ask(&self, input: In, wait: Duration) -> Result<Out, Unanswered> {
        let (tell, answer) = oneshot::channel();
        if self.jobs.try_send((input, tell)).is_err() {
            return Err(Unanswered::Busy);
        }
        match tokio::time::timeout(wait, answer).await {
            Ok(Ok(out)) => Ok(out),
            _ => Err(Unanswered::Late),
        }
    }
}
