//! Keeping a router's routing state in step with the routing file:
//! looked at every 100 ms, read again only when it changed, so a rollback
//! written by `runner rollback` or another router's admin endpoint takes
//! effect here within a fraction of a second.

use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::routing::{Routing, RoutingFile};

/// How often the file is looked at.
pub const POLL: Duration = Duration::from_millis(100);

/// Follows `file` into `routing` until `stop` turns true.
pub async fn follow(
    file: RoutingFile,
    routing: Arc<RwLock<Arc<Routing>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut seen: Option<(SystemTime, u64, u64)> = None;
    let mut warned = false;
    let mut polls: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stopped(&mut stop) => return,
        }
        polls += 1;
        let stamp = std::fs::metadata(file.path())
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len(), m.ino())));
        // Read when it looks changed, and every second anyway (a change
        // within one tick of the clock may look the same).
        if stamp.is_none() || (stamp == seen && !polls.is_multiple_of(10)) {
            continue;
        }
        match file.read() {
            Ok(new) => {
                seen = stamp;
                warned = false;
                let mut current = routing.write().unwrap_or_else(|p| p.into_inner());
                // Never back to an older state (a late write of an admin
                // call racing a rollback).
                if new.generation > current.generation {
                    tracing::info!("routing is now {}", new.describe());
                    *current = Arc::new(new);
                }
            }
            Err(e) if !warned => {
                warned = true;
                tracing::warn!("{e}; routing stays as it was");
            }
            Err(_) => {}
        }
    }
}

/// Waits until `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
